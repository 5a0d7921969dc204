"""The App edge's work off the request path: writing consent back to Saleor, telling waiting shoppers about
restocked variants, checking the App token. Found by Celery's autodiscovery (``saleor_flows.saleor_app`` in
``INSTALLED_APPS``); a beat of an App deployment adds ``BEAT_SCHEDULE``."""

import logging

from celery import shared_task

from ..engine.derived import notify_restocked
from . import client, installation

logger = logging.getLogger(__name__)

RETRY_SECONDS = 60
MAX_RETRIES = 20  # about twenty minutes of Saleor being away


@shared_task(name="saleor_flows.app_write_metadata", bind=True, ignore_result=True, max_retries=MAX_RETRIES)
def write_metadata(self, object_id: str, values: dict):
    """Saleor's metadata of one object (a user's consent keys), written with the App token; retried while
    Saleor is away, dropped (and logged) when Saleor refuses it for good."""
    try:
        refused = client.update_metadata_many([(object_id, values)])
    except client.TokenRefused:
        logger.warning("saleor-flows: consent for %s not written to Saleor: the App token is refused", object_id)
        return
    except client.SaleorUnavailable as exc:
        raise self.retry(exc=exc, countdown=RETRY_SECONDS)
    except client.SaleorError as exc:
        logger.warning("saleor-flows: Saleor refused the metadata of %s: %s", object_id, exc)
        return
    if refused:
        logger.warning("saleor-flows: Saleor refused the metadata of %s: %s", object_id, refused[object_id])


@shared_task(name="saleor_flows.app_back_in_stock", ignore_result=True)
def notify_back_in_stock(variant_id: str, quantity: int) -> int:
    return notify_restocked(lambda waiting: {variant_id: quantity} if variant_id in waiting else {})


TOKEN_CHECK = "query FlowsAppAlive { app { id } }"


@shared_task(name="saleor_flows.app_check_token", ignore_result=True)
def check_token() -> str:
    """Is the App still installed? ``APP_DELETED`` is missed when this service was down while Saleor tried (five
    retries over about five minutes); asking Saleor with the token finds out. A token Saleor no longer knows
    holds all sending, as ``APP_DELETED`` does; a Saleor that is away changes nothing."""
    row = installation.current()
    if row is None or row.removed_at is not None:
        return "not installed"
    try:
        data = client.execute(TOKEN_CHECK)
    except client.TokenRefused:
        return "refused"
    except client.SaleorError as exc:
        if "PermissionDenied" not in exc.codes:
            logger.warning("saleor-flows: could not check the App token with Saleor: %s", exc)
            return "unknown"
        data = {}  # Saleor 3.24's answer to a token it does not know: `app` denied to an anonymous caller
    if not isinstance(data.get("app"), dict) or not data["app"].get("id"):
        installation.mark_removed("token_refused")
        logger.warning("saleor-flows: Saleor no longer knows the App token; all sending is held until the App is "
                       "installed again")
        return "refused"
    return "installed"


BEAT_SCHEDULE = {
    "saleor-flows-app-token": {"task": "saleor_flows.app_check_token", "schedule": 3600.0},
}

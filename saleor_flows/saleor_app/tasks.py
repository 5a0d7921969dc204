"""The App edge's work off the request path: writing consent back to Saleor, telling waiting shoppers about
restocked variants. Found by Celery's autodiscovery (``saleor_flows.saleor_app`` in ``INSTALLED_APPS``)."""

import logging

from celery import shared_task

from ..engine.derived import notify_restocked
from . import client

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

"""A small client for Saleor's GraphQL API with the App token: what the App asks or tells Saleor.

Used only from workers (tasks, resolvers), never while answering a webhook
or a shopper. Each call is bounded (``APP_GRAPHQL_TIMEOUT_SECONDS``, a
response of at most ``MAX_RESPONSE_BYTES``) and retried with a short backoff
on what may pass (a network error, a 5xx, a 429), ``APP_GRAPHQL_ATTEMPTS``
times in all. Several operations go out as one document (aliases), so a
batch costs one round trip. A token Saleor refuses holds all sending
(``installation.mark_removed``) instead of failing every call after it.
"""

import json
import logging
import time
import urllib.error
import urllib.request

from ..conf import flows_setting
from ..dashboard.register import app_token, own_saleor_api_url
from . import installation

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 2 * 1024 * 1024
BACKOFF_SECONDS = (0.5, 2, 5)
TOKEN_ERRORS = {"InvalidTokenError", "ExpiredSignatureError", "InvalidSignatureError", "DecodeError"}


class SaleorError(Exception):
    """Saleor answered, and the answer is an error that retrying will not change."""

    def __init__(self, message: str, codes=frozenset()):
        super().__init__(message)
        self.codes = frozenset(codes)  # Saleor's error codes (extensions.exception.code), e.g. "PermissionDenied"


class SaleorUnavailable(SaleorError):
    """Saleor could not be reached or answered 5xx/429, after every attempt: try again later."""


class TokenRefused(SaleorError):
    """Saleor does not accept the App token (the App was removed, or its token deleted)."""


def execute(query: str, variables: dict | None = None, *, attempts: int | None = None,
            timeout: float | None = None) -> dict:
    """``data`` of a GraphQL operation run with the App token; raises a ``SaleorError`` otherwise.

    ``attempts``/``timeout`` override the settings for a caller that cannot wait (a storefront's request).
    """
    token, api_url = app_token(), own_saleor_api_url()
    if not token or not api_url:
        raise SaleorError("The App is not installed (no token) or APP_SALEOR_API_URL is not set.")
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    attempts = max(1, int(attempts or flows_setting("APP_GRAPHQL_ATTEMPTS")))
    timeout = timeout or flows_setting("APP_GRAPHQL_TIMEOUT_SECONDS")
    for attempt in range(attempts):
        try:
            answer = _post(api_url, token, body, timeout)
            break
        except SaleorUnavailable as exc:
            if attempt + 1 >= attempts:
                raise
            logger.info("saleor-flows: Saleor's API unavailable (%s); retrying", exc)
            time.sleep(BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)])
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if errors:
        codes = {str(((error or {}).get("extensions") or {}).get("exception", {}).get("code", ""))
                 for error in errors if isinstance(error, dict)}
        if codes & TOKEN_ERRORS:
            _token_refused()
        raise SaleorError("; ".join(str((error or {}).get("message", error))[:300] for error in errors[:5]), codes)
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict):
        raise SaleorError("Saleor's answer holds no data.")
    return data


def _post(api_url: str, token: str, body: bytes, timeout: float) -> dict:
    request = urllib.request.Request(api_url, data=body, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            _token_refused()
            raise TokenRefused(f"Saleor refused the App token (HTTP {exc.code}).") from exc
        if exc.code >= 500 or exc.code == 429:
            raise SaleorUnavailable(f"HTTP {exc.code}") from exc
        raise SaleorError(f"Saleor answered HTTP {exc.code}.") from exc
    except OSError as exc:  # URLError, timeouts, refused connections
        raise SaleorUnavailable(str(exc)) from exc
    if len(raw) > MAX_RESPONSE_BYTES:
        raise SaleorError("Saleor's answer is larger than we read.")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise SaleorError("Saleor's answer is not JSON.") from exc


def _token_refused():
    if installation.mark_removed("token_refused"):
        logger.warning("saleor-flows: Saleor refused the App token; all sending is held until the App is "
                       "installed again")


UPDATE_METADATA = "{alias}: updateMetadata(id: ${alias}_id, input: ${alias}_input) {{ errors {{ field code message }} }}"


def update_metadata_many(changes: list[tuple[str, dict]]) -> dict[str, str]:
    """Write ``{key: value}`` into each object's public metadata, all in one request.

    Returns ``{object id: error message}`` for the objects Saleor refused
    (e.g. a user deleted meanwhile); raises ``SaleorError`` when the whole
    request failed.
    """
    if not changes:
        return {}
    fields, declarations, variables = [], [], {}
    for index, (object_id, values) in enumerate(changes):
        alias = f"m{index}"
        declarations += [f"${alias}_id: ID!", f"${alias}_input: [MetadataInput!]!"]
        variables[f"{alias}_id"] = object_id
        variables[f"{alias}_input"] = [{"key": key, "value": value} for key, value in values.items()]
        fields.append(UPDATE_METADATA.format(alias=alias))
    data = execute(f"mutation FlowsMetadata({', '.join(declarations)}) {{ {' '.join(fields)} }}", variables)
    refused = {}
    for index, (object_id, _) in enumerate(changes):
        errors = ((data.get(f"m{index}") or {}).get("errors")) or []
        if errors:
            refused[object_id] = "; ".join(str(error.get("message") or error.get("code")) for error in errors)[:500]
    return refused

"""The HTTP endpoint: ``POST {query, variables, operationName}`` → ``{data, errors}``.

POST only (plus CORS preflight for the dashboard App's origin); no GraphiQL,
no batching. A bearer token is the only credential, so the view is exempt
from CSRF and never reads cookies. Errors carry
``extensions.exception.code`` as Saleor's API does (``PermissionDenied``,
``ExpiredSignatureError``…), so a dashboard written for Saleor handles them
the same way.
"""

import logging

from django.http import HttpResponse, JsonResponse
from graphql.error import GraphQLError, GraphQLSyntaxError

from ..conf import flows_setting
from ..web.untrusted import BadJson, read_json
from .auth import AuthenticationError, authenticate
from .core import PermissionDenied
from .limits import QueryRefused, check_query
from .schema import schema

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000
# A document that passes every limit can still fail validation many times over (1,200 unused
# variables gave a 180 KB answer): the first errors say what is wrong, the rest only weigh.
MAX_LISTED_ERRORS = 20


def _cors(request, response):
    origin = request.META.get("HTTP_ORIGIN")
    allowed = flows_setting("API_ALLOWED_ORIGINS") or []
    if origin and (origin in allowed or "*" in allowed):
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response["Access-Control-Max-Age"] = "86400"
        response["Vary"] = "Origin"
    return response


def _listed_errors(errors: list) -> list[dict]:
    """The first MAX_LISTED_ERRORS errors, then one that says how many more there were."""
    listed = [format_error(err) for err in errors[:MAX_LISTED_ERRORS]]
    if len(errors) > MAX_LISTED_ERRORS:
        listed.append({"message": f"{len(errors) - MAX_LISTED_ERRORS} more errors not listed.",
                       "extensions": {"exception": {"code": "TooManyErrors"}}})
    return listed


def _error(message: str, code: str, status: int):
    return JsonResponse({"errors": [{"message": message, "extensions": {"exception": {"code": code}}}]},
                        status=status)


def format_error(err) -> dict:
    original = getattr(err, "original_error", None)
    formatted = {"message": str(original) if original is not None else getattr(err, "message", str(err))}
    locations = getattr(err, "locations", None)
    if locations:
        formatted["locations"] = [{"line": loc.line, "column": loc.column} for loc in locations]
    if getattr(err, "path", None):
        formatted["path"] = err.path
    if isinstance(original, PermissionDenied):
        code, extra = "PermissionDenied", {"permissions": original.permissions}
    elif original is None or isinstance(original, GraphQLError):
        code, extra = "GraphQLError", {}
    else:
        # A bug, not the caller's fault: log it, tell them nothing internal.
        logger.error("saleor-flows API: %s", original, exc_info=(type(original), original, original.__traceback__))
        formatted["message"] = "Internal error."
        code, extra = "InternalError", {}
    formatted["extensions"] = {"exception": {"code": code, **extra}}
    return formatted


def graphql_view(request):
    if request.method == "OPTIONS":
        return _cors(request, HttpResponse(status=200))
    if request.method != "POST":
        response = _error("The API accepts POST requests only.", "MethodNotAllowed", 405)
        response["Allow"] = "POST, OPTIONS"
        return _cors(request, response)
    return _cors(request, _execute(request))


def _execute(request):
    try:
        request.principal = authenticate(request)
    except AuthenticationError as exc:
        response = _error(exc.message, exc.code, 401)
        response["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    if len(request.body) > MAX_BODY_BYTES:
        return _error("The request is too large.", "RequestTooLarge", 413)
    if request.content_type != "application/json":
        # A cross-site form (text/plain, form-encoded) needs no CORS preflight: only JSON is read.
        return _error("Send the operation as application/json.", "UnsupportedMediaType", 415)
    try:
        body = read_json(request.body or b"{}")
    except BadJson as exc:
        return _error(str(exc), "BadRequest", 400)
    if not isinstance(body, dict):
        return _error("Send one operation as {query, variables, operationName}; batches are not supported.",
                      "BadRequest", 400)
    query, variables = body.get("query"), body.get("variables") or {}
    if not isinstance(query, str) or not query.strip():
        return _error("Must provide a query string.", "BadRequest", 400)
    if not isinstance(variables, dict):
        return _error("Variables must be a JSON object.", "BadRequest", 400)
    try:
        check_query(query, variables, anonymous=request.principal.is_anonymous)
    except QueryRefused as exc:
        return JsonResponse({"errors": [exc.error()]}, status=400)
    try:
        result = schema.execute(query, variable_values=variables, operation_name=body.get("operationName"),
                                context_value=request)
    except GraphQLSyntaxError as exc:  # pragma: no cover - graphql-core 2 reports syntax errors in the result
        return _error(str(exc), "GraphQLError", 400)
    payload = {"data": result.data}
    if result.errors:
        payload["errors"] = _listed_errors(result.errors)
    # 400 for a document that does not parse or validate; resolver errors (PermissionDenied…) are 200, as in Saleor.
    status = 400 if getattr(result, "invalid", False) else 200
    return JsonResponse(payload, status=status)

"""``POST subscribe/``: the public endpoint storefront signup forms post to.

Body (JSON or form-encoded): ``public_key`` (the shop's PUBLIC_KEY), ``email``
and/or ``phone`` (with ``country`` for numbers written without ``+``),
``source`` (``storefront_form`` or ``checkout``), optional ``language``,
``topics`` and ``first_name``. Answers ``202 {"ok": true, ...}`` whatever the
address: whether someone was already subscribed (or known at all) is never
revealed. Errors are ``{"errors": [{"field", "code", "message"}]}`` like
Saleor's own.

Guarding an endpoint anyone can call:
- the public key only says which shop a form belongs to (it sits in the
  storefront's page source); the real limits are the rate limits per IP
  address and per email address/phone number (Django's cache, fixed windows
  of an hour), answered with 429 and ``Retry-After``;
- browsers may call it only from SUBSCRIBE_ALLOWED_ORIGINS (CORS, with the
  OPTIONS preflight answered here). A request with another ``Origin`` is
  refused before anything is stored, since a form-encoded POST needs no
  preflight;
- CSRF-exempt (see ``urls.py``): a cross-site form is the whole point, and it
  carries no session to abuse;
- with DOUBLE_OPT_IN a signup counts only once the address confirmed it;
- bodies are bounded in size and nesting, text holding NUL bytes or lone
  surrogates is refused, and the subscription itself runs off the request, so
  a known and an unknown address cost the request the same (docs/security.md).
"""

from django.http import HttpResponse, JsonResponse

from ..channels.templating import language_key
from ..conf import flows_setting
from ..engine import dispatch
from ..engine.consent import PUBLIC_SOURCES, topic_keys
from ..events import normalize_email, unstorable, valid_email
from ..phone import to_e164
from .limits import client_address, over_limit, public_key_matches
from .pages import client_proof
from .untrusted import BadJson, plain_text, read_json

WINDOW_SECONDS = 3600
MAX_BODY_BYTES = 16 * 1024
FIELDS = ("email", "phone", "country", "source", "language", "topics", "first_name", "channel")
UNSTORABLE_TEXT = "Contains characters that are not allowed (NUL bytes or unpaired surrogates)."
ORIGIN_REFUSED = "This origin may not call the subscribe endpoint (see SUBSCRIBE_ALLOWED_ORIGINS)."


def _error(status: int, field, code: str, message: str, **headers) -> JsonResponse:
    response = JsonResponse({"errors": [{"field": field, "code": code, "message": message}]}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _allowed_origin(request) -> str | None:
    """The request's Origin if it may call us from a browser; "" for a request without one (server to server)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return ""
    allowed = [value.rstrip("/") for value in flows_setting("SUBSCRIBE_ALLOWED_ORIGINS") or []]
    return origin if origin.rstrip("/") in allowed or "*" in allowed else None


def _with_cors(response: HttpResponse, origin: str) -> HttpResponse:
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
    return response


def _body(request) -> dict | None:
    if len(request.body) > MAX_BODY_BYTES:
        return None
    if request.content_type == "application/json":
        try:
            data = read_json(request.body or b"{}")
        except BadJson:
            return None
        return data if isinstance(data, dict) else None
    data = {key: request.POST.get(key) for key in request.POST}
    data["topics"] = request.POST.getlist("topics")
    return data


def _validate(data: dict) -> tuple[dict, list[dict]]:
    """Clean values and every problem found (Saleor style: field, code, message)."""
    errors, clean = [], {}

    def problem(field, code, message):
        errors.append({"field": field, "code": code, "message": message})

    email, phone = data.get("email"), data.get("phone")
    if email not in (None, ""):
        if not isinstance(email, str) or len(email) > 254:
            problem("email", "INVALID", "Enter a valid email address.")
        elif valid_email(email.strip()):
            clean["email"] = normalize_email(email)
        else:
            problem("email", "INVALID", "Enter a valid email address.")
    if phone not in (None, ""):
        try:
            clean["phone"] = to_e164(phone if isinstance(phone, str) else "", data.get("country") or None)
        except ValueError as exc:
            problem("phone", "INVALID", f"{str(exc)[0].upper()}{str(exc)[1:]}.")
    if email in (None, "") and phone in (None, ""):
        problem("email", "REQUIRED", "Give an email address or a phone number.")
    source = data.get("source") or "storefront_form"
    if source not in PUBLIC_SOURCES:
        problem("source", "INVALID", f"Use one of: {', '.join(PUBLIC_SOURCES)}.")
    clean["source"] = source
    topics = data.get("topics") or []
    if isinstance(topics, str):
        topics = [topics]
    if not isinstance(topics, list) or not all(isinstance(key, str) for key in topics):
        problem("topics", "INVALID", "Give topics as a list of topic keys.")
    else:
        unknown = [key for key in topics if key not in topic_keys()]
        if unknown:
            problem("topics", "INVALID", f"Unknown topics: {', '.join(unknown)}. Known: {', '.join(topic_keys())}.")
        clean["topics"] = topics
    for name, limit in (("language", 35), ("first_name", 150)):
        value = data.get(name) or ""
        if not isinstance(value, str) or len(value) > limit:
            problem(name, "INVALID", f"Text of at most {limit} characters.")
        clean[name] = value.strip() if isinstance(value, str) else ""
    clean["first_name"] = plain_text(clean["first_name"], 150)  # mail greets them with it: no markup or links
    if clean["language"] and language_key(clean["language"]) is None:
        problem("language", "INVALID", "A language code such as 'de' or 'pt-BR'.")
    clean["channel"] = str(data.get("channel") or "")[:100]
    return clean, errors


class SignupRefused(Exception):
    """A signup that cannot be taken: an HTTP status and Saleor-style errors; nothing was stored."""

    def __init__(self, status: int, errors: list[dict], retry_after: int = 0):
        super().__init__("; ".join(error["message"] for error in errors))
        self.status, self.errors, self.retry_after = status, errors, retry_after


def _refuse(status, field, code, message, retry_after=0):
    raise SignupRefused(status, [{"field": field, "code": code, "message": message}], retry_after)


def signup(request, data: dict) -> bool:
    """Everything after transport: limits, the public key, validation, then the subscription.

    Shared by this endpoint and the API's ``subscribe`` mutation. Returns
    whether a confirmation email is required (double opt-in); raises
    ``SignupRefused``. Whether the person was known is never revealed.
    """
    if _allowed_origin(request) is None:
        # Checked here, not only in the view: the API's mutation must refuse a cross-site page too
        # (a text/plain or form POST reaches a server without a CORS preflight).
        _refuse(403, None, "ORIGIN_NOT_ALLOWED", ORIGIN_REFUSED)
    retry_after = over_limit("subscribe:ip", client_address(request), flows_setting("SUBSCRIBE_RATE_PER_IP"),
                             window_seconds=WINDOW_SECONDS)
    if retry_after:
        _refuse(429, None, "RATE_LIMITED", "Too many requests; try again later.", retry_after)
    given = data.get("public_key") or request.headers.get("X-Flows-Public-Key") or ""
    if not flows_setting("PUBLIC_KEY"):
        _refuse(403, "public_key", "NOT_CONFIGURED", "Signups are not enabled for this shop (no public key is configured).")
    if not given:
        _refuse(400, "public_key", "REQUIRED", "The shop's public key is required.")
    if not public_key_matches(given):
        _refuse(403, "public_key", "INVALID", "This public key does not belong to this shop.")
    bad = [name for name in FIELDS if unstorable(data.get(name))]
    if bad:
        raise SignupRefused(400, [{"field": name, "code": "INVALID", "message": UNSTORABLE_TEXT} for name in bad])
    clean, errors = _validate(data)
    if errors:
        raise SignupRefused(400, errors)
    for address in filter(None, (clean.get("email"), clean.get("phone"))):
        retry_after = over_limit("subscribe:address", address, flows_setting("SUBSCRIBE_RATE_PER_ADDRESS"),
                                 window_seconds=WINDOW_SECONDS)
        if retry_after:
            _refuse(429, None, "RATE_LIMITED", "Too many requests; try again later.", retry_after)
    # The same work for a known and an unknown address (no timing oracle): the subscription runs off the request.
    dispatch.signup({"email": clean.get("email"), "phone": clean.get("phone"), "language": clean["language"],
                     "topics": clean["topics"], "first_name": clean["first_name"], "channel": clean["channel"]},
                    client_proof(request, clean["source"], form="subscribe"))
    return bool(flows_setting("DOUBLE_OPT_IN")) and bool(clean.get("email"))


def subscribe(request) -> HttpResponse:
    origin = _allowed_origin(request)
    if origin is None:  # refused before the body is read (signup() refuses it too, for the API's mutation)
        return _error(403, None, "ORIGIN_NOT_ALLOWED", ORIGIN_REFUSED)
    if request.method == "OPTIONS":  # CORS preflight
        response = _with_cors(HttpResponse(status=204), origin)
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type"
        response["Access-Control-Max-Age"] = "86400"
        return response
    if request.method != "POST":
        return _with_cors(_error(405, None, "METHOD_NOT_ALLOWED", "Use POST."), origin)
    data = _body(request)
    if data is None:
        return _with_cors(_error(400, None, "INVALID", "Send a JSON object or a form (at most 16 KiB)."), origin)
    try:
        confirmation_required = signup(request, data)
    except SignupRefused as refused:
        response = JsonResponse({"errors": refused.errors}, status=refused.status)
        if refused.retry_after:
            response["Retry-After"] = str(refused.retry_after)
        return _with_cors(response, origin)
    # The same answer whatever happened: never reveal who is known.
    return _with_cors(JsonResponse({"ok": True, "confirmation_required": confirmation_required}, status=202), origin)

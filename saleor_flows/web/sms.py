"""SMS providers' webhooks: delivery statuses and inbound texts (STOP, START, HELP).

``sms/<provider>/status/`` and ``sms/<provider>/inbound/``. The provider's
module verifies the signature before anything is read: a bad signature is
answered 403 and records nothing; a signed but unreadable body 400 with the
reason, as is one we cannot read or store (wrong types, impossible dates,
NUL bytes: ``untrusted.malformed_is_400``), with a log line. Statuses go to
``engagement.record`` and inbound texts to ``inbound.handle``, both of which
store each provider event once, so a provider's retry is answered 200 and
counted once.
"""

import importlib
import logging

from django.db import transaction
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseForbidden, HttpResponseNotAllowed, \
    HttpResponseNotFound

from ..conf import flows_setting
from ..channels.sms import SmsError, SmsMessage, get_sms_backend
from ..channels.sms.webhooks import MalformedWebhook, SignatureError
from ..engine import engagement, inbound as inbound_sms
from .untrusted import malformed_is_400

logger = logging.getLogger(__name__)

PROVIDERS = {name: f"saleor_flows.channels.sms.{name}" for name in ("twilio", "vonage", "aws")}


def _provider(name: str):
    return importlib.import_module(PROVIDERS[name]) if name in PROVIDERS else None


def _receive(request, provider: str, reader: str):
    """``(module, what the provider's reader returned, None)``, or an HTTP refusal as the last item."""
    module = _provider(provider)
    if module is None:
        return None, None, HttpResponseNotFound("Unknown SMS provider")
    if request.method != "POST":
        return None, None, HttpResponseNotAllowed(["POST"])
    try:
        return module, getattr(module, reader)(request), None
    except SignatureError as exc:
        logger.warning("saleor-flows: refused an SMS webhook: %s", exc)
        return None, None, HttpResponseForbidden("Invalid signature")
    except MalformedWebhook as exc:
        logger.warning("saleor-flows: refused a malformed %s SMS webhook: %s", provider, exc)
        return None, None, HttpResponseBadRequest(f"Malformed webhook: {exc}")


@malformed_is_400("SMS status")
def status(request, provider: str):
    _, statuses, refusal = _receive(request, provider, "statuses")
    if refusal:
        return refusal
    with transaction.atomic():  # a batch is recorded whole or not at all
        for item in statuses:
            engagement.record(item)
    return HttpResponse(status=200)


@malformed_is_400("SMS inbound")
def inbound(request, provider: str):
    module, message, refusal = _receive(request, provider, "inbound")
    if refusal:
        return refusal
    if message is None:  # a provider's housekeeping request (e.g. an SNS subscription), answered already
        return HttpResponse(status=200)
    text = inbound_sms.handle(message)
    if not flows_setting("SMS_KEYWORD_REPLIES"):
        text = ""  # the provider answers keywords itself
    if hasattr(module, "reply"):
        return module.reply(message, text)
    if text:
        # Sent from the number the person wrote to; a failure is logged, the inbound stays handled.
        try:
            get_sms_backend().send_messages([SmsMessage(to=message.from_number, body=text,
                                                        from_=message.to_number, kind="transactional")])
        except SmsError as exc:
            logger.warning("saleor-flows: could not reply to an inbound SMS: %s", exc)
    return HttpResponse(status=200)

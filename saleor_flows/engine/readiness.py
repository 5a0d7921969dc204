"""Whether a flow can go live as configured: the checks a merchant sees before "Turn on" and on the home page.

Validation problems of the definition, and what the shop's settings lack for
the flow's messages to go out: a sender, a consent source for marketing, a
public URL for unsubscribe links, a link back to the checkout. A ``blocking``
check would make every message fail or be skipped; a ``warning`` sends, but
not as the merchant expects.
"""

import re
from dataclasses import dataclass

from django.conf import settings

from ..conf import flows_setting
from . import holds
from .definition import message_kind, validate_definition

BLOCKING = "blocking"
WARNING = "warning"
_PATH = re.compile(r"^([^\s:]+): (.*)$", re.S)  # "steps.email_1.subject: unknown variable"
PLACEHOLDER_FROM = {"", "webmaster@localhost"}  # Django's default DEFAULT_FROM_EMAIL: nobody's address


@dataclass(frozen=True)
class Check:
    code: str  # invalid_definition, missing_sender, missing_sms_sender, missing_consent_key, missing_public_url, ...
    severity: str
    message: str
    path: str = ""


def _send_steps(definition: dict) -> list[tuple[str, dict]]:
    steps = definition.get("steps") if isinstance(definition.get("steps"), dict) else {}
    return [(step_id, step) for step_id, step in steps.items()
            if isinstance(step, dict) and step.get("type") in ("send_email", "send_sms")]


def check_flow(definition: dict) -> list[Check]:
    """Every problem standing between ``definition`` and messages that arrive as intended."""
    if not isinstance(definition, dict):
        return [Check("invalid_definition", BLOCKING, "The flow has no definition.")]
    checks = []
    for problem in validate_definition(definition):
        path, message = split_problem(problem)
        checks.append(Check("invalid_definition", BLOCKING, message, path or ""))
    sends = _send_steps(definition)
    channels = {"email" if step["type"] == "send_email" else "sms" for _, step in sends}
    marketing = any(message_kind(step, definition) == "marketing" for _, step in sends)
    if "email" in channels and not _email_sender():
        checks.append(Check("missing_sender", BLOCKING,
                            "No sender address: set the sender in the plugin's configuration or a sender per "
                            "channel in Flows settings."))
    if "sms" in channels and not _sms_sender():
        checks.append(Check("missing_sms_sender", BLOCKING,
                            "No SMS sender: set one in the plugin's SMS configuration or per channel in Flows "
                            "settings."))
    if marketing and not flows_setting("CONSENT_METADATA_KEY"):
        checks.append(Check("missing_consent_key", BLOCKING,
                            "Marketing messages need recorded consent, and no consent metadata key is set: "
                            "customers who agree at the storefront would never get them."))
    if sends and not (flows_setting("PUBLIC_URL") or (flows_setting("SHOP") or {}).get("url")):
        checks.append(Check("missing_public_url", BLOCKING,
                            "No public URL: unsubscribe and tracking links in messages would not work."))
    held = holds.sending_held() if sends else ""
    if held:
        checks.append(Check("sending_held", WARNING, f"Nothing is sent right now: {held}. Messages wait and go "
                                                     "out once that is resolved."))
    trigger = (definition.get("trigger") or {}).get("event") if isinstance(definition.get("trigger"), dict) else ""
    if trigger == "checkout_abandoned" and not flows_setting("CHECKOUT_URL_TEMPLATE"):
        checks.append(Check("missing_checkout_url", WARNING,
                            "No storefront checkout link: reminders cannot link back to the shopper's cart."))
    return checks


def split_problem(problem: str) -> tuple[str | None, str]:
    """``"steps.email_1.subject: unknown variable"`` → ("steps.email_1.subject", "unknown variable")."""
    match = _PATH.match(problem)
    return (match.group(1), match.group(2)) if match else (None, problem)


def blocking(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.severity == BLOCKING]


def _email_sender() -> bool:
    if flows_setting("FROM_EMAIL") or any((s or {}).get("from_email") for s in (flows_setting("SENDERS") or {}).values()):
        return True
    return (getattr(settings, "DEFAULT_FROM_EMAIL", "") or "") not in PLACEHOLDER_FROM


def _sms_sender() -> bool:
    senders = flows_setting("SENDERS") or {}
    return bool(flows_setting("SMS_FROM") or flows_setting("SMS_SENDERS")
                or any((s or {}).get("sms_from") for s in senders.values()))

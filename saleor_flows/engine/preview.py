"""Previews and test sends: one message rendered by the exact send pipeline, for a merchant's eyes.

Both go through ``delivery.prepare`` as a real send does (same template
context, same headers, same unsubscribe link), so what the merchant sees is
what a contact gets. The data is either a real contact (with the payload of
their latest event of the flow's trigger, when there is one) or sample data.
A test send goes to the address the merchant gives, is stored as a
``Message`` with ``is_test=True`` and no contact, and so never counts in
reports, in conditions ("messages sent") or in a contact's history.
"""

import copy
import uuid
from dataclasses import dataclass

from django.db import transaction

from .. import clock
from ..events import valid_email
from ..channels import delivery
from ..channels.templating import TemplateError, compile_email
from ..channels.sms.segments import preview_sms
from ..phone import to_e164
from ..models import Contact, Event, Flow, Message
from . import recommendations
from .definition import SEND_TYPES, message_kind, version_definition
from ..fields import CONTACT_FIELDS
from .samples import sample_event

PREVIEWABLE = SEND_TYPES | {"notify_staff"}


class PreviewError(ValueError):
    def __init__(self, errors: list[str], field: str = "stepId"):
        super().__init__("; ".join(errors))
        self.errors = errors
        self.field = field


@dataclass
class Preview:
    channel: str
    to: str
    subject: str
    html: str
    text: str
    kind: str
    language: str = ""
    sms: dict | None = None  # encoding, segments, characters, per_segment, ucs2_characters (SMS only)


def _step(flow: Flow, step_id: str, version: int | None) -> tuple[dict, dict]:
    """The step as a send would see it: from a published version, or the draft compiled now."""
    if version is not None:
        version_id = flow.versions.filter(number=version).values_list("pk", flat=True).first()
        if version_id is None:
            raise PreviewError([f"flow {flow.slug!r} has no version {version}"], field="version")
        definition = version_definition(version_id)
        step = (definition.get("steps") or {}).get(step_id)
    else:
        definition = flow.definition or {}
        step = copy.deepcopy((definition.get("steps") or {}).get(step_id))
    if not isinstance(step, dict):
        raise PreviewError([f"no step {step_id!r} in this flow"])
    if step.get("type") not in PREVIEWABLE:
        raise PreviewError([f"step {step_id!r} is a {step.get('type')!r} step; only send steps have a message"])
    if version is None:
        step["id"] = step_id
        if step["type"] == "send_email":
            try:
                step["compiled"] = compile_email(step)
            except TemplateError as exc:
                raise PreviewError([f"steps.{step_id}.{e}" for e in exc.errors], field="definition") from exc
    return step, definition


def sample_contact(data: dict | None) -> Contact:
    """An unsaved contact from sample data (only known profile fields are taken)."""
    now = clock.now()
    contact = Contact(email="jane.doe@example.com", phone="+12025550143", first_name="Jane", last_name="Doe",
                      created_at=now, updated_at=now)
    for key, value in (data or {}).items():
        if key in CONTACT_FIELDS and key != "id" and hasattr(contact, key):
            setattr(contact, key, value)
    return contact


def _event_payload(flow: Flow, definition: dict, contact: Contact | None, sample: dict | None) -> dict:
    if sample and isinstance(sample.get("event"), dict):
        return sample["event"]
    trigger = (definition.get("trigger") or {}).get("event") or flow.trigger_event
    if contact is not None and contact.pk:
        payload = (Event.objects.filter(contact=contact, name=trigger).order_by("-occurred_at")
                   .values_list("payload", flat=True).first())
        if isinstance(payload, dict):
            return payload
    return sample_event(trigger)


def _prepare(flow, step_id, *, version, contact, sample, to=None):
    step, definition = _step(flow, step_id, version)
    if contact is None:
        contact = sample_contact((sample or {}).get("contact"))
    payload = _event_payload(flow, definition, contact, sample)
    if to:
        _check_address(step["type"], to)
        # Same data, another address: a copy so the real contact is never changed.
        contact = copy.copy(contact)
        if step["type"] == "send_sms":
            contact.phone = to
        else:
            contact.email = to
    if step["type"] == "send_sms" and not contact.phone:
        raise PreviewError(["this contact has no phone number; preview with sample data or give a number"],
                           field="contactId")
    kind = message_kind(step, definition)
    try:
        channel = str(payload.get("channel") or "") if isinstance(payload, dict) else ""
        outgoing = delivery.prepare(step, kind=kind, flow=flow, contact=contact, event_payload=payload,
                                    send_id=uuid.uuid4(), recommended=recommendations.for_step(
                                        step, contact, payload, channel))
    except TemplateError as exc:
        raise PreviewError(exc.errors if hasattr(exc, "errors") else [str(exc)], field="sampleData") from exc
    if step["type"] == "notify_staff" and to:
        outgoing.payload.to = [to]
        outgoing.to = to
    return outgoing, kind


def _check_address(step_type: str, to: str):
    if step_type == "send_sms":
        try:
            to_e164(to)
        except ValueError as exc:
            raise PreviewError([f"{exc}; an SMS goes to a phone number in international format, "
                                "e.g. +4915112345678"], field="to") from exc
        return
    if not valid_email(to):
        raise PreviewError([f"{to!r} is not an email address"], field="to")


def _parts(outgoing) -> tuple[str, str]:
    if outgoing.channel == "sms":
        return "", outgoing.payload.body
    html = next((content for content, mime in getattr(outgoing.payload, "alternatives", []) if mime == "text/html"), "")
    return html, outgoing.payload.body


def preview(flow: Flow, step_id: str, *, version: int | None = None, contact: Contact | None = None,
            sample: dict | None = None) -> Preview:
    outgoing, kind = _prepare(flow, step_id, version=version, contact=contact, sample=sample)
    html, text = _parts(outgoing)
    return Preview(channel=outgoing.channel, to=outgoing.to, subject=outgoing.subject, html=html, text=text,
                   kind=kind, sms=preview_sms(text) if outgoing.channel == "sms" else None)


def send_test(flow: Flow, step_id: str, to: str, *, version: int | None = None, contact: Contact | None = None,
              sample: dict | None = None) -> Message:
    """Render and hand off one message to ``to``; stored with ``is_test=True`` whatever happens."""
    outgoing, kind = _prepare(flow, step_id, version=version, contact=contact, sample=sample, to=to)
    now = clock.now()
    send_id = outgoing.payload.extra_headers.get("X-Flows-Send-Id") if outgoing.channel == "email" else None
    message = Message.objects.create(
        send_id=send_id or getattr(outgoing.payload, "send_id", None) or uuid.uuid4(), contact=None, flow=flow,
        step_id=step_id, channel=outgoing.channel, kind=kind, is_test=True, to=outgoing.to[:254],
        subject=outgoing.subject[:255], message_id=outgoing.message_id, status=Message.Status.SENDING,
        created_at=now)
    try:
        delivery.hand_off(outgoing)
    except Exception as exc:  # the merchant sees the provider's answer
        Message.objects.filter(pk=message.pk).update(status=Message.Status.FAILED, error=str(exc)[:2000],
                                                     failed_at=clock.now())
        message.refresh_from_db()
        return message
    with transaction.atomic():
        Message.objects.filter(pk=message.pk).update(status=Message.Status.SENT, sent_at=clock.now())
    message.refresh_from_db()
    return message

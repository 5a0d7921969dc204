"""Our open pixel and click redirect: engagement tracking that needs no ESP.

The pixel always answers with the image (a broken image in someone's inbox
helps nobody), but records only what a valid token names. The redirect goes
to the link stored at publish time for the message's flow version and step,
rendered for that message, and only if ``channels.links.allowed_target``
agrees; anything else gets a plain page saying the link cannot be opened,
never a redirect. Opens and clicks that look machine-generated are recorded
with ``machine=True`` (``tracking.machine``).
"""

import base64

from django.core import signing
from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.utils.html import escape

from .. import clock
from ..channels.delivery import template_context
from ..channels.links import (allowed_loop_target, allowed_target, loop_link, read_click_token, read_open_token,
                              render_link)
from ..channels.templating import TemplateError
from ..engine import engagement
from ..models import Message, MessageEvent, TrackedLink
from ..tracking.evidence import machine_reason_for

# A transparent 1×1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_CACHE = "no-store, no-cache, must-revalidate, private, max-age=0"


class LinkRefused(Exception):
    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status, self.text = status, text


def open_pixel(request, token: str) -> HttpResponse:
    if request.method in ("GET", "HEAD"):
        try:
            send_id = read_open_token(token)
        except (signing.BadSignature, ValueError, TypeError):
            send_id = None
        message = Message.objects.filter(send_id=send_id).first() if send_id else None
        if message is not None:
            _record(request, message, MessageEvent.Type.OPENED)
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = NO_CACHE
    response["Pragma"] = "no-cache"
    response["Expires"] = "0"
    return response


def resolve_click(token: str) -> tuple[Message, TrackedLink, str]:
    """The message, the stored link and where it leads for that message; ``LinkRefused`` otherwise."""
    try:
        send_id, link_id, signed_target = read_click_token(token)
    except (signing.BadSignature, ValueError, TypeError):
        raise LinkRefused(404, "This link is not valid.") from None
    message = (Message.objects.select_related("contact", "flow", "execution__enrolment__trigger_event")
               .filter(send_id=send_id).first())
    enrolment = message.execution.enrolment if message is not None and message.execution else None
    if enrolment is None or message.contact is None or message.flow is None:
        raise LinkRefused(404, "This link is no longer valid.")
    link = TrackedLink.objects.filter(pk=link_id, version_id=enrolment.version_id, step_id=message.step_id).first()
    if link is None:
        raise LinkRefused(404, "This link is not valid.")
    if loop_link(link.url):  # built inside a loop: where it leads was signed into the token at send time
        if signed_target is None or not allowed_loop_target(signed_target):
            raise LinkRefused(400, "This link cannot be opened.")
        return message, link, signed_target
    if signed_target is not None:
        raise LinkRefused(404, "This link is not valid.")
    try:
        target = render_link(link.url, template_context(
            contact=message.contact, flow=message.flow, event_payload=enrolment.trigger_event.payload,
            send_id=message.send_id))
    except TemplateError:
        raise LinkRefused(400, "This link cannot be opened.") from None
    if not allowed_target(link.url, target):
        raise LinkRefused(400, "This link cannot be opened.")
    return message, link, target


def click(request, token: str) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    try:
        message, link, target = resolve_click(token)
    except LinkRefused as refused:
        return _refusal(refused)
    _record(request, message, MessageEvent.Type.CLICKED, url=target, link_id=link.pk)
    response = HttpResponseRedirect(target)
    response["Cache-Control"] = NO_CACHE
    response["Referrer-Policy"] = "no-referrer"  # the token stays with us
    return response


def _record(request, message: Message, kind: str, *, url: str = "", link_id: int | None = None):
    now = clock.now()
    reason = machine_reason_for(message, kind, user_agent=request.headers.get("User-Agent", ""),
                                occurred_at=now, url=url, method=request.method)
    # One event per link per second (a double click) and per open per minute (clients reload images).
    moment = now.strftime("%Y-%m-%dT%H:%M:%S" if kind == MessageEvent.Type.CLICKED else "%Y-%m-%dT%H:%M")
    engagement.record(engagement.DeliveryStatus(
        provider="redirect" if kind == MessageEvent.Type.CLICKED else "pixel", type=kind, occurred_at=now,
        event_id=f"{message.send_id}:{kind}:{link_id or ''}:{moment}:{int(bool(reason))}",
        send_id=str(message.send_id), url=url, machine=bool(reason),
        detail={"machine_reason": reason} if reason else {}))


def _refusal(refused: LinkRefused) -> HttpResponse:
    html = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">'
            '<meta name="viewport" content="width=device-width,initial-scale=1"><title>Link</title></head>'
            '<body style="font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem">'
            f"<h1>Link</h1><p>{escape(refused.text)}</p></body></html>")
    return HttpResponse(html, status=refused.status)

"""The facts ``machine.machine_reason`` judges, gathered for one open or click of one of our messages."""

from datetime import timedelta

from ..conf import flows_setting
from ..models import Message, MessageEvent
from . import machine


def machine_reason_for(message: Message | None, kind: str, *, user_agent: str | None, occurred_at,
                       url: str = "", method: str = "GET") -> str | None:
    """Why this open or click of ``message`` looks machine-generated, or None (see ``machine``)."""
    seconds = (occurred_at - message.sent_at).total_seconds() if message and message.sent_at else None
    others = 0
    if kind == MessageEvent.Type.CLICKED and message is not None and url:
        second = timedelta(seconds=1)
        others = (MessageEvent.objects.filter(message=message, type=MessageEvent.Type.CLICKED,
                                              occurred_at__gte=occurred_at - second,
                                              occurred_at__lte=occurred_at + second)
                  .exclude(url=url).values("url").distinct().count())
    return machine.machine_reason(user_agent=user_agent, seconds_since_send=seconds, method=method,
                                  threshold_seconds=float(flows_setting("TRACKING_MACHINE_SECONDS") or 0),
                                  other_links_same_second=others)

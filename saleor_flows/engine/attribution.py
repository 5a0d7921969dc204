"""Orders and the flows that earned them: last-touch attribution, conversions, holdout assignment.

An ``order_created`` event is credited once (unique order key) to the flow
message its contact last clicked within ``ATTRIBUTION_WINDOW_DAYS`` before
ordering; opens count too when ``ATTRIBUTION_OPEN_WINDOW_HOURS`` is set (a
shorter window: an open is weaker evidence than a click). Machine opens and
clicks (privacy proxies, link scanners) and test sends never earn credit.

Separately, the order is a *conversion* of every enrolment the contact
entered within ``CONVERSION_WINDOW_DAYS`` before it, held out or not: the
holdout report compares the two groups on exactly the same rule, since a
held-out contact has no message to click.
"""

import hashlib
from datetime import timedelta
from decimal import Decimal

from django.db.models import Max, OuterRef, Subquery
from django.db.models.functions import Coalesce, Greatest

from ..conf import flows_setting
from ..db import insert_on_conflict
from ..models import Attribution, Conversion, Enrolment, Message, MessageEvent

def order_key(event) -> str:
    """The order's own id when the payload has one, else the event's dedupe key."""
    order_id = event.payload.get("id") or event.payload.get("order_id")
    return f"order:{order_id}" if order_id else f"event:{event.dedupe_key}"


def last_touch(contact_id: int, ordered_at) -> tuple | None:
    """(message id, flow id, step id, "click"|"open", touched_at) of the touch that earns the order, or None."""
    touches = [("click", "clicked_at", MessageEvent.Type.CLICKED,
                timedelta(days=flows_setting("ATTRIBUTION_WINDOW_DAYS")))]
    open_hours = flows_setting("ATTRIBUTION_OPEN_WINDOW_HOURS")
    if open_hours:
        touches.append(("open", "opened_at", MessageEvent.Type.OPENED, timedelta(hours=open_hours)))
    best = None
    for touch, column, event_type, window in touches:
        # The last human touch of a message: the later of its first-touch timestamp and its newest
        # non-machine event of that kind (a message clicked again later moves ahead).
        newest_event = (MessageEvent.objects.filter(message=OuterRef("pk"), type=event_type, machine=False,
                                                    occurred_at__lte=ordered_at)
                        .order_by().values("message").annotate(at=Max("occurred_at")).values("at"))
        row = (Message.objects.filter(contact_id=contact_id, flow__isnull=False, is_test=False,
                                      **{f"{column}__isnull": False, f"{column}__lte": ordered_at})
               .annotate(touched_at=Greatest(column, Coalesce(Subquery(newest_event), column)))
               .filter(touched_at__gte=ordered_at - window)
               .order_by("-touched_at", "-id")
               .values_list("id", "flow_id", "step_id", "touched_at").first())
        # The most recent touch wins; on a tie a click beats an open (clicks come first).
        if row and (best is None or row[3] > best[4]):
            best = (row[0], row[1], row[2], touch, row[3])
    return best


def record_order(event, contact) -> Attribution | None:
    """Attribute an order event and record it as a conversion of the contact's recent enrolments."""
    amount = Decimal(str(event.payload["total_gross_amount"])).quantize(Decimal("0.01"))
    currency = event.payload["currency"]
    key = order_key(event)
    ordered_at = event.occurred_at
    since = ordered_at - timedelta(days=flows_setting("CONVERSION_WINDOW_DAYS"))
    for enrolment_id in Enrolment.objects.filter(contact=contact, entered_at__gte=since,
                                                 entered_at__lte=ordered_at).values_list("id", flat=True):
        insert_on_conflict(Conversion, {"enrolment_id": enrolment_id, "order_key": key, "amount": amount,
                                        "currency": currency, "ordered_at": ordered_at},
                           conflict=["enrolment_id", "order_key"])
    touch = last_touch(contact.pk, ordered_at)
    if touch is None:
        return None
    message_id, flow_id, step_id, kind, touched_at = touch
    attribution_id = insert_on_conflict(Attribution, {
        "order_key": key, "event_id": event.pk, "contact_id": contact.pk, "flow_id": flow_id,
        "message_id": message_id, "step_id": step_id, "touch": kind, "touched_at": touched_at,
        "amount": amount, "currency": currency, "ordered_at": ordered_at,
    }, conflict=["order_key"])
    return Attribution.objects.get(pk=attribution_id) if attribution_id else None


def in_holdout(flow_id: int, contact_id: int, trigger_event_id: int, percent) -> bool:
    """Whether this entry is held out: a hash of the enrolment's own key, so the same entry always decides alike."""
    if not percent:
        return False
    digest = hashlib.sha256(f"holdout:{flow_id}:{contact_id}:{trigger_event_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100 < float(percent)

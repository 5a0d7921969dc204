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

from django.db import connection

from ..conf import flows_setting
from ..db import insert_on_conflict
from ..models import Attribution, Conversion, Enrolment

# The last human touch per message: the later of the first-touch timestamp on
# the message and the newest non-machine event of that type.
_LAST_TOUCH_SQL = """
SELECT m.id, m.flow_id, m.step_id, %(touch)s AS touch,
       greatest(m.{column}, (SELECT max(e.occurred_at) FROM saleor_flows_messageevent e
                             WHERE e.message_id = m.id AND e.type = %(event_type)s AND NOT e.machine
                               AND e.occurred_at <= %(ordered_at)s)) AS touched_at
FROM saleor_flows_message m
WHERE m.contact_id = %(contact_id)s AND m.flow_id IS NOT NULL AND NOT m.is_test
  AND m.{column} IS NOT NULL AND m.{column} <= %(ordered_at)s
"""


def order_key(event) -> str:
    """The order's own id when the payload has one, else the event's dedupe key."""
    order_id = event.payload.get("id") or event.payload.get("order_id")
    return f"order:{order_id}" if order_id else f"event:{event.dedupe_key}"


def last_touch(contact_id: int, ordered_at) -> tuple | None:
    """(message id, flow id, step id, "click"|"open", touched_at) of the touch that earns the order, or None."""
    touches = [("click", "clicked_at", "clicked", timedelta(days=flows_setting("ATTRIBUTION_WINDOW_DAYS")))]
    open_hours = flows_setting("ATTRIBUTION_OPEN_WINDOW_HOURS")
    if open_hours:
        touches.append(("open", "opened_at", "opened", timedelta(hours=open_hours)))
    best = None
    with connection.cursor() as cursor:
        for touch, column, event_type, window in touches:
            cursor.execute(
                f"SELECT * FROM ({_LAST_TOUCH_SQL.format(column=column)}) t WHERE touched_at >= %(since)s "
                "ORDER BY touched_at DESC, id DESC LIMIT 1",
                {"touch": touch, "event_type": event_type, "ordered_at": ordered_at,
                 "contact_id": contact_id, "since": ordered_at - window})
            row = cursor.fetchone()
            # The most recent touch wins; on a tie a click beats an open (clicks come first).
            if row and (best is None or row[4] > best[4]):
                best = row
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

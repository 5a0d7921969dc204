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

from django.db.models import Max, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, Greatest

from ..conf import flows_setting
from ..db import any_of, insert_on_conflict, insert_rows
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


def record_orders(orders: list) -> None:
    """Attribute ``order_created`` events and record them as conversions of their contacts' recent enrolments.

    ``orders``: (event, contact) pairs, one per contact. The enrolments and the contacts that have
    any touch to look at are found with one query each, so that a batch of orders from people who
    never clicked (most of them) costs two statements and one INSERT, not four statements each.
    """
    if not orders:
        return
    facts = []
    for event, contact in orders:
        ordered_at = event.occurred_at
        facts.append((event, contact, order_key(event), ordered_at,
                      Decimal(str(event.payload["total_gross_amount"])).quantize(Decimal("0.01")),
                      event.payload["currency"], ordered_at - timedelta(days=flows_setting("CONVERSION_WINDOW_DAYS"))))
    entered = {}
    for enrolment_id, contact_id, entered_at in Enrolment.objects.filter(
            any_of("contact_id", [contact.pk for _, contact in orders]), entered_at__gte=min(f[6] for f in facts),
            entered_at__lte=max(f[3] for f in facts)).order_by("id").values_list("id", "contact_id", "entered_at"):
        entered.setdefault(contact_id, []).append((enrolment_id, entered_at))
    insert_rows(Conversion, [
        {"enrolment_id": enrolment_id, "order_key": key, "amount": amount, "currency": currency,
         "ordered_at": ordered_at}
        for event, contact, key, ordered_at, amount, currency, since in facts
        for enrolment_id, entered_at in entered.get(contact.pk, []) if since <= entered_at <= ordered_at],
        conflict=["enrolment_id", "order_key"])
    touched = _touched_contacts([contact.pk for _, contact in orders], max(f[3] for f in facts))
    for event, contact, key, ordered_at, amount, currency, _ in facts:
        touch = last_touch(contact.pk, ordered_at) if contact.pk in touched else None
        if touch is None:
            continue
        message_id, flow_id, step_id, kind, touched_at = touch
        insert_on_conflict(Attribution, {
            "order_key": key, "event_id": event.pk, "contact_id": contact.pk, "flow_id": flow_id,
            "message_id": message_id, "step_id": step_id, "touch": kind, "touched_at": touched_at,
            "amount": amount, "currency": currency, "ordered_at": ordered_at,
        }, conflict=["order_key"])


def _touched_contacts(contact_ids: list[int], latest) -> set[int]:
    """Those contacts with any flow message clicked (or opened, when opens count) before ``latest``."""
    touched = Q(clicked_at__isnull=False, clicked_at__lte=latest)
    if flows_setting("ATTRIBUTION_OPEN_WINDOW_HOURS"):
        touched |= Q(opened_at__isnull=False, opened_at__lte=latest)
    return set(Message.objects.filter(touched, any_of("contact_id", contact_ids), flow__isnull=False, is_test=False)
               .values_list("contact_id", flat=True).distinct())


def in_holdout(flow_id: int, contact_id: int, trigger_event_id: int, percent) -> bool:
    """Whether this entry is held out: a hash of the enrolment's own key, so the same entry always decides alike."""
    if not percent:
        return False
    digest = hashlib.sha256(f"holdout:{flow_id}:{contact_id}:{trigger_event_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100 < float(percent)

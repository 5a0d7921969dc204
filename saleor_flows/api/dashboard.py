"""What the Dashboard App's home page and order widget ask for in one call each.

``dashboardHome``: every flow with its status, trigger, people in it now,
sends, orders and attributed revenue over the last ``days`` days with a
series per day (from the analytics rollup, so exact and fast), and what needs
the merchant's attention: dead-lettered events and flows that cannot send as
configured (``engine/readiness.py``). ``orderAttribution``: the flow message
an order is credited to, for the widget on Saleor's order page.
"""

from datetime import timedelta

import graphene
from django.db.models import Count
from graphql import GraphQLError

from .. import clock, models
from ..engine.analytics import flow_report
from ..engine.readiness import blocking, check_flow
from ..engine.definition import version_definition
from .core import CONTACTS, FLOWS, permission_required
from .flows import Flow, FlowCheck, as_check

MAX_DAYS = 366
LATEST_DEAD = 5


class Money(graphene.ObjectType):
    currency = graphene.String(required=True)
    amount = graphene.String(required=True, description="Decimal as text, e.g. \"52.00\".")


def money_list(amounts: dict) -> list:
    return [Money(currency=currency, amount=amount) for currency, amount in sorted((amounts or {}).items())]


class DashboardDay(graphene.ObjectType):
    day = graphene.Date(required=True)
    sent = graphene.Int(required=True)
    orders = graphene.Int(required=True)
    revenue = graphene.List(graphene.NonNull(Money), required=True)


class DashboardFlow(graphene.ObjectType):
    flow = graphene.Field(Flow, required=True)
    active_now = graphene.Int(required=True, description="Contacts in the flow right now.")
    entered = graphene.Int(required=True)
    sent = graphene.Int(required=True)
    orders = graphene.Int(required=True, description="Orders attributed to the flow's messages.")
    revenue = graphene.List(graphene.NonNull(Money), required=True, description="Attributed revenue per currency.")
    days = graphene.List(graphene.NonNull(DashboardDay), required=True,
                         description="One entry per day of the period, zeros included (for a chart).")


class DeadEvent(graphene.ObjectType):
    name = graphene.String(required=True)
    error = graphene.String(required=True)
    received_at = graphene.DateTime(required=True)


class BlockedFlow(graphene.ObjectType):
    flow = graphene.Field(Flow, required=True)
    checks = graphene.List(graphene.NonNull(FlowCheck), required=True)


class DashboardAttention(graphene.ObjectType):
    dead_events = graphene.Int(required=True, description="Events kept with a reason instead of being processed.")
    latest_dead_events = graphene.List(graphene.NonNull(DeadEvent), required=True)
    blocked_flows = graphene.List(graphene.NonNull(BlockedFlow), required=True)


class DashboardHome(graphene.ObjectType):
    since = graphene.Date(required=True)
    until = graphene.Date(required=True)
    flows = graphene.List(graphene.NonNull(DashboardFlow), required=True)
    attention = graphene.Field(DashboardAttention, required=True)


def _flow_summary(flow, since, until, active: int) -> DashboardFlow:
    report = flow_report(flow, since=since, until=until)
    by_day = {row["day"]: row for row in report["days"]}
    days, day = [], since
    while day <= until:
        row = by_day.get(day) or {}
        days.append(DashboardDay(day=day, sent=row.get("sent", 0), orders=row.get("orders", 0),
                                 revenue=money_list(row.get("revenue"))))
        day += timedelta(days=1)
    totals = report["totals"]
    return DashboardFlow(flow=flow, active_now=active, entered=totals["entered"], sent=totals["sent"],
                         orders=totals["orders"], revenue=money_list(totals["revenue"]), days=days)


def _definition_to_check(flow):
    """A live (or paused) flow runs its published version; a draft is checked as it would be published."""
    if flow.live_version_id and flow.status != models.Flow.Status.DRAFT:
        return version_definition(flow.live_version_id)
    return flow.definition


def home(days: int) -> DashboardHome:
    until = clock.now().date()
    since = until - timedelta(days=days - 1)
    flows = list(models.Flow.objects.exclude(status=models.Flow.Status.ARCHIVED).select_related("live_version")
                 .order_by("name", "pk"))
    active = dict(models.Enrolment.objects.filter(status=models.Enrolment.Status.ACTIVE, flow__in=flows)
                  .values("flow").annotate(n=Count("pk")).values_list("flow", "n"))
    dead = models.Event.objects.filter(status=models.Event.Status.DEAD)
    blocked = []
    for flow in flows:
        problems = blocking(check_flow(_definition_to_check(flow)))
        if problems:
            blocked.append(BlockedFlow(flow=flow, checks=[as_check(c) for c in problems]))
    return DashboardHome(
        since=since, until=until,
        flows=[_flow_summary(flow, since, until, active.get(flow.pk, 0)) for flow in flows],
        attention=DashboardAttention(
            dead_events=dead.count(),
            latest_dead_events=[DeadEvent(name=e.name, error=e.error, received_at=e.received_at)
                                for e in dead.order_by("-received_at", "-pk")[:LATEST_DEAD]],
            blocked_flows=blocked))


class OrderAttribution(graphene.ObjectType):
    """The flow message an order is credited to (last click, or open when configured, before ordering)."""

    flow = graphene.Field(Flow, required=True)
    step_id = graphene.String(required=True)
    touch = graphene.String(required=True, description="click or open.")
    touched_at = graphene.DateTime(required=True)
    subject = graphene.String(required=True, description="The message's subject (SMS: its first characters).")
    sent_at = graphene.DateTime()
    amount = graphene.String(required=True)
    currency = graphene.String(required=True)
    ordered_at = graphene.DateTime(required=True)

    @staticmethod
    def resolve_subject(root, info):
        return root.message.subject if root.message_id else ""

    @staticmethod
    def resolve_sent_at(root, info):
        return root.message.sent_at if root.message_id else None

    @staticmethod
    def resolve_amount(root, info):
        return str(root.amount)


class Query(graphene.ObjectType):
    dashboard_home = graphene.Field(DashboardHome, days=graphene.Int(default_value=30,
                                                                     description=f"1 to {MAX_DAYS}."))
    order_attribution = graphene.Field(OrderAttribution, order_id=graphene.ID(required=True,
                                       description="Saleor's order id (as in the Dashboard)."),
                                       description="Null when no flow message earned the order.")

    @staticmethod
    @permission_required(*FLOWS)
    def resolve_dashboard_home(root, info, days=30):
        if not 1 <= days <= MAX_DAYS:
            raise GraphQLError(f"`days` must be between 1 and {MAX_DAYS}.")
        return home(days)

    @staticmethod
    @permission_required(*CONTACTS)
    def resolve_order_attribution(root, info, order_id):
        return (models.Attribution.objects.select_related("flow", "message")
                .filter(order_key=f"order:{str(order_id)[:200]}").first())

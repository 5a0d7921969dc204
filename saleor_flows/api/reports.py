"""Reports through the API: a flow's analytics, its A/B splits and its holdout lift (engine/analytics.py).

Each answers from the rollup (plus what is not folded yet), so it is exact
and fast whatever the number of sends. The shapes are documented in
docs/analytics.md; they are JSON here because a report's keys follow the
flow (its steps, branches, reasons and currencies).
"""

import graphene
from graphql import GraphQLError

from .. import models
from ..engine.analytics import flow_report, holdout_report, split_report
from .core import FLOWS, JSON, lookup, permission_required


def _flow(id):
    flow = lookup(models.Flow, "Flow", id)
    if flow is None:
        raise GraphQLError(f"Couldn't find a flow with id {id!r}.")
    return flow


class Query(graphene.ObjectType):
    flow_report = JSON(
        id=graphene.ID(required=True), version=graphene.Int(description="One version number; default: all."),
        since=graphene.Date(description="First day (UTC) counted."), until=graphene.Date(description="Last day."),
        description="Entered, active, completed, exited by reason, sent, delivered, opened (machine opens apart), "
                    "clicked, converted, revenue by currency, unsubscribed, bounced, complained, skipped by reason, "
                    "marketing sends by the consent rule they went out under (sent_by_basis: consent, soft_opt_in, "
                    "opt_out): totals, per step (the funnel), per branch and per day. Test sends are never counted.")
    flow_split_report = JSON(
        id=graphene.ID(required=True), step_id=graphene.String(required=True), version=graphene.Int(),
        description="Each variant of a random split with its rates, the probability that it is best "
                    "(Beta-Binomial posterior) and the automatic winner, if chosen.")
    flow_holdout_report = JSON(
        id=graphene.ID(required=True),
        description="Conversion and revenue per entrant against the flow's holdout group, with lifts and "
                    "95 % intervals.")

    @permission_required(*FLOWS)
    def resolve_flow_report(root, info, id, version=None, since=None, until=None):
        return flow_report(_flow(id), version=version, since=since, until=until)

    @permission_required(*FLOWS)
    def resolve_flow_split_report(root, info, id, step_id, version=None):
        try:
            return split_report(_flow(id), step_id, version=version)
        except ValueError as exc:
            raise GraphQLError(str(exc)) from exc

    @permission_required(*FLOWS)
    def resolve_flow_holdout_report(root, info, id):
        return holdout_report(_flow(id))

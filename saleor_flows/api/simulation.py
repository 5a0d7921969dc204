"""Dry-run simulation through the API: start one for a draft, then poll its progress and result."""

import graphene

from .. import models
from ..engine.definition import DefinitionError
from ..engine.simulation import start_simulation
from .core import (FLOWS, JSON, FlowErrorCode, FlowsMutation, MutationError, error, get_by_global_id, lookup,
                   node_id_field, permission_required, to_global_id)
from .flows import definition_errors

SimulationStatus = graphene.Enum("FlowSimulationStatus", [(s.upper(), s) for s in models.Simulation.Status.values])


class FlowSimulation(graphene.ObjectType):
    """Who would have entered a draft over the last ``days`` days, its branches, messages and skips; nothing sent."""

    id = node_id_field("Simulation")
    flow_id = graphene.ID(required=True, resolver=lambda root, info: to_global_id("Flow", root.flow_id))
    days = graphene.Int(required=True)
    status = SimulationStatus(required=True)
    progress = graphene.Float(required=True, description="0 to 1.")
    result = JSON(description="entered, per-step counts, branches, messages per day, skips and exits by reason, "
                              "collisions (see docs/simulation.md); null until done.")
    error = graphene.String()
    created_at = graphene.DateTime(required=True)
    finished_at = graphene.DateTime()

    def resolve_result(root, info):
        return root.result if root.status == models.Simulation.Status.DONE else None


class Query(graphene.ObjectType):
    flow_simulation = graphene.Field(FlowSimulation, id=graphene.ID(required=True))

    @permission_required(*FLOWS)
    def resolve_flow_simulation(root, info, id):
        return lookup(models.Simulation, "Simulation", id)


class FlowSimulate(FlowsMutation):
    """Replay the stored events of the last ``days`` days through the flow's draft, in the background."""

    permissions = FLOWS

    class Arguments:
        id = graphene.ID(required=True, description="The flow whose draft is simulated.")
        days = graphene.Int(required=True, description="1 to 366.")

    simulation = graphene.Field(FlowSimulation)

    @classmethod
    def perform_mutation(cls, root, info, id, days):
        flow = get_by_global_id(models.Flow, "Flow", id)
        try:
            simulation = start_simulation(flow, days=days)
        except DefinitionError:
            raise MutationError(*definition_errors(flow.definition))
        except ValueError as exc:
            raise MutationError(error(FlowErrorCode.INVALID, str(exc), "days"))
        return {"simulation": simulation}


class Mutation(graphene.ObjectType):
    flow_simulate = FlowSimulate.Field()

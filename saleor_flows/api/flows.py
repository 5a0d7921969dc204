"""Flows: queries and the draft → validate → publish → pause/resume/archive life cycle.

Everything here needs ``MANAGE_PLUGINS``; saving or publishing a definition
that sends contact data out of the shop needs ``MANAGE_USERS`` too
(``require_for_definition``). Definitions are the JSON format of
``docs/flows.md``; validation and publishing are the engine's own
(``engine/definition.py``), so the API can never publish what the engine
would refuse.
"""


import graphene
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from ..engine import definition as flow_definition
from ..engine.migration import STRATEGIES, migrate_enrolments
from ..engine.personal_data import steps_sending_contact_data
from ..engine.readiness import check_flow, split_problem
from ..engine.report import flow_summary, graph_order
from .. import models
from .core import (CONTACTS, FLOWS, JSON, FlowErrorCode, FlowsMutation, MutationError, PermissionDenied,
                   connection_field, connection_type, error, get_by_global_id, lookup, node_id_field, paginate,
                   permission_required)

FlowStatusEnum = graphene.Enum("FlowStatusEnum", [(s.upper(), s) for s in models.Flow.Status.values])


def definition_errors(definition) -> list[dict]:
    return [error(FlowErrorCode.INVALID_DEFINITION, message, path)
            for path, message in map(split_problem, flow_definition.validate_definition(definition))]


class FlowValidationError(graphene.ObjectType):
    path = graphene.String(description="Where in the definition, e.g. steps.email_1.subject.")
    message = graphene.String(required=True)


class FlowCheck(graphene.ObjectType):
    """A problem standing between a flow and messages that arrive as intended (``engine/readiness.py``)."""

    code = graphene.String(required=True, description="invalid_definition, missing_sender, missing_sms_sender, "
                                                      "missing_consent_key, missing_public_url, missing_checkout_url.")
    severity = graphene.String(required=True, description="blocking (messages would fail or be skipped) or warning.")
    message = graphene.String(required=True)
    path = graphene.String(description="Where in the definition, for validation problems.")


def as_check(check) -> FlowCheck:
    return FlowCheck(code=check.code, severity=check.severity, message=check.message, path=check.path or None)


def checks_of(definition) -> list:
    return [as_check(c) for c in check_flow(definition)]


class FlowGraphNode(graphene.ObjectType):
    id = graphene.String(required=True)
    type = graphene.String(required=True)
    is_start = graphene.Boolean(required=True)
    label = graphene.String(required=True, description="A short name for the step, e.g. 'Email: Welcome!' or "
                                                       "'Wait 1 hour'.")
    step = JSON(required=True, description="The step as defined.")


class FlowGraphEdge(graphene.ObjectType):
    source = graphene.String(required=True)
    target = graphene.String(description="Null: the journey ends here.")
    label = graphene.String(description="next, yes, no, timeout_next, else, a branch index or a variant name.")


class FlowGraph(graphene.ObjectType):
    """The steps as nodes and edges, in the order a merchant reads the journey."""

    nodes = graphene.List(graphene.NonNull(FlowGraphNode), required=True)
    edges = graphene.List(graphene.NonNull(FlowGraphEdge), required=True)


def step_label(step: dict) -> str:
    """What a merchant calls the step: its own ``label``, an email's subject, a wait's duration, else its type."""
    kind = str(step.get("type", ""))
    if isinstance(step.get("label"), str) and step["label"].strip():
        return step["label"].strip()[:80]
    if kind == "send_email" and isinstance(step.get("subject"), str):
        return f"Email: {step['subject']}"[:80]
    if kind == "send_sms" and isinstance(step.get("body"), str):
        return f"SMS: {step['body']}"[:80]
    if kind == "wait" and isinstance(step.get("duration"), dict):
        parts = [f"{value} {unit[:-1] if value == 1 else unit}" for unit, value in step["duration"].items()
                 if isinstance(value, (int, float))]
        return "Wait " + " ".join(parts) if parts else "Wait"
    return kind.replace("_", " ").capitalize() or "Step"


def graph_of(definition: dict) -> FlowGraph:
    steps = definition.get("steps") if isinstance(definition, dict) else None
    if not isinstance(steps, dict):
        return FlowGraph(nodes=[], edges=[])
    # A draft may be half-written: draw the steps that are objects, whatever else is wrong.
    steps = {str(step_id): step for step_id, step in steps.items() if isinstance(step, dict)}
    nodes, edges = [], []
    for step_id in graph_order({**definition, "steps": steps}):
        step = steps[step_id]
        nodes.append(FlowGraphNode(id=step_id, type=str(step.get("type", "")), is_start=step_id == definition.get("start"),
                                   label=step_label(step), step=step))
        for key in flow_definition.NEXT_KEYS.get(step.get("type"), []):
            edges.append(FlowGraphEdge(source=step_id, target=step.get(key), label=key))
        for index, branch in enumerate(step.get("branches") or [] if step.get("type") == "branch" else []):
            edges.append(FlowGraphEdge(source=step_id, target=(branch or {}).get("next"), label=str(index)))
        if step.get("type") == "branch":
            edges.append(FlowGraphEdge(source=step_id, target=step.get("else"), label="else"))
        for variant in step.get("variants") or [] if step.get("type") == "random_split" else []:
            edges.append(FlowGraphEdge(source=step_id, target=(variant or {}).get("next"),
                                       label=str((variant or {}).get("name"))))
    return FlowGraph(nodes=nodes, edges=edges)


class FlowVersion(graphene.ObjectType):
    id = node_id_field("FlowVersion")
    number = graphene.Int(required=True)
    published_at = graphene.DateTime(required=True)
    definition = JSON(required=True, description="Frozen at publishing (email templates compiled).")
    graph = graphene.Field(FlowGraph, required=True)
    active_enrolments = graphene.Int(required=True, description="Journeys still running on this version.")

    @staticmethod
    def resolve_graph(root, info):
        return graph_of(root.definition)

    @staticmethod
    def resolve_active_enrolments(root, info):
        return root.enrolments.filter(status="active").count()


class StepMetrics(graphene.ObjectType):
    id = graphene.String(required=True)
    type = graphene.String(required=True)
    states = JSON(required=True, description="Executions by state, e.g. {\"sent\": 80, \"skipped\": 20}.")
    skip_reasons = JSON(required=True)
    branches = JSON(required=True)
    variants = JSON(required=True)
    messages = JSON(required=True)


class FlowMetrics(graphene.ObjectType):
    """Headline numbers of a flow over all its versions (test sends excluded)."""

    entered = graphene.Int(required=True)
    contacts = graphene.Int(required=True)
    active = graphene.Int(required=True)
    completed = graphene.Int(required=True)
    exited = graphene.Int(required=True)
    converted = graphene.Int(required=True)
    exit_reasons = JSON(required=True)
    messages = JSON(required=True, description="Messages by status.")
    messages_sent = graphene.Int(required=True)
    steps = graphene.List(graphene.NonNull(StepMetrics), required=True)


def metrics_of(flow: models.Flow) -> FlowMetrics:
    summary = flow_summary(flow)
    enrolments = summary["enrolments"]
    return FlowMetrics(
        entered=summary["entered"], contacts=summary["contacts"], active=enrolments["active"],
        completed=enrolments["completed"], exited=enrolments["exited"], converted=summary["converted"],
        exit_reasons=summary["exit_reasons"], messages=summary["messages"],
        messages_sent=summary["messages"].get("sent", 0),
        steps=[StepMetrics(**step) for step in summary["steps"]],
    )


class Flow(graphene.ObjectType):
    """A journey: a draft definition and the versions published from it."""

    id = node_id_field("Flow")
    name = graphene.String(required=True)
    slug = graphene.String(required=True)
    status = FlowStatusEnum(required=True)
    trigger_event = graphene.String(required=True)
    kind = graphene.String(required=True, description="marketing or transactional.")
    definition = JSON(required=True, description="The draft (what the next publish freezes).")
    live_version = graphene.Field(FlowVersion)
    versions = graphene.List(graphene.NonNull(FlowVersion), required=True, description="Newest first.")
    graph = graphene.Field(FlowGraph, required=True, description="The draft's steps as a graph.")
    validation_errors = graphene.List(graphene.NonNull(FlowValidationError), required=True,
                                      description="Problems of the draft; empty means publishable.")
    checks = graphene.List(graphene.NonNull(FlowCheck), required=True,
                           description="The draft's validation problems and what the shop's settings lack for its "
                                       "messages to go out (sender, consent key, public URL…), before publishing.")
    has_unpublished_changes = graphene.Boolean(required=True)
    metrics = graphene.Field(FlowMetrics, required=True)
    created_at = graphene.DateTime(required=True)
    updated_at = graphene.DateTime(required=True)

    @staticmethod
    def resolve_kind(root, info):
        return (root.definition or {}).get("kind", "marketing") if isinstance(root.definition, dict) else "marketing"

    @staticmethod
    def resolve_versions(root, info):
        return root.versions.order_by("-number")

    @staticmethod
    def resolve_graph(root, info):
        return graph_of(root.definition)

    @staticmethod
    def resolve_validation_errors(root, info):
        return [FlowValidationError(path=path, message=message)
                for path, message in map(split_problem, flow_definition.validate_definition(root.definition))]

    @staticmethod
    def resolve_checks(root, info):
        return checks_of(root.definition)

    @staticmethod
    def resolve_has_unpublished_changes(root, info):
        if root.live_version_id is None:
            return True
        return flow_definition.draft_differs_from(root.live_version.definition, root.definition)

    @staticmethod
    def resolve_metrics(root, info):
        return metrics_of(root)


FlowConnection = connection_type(Flow, "Flow")


class FlowFilterInput(graphene.InputObjectType):
    status = graphene.List(graphene.NonNull(FlowStatusEnum))
    trigger = graphene.String(description="The trigger event name, e.g. checkout_abandoned.")
    channel = graphene.String(description="A Saleor channel slug: flows that run there (those whose trigger filter "
                                          "names no channel run in every channel).")
    search = graphene.String(description="In name and slug.")


CHANNEL_FIELDS = {"event.channel.slug", "event.channel"}


def flow_channels(definition) -> set | None:
    """Channel slugs a flow's trigger filter limits it to (eq/in on event.channel.slug); None: every channel."""
    found: set = set()
    # A stored draft may nest anything: walked with a stack of its own, never recursing.
    pending = [((definition or {}).get("trigger") or {}).get("filter") if isinstance(definition, dict) else None]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if node.get("field") in CHANNEL_FIELDS and node.get("op") in ("eq", "in"):
                values = node.get("value")
                found.update(value for value in (values if isinstance(values, list) else [values])
                             if isinstance(value, str))
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found or None


def filter_flows(queryset, filter_input):
    if not filter_input:
        return queryset
    if filter_input.get("status"):
        queryset = queryset.filter(status__in=list(filter_input["status"]))
    if filter_input.get("trigger"):
        queryset = queryset.filter(trigger_event=filter_input["trigger"])
    if filter_input.get("search"):
        from django.db.models import Q

        term = filter_input["search"]
        queryset = queryset.filter(Q(name__icontains=term) | Q(slug__icontains=term))
    if filter_input.get("channel"):
        channel = filter_input["channel"]
        # A flow's channels live in its definition; there are few flows, so decide in Python.
        ids = [pk for pk, definition in queryset.values_list("pk", "definition")
               if (channels := flow_channels(definition)) is None or channel in channels]
        queryset = queryset.filter(pk__in=ids)
    return queryset


class Query(graphene.ObjectType):
    flows = connection_field(FlowConnection, filter=FlowFilterInput())
    flow = graphene.Field(Flow, id=graphene.ID(), slug=graphene.String(),
                          description="One flow, by id or slug.")

    @staticmethod
    @permission_required(*FLOWS)
    def resolve_flows(root, info, first=None, after=None, filter=None):
        return paginate(filter_flows(models.Flow.objects.select_related("live_version"), filter), FlowConnection,
                        first=first, after=after)

    @staticmethod
    @permission_required(*FLOWS)
    def resolve_flow(root, info, id=None, slug=None):
        if id:
            return lookup(models.Flow, "Flow", id)
        return models.Flow.objects.filter(slug=slug).first() if slug else None


# --- mutations ---------------------------------------------------------------------------


def require_for_definition(info, definition):
    """A flow that mails contact data to staff or posts it to a webhook reads contacts for everyone who
    passes: saving or publishing it needs what reading contacts needs (MANAGE_USERS besides MANAGE_PLUGINS)."""
    found = steps_sending_contact_data(definition)
    if found and not info.context.principal.has_all(CONTACTS):
        step_id, why = next(iter(found.items()))
        raise PermissionDenied(CONTACTS, f"step {step_id!r} sends contact data out of the shop: {why}")


def choose_slug(wanted: str | None, name: str) -> str:
    """The slug asked for (checked and free), or a free one made from the name."""
    if wanted is not None and not flow_definition.SLUG_RE.match(wanted):
        raise MutationError(error(FlowErrorCode.INVALID, "Slugs use letters, digits, '_' and '-'.", "slug"))
    if wanted:
        if models.Flow.objects.filter(slug=wanted).exists():
            raise MutationError(error(FlowErrorCode.UNIQUE, f"A flow with slug {wanted!r} exists.", "slug"))
        return wanted
    base = slugify(name)[:90] or "flow"
    slug, n = base, 1
    while models.Flow.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


class FlowCreateInput(graphene.InputObjectType):
    name = graphene.String(required=True)
    slug = graphene.String(description="Made from the name when empty.")
    definition = JSON(description="The draft (docs/flows.md). May be incomplete: drafts are validated on publish.")


class FlowCreate(FlowsMutation):
    class Arguments:
        input = FlowCreateInput(required=True)

    flow = graphene.Field(Flow)

    @classmethod
    def perform_mutation(cls, root, info, input):
        name = (input.get("name") or "").strip()
        if not name:
            raise MutationError(error(FlowErrorCode.REQUIRED, "A flow needs a name.", "name"))
        definition = input.get("definition") or {}
        if not isinstance(definition, dict):
            raise MutationError(error(FlowErrorCode.INVALID, "The definition is a JSON object.", "definition"))
        require_for_definition(info, definition)
        slug = choose_slug(input.get("slug"), name)
        try:
            with transaction.atomic():
                flow = flow_definition.create_flow(slug, definition, name=name)
        except IntegrityError as exc:
            raise MutationError(error(FlowErrorCode.UNIQUE, "A flow with this slug exists.", "slug")) from exc
        return {"flow": flow}


class FlowUpdateInput(graphene.InputObjectType):
    name = graphene.String()
    definition = JSON(description="Replaces the draft. Running contacts keep their version.")


class FlowUpdate(FlowsMutation):
    class Arguments:
        id = graphene.ID(required=True)
        input = FlowUpdateInput(required=True)

    flow = graphene.Field(Flow)

    @classmethod
    def perform_mutation(cls, root, info, id, input):
        flow = get_by_global_id(models.Flow, "Flow", id)
        if flow.status == models.Flow.Status.ARCHIVED:
            raise MutationError(error(FlowErrorCode.INVALID_STATUS, "An archived flow cannot be edited.", "id"))
        if "definition" in input and input["definition"] is not None:
            if not isinstance(input["definition"], dict):
                raise MutationError(error(FlowErrorCode.INVALID, "The definition is a JSON object.", "definition"))
            require_for_definition(info, input["definition"])
            flow_definition.update_draft(flow, input["definition"])
        if input.get("name") is not None:
            if not input["name"].strip():
                raise MutationError(error(FlowErrorCode.REQUIRED, "A flow needs a name.", "name"))
            models.Flow.objects.filter(pk=flow.pk).update(name=input["name"].strip())
        flow.refresh_from_db()
        return {"flow": flow}


class FlowValidate(FlowsMutation):
    """Check the draft; every problem comes back as an error with its path in ``field``."""

    class Arguments:
        id = graphene.ID(required=True)

    flow = graphene.Field(Flow)
    valid = graphene.Boolean(required=True)

    @classmethod
    def perform_mutation(cls, root, info, id):
        flow = get_by_global_id(models.Flow, "Flow", id)
        problems = definition_errors(flow.definition)
        if problems:
            raise MutationError(*problems)
        return {"flow": flow, "valid": True}

    @classmethod
    def mutate(cls, root, info, **data):
        result = super().mutate(root, info, **data)
        if result.errors:
            result.valid = False
        return result


class FlowPublish(FlowsMutation):
    """Freeze the draft as a new version that new contacts enter; running contacts stay on theirs."""

    class Arguments:
        id = graphene.ID(required=True)

    flow = graphene.Field(Flow)
    version = graphene.Field(FlowVersion)

    @classmethod
    def perform_mutation(cls, root, info, id):
        flow = get_by_global_id(models.Flow, "Flow", id)
        if flow.status == models.Flow.Status.ARCHIVED:
            raise MutationError(error(FlowErrorCode.INVALID_STATUS, "An archived flow cannot be published.", "id"))
        require_for_definition(info, flow.definition)
        try:
            version = flow_definition.publish_flow(flow)
        except flow_definition.DefinitionError as exc:
            raise MutationError(*[error(FlowErrorCode.INVALID_DEFINITION, message, path)
                                  for path, message in map(split_problem, exc.errors)]) from exc
        flow.refresh_from_db()
        return {"flow": flow, "version": version}


def _status_mutation(name: str, target: str, allowed_from: tuple, doc: str):
    def perform_mutation(cls, root, info, id):
        flow = get_by_global_id(models.Flow, "Flow", id)
        if flow.status not in allowed_from:
            raise MutationError(error(
                FlowErrorCode.INVALID_STATUS,
                f"A {flow.status} flow cannot be {'resumed' if target == 'live' else target}.", "id"))
        try:
            flow_definition.set_status(flow, target)
        except ValueError as exc:
            raise MutationError(error(FlowErrorCode.NOT_PUBLISHED, str(exc), "id")) from exc
        return {"flow": flow}

    return type(name, (FlowsMutation,), {
        "__doc__": doc,
        "Arguments": type("Arguments", (), {"id": graphene.ID(required=True)}),
        "flow": graphene.Field(Flow),
        "perform_mutation": classmethod(perform_mutation),
    })


FlowPause = _status_mutation("FlowPause", models.Flow.Status.PAUSED, (models.Flow.Status.LIVE,),
                             "No new entries; running contacts wait at their next step until resumed.")
FlowResume = _status_mutation("FlowResume", models.Flow.Status.LIVE, (models.Flow.Status.PAUSED,),
                              "Back to live: paused contacts continue, new contacts enter.")
FlowArchive = _status_mutation("FlowArchive", models.Flow.Status.ARCHIVED,
                               (models.Flow.Status.DRAFT, models.Flow.Status.LIVE, models.Flow.Status.PAUSED),
                               "Retire the flow: no new entries; running journeys end at their next step.")

MigrationStrategyEnum = graphene.Enum("FlowMigrationStrategyEnum", [(s.upper(), s) for s in STRATEGIES])


class FlowMigrationResult(graphene.ObjectType):
    strategy = MigrationStrategyEnum(required=True)
    to_version = graphene.Int(required=True)
    considered = graphene.Int(required=True)
    moved = graphene.Int(required=True)
    exited = graphene.Int(required=True)
    unchanged = graphene.Int(required=True)
    busy = graphene.Int(required=True, description="Running a step right now: migrate again in a moment.")
    missing_steps = JSON(required=True, description="Step id → journeys that ended because the live version "
                                                    "has no step of that id and type.")


class FlowEnrolmentsMigrate(FlowsMutation):
    """Move journeys running on older versions to the live version (docs/api.md: the mapping rule)."""

    class Arguments:
        id = graphene.ID(required=True)
        strategy = MigrationStrategyEnum(required=True)
        from_version = graphene.Int(description="Only journeys on this version number; default all older ones.")

    flow = graphene.Field(Flow)
    result = graphene.Field(FlowMigrationResult)

    @classmethod
    def perform_mutation(cls, root, info, id, strategy, from_version=None):
        flow = get_by_global_id(models.Flow, "Flow", id)
        if flow.live_version_id is None:
            raise MutationError(error(FlowErrorCode.NOT_PUBLISHED, "Publish the flow first.", "id"))
        if from_version is not None and not models.FlowVersion.objects.filter(flow=flow, number=from_version).exists():
            raise MutationError(error(FlowErrorCode.NOT_FOUND, f"The flow has no version {from_version}.",
                                      "fromVersion"))
        report = migrate_enrolments(flow, strategy, from_version=from_version)
        return {"flow": flow, "result": FlowMigrationResult(**vars(report))}


class Mutation(graphene.ObjectType):
    flow_create = FlowCreate.Field()
    flow_update = FlowUpdate.Field()
    flow_validate = FlowValidate.Field()
    flow_publish = FlowPublish.Field()
    flow_pause = FlowPause.Field()
    flow_resume = FlowResume.Field()
    flow_archive = FlowArchive.Field()
    flow_enrolments_migrate = FlowEnrolmentsMigrate.Field()

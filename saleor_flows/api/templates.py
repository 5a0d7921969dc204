"""Prebuilt flow templates (``saleor_flows/journeys``): browse them with previews, start a flow from one."""

import graphene
from django.db import transaction
from graphql import GraphQLError

from ..engine.definition import DefinitionError, create_flow, publish_flow
from ..engine.preview import preview
from ..engine.readiness import blocking, check_flow
from ..journeys import JOURNEYS, list_journeys, load_journey
from ..models import Flow as FlowModel
from .core import FLOWS, JSON, FlowErrorCode, FlowsMutation, MutationError, error, permission_required
from .flows import (Flow, FlowCheck, FlowGraph, as_check, checks_of, choose_slug, graph_of, require_for_definition,
                    split_problem)


class SmsParts(graphene.ObjectType):
    """How an SMS body is billed: GSM-7 fits 160 characters in one part (153 per part when split), UCS-2 only 70 (67)."""

    encoding = graphene.String(required=True, description="GSM-7 or UCS-2.")
    segments = graphene.Int(required=True)
    characters = graphene.Int(required=True, description="In the encoding's units.")
    per_segment = graphene.Int(required=True)
    ucs2_characters = graphene.List(graphene.NonNull(graphene.String), required=True,
                                    description="The characters that force UCS-2 (replace them to halve the cost).")


class MessagePreview(graphene.ObjectType):
    """One message rendered by the send pipeline (what a contact would get)."""

    step_id = graphene.String(required=True)
    channel = graphene.String(required=True)
    kind = graphene.String(required=True)
    to = graphene.String(required=True)
    subject = graphene.String(required=True)
    html = graphene.String(required=True, description="Empty for SMS.")
    text = graphene.String(required=True)
    sms = graphene.Field(SmsParts, description="SMS only: encoding and parts.")

    @classmethod
    def of(cls, step_id: str, rendered) -> "MessagePreview":
        """From an ``engine.preview.Preview``."""
        return cls(step_id=step_id, channel=rendered.channel, kind=rendered.kind, to=rendered.to,
                   subject=rendered.subject, html=rendered.html, text=rendered.text,
                   sms=SmsParts(**rendered.sms) if rendered.sms else None)


def _render_previews(slug: str, definition: dict, language: str | None = None) -> list:
    """Every send step of a template, rendered with sample data (the shop's products when the edge gives them)."""
    flow = FlowModel(name=definition["name"], slug=slug, definition=definition)
    sample = {"contact": {"locale": language}} if language else None
    out = []
    for step_id, step in definition["steps"].items():
        if step.get("type") in ("send_email", "send_sms"):
            out.append(MessagePreview.of(step_id, preview(flow, step_id, sample=sample)))
    return out


def template_languages(definition: dict) -> list[str]:
    """The languages every message of the template is written in ("en" first)."""
    found = {"en"}
    for step in definition["steps"].values():
        found.update((step.get("translations") or {}).keys())
    return sorted(found, key=lambda language: (language != "en", language))


class FlowTemplate(graphene.ObjectType):
    """A prebuilt journey to start from."""

    slug = graphene.String(required=True)
    name = graphene.String(required=True)
    description = graphene.String(required=True)
    trigger_event = graphene.String(required=True)
    kind = graphene.String(required=True)
    version = graphene.Int(required=True)
    definition = JSON(required=True)
    graph = graphene.Field(FlowGraph, required=True)
    languages = graphene.List(graphene.NonNull(graphene.String), required=True,
                              description="The languages its messages are written in.")
    previews = graphene.List(graphene.NonNull(MessagePreview), required=True,
                             language=graphene.String(description="One of `languages`; default: English."),
                             description="Every message of the template rendered with sample data (the shop's own "
                                         "products inside Saleor).")
    checks = graphene.List(graphene.NonNull(FlowCheck), required=True,
                           description="What the shop's settings lack for this journey to send (shown before "
                                       "turning it on).")

    @staticmethod
    def resolve_definition(root, info):
        return load_journey(root.slug)

    @staticmethod
    def resolve_graph(root, info):
        return graph_of(load_journey(root.slug))

    @staticmethod
    def resolve_languages(root, info):
        return template_languages(load_journey(root.slug))

    @staticmethod
    def resolve_previews(root, info, language=None):
        definition = load_journey(root.slug)
        if language is not None and language not in template_languages(definition):
            raise GraphQLError(f"The template has no {language!r} version; it has "
                               f"{', '.join(template_languages(definition))}.")
        return _render_previews(root.slug, definition, language)

    @staticmethod
    def resolve_checks(root, info):
        return checks_of(load_journey(root.slug))


def _template(summary: dict) -> FlowTemplate:
    return FlowTemplate(slug=summary["slug"], name=summary["name"], description=summary["description"],
                        trigger_event=summary["trigger_event"], kind=summary["kind"], version=summary["version"])


class Query(graphene.ObjectType):
    flow_templates = graphene.List(graphene.NonNull(FlowTemplate))
    flow_template = graphene.Field(FlowTemplate, slug=graphene.String(required=True))

    @staticmethod
    @permission_required(*FLOWS)
    def resolve_flow_templates(root, info):
        return [_template(summary) for summary in list_journeys()]

    @staticmethod
    @permission_required(*FLOWS)
    def resolve_flow_template(root, info, slug):
        return next((_template(s) for s in list_journeys() if s["slug"] == slug), None)


class FlowCreateFromTemplateInput(graphene.InputObjectType):
    template = graphene.String(required=True, description=f"One of: {', '.join(JOURNEYS)}.")
    name = graphene.String(description="Default: the template's name.")
    slug = graphene.String(description="Default: made from the name.")
    publish = graphene.Boolean(default_value=False, description="Publish at once (the flow goes live): the "
                                                               "Dashboard's \"Turn on\". Refused, with the blocking "
                                                               "checks, when the journey could not send.")


class FlowCreateFromTemplate(FlowsMutation):
    """A new flow whose draft is the template, in one call: "Customize first" (a draft) or "Turn on" (published)."""

    class Arguments:
        input = FlowCreateFromTemplateInput(required=True)

    flow = graphene.Field(Flow)
    checks = graphene.List(graphene.NonNull(FlowCheck), required=True,
                           description="The plugin's checks of the journey (also when refused).")

    @classmethod
    def mutate(cls, root, info, **data):
        result = super().mutate(root, info, **data)
        if result.checks is None:  # refused or failed before the checks ran: still tell the merchant why
            template = (data.get("input") or {}).get("template")
            result.checks = checks_of(load_journey(template)) if template in JOURNEYS else []
        return result

    @classmethod
    def perform_mutation(cls, root, info, input):
        if input["template"] not in JOURNEYS:
            raise MutationError(error(FlowErrorCode.NOT_FOUND, f"No template {input['template']!r}; "
                                      f"use one of {', '.join(JOURNEYS)}.", "template"))
        definition = load_journey(input["template"])
        require_for_definition(info, definition)
        name = (input.get("name") or "").strip() or definition["name"]
        slug = choose_slug(input.get("slug"), name)
        checks = check_flow(definition)
        if input.get("publish") and blocking(checks):
            raise MutationError(*[error(FlowErrorCode.NOT_READY, c.message, c.path or None) for c in blocking(checks)])
        with transaction.atomic():  # published or not created at all
            flow = create_flow(slug, definition, name=name)
            if input.get("publish"):
                try:
                    publish_flow(flow)
                except DefinitionError as exc:  # a template that does not validate is our bug; say so clearly
                    raise MutationError(*[error(FlowErrorCode.INVALID_DEFINITION, m, p)
                                          for p, m in map(split_problem, exc.errors)]) from exc
                flow.refresh_from_db()
        return {"flow": flow, "checks": [as_check(c) for c in checks]}


class Mutation(graphene.ObjectType):
    flow_create_from_template = FlowCreateFromTemplate.Field()


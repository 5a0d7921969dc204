"""Contacts: profile, consent, tags and lists, journeys and the why-trail. Personal data:
everything here needs ``MANAGE_USERS`` as well as ``MANAGE_PLUGINS``."""

import graphene
from django.db import transaction
from django.db.models import Q

from .. import clock
from ..engine.contacts import set_consent
from ..engine.runner import finish_enrolment
from ..engine.trail import describe
from ..models import Contact as ContactModel, Enrolment, TrailEntry as TrailModel
from ..web.untrusted import clean_header
from .core import (CONTACTS, JSON, FlowErrorCode, FlowsMutation, MutationError, connection_field, connection_type,
                   error, get_by_global_id, lookup, node_id_field, paginate, permission_required)
from .flows import Flow, FlowVersion

ConsentStatusEnum = graphene.Enum("ConsentStatusEnum", [(s.upper(), s) for s in ContactModel.Consent.values])
ConsentChannelEnum = graphene.Enum("ConsentChannelEnum", [("EMAIL", "email"), ("SMS", "sms")])
JourneyStatusEnum = graphene.Enum("JourneyStatusEnum", [(s.upper(), s) for s in Enrolment.Status.values])


class ChannelConsent(graphene.ObjectType):
    status = ConsentStatusEnum(required=True)
    source = graphene.String(required=True, description="Where the consent came from: checkout, api, unsubscribe_link…")
    at = graphene.DateTime()


class Consent(graphene.ObjectType):
    email = graphene.Field(ChannelConsent, required=True)
    sms = graphene.Field(ChannelConsent, required=True)


class ConsentChange(graphene.ObjectType):
    """Proof of consent: one change with its source and evidence."""

    channel = ConsentChannelEnum(required=True)
    status = ConsentStatusEnum(required=True)
    source = graphene.String(required=True)
    ip = graphene.String()
    user_agent = graphene.String(required=True)
    detail = JSON(required=True)
    at = graphene.DateTime(required=True)


class TrailEntry(graphene.ObjectType):
    """One decision the engine took about the contact, with the values that decided it."""

    at = graphene.DateTime(required=True)
    kind = graphene.String(required=True, description="entered, branch, waiting, sent, skipped, exited…")
    flow_slug = graphene.String()
    step_id = graphene.String(required=True)
    detail = JSON(required=True)
    text = graphene.String(required=True, description="The entry as one readable line.")

    @staticmethod
    def resolve_flow_slug(root, info):
        return root.enrolment.flow.slug if root.enrolment_id else (root.detail or {}).get("flow")

    @staticmethod
    def resolve_text(root, info):
        return describe(root)


class Journey(graphene.ObjectType):
    """One enrolment: a contact's way through one version of a flow."""

    id = node_id_field("Journey")
    flow = graphene.Field(Flow, required=True)
    version = graphene.Field(FlowVersion, required=True)
    status = JourneyStatusEnum(required=True)
    exit_reason = graphene.String(required=True)
    entered_at = graphene.DateTime(required=True)
    finished_at = graphene.DateTime()
    current_step = graphene.String(description="The step the journey waits at, if any.")
    trail = graphene.List(graphene.NonNull(TrailEntry), required=True)

    @staticmethod
    def resolve_current_step(root, info):
        return root.executions.filter(state="pending").order_by("due_at").values_list("step_id", flat=True).first()

    @staticmethod
    def resolve_trail(root, info):
        return root.trail.select_related("enrolment__flow").order_by("at", "id")


class Contact(graphene.ObjectType):
    id = node_id_field("Contact")
    email = graphene.String()
    user_id = graphene.String(description="Saleor's user id, when known.")
    phone = graphene.String(required=True)
    first_name = graphene.String(required=True)
    last_name = graphene.String(required=True)
    locale = graphene.String(required=True)
    timezone = graphene.String(required=True)
    attributes = JSON(required=True, description="Custom fields.")
    tags = graphene.List(graphene.NonNull(graphene.String), required=True)
    lists = graphene.List(graphene.NonNull(graphene.String), required=True)
    consent = graphene.Field(Consent, required=True)
    consent_changes = graphene.List(graphene.NonNull(ConsentChange), required=True, description="Newest first.")
    suppressed = graphene.Boolean(required=True)
    suppressed_reason = graphene.String(required=True)
    order_count = graphene.Int(required=True)
    total_spent = graphene.Float(required=True)
    currency = graphene.String(required=True)
    last_order_at = graphene.DateTime()
    created_at = graphene.DateTime(required=True)
    journeys = graphene.List(graphene.NonNull(Journey), required=True, description="Newest first.")
    trail = graphene.List(graphene.NonNull(TrailEntry), required=True,
                          description="The why-trail: every decision about this contact, oldest first.",
                          limit=graphene.Int(default_value=500))

    @staticmethod
    def resolve_consent(root, info):
        return Consent(**{channel: ChannelConsent(status=getattr(root, f"{channel}_consent"),
                                                  source=getattr(root, f"{channel}_consent_source"),
                                                  at=getattr(root, f"{channel}_consent_at"))
                          for channel in ("email", "sms")})

    @staticmethod
    def resolve_consent_changes(root, info):
        return root.consent_changes.order_by("-at", "-id")

    @staticmethod
    def resolve_total_spent(root, info):
        return float(root.total_spent)

    @staticmethod
    def resolve_journeys(root, info):
        return root.enrolments.select_related("flow", "version").order_by("-entered_at", "-id")

    @staticmethod
    def resolve_trail(root, info, limit=500):
        entries = TrailModel.objects.filter(contact=root).select_related("enrolment__flow").order_by("-at", "-id")
        return list(entries[: max(0, min(limit, 5000))])[::-1]


ContactConnection = connection_type(Contact, "Contact")


class ContactFilterInput(graphene.InputObjectType):
    search = graphene.String(description="In email, name and phone.")
    email_consent = ConsentStatusEnum()
    sms_consent = ConsentStatusEnum()
    tag = graphene.String()
    list = graphene.String()
    in_flow = graphene.ID(description="Contacts with an active journey in this flow.")
    user_id = graphene.ID(description="The contact of a Saleor customer: the User's global id, as the Dashboard "
                                      "passes it to customer widgets (customerId).")


def filter_contacts(queryset, f):
    if not f:
        return queryset
    if f.get("search"):
        term = f["search"]
        queryset = queryset.filter(Q(email__icontains=term) | Q(first_name__icontains=term)
                                   | Q(last_name__icontains=term) | Q(phone__icontains=term))
    if f.get("user_id"):
        queryset = queryset.filter(user_id=f["user_id"])
    if f.get("email_consent"):
        queryset = queryset.filter(email_consent=f["email_consent"])
    if f.get("sms_consent"):
        queryset = queryset.filter(sms_consent=f["sms_consent"])
    if f.get("tag"):
        queryset = queryset.filter(tags__contains=[f["tag"]])
    if f.get("list"):
        queryset = queryset.filter(lists__contains=[f["list"]])
    if f.get("in_flow"):
        from ..models import Flow as FlowModel

        flow = lookup(FlowModel, "Flow", f["in_flow"])
        queryset = queryset.filter(enrolments__flow=flow, enrolments__status="active").distinct()
    return queryset


class Query(graphene.ObjectType):
    contacts = connection_field(ContactConnection, filter=ContactFilterInput())
    contact = graphene.Field(Contact, id=graphene.ID(), email=graphene.String(), description="By id or email.")

    @staticmethod
    @permission_required(*CONTACTS)
    def resolve_contacts(root, info, first=None, after=None, filter=None):
        return paginate(filter_contacts(ContactModel.objects.all(), filter), ContactConnection,
                        first=first, after=after)

    @staticmethod
    @permission_required(*CONTACTS)
    def resolve_contact(root, info, id=None, email=None):
        if id:
            return lookup(ContactModel, "Contact", id)
        return ContactModel.objects.filter(email=email.strip().lower()).first() if email else None


class ContactConsentUpdateInput(graphene.InputObjectType):
    channel = ConsentChannelEnum(required=True)
    status = ConsentStatusEnum(required=True)
    detail = JSON(description="Evidence to keep with the change (form, campaign…).")


class ContactConsentUpdate(FlowsMutation):
    """Record a consent change for a contact (source "api", the caller kept as evidence)."""

    permissions = CONTACTS

    class Arguments:
        id = graphene.ID(required=True)
        input = ContactConsentUpdateInput(required=True)

    contact = graphene.Field(Contact)

    @classmethod
    def perform_mutation(cls, root, info, id, input):
        pk = get_by_global_id(ContactModel, "Contact", id).pk
        principal = info.context.principal
        detail = input.get("detail") or {}
        if not isinstance(detail, dict):
            raise MutationError(error(FlowErrorCode.INVALID, "detail is a JSON object.", "detail"))
        # Who changed it, as evidence next to the change.
        detail = {**detail, "by": {"user": principal.user_id or principal.email,
                                   **({"app": principal.app_id} if principal.app_id else {})}}
        request = info.context
        with transaction.atomic():
            contact = ContactModel.objects.select_for_update().get(pk=pk)
            if input["channel"] == "sms" and input["status"] == "subscribed" and not contact.phone:
                raise MutationError(error(FlowErrorCode.INVALID, "The contact has no phone number.", "channel"))
            changed = set_consent(contact, input["channel"], input["status"], source="api",
                                  ip=request.META.get("REMOTE_ADDR"),
                                  user_agent=clean_header(request, "User-Agent"), detail=detail)
            contact.updated_at = clock.now()
            contact.save(update_fields=sorted(set(changed)) + ["updated_at"])
        return {"contact": contact}


class JourneyExit(FlowsMutation):
    """Take a contact out of a flow now: the journey ends as exited ("exited_by_staff"), its pending steps skipped."""

    permissions = CONTACTS

    class Arguments:
        id = graphene.ID(required=True, description="The journey (a contact's enrolment), from Contact.journeys.")

    journey = graphene.Field(Journey)

    @classmethod
    def perform_mutation(cls, root, info, id):
        enrolment = get_by_global_id(Enrolment, "Journey", id)
        principal = info.context.principal
        if not finish_enrolment(enrolment, Enrolment.Status.EXITED, "exited_by_staff", now=clock.now(),
                                by=principal.user_id or principal.email or principal.app_id):
            raise MutationError(error(FlowErrorCode.INVALID_STATUS,
                                      f"The journey has already ended ({enrolment.status}).", "id"))
        return {"journey": enrolment}


class Mutation(graphene.ObjectType):
    contact_consent_update = ContactConsentUpdate.Field()
    journey_exit = JourneyExit.Field()


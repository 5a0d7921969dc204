"""Messages with their delivery and engagement events; previews and test sends of a flow's messages.

Sent messages name a person: listing them needs ``MANAGE_USERS`` too. A
preview or a test send with sample data needs only ``MANAGE_PLUGINS``; with a
real contact's data it needs ``MANAGE_USERS`` as well.
"""

import graphene

from ..engine.preview import PreviewError, preview, send_test
from ..models import Contact as ContactModel, Flow as FlowModel, Message as MessageModel
from .core import (CONTACTS, FLOWS, JSON, FlowError, FlowErrorCode, FlowsMutation, MutationError, connection_field,
                   connection_type, error, get_by_global_id, lookup, node_id_field, paginate, permission_required,
                   require)
from .contacts import Contact
from .flows import Flow
from .templates import MessagePreview

MessageStatusEnum = graphene.Enum("MessageStatusEnum", [(s.upper(), s) for s in MessageModel.Status.values])
MessageChannelEnum = graphene.Enum("MessageChannelEnum", [(s.upper(), s) for s in MessageModel.Channel.values])


class MessageEvent(graphene.ObjectType):
    """A delivery or engagement event from the provider, our open pixel or our click redirect."""

    type = graphene.String(required=True, description="delivered, opened, clicked, bounced, complained…")
    provider = graphene.String(required=True)
    machine = graphene.Boolean(required=True, description="An open or click that looks machine-made.")
    url = graphene.String(required=True)
    occurred_at = graphene.DateTime(required=True)
    detail = JSON(required=True)


class Message(graphene.ObjectType):
    id = node_id_field("Message")
    send_id = graphene.String(required=True)
    channel = MessageChannelEnum(required=True)
    kind = graphene.String(required=True, description="marketing, transactional or staff.")
    is_test = graphene.Boolean(required=True, description="A test send: never in reports.")
    status = MessageStatusEnum(required=True)
    error = graphene.String(required=True)
    to = graphene.String(required=True)
    subject = graphene.String(required=True)
    flow = graphene.Field(Flow)
    step_id = graphene.String(required=True)
    contact = graphene.Field(Contact)
    created_at = graphene.DateTime(required=True)
    sent_at = graphene.DateTime()
    delivered_at = graphene.DateTime()
    opened_at = graphene.DateTime()
    machine_opened_at = graphene.DateTime()
    clicked_at = graphene.DateTime()
    bounced_at = graphene.DateTime()
    complained_at = graphene.DateTime()
    unsubscribed_at = graphene.DateTime()
    failed_at = graphene.DateTime()
    events = graphene.List(graphene.NonNull(MessageEvent), required=True, description="Oldest first.")

    @staticmethod
    def resolve_send_id(root, info):
        return str(root.send_id)

    @staticmethod
    def resolve_events(root, info):
        return root.events.order_by("occurred_at", "id")


MessageConnection = connection_type(Message, "Message")


class MessageFilterInput(graphene.InputObjectType):
    flow = graphene.ID()
    contact = graphene.ID()
    channel = MessageChannelEnum()
    status = graphene.List(graphene.NonNull(MessageStatusEnum))
    is_test = graphene.Boolean()


def filter_messages(queryset, f):
    if not f:
        return queryset
    if f.get("flow"):
        queryset = queryset.filter(flow=lookup(FlowModel, "Flow", f["flow"]))
    if f.get("contact"):
        queryset = queryset.filter(contact=lookup(ContactModel, "Contact", f["contact"]))
    if f.get("channel"):
        queryset = queryset.filter(channel=f["channel"])
    if f.get("status"):
        queryset = queryset.filter(status__in=list(f["status"]))
    if f.get("is_test") is not None:
        queryset = queryset.filter(is_test=f["is_test"])
    return queryset


class SampleDataInput(graphene.InputObjectType):
    contact = JSON(description="Profile fields: first_name, email, locale, attributes…")
    event = JSON(description="The trigger event's payload. Default: the contact's latest such event, or a sample.")


def _preview_target(info, flow_id, contact_id, field_prefix=""):
    """The flow and (after checking MANAGE_USERS) the real contact whose data renders the message."""
    require(info, CONTACTS if contact_id else FLOWS)
    flow = get_by_global_id(FlowModel, "Flow", flow_id, field="flowId")
    contact = get_by_global_id(ContactModel, "Contact", contact_id, field="contactId") if contact_id else None
    return flow, contact


def _sample(sample_data):
    if not sample_data:
        return None
    for key in ("contact", "event"):
        if sample_data.get(key) is not None and not isinstance(sample_data[key], dict):
            raise MutationError(error(FlowErrorCode.INVALID, f"{key} is a JSON object.", f"sampleData.{key}"))
    return {"contact": sample_data.get("contact"), "event": sample_data.get("event")}


class MessagePreviewResult(graphene.ObjectType):
    preview = graphene.Field(MessagePreview)
    errors = graphene.List(graphene.NonNull(FlowError), required=True)


class Query(graphene.ObjectType):
    messages = connection_field(MessageConnection, filter=MessageFilterInput())
    message = graphene.Field(Message, id=graphene.ID(required=True))
    message_preview = graphene.Field(
        MessagePreviewResult, flow_id=graphene.ID(required=True), step_id=graphene.String(required=True),
        version=graphene.Int(description="A published version's number; default the draft."),
        contact_id=graphene.ID(description="Render with this contact's data (needs MANAGE_USERS)."),
        sample_data=SampleDataInput(),
        description="A flow's message rendered by the send pipeline, for a contact or sample data. Sends nothing.")

    @staticmethod
    @permission_required(*CONTACTS)
    def resolve_messages(root, info, first=None, after=None, filter=None):
        rows = MessageModel.objects.select_related("flow", "contact")
        return paginate(filter_messages(rows, filter), MessageConnection, first=first, after=after)

    @staticmethod
    @permission_required(*CONTACTS)
    def resolve_message(root, info, id):
        return lookup(MessageModel, "Message", id)

    @staticmethod
    def resolve_message_preview(root, info, flow_id, step_id, version=None, contact_id=None, sample_data=None):
        try:
            flow, contact = _preview_target(info, flow_id, contact_id)
            rendered = preview(flow, step_id, version=version, contact=contact, sample=_sample(sample_data))
        except MutationError as exc:
            return MessagePreviewResult(preview=None, errors=[FlowError(**e) for e in exc.errors])
        except PreviewError as exc:
            return MessagePreviewResult(preview=None, errors=[
                FlowError(field=exc.field, code=FlowErrorCode.INVALID, message=m) for m in exc.errors])
        return MessagePreviewResult(errors=[], preview=MessagePreview.of(step_id, rendered))


class FlowTestSendInput(graphene.InputObjectType):
    flow_id = graphene.ID(required=True)
    step_id = graphene.String(required=True)
    to = graphene.String(required=True, description="An email address (or a phone number for an SMS step).")
    version = graphene.Int(description="A published version's number; default the draft.")
    contact_id = graphene.ID(description="Render with this contact's data (needs MANAGE_USERS).")
    sample_data = SampleDataInput()


class FlowTestSend(FlowsMutation):
    """Send one of a flow's messages to an address, rendered as for a contact; kept out of every report."""

    class Arguments:
        input = FlowTestSendInput(required=True)

    message = graphene.Field(Message, description="The test message (is_test), with its status.")

    @classmethod
    def required_permissions(cls, info, data):
        return CONTACTS if data["input"].get("contact_id") else FLOWS

    @classmethod
    def perform_mutation(cls, root, info, input):
        flow, contact = _preview_target(info, input["flow_id"], input.get("contact_id"))
        to = input["to"].strip()
        try:
            message = send_test(flow, input["step_id"], to, version=input.get("version"), contact=contact,
                                sample=_sample(input.get("sample_data")))
        except PreviewError as exc:
            raise MutationError(*[error(FlowErrorCode.INVALID, m, exc.field) for m in exc.errors]) from exc
        errors = []
        if message.status == MessageModel.Status.FAILED:
            errors.append(error(FlowErrorCode.SEND_FAILED, f"The test message was not sent: {message.error}"))
        return {"message": message, "errors": errors}


class Mutation(graphene.ObjectType):
    flow_test_send = FlowTestSend.Field()

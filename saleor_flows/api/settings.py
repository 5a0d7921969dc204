"""Flow-level settings through the API: frequency caps, quiet hours, senders per channel, topics.

Stored in our own table (``flow_settings.py``) and read by the engine before
the plugin's configuration. Each section shows what is stored here (null:
not set, the plugin's value applies) and what is in force; an update
changes only the sections it names, all or nothing, with an error on each
field that is wrong.
"""

import graphene

from .. import flow_settings
from ..conf import flows_setting
from .core import FLOWS, JSON, FlowErrorCode, FlowsMutation, MutationError, error, permission_required


class ChannelHours(graphene.ObjectType):
    email = graphene.Int()
    sms = graphene.Int()


class ChannelWindows(graphene.ObjectType):
    email = graphene.String()
    sms = graphene.String()


class ChannelSender(graphene.ObjectType):
    channel = graphene.String(required=True, description="The Saleor channel's slug.")
    from_email = graphene.String()
    reply_to = graphene.String()
    sms_from = graphene.String()


class Topic(graphene.ObjectType):
    key = graphene.String(required=True)
    label = JSON(required=True, description='Per language, e.g. {"en": "Newsletter", "de": "Neuigkeiten"}.')


def _caps(value):
    return ChannelHours(email=value.get("email"), sms=value.get("sms")) if isinstance(value, dict) else None


def _windows(value):
    return ChannelWindows(email=value.get("email"), sms=value.get("sms")) if isinstance(value, dict) else None


def _senders(value):
    if not isinstance(value, dict):
        return None
    return [ChannelSender(channel=channel, **{k: (v or {}).get(k) for k in flow_settings.SENDER_KEYS})
            for channel, v in sorted(value.items())]


def _topics(value):
    return [Topic(key=t.get("key"), label=t.get("label") or {}) for t in value] if isinstance(value, list) else None


class FlowSettingsValues(graphene.ObjectType):
    frequency_cap_hours = graphene.Field(ChannelHours, description="At most one marketing message per channel per "
                                                                    "this many hours (null: no cap).")
    quiet_hours = graphene.Field(ChannelWindows, description="HH:MM-HH:MM in the contact's local time (null: none).")
    senders = graphene.List(graphene.NonNull(ChannelSender), description="Senders per Saleor channel.")
    topics = graphene.List(graphene.NonNull(Topic), description="The preference centre's email topics.")


def values_of(source: dict) -> FlowSettingsValues:
    return FlowSettingsValues(frequency_cap_hours=_caps(source.get("frequency_cap_hours")),
                              quiet_hours=_windows(source.get("quiet_hours")), senders=_senders(source.get("senders")),
                              topics=_topics(source.get("topics")))


class FlowSettings(graphene.ObjectType):
    stored = graphene.Field(FlowSettingsValues, required=True,
                            description="Set here; a null section falls back to the plugin's configuration.")
    effective = graphene.Field(FlowSettingsValues, required=True, description="What the engine uses now.")
    updated_at = graphene.DateTime()


def current() -> FlowSettings:
    row = flow_settings.stored_row()
    stored = {name: getattr(row, name) for name in flow_settings.SECTIONS} if row else {}
    effective = {name: flows_setting(key) for name, key in flow_settings.SECTIONS.items()}
    return FlowSettings(stored=values_of(stored), effective=values_of(effective),
                        updated_at=row.updated_at if row else None)


class ChannelHoursInput(graphene.InputObjectType):
    email = graphene.Int(description="Hours; 0 or null: no cap.")
    sms = graphene.Int()


class ChannelWindowsInput(graphene.InputObjectType):
    email = graphene.String(description="HH:MM-HH:MM; empty or null: none.")
    sms = graphene.String()


class ChannelSenderInput(graphene.InputObjectType):
    channel = graphene.String(required=True)
    from_email = graphene.String()
    reply_to = graphene.String()
    sms_from = graphene.String()


class TopicInput(graphene.InputObjectType):
    key = graphene.String(required=True)
    label = JSON(required=True)


class FlowSettingsInput(graphene.InputObjectType):
    frequency_cap_hours = ChannelHoursInput(description="Null: use the plugin's configuration.")
    quiet_hours = ChannelWindowsInput(description="Null: use the plugin's configuration.")
    senders = graphene.List(graphene.NonNull(ChannelSenderInput), description="The whole list; null: the plugin's.")
    topics = graphene.List(graphene.NonNull(TopicInput), description="The whole list; null: the plugin's.")


class Query(graphene.ObjectType):
    flow_settings = graphene.Field(FlowSettings)

    @staticmethod
    @permission_required(*FLOWS)
    def resolve_flow_settings(root, info):
        return current()


class FlowSettingsUpdate(FlowsMutation):
    """Change the sections given (others stay); a section given as null goes back to the plugin's value."""

    class Arguments:
        input = FlowSettingsInput(required=True)

    settings = graphene.Field(FlowSettings)

    @classmethod
    def perform_mutation(cls, root, info, input):
        changes = {}
        for name in flow_settings.SECTIONS:
            if name in input:
                value = input[name]
                changes[name] = ([dict(entry) for entry in value] if isinstance(value, list)
                                 else dict(value) if value is not None else None)
        try:
            flow_settings.save(changes)
        except flow_settings.SettingsError as exc:
            raise MutationError(*[error(FlowErrorCode.INVALID, message, field) for field, message in exc.errors])
        return {"settings": current()}


class Mutation(graphene.ObjectType):
    flow_settings_update = FlowSettingsUpdate.Field()

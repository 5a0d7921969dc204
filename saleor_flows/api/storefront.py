"""Events into the engine through the API: ``eventRecord`` for servers, ``trackEvent`` for storefronts.

``eventRecord`` is for a trusted caller (staff, an App's backend) and may
record any event, with any payload and time: it needs ``MANAGE_PLUGINS``
and ``MANAGE_USERS`` (events create and change contacts).

``trackEvent`` is called by shoppers' browsers, so it trusts nothing: no
token, the shop's public key (which identifies the shop, it is not a
secret), a rate limit per client address, only storefront event names from
an allow-list, the server's clock, and a payload that cannot touch the
contact's profile or consent (keys the engine reads for that are removed)
nor put a foreign link, image or markup into the shop's mail
(``web.untrusted.storefront_payload``: the catalog's product data, or else
only the shop's own hosts and plain, bounded text).
``subscribe`` is the storefront signup form as a mutation: it does change
consent, so it shares everything with ``POST subscribe/`` (web/subscribe.py).
"""

import json

import graphene

from ..conf import flows_setting
from ..events import normalize_email, record_event, valid_email
from ..web.limits import client_address, over_limit, public_key_matches
from ..web.subscribe import SignupRefused, signup
from ..web.untrusted import storefront_payload
from .core import CONTACTS, JSON, FlowErrorCode, FlowsMutation, MutationError, error, to_global_id

# What a storefront may report. product_viewed starts the browse-abandonment journey
# (its payload: product_name, product_url, thumbnail, price, currency, variant_id).
STOREFRONT_EVENTS = ("product_viewed", "category_viewed", "search_performed", "added_to_cart",
                     "removed_from_cart", "added_to_wishlist", "page_viewed")
# Payload keys the engine reads to change a contact's profile or consent (engine/contacts.fold_profile):
# a browser must not set someone's phone, timezone or consent by naming their email.
PROFILE_KEYS = ("consent", "billing_address", "default_billing_address", "shipping_address", "timezone",
                "language_code", "metadata", "attributes", "first_name", "last_name")
MAX_PAYLOAD_BYTES = 8192

StorefrontEventEnum = graphene.Enum("StorefrontEventEnum", [(name.upper(), name) for name in STOREFRONT_EVENTS])


class RecordedEvent(graphene.ObjectType):
    id = graphene.ID(description="Null when the event was a duplicate (same dedupe key) and was dropped.")
    duplicate = graphene.Boolean(required=True)


def _identity(email, user_id) -> tuple[str, str]:
    email = normalize_email(email)
    if email and not valid_email(email):
        raise MutationError(error(FlowErrorCode.INVALID, f"{email!r} is not an email address.", "email"))
    user_id = (user_id or "").strip()
    if not email and not user_id:
        raise MutationError(error(FlowErrorCode.REQUIRED, "Give the contact's email or user id.", "email"))
    return email, user_id


def _payload(value, field="payload") -> dict:
    payload = value if value is not None else {}
    if not isinstance(payload, dict):
        raise MutationError(error(FlowErrorCode.INVALID, "The payload is a JSON object.", field))
    if len(json.dumps(payload, default=str)) > MAX_PAYLOAD_BYTES:
        raise MutationError(error(FlowErrorCode.INVALID, f"The payload is larger than {MAX_PAYLOAD_BYTES} bytes.",
                                  field))
    return payload


def _recorded(result) -> RecordedEvent:
    return RecordedEvent(id=to_global_id("Event", result.id) if result.id else None, duplicate=result.duplicate)


class EventRecordInput(graphene.InputObjectType):
    name = graphene.String(required=True, description="e.g. quiz_completed; flows can trigger on any name.")
    email = graphene.String()
    user_id = graphene.String(description="Saleor's user id.")
    channel = graphene.String(description="A Saleor channel slug.")
    payload = JSON(description="Data for conditions and templates ({{ event.* }}).")
    occurred_at = graphene.DateTime(description="Default: now.")
    dedupe_key = graphene.String(description="Identifies the occurrence: a second event with the same key is dropped.")


class EventRecord(FlowsMutation):
    """Record a custom event from a server, as the engine's own edges do (processed asynchronously)."""

    permissions = CONTACTS

    class Arguments:
        input = EventRecordInput(required=True)

    event = graphene.Field(RecordedEvent)

    @classmethod
    def perform_mutation(cls, root, info, input):
        name = (input.get("name") or "").strip()
        if not name or len(name) > 100:
            raise MutationError(error(FlowErrorCode.INVALID, "An event name has 1 to 100 characters.", "name"))
        email, user_id = _identity(input.get("email"), input.get("user_id"))
        result = record_event(name, email=email, user_id=user_id or None, channel=input.get("channel") or "",
                              payload=_payload(input.get("payload")), occurred_at=input.get("occurred_at"),
                              dedupe_key=input.get("dedupe_key") or None)
        return {"event": _recorded(result)}


def rate_limited(request) -> bool:
    """A fixed one-minute window per client address."""
    return bool(over_limit("track", client_address(request), int(flows_setting("TRACK_RATE_LIMIT_PER_MINUTE")),
                           window_seconds=60))


class TrackEventInput(graphene.InputObjectType):
    event = StorefrontEventEnum(required=True)
    email = graphene.String()
    user_id = graphene.String(description="Saleor's user id of a logged-in shopper.")
    channel = graphene.String(description="The Saleor channel slug of the storefront.")
    payload = JSON(description="e.g. {product_name, product_url, thumbnail, price, currency, variant_id} for "
                               "product_viewed; {query} for search_performed. Profile and consent keys are removed.")
    event_id = graphene.String(description="The storefront's id for this occurrence, to drop retries.")


class TrackEvent(FlowsMutation):
    """Storefront tracking (no token): product viewed, search performed, added to wishlist…"""

    permissions = ()

    class Arguments:
        public_key = graphene.String(required=True, description="The shop's public key (PUBLIC_KEY).")
        input = TrackEventInput(required=True)

    event = graphene.Field(RecordedEvent)

    @classmethod
    def perform_mutation(cls, root, info, public_key, input):
        if rate_limited(info.context):
            raise MutationError(error(FlowErrorCode.RATE_LIMITED, "Too many events from this address; "
                                                                  "try again in a minute."))
        if not public_key_matches(str(public_key)):
            raise MutationError(error(FlowErrorCode.INVALID_PUBLIC_KEY, "Unknown public key.", "publicKey"))
        email, user_id = _identity(input.get("email"), input.get("user_id"))
        channel = input.get("channel") or ""
        payload = storefront_payload({key: value for key, value in _payload(input.get("payload"), "input.payload")
                                      .items() if key not in PROFILE_KEYS}, channel=channel)
        payload["source"] = "storefront"
        event_id = (input.get("event_id") or "").strip()
        name = input["event"]
        result = record_event(name, email=email, user_id=user_id or None, channel=channel, payload=payload,
                              dedupe_key=f"storefront:{name}:{email or user_id}:{event_id}" if event_id else None)
        return {"event": _recorded(result)}


class SubscribeInput(graphene.InputObjectType):
    email = graphene.String()
    phone = graphene.String(description="E.164, or national with `country`.")
    country = graphene.String(description="ISO country code to read a national phone number, e.g. DE.")
    source = graphene.String(description="storefront_form (default) or checkout.")
    language = graphene.String(description="e.g. de or pt-BR: the language of the confirmation and of later mail.")
    topics = graphene.List(graphene.NonNull(graphene.String), description="Topic keys signed up for.")
    first_name = graphene.String()
    channel = graphene.String(description="The Saleor channel slug of the storefront.")


class Subscribe(FlowsMutation):
    """A storefront signup form (no token): email and/or phone with the consent's source.

    The same rules as ``POST subscribe/``: the shop's public key, rate limits
    per client and per address, proof kept (IP, user agent), double opt-in
    when the shop turned it on, and the same answer whether or not the person
    was known.
    """

    permissions = ()

    class Arguments:
        public_key = graphene.String(required=True, description="The shop's public key (PUBLIC_KEY).")
        input = SubscribeInput(required=True)

    confirmation_required = graphene.Boolean(description="A confirmation email was sent (double opt-in).")

    @classmethod
    def perform_mutation(cls, root, info, public_key, input):
        data = {key: value for key, value in input.items() if value is not None}
        try:
            confirmation_required = signup(info.context, {**data, "public_key": public_key})
        except SignupRefused as refused:
            raise MutationError(*[error(_signup_code(item), item["message"], _camel(item["field"]))
                                  for item in refused.errors])
        return {"confirmation_required": confirmation_required}


def _signup_code(item: dict):
    if item["field"] == "public_key" and item["code"] != "REQUIRED":
        return FlowErrorCode.INVALID_PUBLIC_KEY
    return {"REQUIRED": FlowErrorCode.REQUIRED, "RATE_LIMITED": FlowErrorCode.RATE_LIMITED}.get(
        item["code"], FlowErrorCode.INVALID)


def _camel(field):
    if not field:
        return None
    head, *rest = field.split("_")
    name = head + "".join(part.title() for part in rest)
    return name if name == "publicKey" else f"input.{name}"


class Mutation(graphene.ObjectType):
    event_record = EventRecord.Field()
    track_event = TrackEvent.Field()
    subscribe = Subscribe.Field()

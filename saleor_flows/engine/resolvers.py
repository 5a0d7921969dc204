"""Events recorded as a reference, expanded in the worker by the edge that recorded them.

A host hook runs in the shopper's request, where building a full payload
(Saleor's payload functions read lines, products, addresses…) costs tens of
milliseconds. So an edge may record ``{"$ref": {"source": …, …}}`` — just
enough to find the object again — and register a resolver that builds the
real payload when the worker processes the event. The engine only knows the
registry, never the host.
"""

REF_KEY = "$ref"
_resolvers: dict = {}


class Unresolvable(Exception):
    """The referenced object cannot be turned into an event (the reason is kept on the dead letter)."""


def register(source: str, resolver):
    """``resolver(reference: dict, event) -> dict`` with ``payload`` and optionally email, user_id, channel."""
    _resolvers[source] = resolver


def needs_resolving(payload) -> bool:
    return isinstance(payload, dict) and isinstance(payload.get(REF_KEY), dict)


def resolve(event) -> None:
    """Replace the event's reference with the real payload (and identity), in place and in the table."""
    reference = event.payload[REF_KEY]
    resolver = _resolvers.get(reference.get("source"))
    if resolver is None:
        raise Unresolvable(f"no resolver for {reference.get('source')!r} events in this process")
    resolved = resolver(reference, event)
    event.payload = resolved["payload"]
    for field in ("email", "user_id", "channel"):
        if resolved.get(field):
            setattr(event, field, resolved[field])
    event.save(update_fields=["payload", "email", "user_id", "channel"])

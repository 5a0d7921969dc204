"""What every domain module of the API shares, in Saleor's conventions.

Global ids (``base64("Flow:12")``), ``PermissionDenied`` as a top-level
GraphQL error, mutation payloads with ``errors { field code message }``,
and countable connections paginated with ``first``/``after``.
"""

import base64
import binascii

import graphene
from graphene.types.generic import GenericScalar
from graphql import GraphQLError

from .auth import MANAGE_PLUGINS, MANAGE_USERS

MAX_PAGE = 100


class JSON(GenericScalar):
    """Any JSON value, given and returned as-is (flow definitions, payloads, trail details)."""


# --- permissions ----------------------------------------------------------------------


class PermissionDenied(GraphQLError):
    """Raised from a resolver; the view reports it with ``extensions.exception.code = PermissionDenied``."""

    def __init__(self, permissions, reason: str = ""):
        self.permissions = list(permissions)
        super().__init__("You need all of these permissions to do this: " + ", ".join(self.permissions)
                         + (f" ({reason})" if reason else ""))


FLOWS = (MANAGE_PLUGINS,)
CONTACTS = (MANAGE_PLUGINS, MANAGE_USERS)  # contact-level data: PII and why-trails


def require(info, permissions):
    if not info.context.principal.has_all(permissions):
        raise PermissionDenied(permissions)


def permission_required(*permissions):
    """A resolver wrapper: ``@permission_required(*FLOWS)``."""

    def wrap(resolver):
        def resolve(root, info, **kwargs):
            require(info, permissions)
            return resolver(root, info, **kwargs)

        resolve.__name__ = resolver.__name__
        resolve.__doc__ = resolver.__doc__
        return resolve

    return wrap


# --- global ids -------------------------------------------------------------------------


def to_global_id(type_name: str, pk) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


class InvalidId(Exception):
    pass


def from_global_id(value, type_name: str) -> int:
    """The primary key behind ``value``, which must be a global id of ``type_name``."""
    try:
        decoded = base64.b64decode(str(value), validate=True).decode()
        kind, _, pk = decoded.partition(":")
        if kind != type_name or not pk.isdigit():
            raise ValueError
        return int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidId(f"Couldn't resolve id: {value!r} is not a {type_name} id.") from exc


def node_id_field(type_name: str):
    """An ``id: ID!`` field resolved to the model's global id."""
    return graphene.ID(required=True, resolver=lambda root, info: to_global_id(type_name, root.pk))


# --- mutation errors ----------------------------------------------------------------


class FlowErrorCode(graphene.Enum):
    INVALID = "invalid"
    INVALID_DEFINITION = "invalid_definition"
    NOT_FOUND = "not_found"
    REQUIRED = "required"
    UNIQUE = "unique"
    NOT_PUBLISHED = "not_published"
    INVALID_STATUS = "invalid_status"
    INVALID_PUBLIC_KEY = "invalid_public_key"
    RATE_LIMITED = "rate_limited"
    SEND_FAILED = "send_failed"
    NOT_READY = "not_ready"


class FlowError(graphene.ObjectType):
    field = graphene.String(description="The input field (or definition path) the error is about; null for the "
                                        "whole operation.")
    code = FlowErrorCode(required=True)
    message = graphene.String(required=True)


class MutationError(Exception):
    """Raised inside ``perform_mutation``: becomes ``errors`` of the payload, nothing is changed."""

    def __init__(self, *errors):
        super().__init__("; ".join(str(e.get("message")) for e in errors))
        self.errors = list(errors)


def error(code, message, field=None) -> dict:
    return {"field": field, "code": code, "message": message}


def not_found(type_name: str, field="id"):
    return MutationError(error(FlowErrorCode.NOT_FOUND, f"{type_name} not found.", field))


def get_by_global_id(model, type_name: str, value, field="id"):
    """The row behind a global id, or a ``MutationError`` naming the field."""
    try:
        pk = from_global_id(value, type_name)
    except InvalidId as exc:
        raise MutationError(error(FlowErrorCode.INVALID, str(exc), field)) from exc
    row = model.objects.filter(pk=pk).first()
    if row is None:
        raise not_found(type_name, field)
    return row


def lookup(model, type_name: str, value):
    """The row behind a global id for a query field: None when the id is unknown (as Saleor answers)."""
    try:
        return model.objects.filter(pk=from_global_id(value, type_name)).first()
    except InvalidId as exc:
        raise GraphQLError(str(exc)) from exc


class FlowsMutation(graphene.Mutation):
    """Base of every mutation: permission check, then ``perform_mutation`` whose MutationError becomes ``errors``.

    Subclasses set ``permissions`` (a tuple of names; empty for anonymous
    storefront mutations) and return a dict of their output fields.
    """

    class Meta:
        abstract = True

    errors = graphene.List(graphene.NonNull(FlowError), required=True)
    permissions: tuple = FLOWS

    @classmethod
    def mutate(cls, root, info, **data):
        permissions = cls.required_permissions(info, data)
        if permissions:
            require(info, permissions)
        try:
            result = cls.perform_mutation(root, info, **data)
        except MutationError as exc:
            return cls(errors=[FlowError(**e) for e in exc.errors])
        # A mutation that did something but has to report a problem too returns "errors" itself.
        errors = [FlowError(**e) for e in result.pop("errors", [])]
        return cls(errors=errors, **result)

    @classmethod
    def required_permissions(cls, info, data):
        return cls.permissions

    @classmethod
    def perform_mutation(cls, root, info, **data):  # pragma: no cover - every subclass overrides it
        raise NotImplementedError


# --- connections ------------------------------------------------------------------


class PageInfo(graphene.ObjectType):
    has_next_page = graphene.Boolean(required=True)
    has_previous_page = graphene.Boolean(required=True)
    start_cursor = graphene.String()
    end_cursor = graphene.String()


def connection_type(node_type, name: str):
    """``<name>CountableConnection { edges { node cursor } pageInfo totalCount }``, Saleor's shape."""
    edge = type(f"{name}CountableEdge", (graphene.ObjectType,), {
        "node": graphene.Field(node_type, required=True),
        "cursor": graphene.String(required=True),
    })
    return type(f"{name}CountableConnection", (graphene.ObjectType,), {
        "edges": graphene.List(graphene.NonNull(edge), required=True),
        "page_info": graphene.Field(PageInfo, required=True),
        "total_count": graphene.Int(),
        "_edge": edge,
    })


def connection_field(connection, **filters):
    return graphene.Field(connection, first=graphene.Int(description=f"At most {MAX_PAGE}."),
                          after=graphene.String(), **filters)


def _cursor(pk) -> str:
    return base64.b64encode(f"cursor:{pk}".encode()).decode()


def _cursor_pk(cursor) -> int:
    try:
        kind, _, pk = base64.b64decode(str(cursor), validate=True).decode().partition(":")
        if kind != "cursor" or not pk.isdigit():
            raise ValueError
        return int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise GraphQLError(f"Invalid cursor: {cursor!r}.") from exc


def paginate(queryset, connection, *, first=None, after=None):
    """Newest first, keyset on the primary key: a page costs the same on page 1 and page 1,000."""
    if first is None:
        raise GraphQLError("You must provide a `first` value to properly paginate the connection.")
    if not 0 <= first <= MAX_PAGE:
        raise GraphQLError(f"`first` must be between 0 and {MAX_PAGE}.")
    total = queryset.count()
    page = queryset.order_by("-pk")
    if after is not None:
        page = page.filter(pk__lt=_cursor_pk(after))
    rows = list(page[: first + 1])
    has_next = len(rows) > first
    rows = rows[:first]
    edges = [connection._edge(node=row, cursor=_cursor(row.pk)) for row in rows]
    return connection(
        edges=edges, total_count=total,
        page_info=PageInfo(has_next_page=has_next, has_previous_page=after is not None,
                           start_cursor=edges[0].cursor if edges else None,
                           end_cursor=edges[-1].cursor if edges else None),
    )

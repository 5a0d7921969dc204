"""Bounds on a GraphQL document, checked before graphql-core validates or runs it.

Why: graphql-core 2 validates in time that grows with the square of the
number of repeated fields (16,000 ``__typename`` in 172 KB took 28 s), and a
few aliases of an expensive field (template previews, reports, simulations)
hold a worker for seconds. Every caller, anonymous or staff, passes these
checks first, each cheaper than the next, and a refusal names its limit:

1. size in bytes (``API_QUERY_MAX_BYTES``);
2. tokens, counted by one regular-expression pass before graphql-core parses
   (``API_QUERY_MAX_TOKENS``), and bracket nesting, so the recursive parser
   never meets a deeper document than the depth limit allows;
3. on the parsed document: operations (``API_QUERY_MAX_OPERATIONS``), fields
   with aliases and fragments expanded (``API_QUERY_MAX_FIELDS``), depth
   (``API_QUERY_MAX_DEPTH``), fragment cycles, introspection for anonymous
   callers (``API_INTROSPECTION_ANONYMOUS``) and a cost budget
   (``API_QUERY_MAX_COST``) where expensive fields weigh more and a
   connection's ``first`` multiplies what is under it.

Fragments are measured once each and their totals reused, so a document that
would expand exponentially is measured in time linear in its length.
"""

import re
from collections import Counter

from graphql import parse
from graphql.error import GraphQLSyntaxError
from graphql.language import ast
from graphql.type.definition import get_named_type

from ..conf import flows_setting
from ..journeys import JOURNEYS
from .core import MAX_PAGE
from .schema import schema

# Cost units are roughly milliseconds of server work, about one database query each: object
# fields cost 1, scalar fields 0, and these cost what their resolvers were measured to take on
# the 2-core development machine (rendering a template's previews, compiling a draft's MJML to
# validate it, aggregating a report, importing or simulating).
WEIGHTS = {
    "FlowTemplate.previews": 300,
    "Query.messagePreview": 100,
    "Query.flowReport": 200,
    "Query.flowSplitReport": 200,
    "Query.flowHoldoutReport": 200,
    "Query.flowsExport": 200,
    "Mutation.flowsImport": 1000,
    "Mutation.flowSimulate": 500,
    "Mutation.flowTestSend": 200,
    "Mutation.flowCreate": 100,
    "Mutation.flowUpdate": 100,
    "Mutation.flowValidate": 300,
    "Mutation.flowPublish": 300,
    "Mutation.flowCreateFromTemplate": 300,
    "Flow.validationErrors": 100,
    "Flow.metrics": 5,
    "Contact.trail": 10,
    "Journey.trail": 10,
}
# Lists without a ``first`` argument whose length is known in advance.
LIST_SIZES = {"Query.flowTemplates": len(JOURNEYS)}
INTROSPECTION_FIELDS = {"__schema", "__type"}
# Numbers beyond this are all "far too many": keeps exponential fragment totals small integers.
CEILING = 10**12

# One GraphQL token per match of the ``token`` group; white space, commas and comments are skipped.
# The alternatives of each string start with different characters, so a failed match never backtracks far.
TOKEN = re.compile(r'''
    [\s,\ufeff]+ | \#[^\n\r]*
  | (?P<token>
        """(?:[^"\\]|\\.|"(?!""))*"""
      | "(?:[^"\\\n\r]|\\.)*"
      | \.\.\.
      | [_A-Za-z][_0-9A-Za-z]*
      | -?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?
      | .
    )''', re.VERBOSE | re.DOTALL)
OPENING, CLOSING = frozenset("{[("), frozenset("}])")


class QueryRefused(Exception):
    """A document over one of the limits; ``error()`` is its GraphQL-style error (sent with HTTP 400)."""

    def __init__(self, code: str, setting: str | None, message: str):
        super().__init__(message)
        self.code, self.setting, self.message = code, setting, message

    def error(self) -> dict:
        """``limit`` names the setting that refused, ``maximum`` its value when it is a number."""
        exception = {"code": self.code}
        if self.setting:
            exception["limit"] = self.setting
            value = flows_setting(self.setting)
            if isinstance(value, int) and not isinstance(value, bool):
                exception["maximum"] = value
        return {"message": self.message, "extensions": {"exception": exception}}


def check_query(query: str, variables: dict, *, anonymous: bool) -> None:
    """Raise QueryRefused when ``query`` is over a limit. A document that does not parse passes:
    graphql-core then reports the syntax error as it always has."""
    size = len(query.encode("utf-8", "surrogatepass"))
    if size > flows_setting("API_QUERY_MAX_BYTES"):
        raise QueryRefused("QueryTooLarge", "API_QUERY_MAX_BYTES",
                           f"The query is {size} bytes; at most {flows_setting('API_QUERY_MAX_BYTES')} are accepted.")
    count_tokens(query)
    try:
        document = parse(query)
    except GraphQLSyntaxError:
        return
    Measure(document, variables, introspection=not anonymous or flows_setting("API_INTROSPECTION_ANONYMOUS")).check()


def count_tokens(query: str) -> int:
    """Tokens in ``query`` (one linear pass, stopping at the limit); also bounds how deeply brackets nest."""
    max_tokens, max_nesting = flows_setting("API_QUERY_MAX_TOKENS"), bracket_nesting_limit()
    tokens = nesting = 0
    for match in TOKEN.finditer(query):
        token = match.group("token")
        if token is None:
            continue
        tokens += 1
        if tokens > max_tokens:
            raise QueryRefused("TooManyTokens", "API_QUERY_MAX_TOKENS",
                               f"The query has more than {max_tokens} tokens.")
        if token in OPENING:
            nesting += 1
            if nesting > max_nesting:
                raise _too_deep()
        elif token in CLOSING:
            nesting -= 1
    return tokens


def bracket_nesting_limit() -> int:
    """Each level of selection may also open brackets for arguments, lists and input objects."""
    return 3 * flows_setting("API_QUERY_MAX_DEPTH")


def _too_deep():
    depth = flows_setting("API_QUERY_MAX_DEPTH")
    return QueryRefused("QueryTooDeep", "API_QUERY_MAX_DEPTH", f"The query is nested deeper than {depth} levels.")


class Measure:
    """Fields, depth and cost of a parsed document against the schema, fragments measured once each."""

    def __init__(self, document, variables: dict, *, introspection: bool):
        self.schema = schema
        self.variables = variables
        self.introspection = introspection
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, ast.FragmentDefinition)}
        self.operations = [d for d in document.definitions if isinstance(d, ast.OperationDefinition)]
        self.measured: dict = {}  # fragment name → (fields, depth, cost, names), as selection_set returns
        self.open: list = []  # fragments being measured: a cycle, and how deeply spreads nest
        self.max_depth = flows_setting("API_QUERY_MAX_DEPTH")
        self.max_fields = flows_setting("API_QUERY_MAX_FIELDS")
        self.max_same_name = flows_setting("API_QUERY_MAX_SAME_NAME_FIELDS")

    def check(self) -> None:
        max_operations = flows_setting("API_QUERY_MAX_OPERATIONS")
        if len(self.operations) > max_operations:
            raise QueryRefused("TooManyOperations", "API_QUERY_MAX_OPERATIONS",
                               f"The document has {len(self.operations)} operations; at most {max_operations}.")
        max_cost, fields, depth = flows_setting("API_QUERY_MAX_COST"), 0, 0
        for operation in self.operations:
            root = {"query": self.schema.get_query_type(),
                    "mutation": self.schema.get_mutation_type()}.get(operation.operation)
            op_fields, op_depth, cost, _ = self.selection_set(operation.selection_set, root)
            fields, depth = min(fields + op_fields, CEILING), max(depth, op_depth)
            if cost > max_cost:
                raise QueryRefused("QueryTooExpensive", "API_QUERY_MAX_COST",
                                   f"The query costs {_shown(cost)}; the budget is {max_cost}. Ask for fewer "
                                   "items (first), fewer aliases or fewer expensive fields (previews, reports…).")
        for name in set(self.fragments) - set(self.measured):  # unused fragments are validated too
            fields = min(fields + self.fragment(name)[0], CEILING)
        for _, fragment_depth, _, _ in self.measured.values():
            depth = max(depth, fragment_depth)
        if fields > self.max_fields:
            raise _too_many_fields(fields)
        if depth > self.max_depth:
            raise _too_deep()

    def selection_set(self, selection_set, parent_type, level: int = 0) -> tuple[int, int, int, Counter]:
        """Fields, depth and cost under a selection set, and how many fields answer under each name at its
        level: graphql-core compares those pairwise (the quadratic part of validation).

        ``level`` is the depth inside the operation or fragment being measured: refusing as soon as it
        passes the limit keeps this walk's recursion short (at most the limit per fragment in a chain)."""
        if level > self.max_depth:
            raise _too_deep()
        fields = depth = cost = 0
        names = Counter()
        for selection in selection_set.selections:
            if isinstance(selection, ast.Field):
                counts = self.field(selection, parent_type, level)
            elif isinstance(selection, ast.InlineFragment):
                condition = selection.type_condition
                counts = self.selection_set(selection.selection_set,
                                            self.schema.get_type(condition.name.value) if condition else parent_type,
                                            level)
            else:
                counts = self.fragment(selection.name.value)
            # A spread or inline fragment counts as one more: graphql-core compares fragments pairwise too.
            fields += counts[0] + (0 if isinstance(selection, ast.Field) else 1)
            depth, cost = max(depth, counts[1]), cost + counts[2]
            names.update(counts[3])
            if fields > self.max_fields:
                raise _too_many_fields(fields)
        if names and max(names.values()) > self.max_same_name:
            name, count = names.most_common(1)[0]
            raise QueryRefused("TooManySameNameFields", "API_QUERY_MAX_SAME_NAME_FIELDS",
                               f"{count} fields answer as {name!r} in one selection; at most {self.max_same_name}.")
        return min(fields, CEILING), depth, min(cost, CEILING), names

    def field(self, field, parent_type, level: int) -> tuple[int, int, int, Counter]:
        name = field.name.value
        if name in INTROSPECTION_FIELDS and not self.introspection:
            raise QueryRefused("IntrospectionDisabled", "API_INTROSPECTION_ANONYMOUS",
                               "Introspection is not allowed for anonymous callers; send a staff or App token.")
        definition = getattr(parent_type, "fields", {}).get(name) if parent_type is not None else None
        key = f"{getattr(parent_type, 'name', '')}.{name}"
        weight = WEIGHTS.get(key, 0 if field.selection_set is None else 1)
        answers_as = Counter([field.alias.value if field.alias else name])
        if field.selection_set is None:
            return 1, 1, weight, answers_as
        child_type = get_named_type(definition.type) if definition is not None else None
        fields, depth, cost, _ = self.selection_set(field.selection_set, child_type, level + 1)
        return fields + 1, depth + 1, weight + self.multiplier(field, key) * cost, answers_as

    def multiplier(self, field, key: str) -> int:
        """How many items a list field returns at most: its ``first`` (up to MAX_PAGE), or its known size."""
        for argument in field.arguments or []:
            if argument.name.value == "first":
                value = argument.value
                if isinstance(value, ast.Variable):
                    value = self.variables.get(value.name.value)
                elif isinstance(value, ast.IntValue):
                    value = int(value.value)
                return min(max(value, 1), MAX_PAGE) if isinstance(value, int) else MAX_PAGE
        return LIST_SIZES.get(key, 1)

    def fragment(self, name: str) -> tuple[int, int, int, Counter]:
        if name in self.measured:
            return self.measured[name]
        definition = self.fragments.get(name)
        if definition is None:
            return 0, 0, 0, Counter()  # validation reports the unknown fragment
        if name in self.open:
            raise QueryRefused("FragmentCycle", None,
                               f"Fragment {name} spreads itself (through {' → '.join(self.open)}).")
        if len(self.open) >= self.max_depth:
            raise _too_deep()
        self.open.append(name)
        counts = self.selection_set(definition.selection_set,
                                    self.schema.get_type(definition.type_condition.name.value))
        self.open.pop()
        self.measured[name] = counts
        return counts


def _too_many_fields(fields: int):
    return QueryRefused("TooManyFields", "API_QUERY_MAX_FIELDS",
                        f"The query selects {_shown(fields)} fields and fragments (aliases and fragments expanded); "
                        f"at most {flows_setting('API_QUERY_MAX_FIELDS')}.")


def _shown(number: int) -> str:
    return f"more than {CEILING}" if number >= CEILING else str(number)

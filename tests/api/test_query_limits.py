"""Bounds on GraphQL documents (api/limits.py), over real HTTP: each limit refuses with a 400 that names it,
before graphql-core validates or runs anything, and the queries the dashboard sends still fit."""

import json

import pytest
from graphql.utils.introspection_query import introspection_query

from tests.api.conftest import ENDPOINT
from tests.api.test_flows_api import FLOW_FIELDS, welcome
from tests.api.test_permissions import CALLERS

STAFF = ("MANAGE_PLUGINS", "MANAGE_USERS")


def refused(response, code, limit):
    body = response.json()
    assert response.status_code == 400, body
    (error,) = body["errors"]
    assert error["extensions"]["exception"]["code"] == code, body
    assert error["extensions"]["exception"].get("limit") == limit, body
    assert "data" not in body
    return error


def test_16000_repeated_fields_in_172_kb_are_refused_by_size(api):
    # graphql-core 2 took 28 s to validate this (quadratic in repeated fields); now it never reaches it.
    query = "{" + " __typename" * 16000 + "}"
    assert len(query) > 170_000
    error = refused(api.post(query), "QueryTooLarge", "API_QUERY_MAX_BYTES")
    assert error["extensions"]["exception"]["maximum"] == 50_000
    assert "bytes" in error["message"]


def test_many_fields_under_the_size_limit_are_refused_by_field_count(api, tokens):
    query = "{" + " ".join(f"a{i}: __typename" for i in range(600)) + "}"
    for token in (None, tokens.staff(*STAFF)):
        refused(api.post(query, token=token), "TooManyFields", "API_QUERY_MAX_FIELDS")
    assert len(api("{" + " ".join(f"a{i}: __typename" for i in range(400)) + "}")) == 400


def test_repeated_fields_under_the_size_limit_are_refused(api):
    refused(api.post("{" + " __typename" * 400 + "}"), "TooManySameNameFields", "API_QUERY_MAX_SAME_NAME_FIELDS")


def test_fields_answering_under_one_name_are_bounded(api):
    # graphql-core compares fields of one response name pairwise: 490 conflicting aliases made 60,000
    # errors (17 MB of answer) from 5 KB; fragments spread side by side are compared the same way.
    conflicting = "{" + " ".join(f"a: {'__typename' if i % 2 else 'flows'}" for i in range(30)) + "}"
    error = refused(api.post(conflicting), "TooManySameNameFields", "API_QUERY_MAX_SAME_NAME_FIELDS")
    assert "'a'" in error["message"] and error["extensions"]["exception"]["maximum"] == 25
    spreads = "{" + " ".join(f"...F{i}" for i in range(30)) + "}" + \
        " ".join(f"fragment F{i} on Query {{ __typename }}" for i in range(30))
    refused(api.post(spreads), "TooManySameNameFields", "API_QUERY_MAX_SAME_NAME_FIELDS")
    assert api("{" + " __typename" * 25 + "}") == {"__typename": "Query"}


def test_tokens_are_counted_before_parsing(api):
    # 6,000 tokens in 12 KB: under the size limit, over the token limit (strings and comments do not count).
    refused(api.post("{" + " a" * 6000 + "}"), "TooManyTokens", "API_QUERY_MAX_TOKENS")
    padded = '# ' + "x" * 40_000 + '\n{ __typename }'
    assert api(padded) == {"__typename": "Query"}


def test_fragments_are_counted_expanded_and_cycles_refused(api, tokens):
    # Side by side: each fragment spreads the previous one twice, 2**10 times __typename from 600 bytes.
    fragments = ["fragment F0 on Query { __typename }"]
    fragments += [f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 11)]
    bomb = "query { ...F10 }\n" + "\n".join(fragments)
    assert len(bomb) < 600
    refused(api.post(bomb), "TooManySameNameFields", "API_QUERY_MAX_SAME_NAME_FIELDS")
    assert api("query { ...F3 }\n" + "\n".join(fragments[:4])) == {"__typename": "Query"}

    # Nested under two names: 2**9 leaves and 1,022 fields in between, from 700 bytes.
    types = ["fragment T0 on __Type { name }"]
    types += [f"fragment T{i} on __Type {{ a: ofType {{ ...T{i - 1} }} b: ofType {{ ...T{i - 1} }} }}"
              for i in range(1, 10)]
    nested = '{ __type(name: "Flow") { ...T9 } }\n' + "\n".join(types)
    assert len(nested) < 700
    refused(api.post(nested, token=tokens.staff()), "TooManyFields", "API_QUERY_MAX_FIELDS")
    small = '{ __type(name: "Flow") { ...T3 } }\n' + "\n".join(types[:4])
    assert api(small, token=tokens.staff())["__type"] == {"a": None, "b": None}  # Flow is not a wrapper type

    cycle = "query { ...A } fragment A on Query { ...B } fragment B on Query { __typename ...A }"
    error = refused(api.post(cycle), "FragmentCycle", None)
    assert "A" in error["message"]


def test_deep_nesting_is_refused_before_the_parser_recurses(api):
    query = "{" + "a {" * 1000 + "b" + "}" * 1001
    refused(api.post(query), "QueryTooDeep", "API_QUERY_MAX_DEPTH")
    # Each fragment under the bracket bound, but 15 of them in a chain nest 660 levels.
    chain = [f"fragment F{i} on Query {{ " + "a { " * 44 + (f"...F{i + 1}" if i < 14 else "b") + " }" * 44 + " }"
             for i in range(15)]
    refused(api.post("{ ...F0 } " + " ".join(chain)), "QueryTooDeep", "API_QUERY_MAX_DEPTH")


def test_deep_selections_are_refused_for_staff_too(api, tokens):
    def of_type(levels):
        return "{ __type(name: \"Flow\") { fields { type " + "{ ofType " * levels + "{ name }" + " }" * levels + \
            " } } }"

    token = tokens.staff(*STAFF)
    refused(api.post(of_type(20), token=token), "QueryTooDeep", "API_QUERY_MAX_DEPTH")
    assert api(of_type(5), token=token)["__type"]["fields"]


def test_too_many_operations_are_refused(api):
    document = "\n".join(f"query Q{i} {{ __typename }}" for i in range(11))
    response = api.client.post(ENDPOINT, data=json.dumps({"query": document, "operationName": "Q3"}),
                               content_type="application/json")
    refused(response, "TooManyOperations", "API_QUERY_MAX_OPERATIONS")


PREVIEW_ALIASES = "{" + " ".join(f'p{i}: flowTemplate(slug: "welcome") {{ previews {{ subject html }} }}'
                                 for i in range(20)) + "}"


@pytest.mark.parametrize("caller", ["anonymous", "staff-manage-plugins", "app-token"])
def test_aliased_template_previews_are_refused_by_cost(api, tokens, caller):
    # 20 aliases of one template's previews kept a worker busy for 10 s.
    error = refused(api.post(PREVIEW_ALIASES, token=CALLERS[caller](tokens)), "QueryTooExpensive",
                    "API_QUERY_MAX_COST")
    assert error["extensions"]["exception"]["maximum"] == 5_000
    assert "budget" in error["message"]


def test_cost_is_multiplied_through_first(flows, api, tokens):
    token = tokens.staff(*STAFF)
    flows.flow(welcome(), slug="welcome")
    query = "query($n: Int) { flows(first: $n) { edges { node { slug validationErrors { message } } } } }"
    refused(api.post(query, {"n": 100}, token=token), "QueryTooExpensive", "API_QUERY_MAX_COST")
    inline = query.replace("$n: Int", "").replace("first: $n", "first: 100").replace("query()", "query")
    refused(api.post(inline, token=token), "QueryTooExpensive", "API_QUERY_MAX_COST")
    data = api(query, {"n": 20}, token=token)
    assert [edge["node"]["slug"] for edge in data["flows"]["edges"]] == ["welcome"]


def test_introspection_is_refused_to_anonymous_callers_and_allowed_to_staff(api, tokens, settings):
    refused(api.post(introspection_query), "IntrospectionDisabled", "API_INTROSPECTION_ANONYMOUS")
    refused(api.post('{ __type(name: "Flow") { name } }'), "IntrospectionDisabled", "API_INTROSPECTION_ANONYMOUS")
    hidden = '{ ...Q } fragment Q on Query { __schema { queryType { name } } }'
    refused(api.post(hidden), "IntrospectionDisabled", "API_INTROSPECTION_ANONYMOUS")
    for token in (tokens.staff(), tokens.app("MANAGE_PLUGINS")):
        schema = api(introspection_query, token=token)["__schema"]
        assert {"Flow", "Contact"} <= {t["name"] for t in schema["types"]}
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "API_INTROSPECTION_ANONYMOUS": True}
    assert api(hidden) == {"__schema": {"queryType": {"name": "Query"}}}


def test_limits_come_from_settings(api, settings):
    query = "{ __typename a: __typename b: __typename }"
    assert api(query) == {"__typename": "Query", "a": "Query", "b": "Query"}
    for name, value, code in [("API_QUERY_MAX_FIELDS", 2, "TooManyFields"),
                              ("API_QUERY_MAX_TOKENS", 6, "TooManyTokens"),
                              ("API_QUERY_MAX_BYTES", 20, "QueryTooLarge")]:
        settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, name: value}
        error = refused(api.post(query), code, name)
        assert error["extensions"]["exception"]["maximum"] == value
        settings.SALEOR_FLOWS = {k: v for k, v in settings.SALEOR_FLOWS.items() if k != name}


def test_dashboard_queries_fit(flows, api, tokens):
    token = tokens.staff(*STAFF)
    for slug in ("welcome", "second", "third"):
        flows.flow(welcome(), slug=slug)
    data = api("query($first: Int) { flows(first: $first) { totalCount edges { node { %s } } } }" % FLOW_FIELDS,
               {"first": 20}, token=token)
    assert data["flows"]["totalCount"] == 3
    gallery = "{ flowTemplates { slug name graph { nodes { id } } previews { stepId subject html text } } }"
    assert all(t["previews"] for t in api(gallery, token=token)["flowTemplates"])


def test_odd_text_in_a_query_is_a_clear_refusal_or_a_syntax_error_never_a_500(api):
    response = api.post('{ flow(slug: "\ud800") { name } }')
    assert response.status_code in (200, 400) and response.json()["errors"]
    response = api.post("{ flows(first: 5) { ")
    assert response.status_code == 400 and "Syntax Error" in response.json()["errors"][0]["message"]


def test_a_document_with_many_validation_errors_gets_a_short_answer(api):
    # 1,200 unused variables pass every size limit but fail validation once each: the answer lists
    # the first 20 and says how many more there were, instead of 180 KB of repeated messages.
    variables = " ".join(f"$v{i}: Int" for i in range(1200))
    response = api.post(f"query Q({variables}) {{ __typename }}")
    body = response.json()
    assert response.status_code == 400, body
    assert len(body["errors"]) == 21
    assert all("$v" in error["message"] for error in body["errors"][:20])
    assert body["errors"][-1] == {"message": "1180 more errors not listed.",
                                  "extensions": {"exception": {"code": "TooManyErrors"}}}
    assert len(response.content) < 10_000

"""Drafts a staff member can save but that must never take a process or the flow list down
(issue 11, items 3 and 11): markup nested deep enough to overflow the native MJML compiler's stack,
and thousands of chained steps. Each is refused with a clear error through the API, and a row that
is already stored (saved by an older version) only puts an error on its own flow in the list."""

import subprocess
import sys
import textwrap
from pathlib import Path

from saleor_flows.channels.templating import MAX_MJML_DEPTH
from saleor_flows.engine.definition import MAX_STEPS
from saleor_flows.models import Flow
from tests.flowkit import chain, email, mjml, nxt

FLOW_LIST = """{ flows(first: 20) { edges { node { slug status validationErrors { path message }
                                                  graph { nodes { id } edges { target } } } } } }"""
VALIDATE = """mutation($id: ID!) { flowValidate(id: $id) { valid errors { field code message } } }"""
PUBLISH = """mutation($id: ID!) { flowPublish(id: $id) { errors { field code message } version { number } } }"""
UPDATE = """mutation($id: ID!, $input: FlowUpdateInput!) { flowUpdate(id: $id, input: $input) {
              errors { field code message } flow { validationErrors { path message } } } }"""
CREATE = """mutation($input: FlowCreateInput!) { flowCreate(input: $input) {
              errors { field code message } flow { id slug } } }"""

# ~12,000 nested elements in 132 KB: mrml 0.2.4 overflows its stack from about 8,100 nested <div>.
NESTED = 12_000
CRASHING_BODY = "<div>" * NESTED + "Hello" + "</div>" * NESTED


def crashing_draft():
    return chain("customer_created", ("email_1", email("Hi", CRASHING_BODY)))


def test_the_crashing_markup_is_refused_in_a_separate_process_first():
    """The guard for the rest of this file: on code without the bound, this child process dies
    (SIGSEGV inside mrml) instead of answering; the tests below then run the same input in-process."""
    script = textwrap.dedent(f"""
        from saleor_flows.channels.templating import TemplateError, compile_email
        from tests.flowkit import email
        try:
            compile_email(email("Hi", "<div>" * {NESTED} + "Hello" + "</div>" * {NESTED}))
        except TemplateError as exc:
            print("refused:", exc)
        else:
            print("compiled")
    """)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                           cwd=Path(__file__).resolve().parents[2])
    assert child.returncode == 0, f"the compiler process died (exit {child.returncode}): {child.stderr[-500:]}"
    assert f"refused: mjml: elements nested more than {MAX_MJML_DEPTH} deep" in child.stdout


def test_deeply_nested_mjml_is_refused_through_the_api_and_the_list_still_answers(flows, api, tokens):
    token = tokens.staff("MANAGE_PLUGINS")
    created = api(CREATE, {"input": {"name": "Deep", "definition": crashing_draft()}}, token=token)["flowCreate"]
    assert created["errors"] == []
    flow_id = created["flow"]["id"]

    expected = {"field": "steps.email_1.mjml", "code": "INVALID_DEFINITION",
                "message": f"elements nested more than {MAX_MJML_DEPTH} deep (at a <div>); flatten the layout"}
    assert api(VALIDATE, {"id": flow_id}, token=token)["flowValidate"] == {"valid": False, "errors": [expected]}
    assert api(PUBLISH, {"id": flow_id}, token=token)["flowPublish"] == {"errors": [expected], "version": None}
    saved = api(UPDATE, {"id": flow_id, "input": {"definition": crashing_draft()}}, token=token)["flowUpdate"]
    assert saved["flow"]["validationErrors"] == [{"path": expected["field"], "message": expected["message"]}]

    # Fixed to a sane depth, the same flow publishes.
    fine = chain("customer_created", ("email_1", email("Hi", "<div>" * 20 + "Hello" + "</div>" * 20)))
    api(UPDATE, {"id": flow_id, "input": {"definition": fine}}, token=token)
    assert api(PUBLISH, {"id": flow_id}, token=token)["flowPublish"]["version"] == {"number": 1}


def test_a_stored_over_limit_draft_only_marks_its_own_flow_in_the_list(flows, api, tokens):
    token = tokens.staff("MANAGE_PLUGINS")
    flows.flow(chain("customer_created", ("email_1", email("Hi"))), slug="healthy")
    # Saved by an older version that did not bound the markup: straight into the table.
    Flow.objects.create(slug="legacy-deep", name="Legacy", definition=crashing_draft(),
                        trigger_event="customer_created", created_at=flows.now, updated_at=flows.now)
    nodes = {edge["node"]["slug"]: edge["node"] for edge in api(FLOW_LIST, token=token)["flows"]["edges"]}
    assert nodes["healthy"]["validationErrors"] == []
    assert nodes["legacy-deep"]["validationErrors"] == [{
        "path": "steps.email_1.mjml",
        "message": f"elements nested more than {MAX_MJML_DEPTH} deep (at a <div>); flatten the layout"}]


def test_a_layout_with_many_elements_compiles_within_the_bounds(flows, api, tokens):
    """The bound is on nesting: a long email of ordinary depth is fine."""
    token = tokens.staff("MANAGE_PLUGINS")
    rows = "".join(f"<p>Line {i} for <b>{{{{ contact.first_name }}}}</b></p>" for i in range(1000))
    created = api(CREATE, {"input": {"name": "Long", "definition": chain(
        "customer_created", ("email_1", {"type": "send_email", "subject": "Hi", "mjml": mjml(rows),
                                         "next": None}))}}, token=token)["flowCreate"]
    assert api(VALIDATE, {"id": created["flow"]["id"]}, token=token)["flowValidate"] == {"valid": True, "errors": []}


def long_chain(count):
    return chain("customer_created", *[(f"tag_{i}", nxt({"type": "add_tag", "tag": "t"})) for i in range(count)])


def test_thousands_of_chained_steps_get_a_clear_error_and_the_list_still_answers(flows, api, tokens):
    token = tokens.staff("MANAGE_PLUGINS")
    created = api(CREATE, {"input": {"name": "Long", "definition": long_chain(5_000)}}, token=token)["flowCreate"]
    expected = {"field": "steps", "code": "INVALID_DEFINITION",
                "message": f"at most {MAX_STEPS} steps (got 5000)"}
    assert api(VALIDATE, {"id": created["flow"]["id"]}, token=token)["flowValidate"] == {
        "valid": False, "errors": [expected]}
    assert api(PUBLISH, {"id": created["flow"]["id"]}, token=token)["flowPublish"] == {
        "errors": [expected], "version": None}
    flows.flow(long_chain(MAX_STEPS), slug="longest-allowed")  # the limit itself publishes
    nodes = {edge["node"]["slug"]: edge["node"] for edge in api(FLOW_LIST, token=token)["flows"]["edges"]}
    assert nodes["long"]["validationErrors"] == [{"path": "steps", "message": expected["message"]}]
    assert nodes["longest-allowed"]["validationErrors"] == []


def test_a_stored_draft_with_malformed_links_only_marks_its_own_flow(flows, api, tokens):
    token = tokens.staff("MANAGE_PLUGINS")
    broken = chain("customer_created", ("a", {"type": "add_tag", "tag": "t", "next": ["b"]}),
                   ("b", {"type": "split", "condition": {"has_tag": "t"}, "yes": {"id": 1}, "no": None}))
    Flow.objects.create(slug="malformed", name="Malformed", definition=broken, trigger_event="customer_created",
                        created_at=flows.now, updated_at=flows.now)
    nodes = {edge["node"]["slug"]: edge["node"] for edge in api(FLOW_LIST, token=token)["flows"]["edges"]}
    assert {"path": "steps.a", "message": "leads to unknown step ['b']"} in nodes["malformed"]["validationErrors"]
    assert [node["id"] for node in nodes["malformed"]["graph"]["nodes"]] == ["a", "b"]
    assert [edge["target"] for edge in nodes["malformed"]["graph"]["edges"]] == ["['b']", "{'id': 1}", None]


def test_the_channel_filter_reads_any_stored_trigger_filter(flows, api, tokens):
    token = tokens.staff("MANAGE_PLUGINS")
    odd = {"all": [{"field": "event.channel.slug", "op": "in", "value": [{"slug": "eu"}, "eu"]}]}
    Flow.objects.create(slug="odd-filter", name="Odd", trigger_event="customer_created", created_at=flows.now,
                        updated_at=flows.now, definition={"trigger": {"event": "customer_created", "filter": odd}})
    flows.flow(chain("customer_created", ("email_1", email("Hi"))), slug="everywhere")
    data = api("""{ flows(first: 20, filter: {channel: "eu"}) { edges { node { slug } } } }""", token=token)
    assert sorted(edge["node"]["slug"] for edge in data["flows"]["edges"]) == ["everywhere", "odd-filter"]

"""Flows as code and dry-run simulation through the API, with the same answers as the Python functions."""

from saleor_flows.flows_as_code import export_flows
from saleor_flows.models import Enrolment, Flow, FlowVersion, Message, Simulation
from tests.api.test_flows_api import _gid, welcome
from tests.flowkit import chain, email

EXPORT = """query($slugs: [String!], $format: FlowsFileFormat) { flowsExport(slugs: $slugs, format: $format) }"""
IMPORT = """mutation($text: String!, $publish: Boolean, $dryRun: Boolean) {
  flowsImport(text: $text, publish: $publish, dryRun: $dryRun) {
    errors { field code message } result { created updated unchanged published notes dryRun } } }"""


def test_export_then_import_into_an_empty_shop_gives_the_same_document(flows, api, tokens):
    token = tokens.staff("MANAGE_PLUGINS")
    flows.flow(welcome(), slug="welcome", name="Welcome")
    text = api(EXPORT, {"slugs": ["welcome"]}, token=token)["flowsExport"]
    assert text == export_flows(["welcome"]) and "format: saleor-flows/1" in text
    as_json = api(EXPORT, {"format": "JSON"}, token=token)["flowsExport"]
    assert as_json.lstrip().startswith("{")
    Flow.objects.update(live_version=None)  # an empty shop: drop the flow and its versions
    FlowVersion.objects.all().delete()
    Flow.objects.all().delete()
    dry = api(IMPORT, {"text": text, "dryRun": True}, token=token)["flowsImport"]
    assert dry["result"]["dryRun"] is True and dry["result"]["created"] == ["welcome"] and not Flow.objects.exists()
    done = api(IMPORT, {"text": text, "publish": True}, token=token)["flowsImport"]
    assert done["errors"] == [] and done["result"]["created"] == ["welcome"]
    assert done["result"]["published"] == ["welcome"]
    assert Flow.objects.get(slug="welcome").live_version is not None
    assert api(EXPORT, {"slugs": ["welcome"]}, token=token)["flowsExport"] == text


def test_a_bad_document_names_the_problem_and_changes_nothing(flows, api, tokens):
    flows.flow(welcome(), slug="welcome", name="Welcome")
    before = export_flows()
    broken = before.replace("type: send_email", "type: send_fax")
    data = api(IMPORT, {"text": broken}, token=tokens.staff("MANAGE_PLUGINS"))["flowsImport"]
    assert data["result"] is None
    assert data["errors"] and all(e["code"] == "INVALID_DEFINITION" and e["field"] == "text" for e in data["errors"])
    assert any("email_1" in e["message"] and "send_fax" in e["message"] for e in data["errors"])
    assert export_flows() == before


SIMULATE = """mutation($id: ID!, $days: Int!) { flowSimulate(id: $id, days: $days) {
  errors { field code message } simulation { id status progress result } } }"""


def test_a_simulation_reports_who_would_have_entered_and_sends_nothing(flows, api, tokens):
    token = tokens.staff("MANAGE_PLUGINS")
    for address in ("ann@example.com", "bob@example.com"):
        flows.contact(address, email_consent="subscribed")
        flows.event("signed_up", email=address)
    flows.contact("cat@example.com")  # no consent: would be skipped
    flows.event("signed_up", email="cat@example.com")
    flows.advance(days=1)
    draft = Flow.objects.create(name="Draft", slug="draft", definition=chain("signed_up", ("hello", email("Hi"))),
                                created_at=flows.now, updated_at=flows.now)
    data = api(SIMULATE, {"id": _gid("Flow", draft.pk), "days": 7}, token=token)["flowSimulate"]
    assert data["errors"] == []
    simulation = data["simulation"]
    assert simulation["status"] == "DONE" and simulation["progress"] == 1.0
    result = simulation["result"]
    assert result["entered"]["count"] == 3
    assert sum(result["messages_per_day"][day]["email"] for day in result["messages_per_day"]) == 2
    assert sum(result["skips"].values()) == 1
    assert not Enrolment.objects.exists() and not Message.objects.exists() and flows.outbox == []
    polled = api("""query($id: ID!) { flowSimulation(id: $id) { status result } }""", {"id": simulation["id"]},
                 token=token)["flowSimulation"]
    assert polled == {"status": "DONE", "result": result}


def test_a_simulation_of_a_broken_draft_or_a_bad_window_is_refused(flows, api, tokens):
    token = tokens.staff("MANAGE_PLUGINS")
    draft = Flow.objects.create(name="Draft", slug="draft", definition={"trigger": {"event": "x"}, "steps": {}},
                                created_at=flows.now, updated_at=flows.now)
    data = api(SIMULATE, {"id": _gid("Flow", draft.pk), "days": 7}, token=token)["flowSimulate"]
    assert data["simulation"] is None and data["errors"][0]["code"] == "INVALID_DEFINITION"
    good = flows.flow(welcome(), slug="welcome")
    data = api(SIMULATE, {"id": _gid("Flow", good.pk), "days": 0}, token=token)["flowSimulate"]
    assert data["errors"] == [{"field": "days", "code": "INVALID", "message": "days: a whole number from 1 to 366"}]
    assert not Simulation.objects.exists()


def test_an_alias_bomb_is_refused_with_a_reason(flows, api, tokens):
    from tests.test_flows_as_code import SMALL_YAML, alias_bomb

    token = tokens.staff("MANAGE_PLUGINS")
    data = api(IMPORT, {"text": alias_bomb()}, token=token)["flowsImport"]
    assert data["result"] is None and not Flow.objects.exists()
    (error,) = data["errors"]
    assert error["code"] == "INVALID_DEFINITION" and error["field"] == "text"
    assert "aliases (*name) are not allowed" in error["message"]
    assert api(IMPORT, {"text": SMALL_YAML}, token=token)["flowsImport"]["result"]["created"] == ["small"]

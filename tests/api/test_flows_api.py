"""Flows through the API: the draft → validate → publish → pause → resume → archive life cycle,
queries with versions, graph, validation errors and metrics, and migrating running journeys."""

from saleor_flows.models import Enrolment, Flow, FlowVersion, Message, StepExecution
from tests.flowkit import chain, email, nxt

ADMIN = ("MANAGE_PLUGINS", "MANAGE_USERS")

FLOW_FIELDS = """
  id name slug status triggerEvent kind definition hasUnpublishedChanges
  liveVersion { number }
  versions { number activeEnrolments }
  graph { nodes { id type isStart } edges { source target label } }
  validationErrors { path message }
  metrics { entered active completed exited converted messagesSent steps { id type states } }
"""


def welcome(subject="Welcome {{ contact.first_name }}"):
    return chain("customer_created", ("wait_1d", nxt({"type": "wait", "duration": {"days": 1}})),
                 ("email_1", email(subject)))


def create(api, token, name="Welcome", definition=None, slug=None):
    data = api("""mutation($input: FlowCreateInput!) { flowCreate(input: $input) {
                    errors { field code message } flow { id slug status } } }""",
               {"input": {"name": name, "slug": slug, "definition": definition}}, token=token)
    assert data["flowCreate"]["errors"] == []
    return data["flowCreate"]["flow"]


PUBLISH = """mutation($id: ID!) { flowPublish(id: $id) { errors { field code message }
             flow { status liveVersion { number } } version { number definition } } }"""


def test_flow_life_cycle(flows, api, tokens):
    token = tokens.staff("MANAGE_PLUGINS")
    flow = create(api, token, "Welcome series", {"trigger": {"event": "customer_created"}})
    assert flow["status"] == "DRAFT" and flow["slug"] == "welcome-series"
    row = Flow.objects.get(slug="welcome-series")
    assert row.definition == {"trigger": {"event": "customer_created"}}

    # An incomplete draft: validate names every problem by its path, and publish refuses.
    data = api("""mutation($id: ID!) { flowValidate(id: $id) { valid errors { field code message } } }""",
               {"id": flow["id"]}, token=token)
    assert data["flowValidate"]["valid"] is False
    assert {"field": "steps", "code": "INVALID_DEFINITION", "message": "at least one step"} in \
        data["flowValidate"]["errors"]
    data = api(PUBLISH, {"id": flow["id"]}, token=token)
    assert data["flowPublish"]["flow"] is None and data["flowPublish"]["errors"][0]["code"] == "INVALID_DEFINITION"
    assert not FlowVersion.objects.filter(flow=row).exists()
    assert Flow.objects.get(pk=row.pk).status == "draft"

    data = api("""mutation($id: ID!, $input: FlowUpdateInput!) { flowUpdate(id: $id, input: $input) {
                    errors { field code message } flow { name definition validationErrors { path } } } }""",
               {"id": flow["id"], "input": {"name": "Welcome", "definition": welcome()}}, token=token)
    assert data["flowUpdate"]["errors"] == [] and data["flowUpdate"]["flow"]["validationErrors"] == []
    assert Flow.objects.get(pk=row.pk).name == "Welcome"
    data = api("""mutation($id: ID!) { flowValidate(id: $id) { valid errors { field } } }""", {"id": flow["id"]},
               token=token)
    assert data["flowValidate"] == {"valid": True, "errors": []}

    data = api(PUBLISH, {"id": flow["id"]}, token=token)
    assert data["flowPublish"]["errors"] == []
    assert data["flowPublish"]["flow"] == {"status": "LIVE", "liveVersion": {"number": 1}}
    assert data["flowPublish"]["version"]["definition"]["steps"]["email_1"]["compiled"]["default"]["html"]
    row.refresh_from_db()
    assert row.status == "live" and row.live_version.number == 1

    # Live: contacts enter.
    flows.event("customer_created", email="ann@example.com", payload={"first_name": "Ann"})
    assert Enrolment.objects.filter(flow=row, status="active").count() == 1

    for mutation, status in (("flowPause", "paused"), ("flowResume", "live"), ("flowPause", "paused"),
                             ("flowArchive", "archived")):
        data = api(f"""mutation($id: ID!) {{ {mutation}(id: $id) {{ errors {{ code }} flow {{ status }} }} }}""",
                   {"id": flow["id"]}, token=token)
        assert data[mutation] == {"errors": [], "flow": {"status": status.upper()}}
        assert Flow.objects.get(pk=row.pk).status == status
    # Resuming an archived flow is refused with a reason, and nothing changes.
    data = api("""mutation($id: ID!) { flowResume(id: $id) { errors { field code message } flow { status } } }""",
               {"id": flow["id"]}, token=token)
    assert data["flowResume"]["errors"][0]["code"] == "INVALID_STATUS"
    assert Flow.objects.get(pk=row.pk).status == "archived"


def test_flow_query_shows_versions_graph_errors_and_metrics(flows, api, tokens):
    flow = flows.flow(welcome(), slug="welcome", name="Welcome")
    flows.contact("ann@example.com", email_consent="subscribed", first_name="Ann")
    flows.event("customer_created", email="ann@example.com")
    flows.advance(days=1, minutes=1)
    assert len(flows.emails_to("ann@example.com")) == 1
    broken = welcome()
    broken["steps"]["email_1"]["next"] = "nowhere"
    flows.republish(flow, welcome("Hello again"))
    Flow.objects.filter(pk=flow.pk).update(definition=broken)

    data = api("""query($slug: String) { flow(slug: $slug) { %s } }""" % FLOW_FIELDS, {"slug": "welcome"},
               token=tokens.staff("MANAGE_PLUGINS"))
    got = data["flow"]
    assert got["status"] == "LIVE" and got["liveVersion"] == {"number": 2}
    assert got["versions"] == [{"number": 2, "activeEnrolments": 0}, {"number": 1, "activeEnrolments": 0}]
    assert got["graph"]["nodes"][0] == {"id": "wait_1d", "type": "wait", "isStart": True}
    assert {"source": "wait_1d", "target": "email_1", "label": "next"} in got["graph"]["edges"]
    assert got["validationErrors"] == [{"path": "steps.email_1", "message": "leads to unknown step 'nowhere'"}]
    assert got["hasUnpublishedChanges"] is True
    metrics = got["metrics"]
    assert (metrics["entered"], metrics["completed"], metrics["messagesSent"]) == (1, 1, 1)
    assert [s["id"] for s in metrics["steps"]] == ["wait_1d", "email_1"]
    assert metrics["steps"][1]["states"] == {"sent": 1}


def test_flows_filter_and_paginate(flows, api, tokens):
    token = tokens.staff("MANAGE_PLUGINS")
    flows.flow(welcome(), slug="welcome")
    eu = chain("order_created", ("email_1", email("Thanks")),
               trigger={"event": "order_created",
                        "filter": {"field": "event.channel.slug", "op": "in", "value": ["eu", "uk"]}})
    flows.flow(eu, slug="thanks-eu")
    flows.flow(chain("order_created", ("email_1", email("Thanks"))), slug="thanks-all")
    Flow.objects.create(slug="draft", name="Draft", definition={}, created_at=flows.now, updated_at=flows.now)

    def slugs(filter_, first=10):
        data = api("""query($f: FlowFilterInput, $first: Int) { flows(first: $first, filter: $f) {
                        totalCount edges { node { slug } } } }""", {"f": filter_, "first": first}, token=token)
        return [e["node"]["slug"] for e in data["flows"]["edges"]], data["flows"]["totalCount"]

    assert slugs({"status": ["DRAFT"]}) == (["draft"], 1)
    assert slugs({"trigger": "order_created"}) == (["thanks-all", "thanks-eu"], 2)
    assert slugs({"channel": "us"}) == (["draft", "thanks-all", "welcome"], 3)
    assert slugs({"channel": "eu", "trigger": "order_created"}) == (["thanks-all", "thanks-eu"], 2)

    seen, after = [], None
    while True:
        data = api("""query($after: String) { flows(first: 3, after: $after) {
                        edges { node { slug } cursor } pageInfo { hasNextPage endCursor } } }""",
                   {"after": after}, token=token)
        seen += [e["node"]["slug"] for e in data["flows"]["edges"]]
        if not data["flows"]["pageInfo"]["hasNextPage"]:
            break
        after = data["flows"]["pageInfo"]["endCursor"]
    assert seen == ["draft", "thanks-all", "thanks-eu", "welcome"]
    response = api.post("{ flows { edges { node { slug } } } }", token=token)
    assert "first" in response.json()["errors"][0]["message"]


MIGRATE = """mutation($id: ID!, $strategy: FlowMigrationStrategyEnum!) {
  flowEnrolmentsMigrate(id: $id, strategy: $strategy) { errors { field code message }
    result { strategy toVersion considered moved exited unchanged busy missingSteps } } }"""


def _two_versions(flows, second):
    flow = flows.flow(welcome("Version one"), slug="welcome")
    for address in ("a@example.com", "b@example.com"):
        flows.contact(address, email_consent="subscribed")
        flows.event("customer_created", email=address)
    flows.republish(flow, second)
    return flow


def test_migrate_moves_journeys_at_their_next_step(flows, api, tokens):
    flow = _two_versions(flows, welcome("Version two"))
    data = api(MIGRATE, {"id": _gid("Flow", flow.pk), "strategy": "MOVE_AT_NEXT_STEP"},
               token=tokens.staff("MANAGE_PLUGINS"))
    result = data["flowEnrolmentsMigrate"]["result"]
    assert (result["considered"], result["moved"], result["exited"], result["toVersion"]) == (2, 2, 0, 2)
    assert set(Enrolment.objects.values_list("version__number", flat=True)) == {2}
    # The wait already counting down is kept, and the message is the new version's.
    flows.advance(days=1, minutes=1)
    assert [m.subject for m in flows.emails_to("a@example.com")] == ["Version two"]
    assert "migrated" in flows.trail_kinds("a@example.com")


def test_migrate_ends_journeys_whose_step_is_gone(flows, api, tokens):
    renamed = chain("customer_created", ("wait_2d", nxt({"type": "wait", "duration": {"days": 2}})),
                    ("email_1", email("Version two")))
    flow = _two_versions(flows, renamed)
    data = api(MIGRATE, {"id": _gid("Flow", flow.pk), "strategy": "MOVE_AT_NEXT_STEP"},
               token=tokens.staff("MANAGE_PLUGINS"))
    result = data["flowEnrolmentsMigrate"]["result"]
    assert (result["moved"], result["exited"], result["missingSteps"]) == (0, 2, {"wait_1d": 2})
    assert set(Enrolment.objects.values_list("status", "exit_reason")) == {("exited", "migration_step_missing")}
    assert not StepExecution.objects.filter(state="pending").exists()
    flows.advance(days=3)
    assert flows.outbox == []


def test_migrate_exit_and_finish_on_old(flows, api, tokens):
    flow = _two_versions(flows, welcome("Version two"))
    token = tokens.staff("MANAGE_PLUGINS")
    data = api(MIGRATE, {"id": _gid("Flow", flow.pk), "strategy": "FINISH_ON_OLD"}, token=token)
    assert data["flowEnrolmentsMigrate"]["result"]["unchanged"] == 2
    assert set(Enrolment.objects.values_list("version__number", "status")) == {(1, "active")}
    data = api(MIGRATE, {"id": _gid("Flow", flow.pk), "strategy": "EXIT"}, token=token)
    assert data["flowEnrolmentsMigrate"]["result"]["exited"] == 2
    assert set(Enrolment.objects.values_list("status", "exit_reason")) == {("exited", "migrated_exit")}


def test_migrate_leaves_a_journey_that_is_running_a_step(flows, api, tokens):
    flow = _two_versions(flows, welcome("Version two"))
    busy = Enrolment.objects.get(contact__email="a@example.com")
    StepExecution.objects.filter(enrolment=busy).update(state="claimed", claimed_at=flows.now)
    data = api(MIGRATE, {"id": _gid("Flow", flow.pk), "strategy": "MOVE_AT_NEXT_STEP"},
               token=tokens.staff("MANAGE_PLUGINS"))
    result = data["flowEnrolmentsMigrate"]["result"]
    assert (result["moved"], result["busy"]) == (1, 1)
    busy.refresh_from_db()
    assert busy.version.number == 1


def test_test_send_goes_out_and_stays_out_of_reports(flows, api, tokens):
    flow = flows.flow(welcome(), slug="welcome")
    data = api("""mutation($input: FlowTestSendInput!) { flowTestSend(input: $input) {
                    errors { field code message } message { isTest status to subject contact { id } } } }""",
               {"input": {"flowId": _gid("Flow", flow.pk), "stepId": "email_1", "to": "me@shop.example.com",
                          "sampleData": {"contact": {"first_name": "Sam"}}}},
               token=tokens.staff("MANAGE_PLUGINS"))
    assert data["flowTestSend"] == {"errors": [], "message": {
        "isTest": True, "status": "SENT", "to": "me@shop.example.com", "subject": "Welcome Sam", "contact": None}}
    assert [m.subject for m in flows.emails_to("me@shop.example.com")] == ["Welcome Sam"]
    assert Message.objects.get().is_test
    summary = api("""query($id: ID) { flow(id: $id) { metrics { messagesSent messages } } }""",
                  {"id": _gid("Flow", flow.pk)}, token=tokens.staff("MANAGE_PLUGINS"))
    assert summary["flow"]["metrics"] == {"messagesSent": 0, "messages": {}}

    bad = api("""mutation($input: FlowTestSendInput!) { flowTestSend(input: $input) {
                   errors { field code message } message { id } } }""",
              {"input": {"flowId": _gid("Flow", flow.pk), "stepId": "email_1", "to": "not an address"}},
              token=tokens.staff("MANAGE_PLUGINS"))
    assert bad["flowTestSend"]["errors"][0]["field"] == "to" and bad["flowTestSend"]["message"] is None
    assert Message.objects.count() == 1


def test_preview_renders_for_a_contact_or_sample_data_and_sends_nothing(flows, api, tokens):
    flow = flows.flow(welcome(), slug="welcome")
    contact = flows.contact("ann@example.com", first_name="Ann", locale="en")
    query = """query($flow: ID!, $contact: ID, $sample: SampleDataInput) {
      messagePreview(flowId: $flow, stepId: "email_1", contactId: $contact, sampleData: $sample) {
        errors { field code message } preview { channel kind to subject html text } } }"""
    data = api(query, {"flow": _gid("Flow", flow.pk), "contact": _gid("Contact", contact.pk)},
               token=tokens.staff(*ADMIN))
    preview = data["messagePreview"]["preview"]
    assert (preview["to"], preview["subject"], preview["kind"]) == ("ann@example.com", "Welcome Ann", "marketing")
    assert "Hello Ann" in preview["html"] and "Hello Ann" in preview["text"]
    data = api(query, {"flow": _gid("Flow", flow.pk), "sample": {"contact": {"first_name": "Zoe"}}},
               token=tokens.staff("MANAGE_PLUGINS"))
    assert data["messagePreview"]["preview"]["subject"] == "Welcome Zoe"
    assert flows.outbox == [] and not Message.objects.exists()
    # A draft with a template error: the error names the step, nothing crashes.
    Flow.objects.filter(pk=flow.pk).update(definition=welcome("Hi {{ contact.nickname }}"))
    data = api(query, {"flow": _gid("Flow", flow.pk)}, token=tokens.staff("MANAGE_PLUGINS"))
    assert data["messagePreview"]["preview"] is None
    assert "steps.email_1.subject" in data["messagePreview"]["errors"][0]["message"]


def _gid(kind, pk):
    from saleor_flows.api.core import to_global_id

    return to_global_id(kind, pk)


def test_unknown_and_wrong_ids_are_clear_errors(flows, api, tokens):
    token = tokens.staff("MANAGE_PLUGINS")
    data = api("""mutation { flowPublish(id: "Rmxvdzo5OTk5") { errors { field code message } } }""", token=token)
    assert data["flowPublish"]["errors"] == [{"field": "id", "code": "NOT_FOUND", "message": "Flow not found."}]
    data = api("""mutation($id: ID!) { flowPublish(id: $id) { errors { field code } } }""",
               {"id": _gid("Contact", 1)}, token=token)
    assert data["flowPublish"]["errors"] == [{"field": "id", "code": "INVALID"}]
    assert api("""{ flow(id: "Rmxvdzo5OTk5") { id } }""", token=token) == {"flow": None}



def test_a_half_written_draft_still_answers(flows, api, tokens):
    token = tokens.staff("MANAGE_PLUGINS")
    draft = {"trigger": {"event": "customer_created"}, "start": "a",
             "steps": {"a": {"type": "wait", "next": "b"}, "b": "not a step", "c": {"type": "split", "yes": 3}}}
    flow = create(api, token, "Half", draft)
    data = api("""query($id: ID) { flow(id: $id) { graph { nodes { id } edges { source target } }
                   validationErrors { path message } hasUnpublishedChanges } }""", {"id": flow["id"]}, token=token)
    got = data["flow"]
    assert [n["id"] for n in got["graph"]["nodes"]] == ["a", "c"]
    paths = {e["path"] for e in got["validationErrors"]}
    assert {"steps.a.duration", "steps.b"} <= paths
    assert got["hasUnpublishedChanges"] is True


def test_an_sms_preview_shows_its_encoding_and_parts(flows, api, tokens):
    body = "Hi {{ contact.first_name }}, your cart misses you – come back today for 10 % off everything in it!"
    flow = flows.flow(chain("go", ("text", {"type": "send_sms", "body": body, "next": None})), slug="texts")
    query = """query($flow: ID!, $sample: SampleDataInput) { messagePreview(flowId: $flow, stepId: "text",
      sampleData: $sample) { errors { message } preview { channel text sms { encoding segments characters
      perSegment ucs2Characters } } } }"""
    data = api(query, {"flow": _gid("Flow", flow.pk), "sample": {"contact": {"first_name": "Zoe"}}},
               token=tokens.staff("MANAGE_PLUGINS"))
    preview = data["messagePreview"]["preview"]
    assert preview["channel"] == "sms" and preview["text"].startswith("Hi Zoe,") and len(preview["text"]) > 70
    # The en dash is not in GSM-7: the whole text falls back to UCS-2, so 77 characters need two parts of 67.
    assert preview["sms"] == {"encoding": "UCS-2", "segments": 2, "characters": len(preview["text"]),
                              "perSegment": 67, "ucs2Characters": ["–"]}

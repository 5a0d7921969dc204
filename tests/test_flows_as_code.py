"""Flows as code: export → import → export is the identity, and a bad file changes nothing."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from saleor_flows.engine.definition import create_flow, publish_flow, set_status
from saleor_flows.flows_as_code import FlowsFileError, export_flows, import_flows, validate_flows
from saleor_flows.journeys import JOURNEYS, load_journey
from saleor_flows.models import Flow, FlowVersion

from .flowkit import chain, email, nxt

pytestmark = pytest.mark.django_db

# The known answer: a small flow written out by hand in the exported layout.
SMALL = chain("customer_created", ("hello", nxt(email("Hi", "Hello {{ contact.first_name }}"))),
              ("wait_1d", nxt({"type": "wait", "duration": {"days": 1}})),
              ("check", {"type": "split", "condition": {"value": 1, "op": "gte", "field": "contact.order_count"},
                         "yes": None, "no": "bye"}),
              ("bye", email("Bye")), reentry={"mode": "once"})
SMALL_YAML = """\
format: saleor-flows/1
flows:
  - slug: small
    name: Small one
    definition:
      trigger:
        event: customer_created
      reentry:
        mode: once
      start: hello
      steps:
        hello:
          type: send_email
          mjml: <mjml><mj-body><mj-section><mj-column><mj-text>Hello {{ contact.first_name }}</mj-text></mj-column></mj-section></mj-body></mjml>
          subject: Hi
          next: wait_1d
        wait_1d:
          type: wait
          duration:
            days: 1
          next: check
        check:
          type: split
          condition:
            field: contact.order_count
            op: gte
            value: 1
          'yes': null
          'no': bye
        bye:
          type: send_email
          mjml: <mjml><mj-body><mj-section><mj-column><mj-text>Hello {{ contact.first_name }}</mj-text></mj-column></mj-section></mj-body></mjml>
          subject: Bye
          next: null
"""


def _journey_flows(publish_some=True):
    for index, slug in enumerate(JOURNEYS):
        flow = create_flow(slug, load_journey(slug))
        if publish_some and index % 2 == 0:
            publish_flow(flow)


def _wipe():
    Flow.objects.update(live_version=None)
    FlowVersion.objects.all().delete()
    Flow.objects.all().delete()


def test_export_of_a_small_flow_is_the_known_text():
    # Steps in the JSON come in a different order than the graph; keys inside conditions too.
    definition = dict(SMALL, steps=dict(reversed(list(SMALL["steps"].items()))))
    create_flow("small", definition, name="Small one")
    assert export_flows() == SMALL_YAML


def test_json_export_has_the_same_content_as_yaml():
    create_flow("small", SMALL, name="Small one")
    import yaml

    assert json.loads(export_flows(fmt="json")) == yaml.safe_load(export_flows())


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_journeys_round_trip_through_an_empty_database(fmt):
    _journey_flows()
    first = export_flows(fmt=fmt)
    _wipe()
    result = import_flows(first)
    assert sorted(result.created) == sorted(JOURNEYS) and not result.updated
    assert export_flows(fmt=fmt) == first
    # ... and the imported drafts are the journeys as shipped (MJML source, no compiled HTML).
    for slug in JOURNEYS:
        assert Flow.objects.get(slug=slug).definition == load_journey(slug)
    assert "compiled" not in first and "<mjml" in first


def test_statuses_round_trip_with_publish():
    _journey_flows()
    set_status(Flow.objects.get(slug="welcome"), Flow.Status.PAUSED)
    first = export_flows(with_status=True)
    assert "status: paused" in first and "status: draft" in first and "status: live" in first
    _wipe()
    assert import_flows(first).published == [] and export_flows(with_status=True) != first  # drafts only
    result = import_flows(first, publish=True)
    assert "welcome: status live -> paused" in result.notes
    assert export_flows(with_status=True) == first


def test_templates_are_literal_blocks_in_yaml():
    _journey_flows(publish_some=False)
    text = export_flows(["welcome"])
    assert "mjml: |" in text
    assert "\n              <mj-section" in text or "\n                <mj-section" in text


def test_published_version_fields_never_leak_into_export():
    flow = create_flow("small", SMALL, name="Small one")
    publish_flow(flow)
    assert export_flows() == SMALL_YAML


def test_importing_the_same_file_again_changes_nothing():
    import_flows(SMALL_YAML)
    result = import_flows(SMALL_YAML)
    assert (result.created, result.updated, result.unchanged) == ([], [], ["small"])


def test_import_into_a_live_flow_changes_only_its_draft():
    flow = create_flow("small", SMALL, name="Small one")
    version = publish_flow(flow)
    edited = SMALL_YAML.replace("subject: Bye", "subject: Goodbye")
    result = import_flows(edited)
    assert result.updated == ["small"] and not result.published
    assert result.notes == ["small: draft changed, publish to apply (live version 1 keeps running)"]
    flow.refresh_from_db()
    assert flow.live_version_id == version.pk
    assert flow.versions.count() == 1
    assert version.definition["steps"]["bye"]["subject"] == "Bye"
    assert flow.definition["steps"]["bye"]["subject"] == "Goodbye"

    published = import_flows(edited, publish=True)
    assert published.unchanged == ["small"] and published.published == ["small"]
    flow.refresh_from_db()
    assert flow.live_version.number == 2 and flow.live_version.definition["steps"]["bye"]["subject"] == "Goodbye"
    # Publishing again with nothing new makes no new version.
    assert import_flows(edited, publish=True).published == []
    assert flow.versions.count() == 2


def test_dry_run_reports_and_writes_nothing():
    result = import_flows(SMALL_YAML, dry_run=True, publish=True)
    assert result.created == ["small"] and result.published == ["small"] and result.dry_run
    assert not Flow.objects.exists() and not FlowVersion.objects.exists()


def test_a_bad_file_changes_nothing_and_names_the_problem():
    create_flow("small", SMALL, name="Small one")
    before = export_flows()
    good = SMALL_YAML.replace("slug: small", "slug: other")
    bad = SMALL_YAML.replace("next: check", "next: chek").replace("field: contact.order_count",
                                                                   "field: contact.order_cnt")
    document = good + bad.split("flows:\n", 1)[1]  # two flows: a good new one and a broken update
    with pytest.raises(FlowsFileError) as caught:
        import_flows(document, source="flows.yaml")
    assert caught.value.errors == [
        "flows.yaml: flows[1] (small): steps.wait_1d: leads to unknown step 'chek'",
        "flows.yaml: flows[1] (small): steps.check.condition.field: unknown contact field 'contact.order_cnt'",
        "flows.yaml: flows[1] (small): steps.check: unreachable from the start step 'hello'",
        "flows.yaml: flows[1] (small): steps.bye: unreachable from the start step 'hello'",
    ]
    assert list(Flow.objects.values_list("slug", flat=True)) == ["small"]  # the good one was not created either
    assert export_flows() == before


@pytest.mark.parametrize("text, message", [
    ("format: saleor-flows/1\nflows: [\n", "<text>: not valid YAML"),
    ('{"format": "saleor-flows/1", "flows": [}', "<text>: not valid JSON: line 1 column 40"),
    ("format: other/2\nflows: []\n", "format: expected 'saleor-flows/1', got 'other/2'"),
    ("format: saleor-flows/1\nflows:\n  - slug: 'no spaces'\n    definition: {}\n", "flows[0] (no spaces).slug"),
    ("format: saleor-flows/1\nflows:\n  - slug: a\n    definition: {}\n  - slug: a\n    definition: {}\n",
     "flows[1] (a).slug: 'a' appears twice"),
])
def test_malformed_documents_are_refused_with_a_reason(text, message):
    with pytest.raises(FlowsFileError) as caught:
        validate_flows(text)
    assert any(message in error for error in caught.value.errors), caught.value.errors


# --- the management command ---------------------------------------------------------------

def test_command_export_import_validate(tmp_path):
    _journey_flows()
    out = StringIO()
    call_command("flows", "export", "-o", str(tmp_path / "all.yaml"), stdout=out)
    text = (tmp_path / "all.yaml").read_text()
    (tmp_path / "each").mkdir()
    call_command("flows", "export", "--format", "json", "-o", str(tmp_path / "each"), stdout=out)
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == sorted(f"{slug}.json" for slug in JOURNEYS)

    out = StringIO()
    call_command("flows", "validate", str(tmp_path / "all.yaml"), stdout=out)
    assert out.getvalue().strip() == f"ok: {len(JOURNEYS)} flows"

    _wipe()
    out = StringIO()
    call_command("flows", "import", str(tmp_path / "each"), "--dry-run", stdout=out)  # a directory of JSON files
    assert out.getvalue().startswith(f"dry run: would have {len(JOURNEYS)} created") and not Flow.objects.exists()
    call_command("flows", "import", str(tmp_path / "all.yaml"), "--publish", stdout=out)
    assert Flow.objects.filter(status=Flow.Status.LIVE).count() == len(JOURNEYS)
    out = StringIO()
    call_command("flows", "export", "--slug", "welcome", stdout=out)
    assert out.getvalue() == export_flows(["welcome"])
    assert out.getvalue() in text.replace(text.split("  - slug: welcome")[0], "format: saleor-flows/1\nflows:\n")


def test_command_validate_fails_with_messages(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(SMALL_YAML.replace("type: wait\n", "type: wiat\n"))
    with pytest.raises(CommandError) as caught:
        call_command("flows", "validate", str(path))
    assert f"{path}: flows[0] (small): steps.wait_1d.type: unknown step type 'wiat'" in str(caught.value)
    with pytest.raises(CommandError):
        call_command("flows", "import", str(path))
    assert not Flow.objects.exists()


# --- hostile documents (issue 11, item 9) -------------------------------------------------------

def alias_bomb(levels: int = 8) -> str:
    """A valid small flow whose description is a "billion laughs": 9 ** levels strings from ~600 bytes."""
    lines = ["format: saleor-flows/1", "flows:", "  - slug: bomb", "    definition:",
             "      trigger: {event: customer_created}", "      start: w",
             "      steps: {w: {type: wait, duration: {days: 1}, next: null}}",
             '      description: &x0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"      x{i}: &x{i} [" + ",".join([f"*x{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_yaml_aliases_are_refused_before_the_document_is_built():
    bomb = alias_bomb()
    assert len(bomb) < 700
    with pytest.raises(FlowsFileError) as caught:
        import_flows(bomb, source="bomb.yaml")
    (message,) = caught.value.errors
    assert message.startswith("bomb.yaml: not valid YAML: aliases (*name) are not allowed") and "line 9" in message
    assert not Flow.objects.exists()
    merge_key = SMALL_YAML.replace("  - slug: small\n", "  - slug: small\n    extra: &d {a: 1}\n    more: {<<: *d}\n")
    with pytest.raises(FlowsFileError, match="aliases"):
        validate_flows(merge_key)


@pytest.mark.parametrize("text", ["flows: " + "[" * 10_000 + "]" * 10_000,
                                  '{"flows": ' + "[" * 100_000 + "]" * 100_000 + "}",
                                  '{"flows": ' + "[" * 60 + "]" * 60 + "}"])
def test_deeply_nested_documents_are_refused_with_a_reason(text):
    with pytest.raises(FlowsFileError) as caught:
        validate_flows(text, source="deep.yaml")
    assert caught.value.errors == ["deep.yaml: nested deeper than 50 levels"]


def test_exports_never_write_aliases():
    from saleor_flows.flows_as_code import dump

    shared = {"days": 1}
    text = dump({"format": "saleor-flows/1", "a": shared, "b": shared})
    assert "&" not in text and "*" not in text and text.count("days: 1") == 2


def test_command_refuses_an_alias_bomb(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    for action in ("validate", "import"):
        with pytest.raises(CommandError, match=r"bomb\.yaml: not valid YAML: aliases \(\*name\) are not allowed"):
            call_command("flows", action, str(path))
    assert not Flow.objects.exists()

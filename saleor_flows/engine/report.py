"""What a flow did, in numbers: the read model behind the demo's summary and the flow report API.

Everything is counted in the database with a handful of GROUP BY queries
(their cost grows with the number of distinct steps, states and reasons, not
with the number of contacts), so the report stays cheap on a flow that has
run for a year. Steps come in graph order (breadth-first from the start step)
so the table reads like the journey; steps that only older versions had are
listed after them, so no execution goes uncounted.
"""

from collections import deque

from django.db.models import Count
from django.db.models.fields.json import KT

from ..models import Enrolment, Flow, Message, StepExecution
from .definition import WAIT_TYPES, successors

SEND_STEPS = {"send_email", "send_sms", "notify_staff"}
WAIT_STEPS = WAIT_TYPES
SPLIT_STEPS = {"split", "branch", "random_split"}


def graph_order(definition: dict) -> list[str]:
    """Step ids breadth-first from ``start``: the order a merchant reads the journey in."""
    steps = definition.get("steps") or {}
    start = definition.get("start")
    if start not in steps:
        return list(steps)
    order, seen, queue = [], {start}, deque([start])
    while queue:
        step_id = queue.popleft()
        order.append(step_id)
        for target in successors(steps[step_id]):
            if isinstance(target, str) and target in steps and target not in seen:  # a draft may hold anything
                seen.add(target)
                queue.append(target)
    return order + [step_id for step_id in steps if step_id not in seen]


def _add(counter: dict, key, n: int):
    counter[key] = counter.get(key, 0) + n


def flow_summary(flow: Flow) -> dict:
    """Counts of enrolments, step executions and messages for one flow (all versions).

    Shape::

        {"flow": {"id", "slug", "name", "status"},
         "entered": 120, "contacts": 118,
         "enrolments": {"active", "completed", "exited", "converted"},
         "exit_reasons": {"exit_criteria": 3, ...},        # status "exited" only
         "converted": 15,
         "messages": {"sent": 210, "failed": 0, ...},
         "steps": [{"id", "type", "states": {"sent": 80, "skipped": 20, ...},
                    "skip_reasons": {"no email marketing consent (never; policy opt_in)": 20, ...},
                    "branches": {"yes": 10, "no": 5}, "variants": {"A": 7, ...},
                    "messages": {"sent": 80, ...}}, ...]}

    ``states`` counts executions by state (``done`` on a wait means it passed);
    ``skip_reasons`` groups skipped executions by ``result["reason"]`` (a send
    blocked for consent, or any step left behind when the journey ended:
    ``goal_reached``, ``exit_criteria``…); ``branches`` counts ``result["branch"]``
    (split ``yes``/``no``, branch index or ``else``, wait_event ``event``/``timeout``).
    """
    definition = (flow.live_version.definition if flow.live_version_id else flow.definition) or {}
    step_defs = definition.get("steps") or {}

    enrolments = {status: 0 for status in Enrolment.Status.values}
    exit_reasons: dict = {}
    for row in (Enrolment.objects.filter(flow=flow).order_by()
                .values("status", "exit_reason").annotate(n=Count("id"))):
        _add(enrolments, row["status"], row["n"])
        if row["status"] == Enrolment.Status.EXITED:
            _add(exit_reasons, row["exit_reason"] or "unknown", row["n"])
    contacts = Enrolment.objects.filter(flow=flow).values("contact_id").distinct().count()

    per_step: dict[str, dict] = {}

    def step_row(step_id):
        if step_id not in per_step:
            per_step[step_id] = {
                "id": step_id, "type": (step_defs.get(step_id) or {}).get("type", "unknown"),
                "states": {}, "skip_reasons": {}, "branches": {}, "variants": {}, "messages": {},
            }
        return per_step[step_id]

    # One GROUP BY over executions: state plus the three result keys the report cares about.
    executions = (StepExecution.objects.filter(enrolment__flow=flow).order_by()
                  .values("step_id", "state", reason=KT("result__reason"), branch=KT("result__branch"),
                          variant=KT("result__variant"))
                  .annotate(n=Count("id")))
    for row in executions:
        data = step_row(row["step_id"])
        _add(data["states"], row["state"], row["n"])
        if row["state"] == StepExecution.State.SKIPPED:
            _add(data["skip_reasons"], str(row["reason"] or "unknown"), row["n"])
        if row["branch"] is not None:
            _add(data["branches"], str(row["branch"]), row["n"])
        if row["variant"] is not None:
            _add(data["variants"], str(row["variant"]), row["n"])

    messages: dict = {}
    for row in (Message.objects.filter(flow=flow, is_test=False).order_by()  # test sends never count
                .values("step_id", "status").annotate(n=Count("id"))):
        _add(messages, row["status"], row["n"])
        _add(step_row(row["step_id"])["messages"], row["status"], row["n"])

    order = graph_order(definition)
    order += sorted(step_id for step_id in per_step if step_id not in step_defs)
    return {
        "flow": {"id": flow.pk, "slug": flow.slug, "name": flow.name, "status": flow.status},
        "entered": sum(enrolments.values()),
        "contacts": contacts,
        "enrolments": enrolments,
        "exit_reasons": exit_reasons,
        "converted": enrolments[Enrolment.Status.CONVERTED],
        "messages": messages,
        "steps": [step_row(step_id) for step_id in order],
    }


# --- text ---------------------------------------------------------------------

def _counts(counter: dict) -> str:
    return ", ".join(f"{key} {n}" for key, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def _left(step: dict) -> str:
    """Executions skipped because the journey ended while the contact was at this step."""
    skipped = step["states"].get("skipped", 0)
    return f"left {skipped} ({_counts(step['skip_reasons'])})" if skipped else ""


def _describe_step(step: dict) -> str:
    states, kind = step["states"], step["type"]
    pending = states.get("pending", 0) + states.get("claimed", 0) + states.get("sending", 0)
    parts = []
    if kind in SEND_STEPS:
        parts.append(f"sent {states.get('sent', 0)}")
        if states.get("skipped"):
            parts.append(f"skipped {states['skipped']} ({_counts(step['skip_reasons'])})")
        for state in ("failed", "ambiguous"):
            if states.get(state):
                parts.append(f"{state} {states[state]}")
    elif kind in WAIT_STEPS:
        if kind == "wait_event":
            parts.append(f"event {step['branches'].get('event', 0)}, timeout {step['branches'].get('timeout', 0)}")
        else:
            parts.append(f"passed {states.get('done', 0)}")
        parts.append(_left(step))
    elif kind in SPLIT_STEPS:
        parts.append(_counts(step["variants"] if kind == "random_split" else step["branches"]) or "none yet")
        parts.append(_left(step))
    else:
        parts.append(f"done {states.get('done', 0)}")
        for state in ("failed", "ambiguous"):
            if states.get(state):
                parts.append(f"{state} {states[state]}")
        parts.append(_left(step))
    if pending:
        parts.append(f"in progress {pending}")
    return " · ".join(part for part in parts if part)


def format_summary(summary: dict) -> str:
    """A plain-text table of one flow summary (what the demo prints)."""
    enrolments = summary["enrolments"]
    flow = summary["flow"]
    exited = enrolments.get("exited", 0)
    lines = [
        f"{flow['name']} ({flow['slug']})",
        f"  entered {summary['entered']} · active {enrolments.get('active', 0)}"
        f" · completed {enrolments.get('completed', 0)} · converted {summary['converted']}"
        f" · exited {exited}" + (f" ({_counts(summary['exit_reasons'])})" if exited else ""),
    ]
    steps = summary["steps"]
    if steps:
        id_width = max(len(step["id"]) for step in steps)
        type_width = max(len(step["type"]) for step in steps)
        for step in steps:
            lines.append(f"    {step['id']:<{id_width}}  {step['type']:<{type_width}}  {_describe_step(step)}")
    return "\n".join(lines)

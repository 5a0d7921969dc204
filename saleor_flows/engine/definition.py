"""Flow definitions: validation, compilation and publishing.

A merchant's draft is checked as a whole and every problem is reported with
the step it belongs to (``steps.email_2.subject: unknown variable …``), so a
broken flow never goes live. Publishing freezes the checked definition, with
its email templates compiled to HTML, as an immutable ``FlowVersion``.
"""

import copy
import functools
import logging
import math
import re
from datetime import date, timedelta

from django.db import transaction

from .. import clock
from ..channels import staff, webhook
from ..channels.links import store_links
from ..channels.templating import TemplateError, check_text_template, compile_email
from ..models import Flow, FlowVersion
from .conditions import bounded_duration, validate_condition
from .gate import HIGH_INTENT, ON_BLOCKED
from .waits import WEEKDAYS

logger = logging.getLogger(__name__)

# Every number a definition holds is checked against a range (docs/flows.md, "Limits"): a value
# that would overflow at run time (a date past year 9999, a float sum that is inf) never goes live.
MAX_STEPS = 500
MAX_OPTIONS = 100  # branches of a branch step, variants of a random split
MAX_WAIT = timedelta(days=3660)  # about ten years: waits, timeouts, offsets, stale_after, re-entry periods
MAX_SPLIT_WEIGHT = 1_000_000
MAX_MIN_PER_VARIANT = 1_000_000
FIRST_DATE, LAST_DATE = date(1970, 1, 1), date(2199, 12, 31)  # wait_date dates
REENTRY_MODES = {"once", "always", "once_per_period", "single_active"}
KINDS = {"marketing", "transactional"}

# Step type → the keys that point at other steps.
NEXT_KEYS = {
    "send_email": ["next"], "send_sms": ["next"], "wait": ["next"], "wait_until": ["next"],
    "wait_date": ["next"], "wait_event": ["next", "timeout_next"], "wait_best_time": ["next"],
    "split": ["yes", "no"],
    "branch": [], "random_split": [], "add_tag": ["next"], "remove_tag": ["next"],
    "add_to_list": ["next"], "remove_from_list": ["next"], "set_field": ["next"],
    "webhook": ["next"], "notify_staff": ["next"], "exit": [],
}
SEND_TYPES = {"send_email", "send_sms"}
WAIT_TYPES = {"wait", "wait_until", "wait_date", "wait_event", "wait_best_time"}
SLUG_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def version_definition(version_id: int) -> dict:
    """A published version's definition. Versions never change, so each process reads one once.

    (A definition carries every email compiled to HTML in every language:
    reloading it for every step was most of a step's cost.)
    """
    return _version(version_id)[1]


def version_number(version_id: int) -> int:
    return _version(version_id)[0]


@functools.lru_cache(maxsize=512)
def _version(version_id: int) -> tuple[int, dict]:
    return FlowVersion.objects.values_list("number", "definition").get(pk=version_id)


def message_kind(step: dict, definition: dict) -> str:
    """"marketing" or "transactional": a send step may override its flow (a review request after an order)."""
    return step.get("kind", definition.get("kind", "marketing"))


class DefinitionError(ValueError):
    def __init__(self, errors: list[str]):
        super().__init__("invalid flow definition:\n- " + "\n- ".join(errors))
        self.errors = errors


def successors(step: dict) -> list:
    """Every step id (or None for "end") a step can lead to."""
    if not isinstance(step, dict):
        return []  # a malformed step (reported by validation) leads nowhere
    kind = step.get("type")
    targets = [step.get(key) for key in NEXT_KEYS.get(kind, [])]
    if kind == "branch":
        targets += [b.get("next") for b in step.get("branches") or [] if isinstance(b, dict)]
        targets.append(step.get("else"))
    if kind == "random_split":
        targets += [v.get("next") for v in step.get("variants") or [] if isinstance(v, dict)]
    return targets


def _check_duration(value, where, errors, *, negative=False):
    try:
        bounded_duration(value, MAX_WAIT, negative=negative)
    except (ValueError, TypeError) as exc:
        errors.append(f"{where}: {exc}")


def _in_range(value, low, high, *, whole=False, low_open=False) -> bool:
    """A finite JSON number (never a boolean) within [low, high] (or (low, high] with ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return (low < value if low_open else low <= value) and value <= high


def _check_condition(cond, where, errors, *, allow_event=True):
    errors.extend(validate_condition(cond, allow_event=allow_event, path=where))


def _require(step, keys, where, errors, kind=str):
    for key in keys:
        value = step.get(key)
        if not isinstance(value, kind) or (kind is str and not value.strip()):
            errors.append(f"{where}.{key}: required")


def _check_holding(where_set: dict, where: str, errors: list):
    """``topic``, ``on_blocked``, ``stale_after`` and ``frequency_cap``: for the flow, or a send step overriding it
    (engine/gate.py)."""
    prefix = f"{where}." if where else ""
    topic = where_set.get("topic")
    if topic is not None and not (isinstance(topic, str) and SLUG_RE.match(topic)):
        errors.append(f"{prefix}topic: a topic name (letters, digits, '_' and '-'), e.g. \"newsletter\"")
    if where_set.get("on_blocked") is not None and where_set["on_blocked"] not in ON_BLOCKED:
        errors.append(f"{prefix}on_blocked: one of {', '.join(sorted(ON_BLOCKED))} (what a frequency cap or quiet "
                      "hours do to a marketing message: wait for the next allowed moment, or drop it)")
    if where_set.get("stale_after") is not None:
        _check_duration(where_set["stale_after"], f"{prefix}stale_after", errors)
    if where_set.get("frequency_cap") not in (None, True, False, HIGH_INTENT):
        errors.append(f"{prefix}frequency_cap: true, false or \"{HIGH_INTENT}\" (false: the shop's frequency cap "
                      f"does not hold this message back; \"{HIGH_INTENT}\": nor does it, but such messages are capped"
                      " among themselves by HIGH_INTENT_CAP_HOURS; the contact's own choice and quiet hours still"
                      " hold)")


def _check_step(step_id: str, step, steps: dict, errors: list):
    where = f"steps.{step_id}"
    if not SLUG_RE.match(step_id):
        errors.append(f"{where}: step ids use letters, digits, '_' and '-' (at most 100)")
    if not isinstance(step, dict):
        errors.append(f"{where}: a step is an object")
        return
    kind = step.get("type")
    if kind not in NEXT_KEYS:
        errors.append(f"{where}.type: unknown step type {kind!r}; known: {', '.join(sorted(NEXT_KEYS))}")
        return
    for key in NEXT_KEYS[kind]:
        if key not in step:
            errors.append(f"{where}.{key}: missing (use null to end the journey here)")
    for target in successors(step):
        if target is not None and (not isinstance(target, str) or target not in steps):
            errors.append(f"{where}: leads to unknown step {target!r}")

    if kind in ("wait_until", "wait_date") and step.get("time") is not None and not (
            isinstance(step["time"], str) and TIME_RE.match(step["time"])):
        errors.append(f"{where}.time: expected 'HH:MM' (24-hour), got {step['time']!r}")
    if kind in SEND_TYPES and step.get("kind") is not None and step["kind"] not in KINDS:
        errors.append(f"{where}.kind: one of {', '.join(sorted(KINDS))} (overrides the flow's kind)")
    if kind in SEND_TYPES:
        _check_holding(step, where, errors)
    if kind == "send_email":
        try:
            compile_email(step)
        except TemplateError as exc:
            errors.extend(f"{where}.{e}" for e in exc.errors)
    elif kind == "send_sms":
        _require(step, ["body"], where, errors)
        for lang, body in [("", step.get("body"))] + [
                (f".translations.{k}", (v or {}).get("body")) for k, v in (step.get("translations") or {}).items()]:
            if isinstance(body, str):
                errors.extend(f"{where}{lang}.{e}" for e in check_text_template(body, "body"))
    elif kind == "wait":
        _check_duration(step.get("duration"), f"{where}.duration", errors)
    elif kind == "wait_event":
        _require(step, ["event"], where, errors)
        _check_duration(step.get("timeout"), f"{where}.timeout", errors)
        if step.get("filter") is not None:
            _check_condition(step["filter"], f"{where}.filter", errors)
        correlate = step.get("correlate")
        if correlate is not None and (not isinstance(correlate, list) or not all(
                isinstance(path, str) and path.strip() for path in correlate)):
            errors.append(f"{where}.correlate: a list of payload paths (e.g. [\"id\"]) the awaited event "
                          "must share with the trigger event")
    elif kind == "wait_until":
        if not step.get("time") and not step.get("weekdays"):
            errors.append(f"{where}: give a time ('HH:MM'), weekdays, or both")
        weekdays = step.get("weekdays")
        if weekdays is not None and (not isinstance(weekdays, list) or not weekdays
                                     or any(day not in WEEKDAYS for day in weekdays)):
            errors.append(f"{where}.weekdays: a non-empty list of {', '.join(WEEKDAYS)}")
    elif kind == "wait_best_time":
        if step.get("default") is not None and not (isinstance(step["default"], str) and TIME_RE.match(step["default"])):
            errors.append(f"{where}.default: the local time to use without enough history, 'HH:MM' (24-hour)")
        if step.get("within") is not None:
            _check_duration(step["within"], f"{where}.within", errors)
    elif kind == "wait_date":
        if bool(step.get("date")) == bool(step.get("field")):
            errors.append(f"{where}: give exactly one of 'date' or 'field'")
        if step.get("date"):
            try:
                if not FIRST_DATE <= date.fromisoformat(str(step["date"])) <= LAST_DATE:
                    errors.append(f"{where}.date: a date from {FIRST_DATE} to {LAST_DATE}")
            except ValueError:
                errors.append(f"{where}.date: expected YYYY-MM-DD, got {str(step['date'])[:40]!r}")
        if step.get("field"):
            # A date-only operator: rejects unknown fields and fields that are not dates.
            errors.extend(validate_condition({"field": str(step["field"]), "op": "within_next", "value": {"days": 0}},
                                             path=where))
        if step.get("offset") is not None:
            _check_duration(step["offset"], f"{where}.offset", errors, negative=True)
    elif kind == "split":
        _check_condition(step.get("condition"), f"{where}.condition", errors)
    elif kind == "branch":
        branches = step.get("branches")
        if not isinstance(branches, list) or not branches or len(branches) > MAX_OPTIONS:
            errors.append(f"{where}.branches: a non-empty list of at most {MAX_OPTIONS} {{condition, next}}")
        else:
            for i, branch in enumerate(branches):
                if not isinstance(branch, dict) or "next" not in branch:
                    errors.append(f"{where}.branches[{i}]: needs 'condition' and 'next'")
                    continue
                _check_condition(branch.get("condition"), f"{where}.branches[{i}].condition", errors)
        if "else" not in step:
            errors.append(f"{where}.else: missing (use null to end the journey here)")
    elif kind == "random_split":
        variants = step.get("variants")
        if not isinstance(variants, list) or not 2 <= len(variants) <= MAX_OPTIONS:
            errors.append(f"{where}.variants: from two to {MAX_OPTIONS} {{name, weight, next}}")
        else:
            names = [v.get("name") for v in variants if isinstance(v, dict)]
            if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(variants):
                errors.append(f"{where}.variants: each variant needs a unique name")
            for i, variant in enumerate(variants):
                weight = variant.get("weight") if isinstance(variant, dict) else None
                if not _in_range(weight, 0, MAX_SPLIT_WEIGHT, low_open=True):
                    errors.append(f"{where}.variants[{i}].weight: a positive number up to {MAX_SPLIT_WEIGHT}")
                if isinstance(variant, dict) and "next" not in variant:
                    errors.append(f"{where}.variants[{i}].next: missing (use null to end the journey here)")
        _check_auto_winner(step.get("auto_winner"), f"{where}.auto_winner", errors)
    elif kind in ("add_tag", "remove_tag"):
        _require(step, ["tag"], where, errors)
    elif kind in ("add_to_list", "remove_from_list"):
        _require(step, ["list"], where, errors)
    elif kind == "set_field":
        _require(step, ["field"], where, errors)
        if "value" not in step:
            errors.append(f"{where}.value: required (null clears the field)")
    elif kind == "webhook":
        _require(step, ["url"], where, errors)
        if step.get("url") is not None and (problem := webhook.url_problem(step["url"])):
            errors.append(f"{where}.url: {problem}")
        if step.get("body") is not None and not isinstance(step["body"], dict):
            errors.append(f"{where}.body: an object")
        for key, value in (step.get("body") or {}).items() if isinstance(step.get("body"), dict) else ():
            if isinstance(value, str):
                errors.extend(f"{where}.body.{key}: {e.split(': ', 1)[-1]}" for e in check_text_template(value, key))
    elif kind == "notify_staff":
        _require(step, ["subject", "body"], where, errors)
        to = step.get("to")
        if not isinstance(to, list) or not to or not all(isinstance(a, str) and "@" in a for a in to):
            errors.append(f"{where}.to: a non-empty list of email addresses")
        elif outsiders := staff.not_staff(to):
            errors.append(f"{where}.to: not a staff address: {', '.join(outsiders)} (staff notifications "
                          "go only to active staff users' emails and the host's STAFF_NOTIFY_RECIPIENTS)")
        for key in ("subject", "body"):
            if isinstance(step.get(key), str):
                errors.extend(f"{where}.{e}" for e in check_text_template(step[key], key))


AUTO_WINNER_METRICS = {"click_rate", "open_rate", "conversion_rate"}


def _check_auto_winner(rule, where, errors):
    """``true`` (the defaults) or {metric, min_per_variant, probability}, each optional."""
    if rule is None or isinstance(rule, bool):
        return
    if not isinstance(rule, dict) or set(rule) - {"metric", "min_per_variant", "probability"}:
        errors.append(f"{where}: true, or an object with metric, min_per_variant and probability")
        return
    if "metric" in rule and rule["metric"] not in AUTO_WINNER_METRICS:
        errors.append(f"{where}.metric: one of {', '.join(sorted(AUTO_WINNER_METRICS))}")
    if not _in_range(rule.get("min_per_variant", 1), 1, MAX_MIN_PER_VARIANT, whole=True):
        errors.append(f"{where}.min_per_variant: a whole number from 1 to {MAX_MIN_PER_VARIANT}")
    probability = rule.get("probability", 0.9)
    if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0.5 < probability < 1:
        errors.append(f"{where}.probability: a number between 0.5 and 1 (exclusive)")


def _graph_errors(start, steps: dict) -> list[str]:
    """Loops and unreachable steps, depth-first on a stack of its own: no chain meets Python's recursion limit."""
    errors = []
    state = {start: "visiting"}  # "visiting" while on the current path, then "done"
    path, pending = [start], [iter(successors(steps[start]))]
    while path:
        step_id = path[-1]
        target = next(pending[-1], _DONE)
        if target is _DONE:
            state[step_id] = "done"
            path.pop()
            pending.pop()
        elif not isinstance(target, str) or target not in steps:
            continue  # the end, or an unknown step (reported by the step's own check)
        elif state.get(target) == "visiting":
            cycle = path[path.index(target):] + [target]
            errors.append(f"steps.{step_id}: leads back to {target!r}, making a loop ({' -> '.join(cycle)})")
        elif target not in state:
            state[target] = "visiting"
            path.append(target)
            pending.append(iter(successors(steps[target])))
    for step_id in steps:
        if step_id not in state:
            errors.append(f"steps.{step_id}: unreachable from the start step {start!r}")
    return errors


_DONE = object()


def validate_definition(definition) -> list[str]:
    """Every problem of a draft, each naming where it is. Empty means publishable.

    Never raises: a draft that trips something unforeseen gets one error of its own,
    so a stored draft cannot take the whole flow list (or the publish button) down.
    """
    try:
        return _definition_problems(definition)
    except Exception:  # noqa: BLE001 - reported against this draft; the traceback goes to the log
        logger.exception("saleor-flows: validating a flow definition failed")
        return ["definition: could not be checked (an internal error, logged); simplify the draft and try again"]


def _definition_problems(definition) -> list[str]:
    if not isinstance(definition, dict):
        return ["definition: expected an object"]
    errors = []
    trigger = definition.get("trigger")
    if not isinstance(trigger, dict) or not isinstance(trigger.get("event"), str) or not trigger["event"]:
        errors.append("trigger.event: required (the event name that starts the flow)")
    elif trigger.get("filter") is not None:
        _check_condition(trigger["filter"], "trigger.filter", errors)
    reentry = definition.get("reentry", {"mode": "once"})
    if not isinstance(reentry, dict) or reentry.get("mode") not in REENTRY_MODES:
        errors.append(f"reentry.mode: one of {', '.join(sorted(REENTRY_MODES))}")
    elif reentry["mode"] == "once_per_period":
        if not _in_range(reentry.get("days"), 0, MAX_WAIT.days, low_open=True):
            errors.append(f"reentry.days: a positive number of days, at most {MAX_WAIT.days}")
    holdout = definition.get("holdout_percent", 0)
    if not _in_range(holdout, 0, 50):
        errors.append("holdout_percent: a number from 0 to 50 (the share of entrants kept out for comparison)")
    if definition.get("kind", "marketing") not in KINDS:
        errors.append(f"kind: one of {', '.join(sorted(KINDS))}")
    _check_holding(definition, "", errors)
    for key in ("exit", "goal"):
        if definition.get(key) is not None:
            _check_condition(definition[key], key, errors)
    steps = definition.get("steps")
    if not isinstance(steps, dict) or not steps:
        errors.append("steps: at least one step")
        return errors
    if len(steps) > MAX_STEPS:  # before anything walks or compiles them
        errors.append(f"steps: at most {MAX_STEPS} steps (got {len(steps)})")
        return errors
    start = definition.get("start")
    if not isinstance(start, str) or start not in steps:
        errors.append(f"start: {start!r} is not a step")
    for step_id, step in steps.items():
        _check_step(str(step_id), step, steps, errors)
    if isinstance(start, str) and start in steps:
        errors.extend(_graph_errors(start, steps))
    return errors


def compile_definition(definition: dict) -> dict:
    """The frozen form a version keeps: defaults filled in, email templates compiled."""
    errors = validate_definition(definition)
    if errors:
        raise DefinitionError(errors)
    compiled = copy.deepcopy(definition)
    compiled.setdefault("reentry", {"mode": "once"})
    compiled.setdefault("kind", "marketing")
    for step_id, step in compiled["steps"].items():
        step["id"] = step_id
        if step["type"] == "send_email":
            step["compiled"] = compile_email(step)
    return compiled


# What publishing adds to each step of the frozen version: its id, its compiled email (above) and
# the ids of its tracked links (channels/links.store_links).
PUBLISHED_STEP_KEYS = ("id", "compiled", "links")


def draft_differs_from(published: dict, draft: dict) -> bool:
    """Whether the draft says anything its published version does not (what publishing adds aside)."""
    frozen = dict(published, steps={step_id: {k: v for k, v in step.items() if k not in PUBLISHED_STEP_KEYS}
                                    for step_id, step in (published.get("steps") or {}).items()})
    return frozen != {"reentry": {"mode": "once"}, "kind": "marketing", **draft}


def create_flow(slug: str, definition: dict, *, name: str = "", publish: bool = False) -> Flow:
    now = clock.now()
    flow = Flow.objects.create(
        slug=slug, name=name or definition.get("name") or slug, definition=definition,
        trigger_event=(definition.get("trigger") or {}).get("event", ""), created_at=now, updated_at=now,
    )
    if publish:
        publish_flow(flow)
    return flow


def update_draft(flow: Flow, definition: dict) -> Flow:
    """Edit the draft. Running contacts are untouched: they keep their version."""
    flow.definition = definition
    flow.updated_at = clock.now()
    flow.save(update_fields=["definition", "updated_at"])
    return flow


@transaction.atomic
def publish_flow(flow: Flow) -> FlowVersion:
    """Freeze the draft as the next version and make it the one new contacts enter."""
    compiled = compile_definition(flow.definition)
    flow = Flow.objects.select_for_update().get(pk=flow.pk)
    last = flow.versions.order_by("-number").values_list("number", flat=True).first() or 0
    version = FlowVersion.objects.create(flow=flow, number=last + 1, definition=compiled, published_at=clock.now())
    store_links(version)  # click tracking: the redirect only ever leads to a link stored here
    flow.live_version = version
    flow.status = Flow.Status.LIVE
    flow.trigger_event = compiled["trigger"]["event"]
    flow.updated_at = clock.now()
    flow.save(update_fields=["live_version", "status", "trigger_event", "updated_at"])
    return version


def set_status(flow: Flow, status: str) -> Flow:
    """Pause (no new entries; running contacts wait at their next step), resume or archive."""
    if status not in Flow.Status.values:
        raise ValueError(f"unknown flow status {status!r}")
    if status == Flow.Status.LIVE and flow.live_version_id is None:
        raise ValueError("publish the flow before making it live")
    flow.status = status
    flow.updated_at = clock.now()
    flow.save(update_fields=["status", "updated_at"])
    return flow

"""Flows as code: flows exported to YAML or JSON files that live in git, and imported back.

A document looks like this (``format`` names the version of this layout)::

    format: saleor-flows/1
    flows:
    - slug: welcome
      name: Welcome series
      definition:
        trigger: {event: customer_created}
        ...
        start: email_welcome
        steps:
          email_welcome:
            type: send_email
            subject: ...
            mjml: |
              <mjml>...

Why the layout is fixed rather than "whatever order the dict has": the
database keeps definitions as JSONB, which does not keep key order, so two
exports of the same flow must not depend on it. Top-level keys come in the
order a person reads a flow (trigger, filter, re-entry, kind, exit, goal,
start, steps); steps come in graph order (a depth-first walk from ``start``,
following each step's exits in order), each step with ``type`` first, its
settings in alphabetical order and the keys that lead on (``next``, ``yes``,
``no``...) last; everything nested (conditions, durations) is sorted by key.
Multi-line strings (MJML templates) are YAML literal blocks, so a changed line
of an email is a changed line of the diff.

Only what a merchant writes is exported: the draft definition, never a
version's compiled HTML or the ids the engine fills in at publish time.

Importing checks every flow of the document before touching anything, and
then writes all of it in one transaction, or nothing. It creates or updates
*drafts*: a live flow keeps running its published version until someone
publishes (``publish=True`` does that for flows whose draft changed).
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field

from django.db import transaction

from .engine.definition import (NEXT_KEYS, SLUG_RE, DefinitionError, create_flow, publish_flow, set_status,
                                successors, update_draft, validate_definition)
from .models import Flow

FORMAT = "saleor-flows/1"
FORMATS = ("yaml", "json")

# Reading order of a definition's top level; unknown keys follow, sorted.
TOP_ORDER = ["name", "description", "version", "trigger", "reentry", "kind", "exit", "goal", "start", "steps"]
TRIGGER_ORDER = ["event", "filter"]
CONDITION_FIRST = ["history", "field", "op", "value"]
# How deeply lists and objects may nest in a document (a definition needs about ten levels).
MAX_DOCUMENT_DEPTH = 50
# Filled in by the engine at publish time: never part of what a merchant edits.
DERIVED_STEP_KEYS = {"id", "compiled"}


class FlowsFileError(ValueError):
    """A document that cannot be imported; ``errors`` name the file, flow and step of each problem."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. "welcome: draft changed, publish to apply"
    dry_run: bool = False

    def summary(self) -> str:
        parts = [f"{len(self.created)} created", f"{len(self.updated)} updated", f"{len(self.unchanged)} unchanged"]
        if self.published:
            parts.append(f"{len(self.published)} published")
        head = ("dry run: would have " if self.dry_run else "") + ", ".join(parts)
        return "\n".join([head, *self.notes])


# --- canonical form ----------------------------------------------------------------

def _sorted(value):
    """Nested dicts with sorted keys (lists keep their order: it means something).

    A condition reads better with what it is first: ``history`` before its
    event, ``field`` before ``op`` and ``value``.
    """
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in _ordered(value, CONDITION_FIRST)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def _ordered(mapping: dict, first: list[str]) -> dict:
    keys = [key for key in first if key in mapping] + sorted(key for key in mapping if key not in first)
    return {key: mapping[key] for key in keys}


def graph_order(start, steps: dict) -> list[str]:
    """Step ids depth-first from ``start`` (exits in order), then any unreachable ones, sorted."""
    seen: dict[str, None] = {}  # ordered, and a set's cost per lookup: drafts may hold thousands of steps
    stack = [start]
    while stack:
        step_id = stack.pop()
        if not isinstance(step_id, str) or step_id in seen or step_id not in steps:
            continue
        seen[step_id] = None
        step = steps[step_id]
        targets = successors(step) if isinstance(step, dict) else []
        stack.extend(reversed(targets))
    return list(seen) + sorted((s for s in steps if s not in seen), key=str)


def _canonical_step(step):
    if not isinstance(step, dict):
        return step
    step = {key: value for key, value in step.items() if key not in DERIVED_STEP_KEYS}
    kind = step.get("type")
    leads = [key for key in NEXT_KEYS.get(kind, []) if key in step]
    leads += [key for key in ("branches", "else", "variants") if key in step and key not in leads]
    body = sorted(key for key in step if key != "type" and key not in leads)
    ordered = (["type"] if "type" in step else []) + body + leads
    return {key: _sorted(step[key]) for key in ordered}


def canonical_definition(definition: dict) -> dict:
    """The definition as it is exported: derived keys dropped, keys and steps in their fixed order."""
    definition = copy.deepcopy(definition)
    out = {}
    for key, value in _ordered(definition, TOP_ORDER).items():
        if key == "trigger" and isinstance(value, dict):
            out[key] = {k: _sorted(v) for k, v in _ordered(value, TRIGGER_ORDER).items()}
        elif key == "steps" and isinstance(value, dict):
            out[key] = {step_id: _canonical_step(value[step_id])
                        for step_id in graph_order(definition.get("start"), value)}
        else:
            out[key] = _sorted(value)
    return out


# --- export --------------------------------------------------------------------------

def flow_document(flows, *, with_status: bool = False) -> dict:
    entries = []
    for flow in flows:
        entry = {"slug": flow.slug, "name": flow.name}
        if with_status:
            entry["status"] = flow.status
        entry["definition"] = canonical_definition(flow.definition or {})
        entries.append(entry)
    return {"format": FORMAT, "flows": entries}


def export_flows(slugs=None, fmt: str = "yaml", *, with_status: bool = False) -> str:
    """All flows (or those named by ``slugs``), sorted by slug, as one YAML or JSON document."""
    flows = Flow.objects.order_by("slug")
    if slugs:
        flows = flows.filter(slug__in=slugs)
        missing = sorted(set(slugs) - set(flows.values_list("slug", flat=True)))
        if missing:
            raise FlowsFileError([f"no flow with slug {slug!r}" for slug in missing])
    return dump(flow_document(flows, with_status=with_status), fmt)


def dump(document: dict, fmt: str = "yaml") -> str:
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if fmt != "yaml":
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    import yaml

    return yaml.dump(document, Dumper=_yaml_dumper(), sort_keys=False, allow_unicode=True, width=120,
                     default_flow_style=False)


@functools.lru_cache(maxsize=None)
def _yaml_dumper():
    """PyYAML is imported on first use only: JSON needs nothing beyond the standard library."""
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data):
            # A value used twice is written twice: imports refuse aliases (_yaml_loader).
            return True

        def increase_indent(self, flow=False, indentless=False):
            # Lists indented under their key, as people write YAML by hand.
            return super().increase_indent(flow, False)

    def text(dumper, value):
        # Templates as literal blocks: one line of MJML is one line of the diff.
        # (Trailing spaces cannot be shown in a block, so PyYAML quotes those strings itself.)
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return Dumper


# --- reading and checking --------------------------------------------------------------

def parse(text: str, *, source: str = "<text>") -> dict:
    """A document from YAML or JSON text (JSON is valid YAML; it is read as JSON when it looks like it).

    YAML aliases are refused and nesting is bounded while the document is built, so its size in
    memory follows the size of the text (see ``_yaml_loader``)."""
    stripped = text.lstrip()
    try:
        if stripped.startswith("{"):
            document = json.loads(text)
            if _deeper_than(document, MAX_DOCUMENT_DEPTH):
                raise RecursionError
            return document
        import yaml

        return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader without aliases
    except json.JSONDecodeError as exc:
        raise FlowsFileError([f"{source}: not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"]) from None
    except RecursionError:
        raise FlowsFileError([f"{source}: nested deeper than {MAX_DOCUMENT_DEPTH} levels"]) from None
    except Exception as exc:  # yaml.YAMLError, with its own line and column
        raise FlowsFileError([f"{source}: not valid YAML: {exc}"]) from None


@functools.lru_cache(maxsize=None)
def _yaml_loader():
    """PyYAML's SafeLoader, refusing aliases (``*name``, ``<<: *name``) and deep nesting as it composes.

    Why: an alias makes the loader reuse a node, so a few hundred bytes of aliases of aliases
    (a "billion laughs") become a document that every later step walks in full: 573 bytes took
    60 s and 1.3 GB to import. Flows files never need them; exports never write them."""
    import yaml
    from yaml.composer import ComposerError

    class Loader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                raise ComposerError(None, None, "aliases (*name) are not allowed in flows files: write the value out",
                                    self.peek_event().start_mark)
            if self.depth >= MAX_DOCUMENT_DEPTH:
                raise RecursionError
            self.depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return Loader


def _deeper_than(value, limit: int) -> bool:
    """Whether lists and objects nest more than ``limit`` levels (iterative: no recursion to run out of)."""
    stack = [(value, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (value.values() if isinstance(value, dict) else value))
    return False


def check_document(document, *, source: str = "<text>") -> list[dict]:
    """The document's flows, each validated; raises FlowsFileError listing every problem."""
    errors = []
    if not isinstance(document, dict):
        raise FlowsFileError([f"{source}: expected a document with 'format' and 'flows'"])
    if document.get("format") != FORMAT:
        errors.append(f"{source}: format: expected {FORMAT!r}, got {document.get('format')!r}")
    entries = document.get("flows")
    if not isinstance(entries, list):
        raise FlowsFileError(errors + [f"{source}: flows: expected a list of flows"])
    unknown = sorted(set(document) - {"format", "flows"})
    if unknown:
        errors.append(f"{source}: unknown top-level keys {', '.join(unknown)}")
    seen = set()
    for index, entry in enumerate(entries):
        where = f"{source}: flows[{index}]"
        if not isinstance(entry, dict):
            errors.append(f"{where}: expected an object with slug, name and definition")
            continue
        slug = entry.get("slug")
        if isinstance(slug, str):
            where += f" ({slug})"
        if not isinstance(slug, str) or not SLUG_RE.match(slug):
            errors.append(f"{where}.slug: letters, digits, '_' and '-' (at most 100), got {slug!r}")
        elif slug in seen:
            errors.append(f"{where}.slug: {slug!r} appears twice in this document")
        seen.add(slug)
        if entry.get("name") is not None and not isinstance(entry.get("name"), str):
            errors.append(f"{where}.name: a string")
        if entry.get("status") is not None and entry["status"] not in Flow.Status.values:
            errors.append(f"{where}.status: one of {', '.join(Flow.Status.values)}")
        extra = sorted(set(entry) - {"slug", "name", "status", "definition"})
        if extra:
            errors.append(f"{where}: unknown keys {', '.join(extra)}")
        definition = entry.get("definition")
        errors.extend(f"{where}: {problem}" for problem in validate_definition(definition))
    if errors:
        raise FlowsFileError(errors)
    return entries


def validate_flows(text: str, *, source: str = "<text>") -> list[dict]:
    """Parse and check a document without writing anything; raises FlowsFileError."""
    return check_document(parse(text, source=source), source=source)


# --- import --------------------------------------------------------------------------------

def _comparable(definition: dict) -> dict:
    """What decides "is this the same flow?": the canonical form with publish-time defaults filled in."""
    canonical = canonical_definition(definition or {})
    canonical.setdefault("reentry", {"mode": "once"})
    canonical.setdefault("kind", "marketing")
    return json.loads(json.dumps(canonical, sort_keys=True, default=str))


def import_flows(text: str, *, publish: bool = False, dry_run: bool = False, source: str = "<text>",
                 authorize=None) -> ImportResult:
    """Create or update drafts by slug from a document, all or nothing.

    A live flow's draft is updated and the result says "draft changed,
    publish to apply": what contacts receive never changes by import alone.
    With ``publish`` a flow whose draft differs from its live version is
    published (a flow marked ``status: draft`` in the file is not), and a
    published flow marked ``paused`` or ``archived`` in the file gets that
    status; without ``publish`` statuses in the file are not applied.
    ``authorize`` (the API's permission check) sees each definition before anything is written.
    """
    entries = validate_flows(text, source=source)
    for entry in entries if authorize else ():
        authorize(entry["definition"])
    result = ImportResult(dry_run=dry_run)
    with transaction.atomic():
        existing = {flow.slug: flow for flow in Flow.objects.select_for_update(of=("self",)).filter(
            slug__in=[entry["slug"] for entry in entries]).select_related("live_version")}
        for entry in entries:
            slug, definition = entry["slug"], canonical_definition(entry["definition"])
            name = entry.get("name") or definition.get("name") or slug
            flow = existing.get(slug)
            if flow is None:
                result.created.append(slug)
                if not dry_run:
                    flow = create_flow(slug, definition, name=name)
            elif _comparable(flow.definition) != _comparable(definition) or flow.name != name:
                result.updated.append(slug)
                if not dry_run:
                    update_draft(flow, definition)
                    if flow.name != name:
                        Flow.objects.filter(pk=flow.pk).update(name=name)
            else:
                result.unchanged.append(slug)
            live = flow.live_version if flow is not None and flow.live_version_id else None
            differs_from_live = live is None or _comparable(live.definition) != _comparable(definition)
            wants_publish = publish and entry.get("status") != Flow.Status.DRAFT and differs_from_live
            if wants_publish:
                result.published.append(slug)
                if not dry_run:
                    try:
                        publish_flow(flow)
                    except DefinitionError as exc:  # checked above; a template engine surprise lands here
                        raise FlowsFileError([f"{source}: {slug}: {e}" for e in exc.errors]) from None
            elif live is not None and differs_from_live:
                result.notes.append(f"{slug}: draft changed, publish to apply (live version {live.number} "
                                    "keeps running)")
            _apply_status(slug, flow, entry.get("status"), publish=publish, dry_run=dry_run,
                          published=wants_publish, result=result)
        if dry_run:
            transaction.set_rollback(True)
    return result


def _apply_status(slug, flow, wanted, *, publish, dry_run, published, result):
    """With --publish, a file's ``status: paused|archived|live`` is applied to a published flow."""
    if not publish or wanted not in (Flow.Status.LIVE, Flow.Status.PAUSED, Flow.Status.ARCHIVED):
        return
    if dry_run:
        current = flow.status if flow is not None else Flow.Status.DRAFT
        has_version = published or (flow is not None and flow.live_version_id is not None)
    else:
        flow.refresh_from_db(fields=["status", "live_version"])
        current, has_version = flow.status, flow.live_version_id is not None
    if has_version and current != wanted:
        result.notes.append(f"{slug}: status {current} -> {wanted}")
        if not dry_run:
            set_status(flow, wanted)

"""Moving running journeys from an older version of a flow to its live version, when the merchant asks.

Versions are pinned (docs/design.md, principle 4): publishing never moves anyone.
A merchant who fixed a live flow can choose, for the contacts still running
on older versions:

- ``finish_on_old``: nothing changes; they finish the journey they started.
- ``move_at_next_step``: each journey continues on the live version from the
  step it is waiting at. The mapping rule: the waiting (pending) execution's
  step must exist in the live version **with the same id and the same step
  type**; its due time is kept (a wait already counting down is not
  restarted), a ``wait_event`` step waits for the live version's event. When
  the step is gone or changed type there is no safe place to continue, so the
  journey ends (exited, reason ``migration_step_missing``) and the trail says
  which step was missing.
- ``exit``: the journeys end now (exited, reason ``migrated_exit``).

Journeys that are running a step right now (claimed or sending) are left
alone and counted as ``busy``: run the migration again a moment later.
Each journey is moved in its own short transaction, holding the contact's
lock and then the journey's, in the order the runner takes them, so a send
in progress and a migration never interleave.
"""

from dataclasses import dataclass, field

from django.db import transaction

from .. import clock
from ..models import Contact, Enrolment, Flow, StepExecution
from . import trail
from .definition import version_definition, version_number
from .runner import finish_enrolment

State = StepExecution.State

FINISH_ON_OLD = "finish_on_old"
MOVE_AT_NEXT_STEP = "move_at_next_step"
EXIT = "exit"
STRATEGIES = (FINISH_ON_OLD, MOVE_AT_NEXT_STEP, EXIT)

MIGRATED_EXIT = "migrated_exit"
STEP_MISSING = "migration_step_missing"


@dataclass
class MigrationReport:
    strategy: str
    to_version: int
    considered: int = 0
    moved: int = 0
    exited: int = 0
    unchanged: int = 0
    busy: int = 0
    missing_steps: dict = field(default_factory=dict)  # step id -> journeys that ended for it


def migrate_enrolments(flow: Flow, strategy: str, *, from_version: int | None = None) -> MigrationReport:
    """Apply ``strategy`` to the flow's active journeys on versions other than the live one."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if flow.live_version_id is None:
        raise ValueError("the flow has no live version to move journeys to")
    target = flow.live_version_id
    report = MigrationReport(strategy=strategy, to_version=version_number(target))
    running = Enrolment.objects.filter(flow=flow, status=Enrolment.Status.ACTIVE).exclude(version_id=target)
    if from_version is not None:
        running = running.filter(version__number=from_version)
    ids = list(running.order_by("pk").values_list("pk", "contact_id"))
    report.considered = len(ids)
    if strategy == FINISH_ON_OLD:
        report.unchanged = len(ids)
        return report
    for enrolment_id, contact_id in ids:
        outcome, detail = _migrate_one(enrolment_id, contact_id, strategy, target)
        if outcome == "moved":
            report.moved += 1
        elif outcome == "exited":
            report.exited += 1
            if detail:
                report.missing_steps[detail] = report.missing_steps.get(detail, 0) + 1
        elif outcome == "busy":
            report.busy += 1
        else:
            report.unchanged += 1
    return report


def _migrate_one(enrolment_id: int, contact_id: int, strategy: str, target: int):
    now = clock.now()
    with transaction.atomic():
        Contact.objects.select_for_update().filter(pk=contact_id).first()
        enrolment = Enrolment.objects.select_for_update().filter(pk=enrolment_id).first()
        if enrolment is None or enrolment.status != Enrolment.Status.ACTIVE or enrolment.version_id == target:
            return "unchanged", None  # finished or moved meanwhile
        from_number = version_number(enrolment.version_id)
        # Executions another worker holds (claimed by a sweep, a send in flight) are not ours to touch.
        if StepExecution.objects.filter(enrolment_id=enrolment.pk, state__in=[State.CLAIMED, State.SENDING]).exists():
            return "busy", None
        if strategy == EXIT:
            finish_enrolment(enrolment, Enrolment.Status.EXITED, MIGRATED_EXIT, now=now,
                             from_version=from_number, to_version=version_number(target))
            return "exited", None
        # skip_locked: a sweep claiming the row right now makes it busy, not a wait.
        waiting = list(StepExecution.objects.select_for_update(skip_locked=True).filter(
            enrolment_id=enrolment.pk, state=State.PENDING))
        if not waiting:
            return "busy", None
        old_steps = version_definition(enrolment.version_id)["steps"]
        new_steps = version_definition(target)["steps"]
        for execution in waiting:
            old, new = old_steps.get(execution.step_id), new_steps.get(execution.step_id)
            if new is None or old is None or new["type"] != old["type"]:
                finish_enrolment(enrolment, Enrolment.Status.EXITED, STEP_MISSING, now=now,
                                 step=execution.step_id, from_version=from_number,
                                 to_version=version_number(target))
                return "exited", execution.step_id
        for execution in waiting:
            if new_steps[execution.step_id]["type"] == "wait_event":
                StepExecution.objects.filter(pk=execution.pk).update(
                    waiting_for=new_steps[execution.step_id]["event"])
        Enrolment.objects.filter(pk=enrolment.pk).update(version_id=target)
        trail.record(contact_id, "migrated", enrolment_id=enrolment.pk, step_id=waiting[0].step_id,
                     from_version=from_number, to_version=version_number(target))
        return "moved", None

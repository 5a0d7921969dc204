"""Testing flows like code.

``FlowTester`` runs the real engine in-process against your test database:
define a flow, feed events, move the clock ("advance 4 hours"), run the
sweep and assert on what was sent and on the why-trail, in milliseconds.

    from saleor_flows.testing import flows  # noqa: F401  (a pytest fixture; put it in conftest.py)

    def test_welcome(flows):
        flows.flow({...definition...}, slug="welcome")
        flows.event("customer_created", email="jane@example.com", payload={"first_name": "Jane"})
        assert flows.emails_to("jane@example.com")[0].subject == "Welcome, Jane"
        flows.advance(days=3)
        assert len(flows.emails_to("jane@example.com")) == 2
        print(flows.why("jane@example.com"))
"""

from datetime import datetime, timedelta, timezone as dt_timezone

from django.core import mail

from . import clock
from .engine import dispatch
from .engine.definition import create_flow, publish_flow, update_draft
from .engine.sweep import sweep
from .engine.trail import describe
from .events import record_event
from .models import Contact, Enrolment, Event, Flow, TrailEntry

DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=dt_timezone.utc)  # a Monday


class FlowTester:
    def __init__(self, start: datetime = DEFAULT_START):
        self._inline = dispatch.forced("inline")
        self._inline.__enter__()
        clock.set_now(start)
        self._sequence = 0

    def close(self):
        clock.reset()
        self._inline.__exit__(None, None, None)

    # -- building -----------------------------------------------------------------
    def flow(self, definition: dict, *, slug: str | None = None, name: str = "") -> Flow:
        """Create and publish a flow (raises DefinitionError listing every problem)."""
        self._sequence += 1
        flow = create_flow(slug or f"flow-{self._sequence}", definition, name=name)
        publish_flow(flow)
        flow.refresh_from_db()
        return flow

    def republish(self, flow: Flow, definition: dict) -> Flow:
        update_draft(flow, definition)
        publish_flow(flow)
        flow.refresh_from_db()
        return flow

    def contact(self, email: str, **fields) -> Contact:
        """Create or update a contact directly (consent, timezone, attributes…)."""
        now = clock.now()
        contact, _ = Contact.objects.get_or_create(email=email.lower(), defaults={"created_at": now, "updated_at": now})
        for key, value in fields.items():
            setattr(contact, key, value)
        if "email_consent" in fields and "email_consent_at" not in fields:
            contact.email_consent_at = now
        contact.save()
        return contact

    # -- feeding ------------------------------------------------------------------
    def event(self, name: str, *, email: str | None = None, payload: dict | None = None, **kwargs):
        """Record an event now; it is processed at once (inline) like a worker would."""
        kwargs.setdefault("occurred_at", clock.now())
        return record_event(name, email=email, payload=payload or {}, **kwargs)

    @property
    def now(self) -> datetime:
        return clock.now()

    def advance(self, **delta):
        """Move the clock forward (``days=``, ``hours=``, ``minutes=``…) and run the sweep."""
        clock.advance(timedelta(**delta))
        return self.sweep()

    def travel_to(self, moment: datetime):
        clock.set_now(moment)
        return self.sweep()

    def sweep(self):
        return sweep()

    # -- asserting ----------------------------------------------------------------
    @property
    def outbox(self):
        return mail.outbox

    def emails_to(self, email: str):
        return [m for m in mail.outbox if email.lower() in [a.lower() for a in m.to]]

    def enrolments(self, email: str):
        return list(Enrolment.objects.filter(contact__email=email.lower()).select_related("flow").order_by("id"))

    def trail(self, email: str) -> list[TrailEntry]:
        return list(TrailEntry.objects.filter(contact__email=email.lower()).select_related("enrolment__flow"))

    def trail_kinds(self, email: str) -> list[str]:
        return [entry.kind for entry in self.trail(email)]

    def why(self, email: str) -> str:
        """The contact's journey history, one line per decision."""
        return "\n".join(describe(entry) for entry in self.trail(email))

    def dead_events(self):
        return list(Event.objects.filter(status=Event.Status.DEAD).order_by("id"))


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed to use the fixture
    pytest = None

if pytest is not None:

    @pytest.fixture
    def flows(db, settings):
        """A FlowTester on the test database, with Django's in-memory mail outbox."""
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        mail.outbox = []
        tester = FlowTester()
        yield tester
        tester.close()

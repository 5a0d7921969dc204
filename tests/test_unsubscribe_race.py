"""Done-when (b): unsubscribes racing sweeps of a backlog of due marketing sends (1,500).

Real PostgreSQL, real threads (each its own connection), the real unsubscribe
view and the real sweep. The clock is the real one here: a message's
``created_at`` and an unsubscribe's ``ConsentChange.at`` must be comparable.
"""

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test import Client

from saleor_flows import clock
from saleor_flows.engine.sweep import sweep
from saleor_flows.models import ConsentChange, Contact, Enrolment, Event, Message, StepExecution
from saleor_flows.channels import tokens

from .flowkit import chain, email

pytestmark = pytest.mark.django_db(transaction=True)

CONTACTS = 150
FLOWS = 10  # every contact is due one marketing email from each: 1,500 sends
SWEEPERS = 3


def _due_sends(flows):
    """1,500 due marketing sends, built in bulk (as a backlog after an outage would look)."""
    published = [flows.flow(chain(f"promo{j}", ("mail", email(f"Promo {j}"))), slug=f"promo{j}")
                 for j in range(FLOWS)]
    now = clock.now()
    Contact.objects.bulk_create([
        Contact(email=f"p{i}@example.com", email_consent="subscribed", email_consent_at=now, created_at=now,
                updated_at=now) for i in range(CONTACTS)])
    contacts = list(Contact.objects.order_by("id"))
    trigger = Event.objects.create(name="promo", occurred_at=now, received_at=now, dedupe_key="race",
                                   status=Event.Status.PROCESSED)
    enrolments = Enrolment.objects.bulk_create([
        Enrolment(flow=flow, version_id=flow.live_version_id, contact=contact, trigger_event=trigger, entered_at=now)
        for flow in published for contact in contacts])
    # Flow j's sends fall due a minute after flow j-1's: the sweep works through the
    # promos round by round, so each contact has sends both before and after any moment.
    StepExecution.objects.bulk_create([
        StepExecution(enrolment=enrolment, step_id="mail", due_at=now - timedelta(hours=1) + timedelta(
            minutes=published.index(enrolment.flow)), result={}) for enrolment in enrolments])
    return contacts


def test_no_marketing_email_leaves_after_the_unsubscribe_committed(flows):
    contacts = _due_sends(flows)
    leaving = contacts[::2]  # every other contact unsubscribes while the sweeps run
    clock.reset()  # real time from here on
    errors = []

    def sweeper():
        try:
            sweep(batch_size=40)
        except Exception as exc:  # pragma: no cover - shown in the assertion below
            errors.append(exc)
        finally:
            connection.close()

    def unsubscriber():
        try:
            client = Client()
            deadline = time.monotonic() + 60
            while Message.objects.count() < CONTACTS and time.monotonic() < deadline:
                time.sleep(0.02)  # start once the first round is out
            for contact in leaving:
                token = tokens.make("unsubscribe", contact.pk, s=str(uuid.uuid4()))
                response = client.post(f"/plugins/global/saleor.flows/unsubscribe/{token}/",
                                       data={"List-Unsubscribe": "One-Click"})
                assert response.status_code == 200
        except Exception as exc:  # pragma: no cover
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweeper) for _ in range(SWEEPERS)] + [threading.Thread(target=unsubscriber)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    sweep()  # anything claimed by a batch that ended as the others finished

    unsubscribed_at = dict(ConsentChange.objects.filter(status="unsubscribed").values_list("contact_id", "at"))
    assert set(unsubscribed_at) == {c.pk for c in leaving}
    late = [(m.contact_id, m.created_at, unsubscribed_at[m.contact_id])
            for m in Message.objects.filter(contact_id__in=unsubscribed_at)
            if m.created_at >= unsubscribed_at[m.contact_id]]
    assert late == []  # not one send after its contact's unsubscribe committed
    assert not StepExecution.objects.filter(state__in=["pending", "claimed", "sending"]).exists()

    staying = {c.pk for c in contacts} - set(unsubscribed_at)
    assert Message.objects.filter(contact_id__in=staying, status="sent").count() == len(staying) * FLOWS
    sent_to_leavers = Message.objects.filter(contact_id__in=unsubscribed_at).count()
    skipped = StepExecution.objects.filter(state="skipped", result__reason="suppressed (unsubscribed)").count()
    assert sent_to_leavers + skipped == len(leaving) * FLOWS
    # The race really happened: the leavers got some promos before leaving and were spared the rest.
    assert sent_to_leavers >= len(leaving) and skipped > 0
    assert len(mail.outbox) == Message.objects.count()

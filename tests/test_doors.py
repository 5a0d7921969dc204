"""Issue 11, items 7, 14, 16, 17 on the public pages over HTTP: POST subscribe/, the preference centre, the
open pixel and click redirect. Nothing a stranger sends makes a 500, half a signup or a timing oracle."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from saleor_flows.engine import dispatch
from saleor_flows.models import ConsentChange, Contact, Event
from saleor_flows.channels import tokens
from tests.test_consent import SUBSCRIBE, errors, post, shop  # noqa: F401  (shop is a fixture)


@pytest.mark.parametrize("field", ["channel", "first_name", "language", "source", "country", "topics", "email"])
@pytest.mark.parametrize("bad", ["\x00", "\ud800"])
def test_nul_or_a_lone_surrogate_in_a_signup_is_a_400_and_stores_nothing(shop, client, field, bad):
    value = [f"newsletter{bad}"] if field == "topics" else f"de{bad}"
    body = {"email": "ann@example.com", "phone": "+4915112345678", field: value}
    response = post(client, body)
    assert response.status_code == 400 and errors(response) == [(field, "INVALID")]
    assert not Contact.objects.exists() and not ConsentChange.objects.exists() and not Event.objects.exists()
    # The same person trying again with clean input is subscribed, and the `subscribed` event is recorded.
    assert post(client, {"email": "ann@example.com", "channel": "de"}).status_code == 202
    assert Event.objects.get(name="subscribed").channel == "de"


def test_a_nul_in_a_form_encoded_signup_is_a_400(shop, client):
    response = post(client, {"email": "ann@example.com", "channel": "\x00"}, form=True)
    assert response.status_code == 400 and errors(response) == [("channel", "INVALID")]
    assert not Contact.objects.exists()


def test_a_nul_in_the_user_agent_is_cleaned_from_the_proof(shop, client):
    response = post(client, {"email": "ann@example.com"}, HTTP_USER_AGENT="Mozilla/5.0\x00(evil)\r\n")
    assert response.status_code == 202
    assert ConsentChange.objects.get().user_agent == "Mozilla/5.0(evil)"
    contact = Contact.objects.get()
    page = client.post(tokens.url("preferences", contact.pk).split("example.com", 1)[1],
                       {"action": "unsubscribe_all"}, HTTP_USER_AGENT="a\x00b")
    assert page.status_code == 200
    assert ConsentChange.objects.order_by("pk").last().user_agent == "ab"


def test_bad_bytes_in_tracking_links_and_their_headers_never_crash(shop, client):
    for path in ("o/%00x.gif", "c/%00.1:x/", "preferences/%00/", "unsubscribe/%ED%A0%80/", "confirm/%00/"):
        response = client.get(f"/plugins/global/saleor.flows/{path}", HTTP_USER_AGENT="a\x00b")
        assert response.status_code in (200, 400, 404), (path, response.status_code)


@pytest.mark.parametrize("levels", [101, 8_000])  # 8,000 levels fit under the 16 KiB body limit
def test_deeply_nested_signup_bodies_are_a_400(shop, client, levels):
    nested = "[" * levels + "]" * levels
    for body in (nested, '{"email": "ann@example.com", "topics": %s}' % nested):
        response = client.post(SUBSCRIBE, data=body, content_type="application/json",
                               HTTP_ORIGIN="https://shop.example.com")
        assert response.status_code == 400, response.content[:200]
    assert not Contact.objects.exists()


@pytest.mark.parametrize("address", ["a@[127.0.0.1]", "a@[IPv6:2001:db8::1]", "a@localhost", "a@192.168.0.1",
                                     "a@example", "a@-example.com", "a@example.com.", "a@example.c0m"])
def test_non_deliverable_signup_addresses_are_refused(shop, client, address):
    response = post(client, {"email": address})
    assert response.status_code == 400 and errors(response) == [("email", "INVALID")]
    assert not Contact.objects.exists()


def _signup_work(client, address, ip):
    """The SQL statements and the after-commit work of one signup, run as the host runs it (Celery mode)."""
    with dispatch.forced("celery"), CaptureQueriesContext(connection) as queries:
        from django.test import TestCase

        with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
            response = post(client, {"email": address, "first_name": "Ann"}, ip=ip)
    return response.status_code, response.json(), [query["sql"] for query in queries], len(callbacks)


def test_a_signup_does_the_same_work_for_known_and_unknown_addresses(shop, client):
    """No timing oracle: counted, not timed (a shared machine's clock is too noisy to compare 31 and 40 ms)."""
    shop.contact("known@example.com", first_name="Kim", email_consent="subscribed")
    shop.contact("left@example.com", email_consent="unsubscribed")
    # The shop's own settings are read once and cached for every address alike: warm them first.
    _signup_work(client, "warm-up@example.com", "203.0.113.9")
    known = _signup_work(client, "known@example.com", "203.0.113.1")
    unknown = _signup_work(client, "stranger@example.com", "203.0.113.2")
    left = _signup_work(client, "left@example.com", "203.0.113.3")
    assert known == unknown == left
    assert known[0] == 202 and known[3] == 1  # one enqueued task each
    assert not Contact.objects.filter(email="stranger@example.com").exists()  # the work is the task's


def test_the_signup_task_subscribes_with_proof_in_one_transaction(shop, client):
    """What the enqueued task runs (inline here): contact, consent, proof and the `subscribed` event together."""
    response = post(client, {"email": "stranger@example.com", "channel": "de"}, ip="203.0.113.9")
    assert response.status_code == 202
    contact = Contact.objects.get(email="stranger@example.com")
    change = ConsentChange.objects.get(contact=contact)
    assert (contact.email_consent, change.ip, change.user_agent) == ("subscribed", "203.0.113.9", "Mozilla/5.0 (test)")
    assert Event.objects.get(name="subscribed").channel == "de"
    assert json.loads(json.dumps(change.detail)) == {"form": "subscribe"}

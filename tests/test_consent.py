"""Consent from the storefront: the public subscribe endpoint, double opt-in, staff notices, the welcome trigger."""

import json

import pytest
from django.core import mail
from django.core.cache import cache

from saleor_flows.journeys import load_journey
from saleor_flows.models import ConsentChange, Contact, Event

SUBSCRIBE = "/plugins/global/saleor.flows/subscribe/"
KEY = "pk_test_storefront"
STOREFRONT = "https://shop.example.com"


@pytest.fixture
def shop(settings, flows):
    """The flows harness with signups enabled for a storefront; a fresh rate-limit cache."""
    cache.clear()
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "PUBLIC_KEY": KEY, "SUBSCRIBE_ALLOWED_ORIGINS": [STOREFRONT],
                             "TOPICS": [{"key": "newsletter", "label": {"en": "Newsletter", "de": "Newsletter"}},
                                        {"key": "offers", "label": {"en": "Offers", "de": "Angebote"}}]}
    yield flows
    cache.clear()


def configure(settings, **values):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, **values}


def post(client, body=None, *, ip="203.0.113.7", origin=STOREFRONT, form=False, **headers):
    body = {"public_key": KEY, **(body or {})}
    extra = {"REMOTE_ADDR": ip, "HTTP_USER_AGENT": "Mozilla/5.0 (test)", **headers}
    if origin:
        extra["HTTP_ORIGIN"] = origin
    if form:
        return client.post(SUBSCRIBE, data=body, **extra)
    return client.post(SUBSCRIBE, data=json.dumps(body), content_type="application/json", **extra)


def errors(response):
    return [(e["field"], e["code"]) for e in response.json()["errors"]]


def test_a_storefront_signup_subscribes_with_proof_and_records_an_event(shop, client):
    response = post(client, {"email": " Jane@Example.com ", "source": "storefront_form", "language": "de-DE",
                             "topics": ["newsletter"], "first_name": "Jane"})
    assert response.status_code == 202 and response.json() == {"ok": True, "confirmation_required": False}
    assert response["Access-Control-Allow-Origin"] == STOREFRONT
    contact = Contact.objects.get(email="jane@example.com")
    assert (contact.email_consent, contact.email_consent_source) == ("subscribed", "storefront_form")
    assert (contact.locale, contact.first_name) == ("de-DE", "Jane")
    change = ConsentChange.objects.get(contact=contact)
    assert (change.status, change.source, change.ip, change.user_agent) == (
        "subscribed", "storefront_form", "203.0.113.7", "Mozilla/5.0 (test)")
    event = Event.objects.get(name="subscribed")
    assert event.email == "jane@example.com"
    assert event.payload == {"channels": ["email"], "source": "storefront_form", "topics": ["newsletter"]}


def test_form_encoded_posts_work_too_and_phones_become_e164(shop, client):
    response = post(client, {"phone": "030 1234567", "country": "DE", "email": "max@example.com",
                             "topics": "offers"}, form=True)
    assert response.status_code == 202
    contact = Contact.objects.get(email="max@example.com")
    assert (contact.phone, contact.sms_consent, contact.email_consent) == ("+49301234567", "subscribed", "subscribed")
    assert Event.objects.get(name="subscribed").payload["channels"] == ["email", "sms"]


def test_a_phone_only_signup_records_sms_consent(shop, client):
    assert post(client, {"phone": "+1 415 555 2671"}).status_code == 202
    contact = Contact.objects.get(phone="+14155552671")
    assert (contact.email, contact.sms_consent, contact.sms_consent_source) == (None, "subscribed", "storefront_form")


@pytest.mark.parametrize("body, expected", [
    ({"email": "not-an-address"}, [("email", "INVALID")]),
    ({"phone": "12345"}, [("phone", "INVALID")]),
    ({"phone": "030 1234567"}, [("phone", "INVALID")]),  # no country code, no country given
    ({}, [("email", "REQUIRED")]),
    ({"email": "a@example.com", "source": "import"}, [("source", "INVALID")]),  # anonymous callers cannot claim it
    ({"email": "a@example.com", "topics": ["nope"]}, [("topics", "INVALID")]),
    ({"email": "a@example.com", "language": "<script>"}, [("language", "INVALID")]),
    ({"email": "bad", "phone": "bad"}, [("email", "INVALID"), ("phone", "INVALID")]),  # every problem at once
])
def test_bad_input_gets_a_clear_400_and_stores_nothing(shop, client, body, expected):
    response = post(client, body)
    assert response.status_code == 400
    assert errors(response) == expected
    assert all(e["message"] for e in response.json()["errors"])
    assert not Contact.objects.exists() and not ConsentChange.objects.exists()


def test_phone_errors_say_what_is_wrong(shop, client):
    message = post(client, {"phone": "030 1234567"}).json()["errors"][0]["message"]
    assert "country code" in message


def test_the_public_key_is_required_and_must_match(shop, client, settings):
    missing = client.post(SUBSCRIBE, data=json.dumps({"email": "a@example.com"}), content_type="application/json")
    assert missing.status_code == 400 and errors(missing) == [("public_key", "REQUIRED")]
    wrong = post(client, {"email": "a@example.com", "public_key": "pk_other_shop"})
    assert wrong.status_code == 403 and errors(wrong) == [("public_key", "INVALID")]
    configure(settings, PUBLIC_KEY="")
    off = post(client, {"email": "a@example.com"})
    assert off.status_code == 403 and errors(off) == [("public_key", "NOT_CONFIGURED")]
    assert not Contact.objects.exists()


def test_the_key_may_come_as_a_header(shop, client):
    response = client.post(SUBSCRIBE, data=json.dumps({"email": "a@example.com"}), content_type="application/json",
                           HTTP_X_FLOWS_PUBLIC_KEY=KEY)
    assert response.status_code == 202


def test_rate_limited_per_ip_with_retry_after(shop, client, settings):
    configure(settings, SUBSCRIBE_RATE_PER_IP=3)
    for number in range(3):
        assert post(client, {"email": f"p{number}@example.com"}).status_code == 202
    limited = post(client, {"email": "p9@example.com"})
    assert limited.status_code == 429 and errors(limited) == [(None, "RATE_LIMITED")]
    assert 0 < int(limited["Retry-After"]) <= 3600
    assert not Contact.objects.filter(email="p9@example.com").exists()
    assert post(client, {"email": "p9@example.com"}, ip="198.51.100.1").status_code == 202  # another IP is fine


def test_rate_limited_per_address_whatever_the_ip(shop, client, settings):
    configure(settings, SUBSCRIBE_RATE_PER_ADDRESS=2)
    codes = [post(client, {"email": "jane@example.com"}, ip=f"198.51.100.{n}").status_code for n in range(3)]
    assert codes == [202, 202, 429]


def test_cors_preflight_and_origins(shop, client):
    preflight = client.options(SUBSCRIBE, HTTP_ORIGIN=STOREFRONT, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
                               HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type")
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == STOREFRONT
    assert "POST" in preflight["Access-Control-Allow-Methods"]
    assert "content-type" in preflight["Access-Control-Allow-Headers"].lower()
    foreign = client.options(SUBSCRIBE, HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert foreign.status_code == 403 and "Access-Control-Allow-Origin" not in foreign
    # A form POST needs no preflight: a foreign origin is refused before anything is stored.
    response = post(client, {"email": "a@example.com"}, origin="https://evil.example", form=True)
    assert response.status_code == 403 and not Contact.objects.exists()
    # Server-to-server calls send no Origin at all.
    assert post(client, {"email": "a@example.com"}, origin=None).status_code == 202


def test_answers_never_reveal_whether_an_address_is_known(shop, client):
    shop.contact("known@example.com", email_consent="subscribed")
    shop.contact("left@example.com", email_consent="unsubscribed")
    answers = [post(client, {"email": email}) for email in ("new@example.com", "known@example.com",
                                                            "left@example.com", "new@example.com")]
    assert {(a.status_code, a.content) for a in answers} == {(202, b'{"ok": true, "confirmation_required": false}')}
    # The repeat signup of a subscriber changes nothing and announces nothing twice.
    assert sorted(Event.objects.filter(name="subscribed").values_list("email", flat=True)) == [
        "left@example.com", "new@example.com"]
    assert Contact.objects.get(email="left@example.com").email_consent == "subscribed"  # they asked again


def test_staff_hear_about_each_new_subscriber(shop, client, settings):
    configure(settings, NEW_SUBSCRIBER_NOTIFY=["owner@shop.example.com", "me@elsewhere.example"],
              STAFF_NOTIFY_RECIPIENTS=["owner@shop.example.com"])
    post(client, {"email": "jane@example.com"})
    post(client, {"email": "jane@example.com"})  # not new: no second notice
    (notice,) = mail.outbox
    assert notice.to == ["owner@shop.example.com"]  # a subscriber's address goes to staff addresses only
    assert notice.subject == "New subscriber: jane@example.com"
    assert "storefront_form" in notice.body and "List-Unsubscribe" not in notice.extra_headers


def _confirm_path(message) -> str:
    link = next(word for word in message.body.split() if "/confirm/" in word)
    return link[link.index("/plugins/"):]


def test_double_opt_in_from_signup_to_a_confirmed_subscriber_who_starts_the_welcome_journey(shop, client, settings):
    configure(settings, DOUBLE_OPT_IN=True)
    welcome = load_journey("welcome")
    welcome["trigger"] = {"event": "subscribed"}  # a newsletter welcome: starts from storefront signups
    shop.flow(welcome, slug="welcome")

    response = post(client, {"email": "jana@example.com", "language": "de"})
    assert response.status_code == 202 and response.json()["confirmation_required"] is True
    contact = Contact.objects.get(email="jana@example.com")
    assert contact.email_consent == "pending"
    assert not Event.objects.filter(name="subscribed").exists()  # not a subscriber yet: no welcome
    (confirmation,) = mail.outbox
    assert confirmation.subject == "Bitte bestätige deine Anmeldung bei Test Shop"
    assert "List-Unsubscribe" not in confirmation.extra_headers  # transactional
    path = _confirm_path(confirmation)
    assert path in confirmation.alternatives[0][0]  # the HTML button carries the same link
    assert "jana" not in path

    # A link scanner's GET confirms nothing.
    page = client.get(path, HTTP_USER_AGENT="Scanner/1.0")
    assert page.status_code == 200 and 'method="post"' in page.content.decode()
    assert "Ja, anmelden" in page.content.decode()
    assert Contact.objects.get(pk=contact.pk).email_consent == "pending"

    done = client.post(path, REMOTE_ADDR="192.0.2.44", HTTP_USER_AGENT="Mozilla/5.0 (phone)")
    assert done.status_code == 200 and "ist jetzt" in done.content.decode()
    contact.refresh_from_db()
    assert (contact.email_consent, contact.email_consent_source) == ("subscribed", "double_opt_in")
    proof = ConsentChange.objects.filter(contact=contact).order_by("at", "pk").last()
    assert (proof.source, proof.ip, proof.user_agent) == ("double_opt_in", "192.0.2.44", "Mozilla/5.0 (phone)")
    assert proof.detail["requested_via"] == "storefront_form"
    event = Event.objects.get(name="subscribed")
    assert event.payload["source"] == "double_opt_in" and event.payload["requested_via"] == "storefront_form"
    welcome_mail = shop.emails_to("jana@example.com")[-1]
    assert welcome_mail.subject == "Willkommen! Schön, dass du da bist"

    assert client.post(path).status_code == 200  # a second click is harmless
    assert Event.objects.filter(name="subscribed").count() == 1


def test_an_old_confirmation_link_never_resubscribes_someone_who_left(shop, client, settings):
    configure(settings, DOUBLE_OPT_IN=True)
    post(client, {"email": "jane@example.com"})
    path = _confirm_path(mail.outbox[0])
    contact = Contact.objects.get()
    contact.email_consent = "unsubscribed"
    contact.save()
    response = client.post(path)
    assert response.status_code == 409 and "nothing to confirm" in response.content.decode()
    assert Contact.objects.get().email_consent == "unsubscribed"


def test_confirmation_links_expire(shop, client, settings):
    configure(settings, DOUBLE_OPT_IN=True, OPT_IN_CONFIRM_DAYS=0)
    post(client, {"email": "jane@example.com"})
    import time

    time.sleep(1.1)  # signing timestamps are in whole seconds
    response = client.post(_confirm_path(mail.outbox[0]))
    assert response.status_code == 400 and "expired" in response.content.decode()
    assert Contact.objects.get().email_consent == "pending"


# --- The shop's consent policy (CONSENT_POLICY) -----------------------------------------------------------

def _policy(settings, policy):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "CONSENT_POLICY": policy}


def _promo_flow(flows):
    from .flowkit import chain, email

    flows.flow(chain("promo", ("mail", email("News"))), slug="promo")


def _basis_and_skips(flows, address):
    sent = [entry.detail.get("basis") for entry in flows.trail(address) if entry.kind == "sent"]
    skipped = [entry.detail["reason"] for entry in flows.trail(address) if entry.kind == "skipped"]
    return sent, skipped


def test_opt_in_the_default_needs_a_yes_and_the_trail_names_the_policy(flows):
    _promo_flow(flows)
    flows.contact("yes@example.com", email_consent="subscribed")
    flows.contact("buyer@example.com", order_count=2)
    for address in ("yes@example.com", "buyer@example.com"):
        flows.event("promo", email=address)
    assert _basis_and_skips(flows, "yes@example.com") == (["consent"], [])
    assert _basis_and_skips(flows, "buyer@example.com") == ([], ["no email marketing consent (never; policy opt_in)"])


def test_soft_opt_in_reaches_customers_who_bought_and_never_objected(flows, settings):
    _policy(settings, "soft_opt_in")
    _promo_flow(flows)
    flows.contact("buyer@example.com", order_count=1)
    flows.contact("browser@example.com")  # never bought: no soft opt-in
    flows.contact("objected@example.com", order_count=3, email_consent="unsubscribed")
    for address in ("buyer@example.com", "browser@example.com", "objected@example.com"):
        flows.event("promo", email=address)
    assert _basis_and_skips(flows, "buyer@example.com") == (["soft_opt_in"], [])
    assert [m.subject for m in flows.emails_to("buyer@example.com")] == ["News"]
    buyer_mail = flows.emails_to("buyer@example.com")[0]
    assert "List-Unsubscribe" in buyer_mail.extra_headers and "/unsubscribe/" in buyer_mail.alternatives[0][0]
    assert _basis_and_skips(flows, "browser@example.com")[1] == ["no email marketing consent (never; policy soft_opt_in)"]
    assert _basis_and_skips(flows, "objected@example.com")[0] == []


def test_opt_out_per_channel_reaches_all_but_those_who_said_no_and_never_by_sms(flows, settings):
    from .flowkit import chain

    _policy(settings, {"default": "opt_in", "us-store": "opt_out"})
    _promo_flow(flows)
    flows.flow(chain("promo", ("text", {"type": "send_sms", "body": "Sale", "next": None})), slug="promo-sms")
    flows.contact("anyone@example.com", phone="+12025550143")
    flows.contact("eu@example.com")
    flows.contact("no@example.com", email_consent="unsubscribed")
    flows.event("promo", email="anyone@example.com", channel="us-store")
    flows.event("promo", email="eu@example.com", channel="eu-store")
    flows.event("promo", email="no@example.com", channel="us-store")
    sent, skipped = _basis_and_skips(flows, "anyone@example.com")
    assert sent == ["opt_out"] and skipped == ["no sms marketing consent (never; policy opt_in)"]
    assert _basis_and_skips(flows, "eu@example.com") == ([], ["no email marketing consent (never; policy opt_in)",
                                                              "no phone number"])
    assert _basis_and_skips(flows, "no@example.com")[0] == []


def test_a_misspelt_policy_fails_loudly(flows, settings):
    from django.core.exceptions import ImproperlyConfigured

    from saleor_flows.engine.consent import policy_for

    _policy(settings, "optout")
    with pytest.raises(ImproperlyConfigured, match="opt_in, soft_opt_in, opt_out"):
        policy_for("")

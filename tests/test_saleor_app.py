"""App mode's edge (saleor_flows/saleor_app/): Saleor's signed webhooks in, the plugin's events out.

Contract tests replay real Saleor 3.24 deliveries (tests/fixtures/saleor_app/deliveries/: bodies and
headers exactly as captured, signatures that verify against the captured jwks.sample.json, served by a real
local HTTP server). The rest signs deliveries of the App's own subscription queries with a generated key,
as Saleor does, against a stand-in Saleor (real HTTP) that serves the matching JWKS and answers GraphQL.
"""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils.dateparse import parse_datetime

from saleor_flows import clock
from saleor_flows.api import auth
from saleor_flows.dashboard.register import encrypt
from saleor_flows.engine import holds
from saleor_flows.engine.contacts import set_consent
from saleor_flows.engine.readiness import check_flow
from saleor_flows.journeys import load_journey
from saleor_flows.models import Contact, Event, IdleTimer, SaleorAppInstallation, StepExecution, StockAlert
from saleor_flows.saleor_app import installation
from saleor_flows.saleor_app.apps import connect, disconnect
from saleor_flows.saleor_app.queries import WEBHOOKS
from tests.saleor_app_helpers import JWKS_PATH, SaleorStandIn, jwk_of, new_key

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "saleor_app"
SAMPLE_API_URL = "http://127.0.0.1:8000/graphql/"  # the Saleor the samples were captured from
ANSWERS = json.loads((FIXTURES / "app-query-answers.json").read_text())
JANE = "jane+1795419344@example.com"
OBJECTS = {"user": "user", "checkout": "checkout", "order": "order"}


def sample(name: str) -> tuple[bytes, dict]:
    delivery = json.loads((FIXTURES / "deliveries" / f"{name}.json").read_text())
    return delivery["body"].encode(), delivery["headers"]


def post(client, event: str, body: bytes, headers: dict):
    return client.generic("POST", f"/saleor/webhooks/{event.lower()}/", body, content_type="application/json",
                          headers={k: v for k, v in headers.items() if k != "Content-Type"})


@pytest.fixture
def app_mode(settings):
    """A deployment in App mode: the App edge wired to the engine, its URLs mounted at the root."""
    settings.ROOT_URLCONF = "tests.app_urls"
    settings.ALLOWED_HOSTS = ["testserver"]
    connect()
    auth.key_set.reset()
    installation.forget()
    yield settings
    disconnect()
    auth.key_set.reset()
    installation.forget()
    clock.reset()


@pytest.fixture
def saleor(app_mode):
    server = SaleorStandIn()
    app_mode.SALEOR_FLOWS = {**app_mode.SALEOR_FLOWS, "APP_SALEOR_API_URL": server.api_url,
                             "CHECKOUT_URL_TEMPLATE": "https://shop.example.com/checkout?checkout={token}",
                             "CONSENT_METADATA_KEY": "marketing_consent"}
    yield server
    server.close()


@pytest.fixture
def sample_saleor(app_mode):
    """The instance the real samples came from: its captured key set, served by a real local server."""
    server = SaleorStandIn()
    server.files[JWKS_PATH] = (FIXTURES / "jwks.sample.json").read_bytes()
    app_mode.SALEOR_FLOWS = {**app_mode.SALEOR_FLOWS, "APP_SALEOR_API_URL": SAMPLE_API_URL,
                             "APP_SALEOR_JWKS_URL": server.url + JWKS_PATH}
    yield server
    server.close()


def at_issue(body: bytes, after=timedelta(seconds=2)):
    clock.set_now(parse_datetime(json.loads(body)["issuedAt"]) + after)


def delivery(typename: str, issued_at=None, **objects) -> bytes:
    """A delivery body as Saleor serializes it (json.dumps' default separators, as the samples show)."""
    issued_at = issued_at or clock.now()
    return json.dumps({"__typename": typename, "issuedAt": issued_at.isoformat(), "version": "3.24.0",
                       **objects}).encode()


def deliver(client, saleor, event: str, typename: str, **objects):
    body = delivery(typename, **objects)
    return post(client, event, body, saleor.headers(event, body))


# --- contract: real Saleor deliveries -----------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("name, event_name", [
    ("CUSTOMER_CREATED", "customer_created"), ("CHECKOUT_CREATED", "checkout_created"),
    ("CHECKOUT_UPDATED.3", "checkout_updated"), ("ORDER_CREATED", "order_created"),
    ("ORDER_FULLY_PAID", "order_fully_paid"), ("ORDER_FULFILLED", "order_fulfilled")])
def test_real_saleor_deliveries_verify_and_are_recorded_once(client, sample_saleor, name, event_name):
    body, headers = sample(name)
    at_issue(body)
    response = post(client, name.split(".")[0], body, headers)
    assert response.status_code == 200, response.content
    assert response.json() == {"recorded": True}
    (event,) = Event.objects.filter(name=event_name)
    assert event.email == (JANE if name != "CHECKOUT_CREATED" else "")
    # Saleor retries a delivery it got no 2xx for, with the same body: the retry is a duplicate.
    again = post(client, name.split(".")[0], body, headers)
    assert again.status_code == 200 and again.json() == {"recorded": False}
    assert Event.objects.filter(name=event_name).count() == 1
    assert sample_saleor.jwks_fetches == 1  # and the key set is cached


@pytest.mark.django_db
def test_a_tampered_body_is_refused_as_final(client, sample_saleor):
    body, headers = sample("ORDER_CREATED")
    at_issue(body)
    tampered = body.replace(b'"amount": 40.0', b'"amount": 0.01')
    assert tampered != body
    response = post(client, "ORDER_CREATED", tampered, headers)
    # Saleor retries 5xx only; a forged delivery must not be retried.
    assert response.status_code == 401
    assert response.json()["error"] == {"code": "INVALID_SIGNATURE", "message": "The signature does not match the body."}
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_a_signature_by_another_key_under_saleors_key_id_is_refused(client, sample_saleor):
    body, headers = sample("CUSTOMER_CREATED")
    at_issue(body)
    kid = json.loads((FIXTURES / "jwks.sample.json").read_text())["keys"][0]["kid"]
    forged = SaleorStandIn.headers(sample_saleor, "CUSTOMER_CREATED", body, key=new_key(), kid=kid,
                                   api_url=SAMPLE_API_URL, domain="127.0.0.1:8000")
    response = post(client, "CUSTOMER_CREATED", body, forged)
    assert response.status_code == 401 and not Event.objects.exists()


@pytest.mark.django_db
def test_a_delivery_from_another_instance_is_refused(client, sample_saleor, settings):
    body, headers = sample("CUSTOMER_CREATED")
    at_issue(body)
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "APP_SALEOR_API_URL": "https://other-shop.example/graphql/"}
    response = post(client, "CUSTOMER_CREATED", body, headers)
    assert response.status_code == 403
    assert response.json()["error"]["message"] == ("Flows serves the Saleor at https://other-shop.example/graphql/, "
                                                   "not http://127.0.0.1:8000/graphql/.")
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "APP_SALEOR_API_URL": SAMPLE_API_URL}
    assert post(client, "CUSTOMER_CREATED", body, {**headers, "Saleor-Domain": "evil.example"}).status_code == 403
    assert sample_saleor.jwks_fetches == 0 and not Event.objects.exists()


@pytest.mark.django_db
def test_a_stale_delivery_is_refused(client, sample_saleor):
    body, headers = sample("CUSTOMER_CREATED")
    at_issue(body, after=timedelta(days=2))
    response = post(client, "CUSTOMER_CREATED", body, headers)
    assert response.status_code == 400 and response.json()["error"]["code"] == "STALE_DELIVERY"
    assert not Event.objects.exists()


# --- signatures and keys with a generated key ---------------------------------------------


@pytest.mark.django_db
def test_a_rotated_key_is_fetched_once_and_unknown_keys_do_not_hammer_saleor(client, saleor, monkeypatch):
    user = ANSWERS["user"]
    assert deliver(client, saleor, "CUSTOMER_UPDATED", "CustomerUpdated", user=user).status_code == 200
    assert saleor.jwks_fetches == 1
    # Saleor rotates its key: the next delivery names a key id we have not seen.
    rotated = new_key()
    saleor.publish(jwk_of(saleor.key, saleor.kid), jwk_of(rotated, "saleor-key-2"))
    body = delivery("CustomerUpdated", user={**user, "lastName": "Roe"})
    signed = saleor.headers("CUSTOMER_UPDATED", body, key=rotated, kid="saleor-key-2")
    # Fetched too recently to fetch again: retryable (503), Saleor comes back after its backoff.
    deferred = post(client, "CUSTOMER_UPDATED", body, signed)
    assert deferred.status_code == 503 and deferred.json()["error"]["code"] == "KEYS_UNAVAILABLE"
    assert saleor.jwks_fetches == 1
    auth.key_set.backdate(auth.KeySet.MIN_REFETCH_SECONDS + 1)
    assert post(client, "CUSTOMER_UPDATED", body, signed).status_code == 200
    assert saleor.jwks_fetches == 2
    # A key id Saleor does not publish, after a refetch: final.
    auth.key_set.backdate(auth.KeySet.MIN_REFETCH_SECONDS + 1)
    stranger = delivery("CustomerUpdated", user={**user, "lastName": "Poe"})
    refused = post(client, "CUSTOMER_UPDATED", stranger,
                   saleor.headers("CUSTOMER_UPDATED", stranger, key=new_key(), kid="not-saleors"))
    assert refused.status_code == 401 and saleor.jwks_fetches == 3
    for _ in range(5):  # a stream of forged key ids is answered from the cache
        post(client, "CUSTOMER_UPDATED", stranger, saleor.headers("CUSTOMER_UPDATED", stranger, key=new_key(),
                                                                  kid="not-saleors-either"))
    assert saleor.jwks_fetches == 3
    assert Event.objects.filter(name="customer_updated").count() == 2


@pytest.mark.django_db
def test_unreachable_keys_ask_saleor_to_retry(client, saleor, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "APP_SALEOR_JWKS_URL": saleor.url + "/nothing-here.json"}
    response = deliver(client, saleor, "CUSTOMER_CREATED", "CustomerCreated", user=ANSWERS["user"])
    assert response.status_code == 503 and not Event.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("case, status, code", [
    ("no-signature", 401, "INVALID_SIGNATURE"), ("not-a-jws", 401, "INVALID_SIGNATURE"),
    ("base64-payload", 401, "INVALID_SIGNATURE"), ("wrong-event-header", 400, "WRONG_EVENT"),
    ("wrong-typename", 400, "WRONG_PAYLOAD"), ("not-json", 400, "MALFORMED"), ("too-deep", 400, "MALFORMED"),
    ("no-issued-at", 400, "MISSING_ISSUED_AT"), ("too-large", 413, "REQUEST_TOO_LARGE"),
    ("no-api-url", 400, "MISSING_SALEOR_API_URL")])
def test_what_saleor_never_sends_is_refused_with_a_final_status(client, saleor, settings, case, status, code):
    body = delivery("CustomerCreated", user=ANSWERS["user"])
    headers = saleor.headers("CUSTOMER_CREATED", body)
    if case == "no-signature":
        headers["Saleor-Signature"] = ""
    elif case == "not-a-jws":
        headers["Saleor-Signature"] = "not.a.jws.at.all"
    elif case == "base64-payload":  # an attached, base64 payload: not what Saleor signs
        header = headers["Saleor-Signature"].split(".")[0]
        headers["Saleor-Signature"] = f"{header}.eyJ9.c2ln"
    elif case == "wrong-event-header":
        headers["Saleor-Event"] = "order_created"
    elif case == "wrong-typename":
        body = delivery("OrderCreated", order=ANSWERS["order"])
        headers = saleor.headers("CUSTOMER_CREATED", body)
    elif case == "not-json":
        body = b"{not json"
        headers = saleor.headers("CUSTOMER_CREATED", body)
    elif case == "too-deep":
        body = b'{"__typename": "CustomerCreated", "x": ' + b"[" * 50 + b"]" * 50 + b"}"
        headers = saleor.headers("CUSTOMER_CREATED", body)
    elif case == "no-issued-at":
        body = json.dumps({"__typename": "CustomerCreated", "user": ANSWERS["user"]}).encode()
        headers = saleor.headers("CUSTOMER_CREATED", body)
    elif case == "too-large":
        settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "APP_WEBHOOK_MAX_BYTES": 1000}
        body = delivery("CustomerCreated", user={**ANSWERS["user"], "lastName": "x" * 2000})
        headers = saleor.headers("CUSTOMER_CREATED", body)
    elif case == "no-api-url":
        del headers["Saleor-Api-Url"]
    response = post(client, "CUSTOMER_CREATED", body, headers)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_only_posts_to_known_events(client, saleor):
    assert client.get("/saleor/webhooks/customer_created/").status_code == 405
    assert client.post("/saleor/webhooks/shop_deleted/", b"{}", content_type="application/json").status_code == 404


# --- the manifest ---------------------------------------------------------------------------


def test_the_app_manifest_subscribes_every_webhook_with_its_query(client, saleor):
    manifest = client.get("/app/manifest/", HTTP_HOST="testserver").json()
    assert manifest["tokenTargetUrl"] == "http://testserver/app/register/"
    assert manifest["permissions"] == ["MANAGE_CHECKOUTS", "MANAGE_ORDERS", "MANAGE_PLUGINS", "MANAGE_PRODUCTS",
                                       "MANAGE_USERS"]
    events = [hook["asyncEvents"] for hook in manifest["webhooks"]]
    assert events == [[webhook.event] for webhook in WEBHOOKS] and ["APP_DELETED"] in events
    for hook in manifest["webhooks"]:
        (event,) = hook["asyncEvents"]
        assert hook["targetUrl"] == f"http://testserver/saleor/webhooks/{event.lower()}/"
        assert hook["query"].startswith("subscription { event { __typename issuedAt ... on ")
        # The receiver exists: an unsigned POST is refused by it (not a 404).
        assert client.post(hook["targetUrl"].removeprefix("http://testserver"), b"{}",
                           content_type="application/json").status_code == 400
    extensions = {extension["mount"] for extension in manifest["extensions"]}
    assert "NAVIGATION_CUSTOMERS" in extensions


# --- parity: the same events the plugin records ----------------------------------------------


@pytest.mark.django_db
def test_a_checkout_is_abandoned_and_mailed_as_in_plugin_mode(client, saleor, flows, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "TRACKING": False}  # links as they are, not redirects
    flows.flow(load_journey("abandoned_checkout"), slug="abandoned-checkout")
    clock.set_now(parse_datetime(ANSWERS["checkout"]["lastChange"]) + timedelta(seconds=1))
    response = deliver(client, saleor, "CHECKOUT_UPDATED", "CheckoutUpdated", checkout=ANSWERS["checkout"])
    assert response.status_code == 200
    event = Event.objects.get(name="checkout_updated")
    assert event.status == Event.Status.PROCESSED and event.email == JANE and event.channel == "default-channel"
    line = event.payload["lines"][0]
    assert (line["product_name"], line["variant_name"], line["quantity"], line["base_price"], line["thumbnail"]) == (
        "Monospace Tee", "S", 2, "20.00", ANSWERS["checkout"]["lines"][0]["variant"]["product"]["thumbnail"]["url"])
    assert event.payload["token"] == "95072a2e-e997-46dc-8952-bc1e86ed11a7"
    assert event.payload["total_gross_amount"] == "40.00" and event.payload["currency"] == "USD"
    assert event.payload["checkout_url"] == "https://shop.example.com/checkout?checkout=95072a2e-e997-46dc-8952-bc1e86ed11a7"
    # The storefront's newsletter box on the checkout is consent, as in plugin mode.
    assert Contact.objects.get(email=JANE).email_consent == "subscribed"
    assert IdleTimer.objects.get(key="checkout:95072a2e-e997-46dc-8952-bc1e86ed11a7").state == IdleTimer.State.WAITING
    flows.advance(hours=1, minutes=5)  # idle for an hour: abandoned
    flows.advance(hours=1, minutes=5)  # the journey's first wait
    (email,) = flows.emails_to(JANE)
    html = email.alternatives[0][0]
    assert "Monospace Tee" in html and "monospace-tee_thumbnail_256.png" in html
    assert "checkout=95072a2e-e997-46dc-8952-bc1e86ed11a7" in html


@pytest.mark.django_db
def test_orders_count_and_cancel_the_abandoned_checkout(client, saleor, flows):
    clock.set_now(parse_datetime(ANSWERS["order"]["created"]))
    deliver(client, saleor, "CHECKOUT_UPDATED", "CheckoutUpdated", checkout=ANSWERS["checkout"])
    assert deliver(client, saleor, "ORDER_CREATED", "OrderCreated", order=ANSWERS["order"]).status_code == 200
    contact = Contact.objects.get(email=JANE)
    assert (contact.order_count, str(contact.total_spent), contact.currency) == (1, "40.00", "USD")
    assert Event.objects.filter(name="first_order", status=Event.Status.PROCESSED).count() == 1
    assert IdleTimer.objects.get().state == IdleTimer.State.CANCELLED
    # Another delivery of the same order (a retry with a new body, a redelivery): enrolled once.
    clock.advance(timedelta(seconds=30))
    again = deliver(client, saleor, "ORDER_CREATED", "OrderCreated", order=ANSWERS["order"])
    assert again.json() == {"recorded": False} and Event.objects.filter(name="order_created").count() == 1
    body = delivery("FulfillmentCreated", fulfillment=ANSWERS["fulfillment"], order=ANSWERS["order"])
    assert post(client, "FULFILLMENT_CREATED", body, saleor.headers("FULFILLMENT_CREATED", body)).status_code == 200
    fulfilment = Event.objects.get(name="fulfillment_created")
    assert (fulfilment.email, fulfilment.channel, fulfilment.status) == (JANE, "default-channel", Event.Status.PROCESSED)


@pytest.mark.django_db
def test_customer_metadata_gives_consent_and_birthday_and_deletion_erases(client, saleor, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "BIRTHDAY_ATTRIBUTE": "birthday"}
    clock.set_now(parse_datetime(ANSWERS["user"]["updatedAt"]))
    assert deliver(client, saleor, "CUSTOMER_CREATED", "CustomerCreated", user=ANSWERS["user"]).status_code == 200
    contact = Contact.objects.get(email=JANE)
    assert (contact.first_name, contact.locale, contact.user_id) == ("Jane", "en", "VXNlcjo0OA==")
    assert contact.email_consent == "subscribed" and contact.attributes["birthday"] == "1990-04-02"
    assert deliver(client, saleor, "CUSTOMER_DELETED", "CustomerDeleted", user=ANSWERS["user"]).status_code == 200
    # Erased as in plugin mode: no profile, events kept for counts without identity, the address suppressed.
    assert not Contact.objects.exists()
    assert list(Event.objects.values_list("email", "payload")) == [("", {}), ("", {})]


@pytest.mark.django_db
def test_back_in_stock_tells_the_waiting_shoppers(client, saleor, flows):
    flows.event("back_in_stock_requested", email=JANE, channel="default-channel",
                payload={"variant_id": "UHJvZHVjdFZhcmlhbnQ6MzQ4", "product_name": "Monospace Tee"})
    assert StockAlert.objects.filter(notified_at__isnull=True).count() == 1
    response = deliver(client, saleor, "PRODUCT_VARIANT_BACK_IN_STOCK", "ProductVariantBackInStock",
                       productVariant=ANSWERS["productVariant"], warehouse={"id": "V2FyZWhvdXNlOjE="})
    assert response.status_code == 200
    (event,) = Event.objects.filter(name="back_in_stock")
    assert event.email == JANE and event.payload["quantity_available"] == 3
    assert StockAlert.objects.filter(notified_at__isnull=True).count() == 0


# --- uninstall, reinstall, token ----------------------------------------------------------


def install(saleor, app_id="QXBwOjQ=", token="app-token-1234"):
    now = clock.now()
    return SaleorAppInstallation.objects.create(saleor_api_url=saleor.api_url, saleor_domain=saleor.domain,
                                                app_id=app_id, token_encrypted=encrypt(token), registered_at=now,
                                                updated_at=now)


@pytest.mark.django_db
def test_app_deleted_holds_all_sending_and_reinstalling_resumes_it(client, saleor, flows):
    install(saleor)
    flows.flow({"trigger": {"event": "customer_created"}, "kind": "transactional", "start": "hello",
                "steps": {"hello": {"type": "send_email", "subject": "Hello",
                                      "mjml": "<mjml><mj-body><mj-section><mj-column><mj-text>Hi</mj-text>"
                                              "</mj-column></mj-section></mj-body></mjml>", "next": None}}})
    assert deliver(client, saleor, "APP_DELETED", "AppDeleted", app=ANSWERS["app"]).json() == {"held": True}
    assert holds.sending_held().startswith("the Saleor App is not installed (app_deleted)")
    # The merchant sees why, next to the flow's other checks.
    (check,) = [c for c in check_flow(load_journey("welcome")) if c.code == "sending_held"]
    assert check.severity == "warning" and "install it again to resume" in check.message
    flows.event("customer_created", email="held@example.com")
    assert flows.emails_to("held@example.com") == []
    (waiting,) = StepExecution.objects.all()
    assert waiting.state == StepExecution.State.PENDING  # kept where it was, not dropped

    # Installed again from the Dashboard: Saleor confirms the new token is ours.
    saleor.answer(200, {"data": {"app": {"id": "QXBwOjQ=", "identifier": "saleor.flows.dashboard"}}})
    headers = {"Saleor-Api-Url": saleor.api_url, "Saleor-Domain": saleor.domain}
    response = client.post("/app/register/", json.dumps({"auth_token": "app-token-5678"}),
                           content_type="application/json", headers=headers)
    assert response.status_code == 200, response.content
    installation.forget()
    assert holds.sending_held() == ""
    flows.advance(minutes=16)
    assert [m.subject for m in flows.emails_to("held@example.com")] == ["Hello"]


@pytest.mark.django_db
def test_another_apps_deletion_changes_nothing(client, saleor):
    install(saleor)
    response = deliver(client, saleor, "APP_DELETED", "AppDeleted", app={"id": "QXBwOjk5", "identifier": "x"})
    assert response.json() == {"held": False} and holds.sending_held() == ""


# --- writing consent back to Saleor ---------------------------------------------------------


@pytest.mark.django_db
def test_consent_changed_in_flows_is_written_to_the_users_metadata_with_the_app_token(
        saleor, flows, django_capture_on_commit_callbacks):
    install(saleor)
    contact = flows.contact(JANE, user_id="VXNlcjo0OA==")
    saleor.answer(200, {"data": {"m0": {"errors": []}}})
    with django_capture_on_commit_callbacks(execute=True):
        set_consent(contact, "email", "unsubscribed", source="preference_centre", at=clock.now())
        contact.save()
    (written,) = saleor.graphql_requests
    assert written.headers["Authorization"] == "Bearer app-token-1234"
    assert "updateMetadata" in written.json()["query"]
    assert written.json()["variables"] == {"m0_id": "VXNlcjo0OA==",
                                           "m0_input": [{"key": "marketing_consent", "value": "false"}]}
    # SMS STOP goes to the SMS key.
    saleor.answer(200, {"data": {"m0": {"errors": []}}})
    with django_capture_on_commit_callbacks(execute=True):
        set_consent(contact, "sms", "unsubscribed", source="sms_stop", at=clock.now())
    assert saleor.graphql_requests[-1].json()["variables"]["m0_input"] == [
        {"key": "marketing_consent_sms", "value": "false"}]


@pytest.mark.django_db
def test_a_token_saleor_refuses_holds_sending(saleor, flows, django_capture_on_commit_callbacks):
    install(saleor)
    contact = flows.contact(JANE, user_id="VXNlcjo0OA==")
    saleor.answer(401, {"errors": [{"message": "Invalid token"}]})
    with django_capture_on_commit_callbacks(execute=True):
        set_consent(contact, "email", "subscribed", source="preference_centre", at=clock.now())
    assert len(saleor.graphql_requests) == 1
    assert SaleorAppInstallation.objects.get().removed_reason == "token_refused"
    assert "token_refused" in holds.sending_held()


@pytest.mark.django_db
def test_consent_that_came_from_saleor_is_not_written_back(saleor, flows, django_capture_on_commit_callbacks):
    install(saleor)
    contact = flows.contact(JANE, user_id="VXNlcjo0OA==")
    with django_capture_on_commit_callbacks(execute=True):
        set_consent(contact, "email", "subscribed", source="saleor_user_metadata", at=clock.now())
    assert saleor.graphql_requests == []


# --- data a webhook lacks: Saleor's products for storefront events ----------------------------


@pytest.mark.django_db
def test_storefront_events_show_saleors_own_product_data_asked_with_the_app_token(saleor, settings):
    from django.core.cache import cache

    from saleor_flows.web.untrusted import storefront_payload

    install(saleor)
    cache.clear()
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "PRODUCT_URL_TEMPLATE": "https://shop.example.com/p/{slug}/"}
    product = {"id": "UHJvZHVjdDoxNTI=", "name": "Monospace Tee", "slug": "monospace-tee",
               "thumbnail": {"url": "https://shop.example.com/media/tee.png"},
               "channelListings": [{"isPublished": True, "publishedAt": "2026-01-01T00:00:00+00:00",
                                    "channel": {"slug": "default-channel"}}]}
    saleor.answer(200, {"data": {"productVariant": {
        "id": "UHJvZHVjdFZhcmlhbnQ6MzQ4", "name": "S", "product": product,
        "pricing": {"price": {"gross": {"amount": 20.0, "currency": "USD"}}}}}})
    claimed = {"variant_id": "UHJvZHVjdFZhcmlhbnQ6MzQ4", "product_name": "FREE MONEY",
               "thumbnail": "https://evil.example/x.png"}
    shown = storefront_payload(claimed, channel="default-channel")
    assert {k: shown.get(k) for k in ("product_name", "variant_name", "thumbnail", "price", "currency",
                                      "product_url")} == {
        "product_name": "Monospace Tee", "variant_name": "S", "thumbnail": "https://shop.example.com/media/tee.png",
        "price": "20.00", "currency": "USD", "product_url": "https://shop.example.com/p/monospace-tee/"}
    (asked,) = saleor.graphql_requests
    assert asked.headers["Authorization"] == "Bearer app-token-1234"
    assert asked.json()["variables"] == {"id": "UHJvZHVjdFZhcmlhbnQ6MzQ4", "channel": "default-channel"}
    # Cached: the next storefront event about it does not ask Saleor again.
    assert storefront_payload(claimed, channel="default-channel")["product_name"] == "Monospace Tee"
    assert len(saleor.graphql_requests) == 1
    # Not published in that channel: nothing of the product is shown (and nothing the storefront claimed).
    saleor.answer(200, {"data": {"productVariant": {"id": "x", "name": "S", "pricing": None, "product": {
        **product, "channelListings": [{"isPublished": False, "publishedAt": None, "channel": {"slug": "de"}}]}}}})
    hidden = storefront_payload(claimed, channel="de")
    assert "product_name" not in hidden and "thumbnail" not in hidden
    # Saleor away: one quick try, the event keeps no product data, and the next request does not wait again.
    saleor.answer(503, {"errors": [{"message": "down"}]})
    other = {"variant_id": "UHJvZHVjdFZhcmlhbnQ6OTk5"}
    assert "product_name" not in storefront_payload(other, channel="default-channel")
    asked_before = len(saleor.graphql_requests)
    storefront_payload(other, channel="default-channel")
    assert len(saleor.graphql_requests) == asked_before


@pytest.mark.django_db
def test_hostile_shapes_in_a_signed_delivery_are_bounded_not_trusted(client, saleor):
    """Saleor signs what shoppers typed: lists and strings are cut, wrong types dropped, nothing crashes."""
    checkout = {**ANSWERS["checkout"], "lines": [ANSWERS["checkout"]["lines"][0]] * 300 + ["not a line", 7],
                "metadata": [{"key": f"k{i}", "value": "v" * 1200} for i in range(120)] + [{"key": 1, "value": []}],
                "email": JANE, "languageCode": ["EN"], "channel": "not an object", "discount": {"amount": "NaN?"}}
    clock.set_now(parse_datetime(checkout["lastChange"]))
    response = deliver(client, saleor, "CHECKOUT_UPDATED", "CheckoutUpdated", checkout=checkout)
    assert response.status_code == 200
    event = Event.objects.get(name="checkout_updated")
    assert event.status == Event.Status.PROCESSED, event.error
    assert len(event.payload["lines"]) == 200 and event.payload["language_code"] == ""
    assert len(event.payload["metadata"]) == 100 and {len(v) for v in event.payload["metadata"].values()} == {1000}
    assert event.channel == "" and event.payload["discount_amount"] == "0.00"


@pytest.mark.django_db
def test_an_uninstall_missed_while_we_were_down_is_found_by_the_hourly_token_check(saleor):
    from saleor_flows.saleor_app.tasks import check_token

    install(saleor)
    saleor.answer(200, {"data": {"app": {"id": "QXBwOjQ="}}})
    assert check_token() == "installed" and holds.sending_held() == ""
    (asked,) = saleor.graphql_requests
    assert asked.headers["Authorization"] == "Bearer app-token-1234"
    saleor.answer(503, b"down")
    saleor.answer(503, b"down")
    saleor.answer(503, b"down")
    assert check_token() == "unknown" and holds.sending_held() == ""  # Saleor away: nothing changes
    # What Saleor 3.24 answers a token it no longer knows (tests/saleor/test_app_payloads.py checks it).
    saleor.answer(200, {"errors": [{"message": "To access this path, you need one of the following permissions: "
                                               "AUTHENTICATED_STAFF_USER, AUTHENTICATED_APP", "path": ["app"],
                                    "extensions": {"exception": {"code": "PermissionDenied"}}}],
                        "data": {"app": None}})
    assert check_token() == "refused"
    assert "token_refused" in holds.sending_held()

"""App mode end to end, with real processes (issue 12, "End to end with real processes").

The App service runs as a shop deploys it: ``python -m saleor_flows.app_service``
``migrate``, ``web`` (gunicorn), ``worker`` and ``beat`` (Celery), each a process
of its own, configured only by environment variables, on this test's PostgreSQL
database and Redis, sending through a real SMTP server (aiosmtpd). Saleor is
``tests/saleor_standin.py``: its own RSA key and JWKS, the install handshake,
and webhook deliveries signed the way Saleor signs them.

The path a shop takes: install the App from its manifest URL, turn journeys on
from the Dashboard (API calls with the token the Dashboard hands the App), then
a shopper signs up with the storefront's consent box ticked, leaves a checkout,
and orders: the welcome, abandoned-checkout and thank-you emails arrive. Waits
are short through settings only (an idle checkout counts as abandoned after 3 s,
the journey's first wait is 2 s, beat sweeps every second): nothing in the
service is stubbed or driven by the test.
"""

import base64
import email as email_lib
import json
import os
import time
import uuid
from email import policy
from pathlib import Path
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from django.db import connection

from saleor_flows.models import Contact, SaleorAppInstallation

from .app_processes import PLUGIN_PATH, AppProcesses, turn_on_journeys
from .faults import free_port
from .saleor_standin import StandInSaleor, http

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery]

ROOT = Path(__file__).resolve().parent.parent
MAIL_SECONDS = 120
SHOP = {"name": "Harbor Goods", "url": "https://harbor-goods.example", "logo_url": "", "currency": "USD",
        "address": "1 Quay Street, Portsmouth", "support_email": "help@harbor-goods.example"}


class Sink:
    """An aiosmtpd handler keeping every message it accepted, parsed."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        parsed = email_lib.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(parsed)
        return "250 queued"

    def to(self, address: str):
        return [m for m in self.messages if address in m["To"]]

    def wait_for(self, address: str, subject: str, timeout=MAIL_SECONDS):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.to(address) if m["Subject"] == subject]
            if found:
                return found[0]
            time.sleep(0.2)
        raise AssertionError(f"no email {subject!r} to {address} within {timeout}s; got "
                             f"{[(m['To'], m['Subject']) for m in self.messages]}")


class Service(AppProcesses):
    """The App service's processes, started with ``python -m saleor_flows.app_service``."""



@pytest.fixture
def saleor():
    standin = StandInSaleor()
    yield standin
    standin.close()


@pytest.fixture
def sink():
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture
def service(transactional_db, saleor, sink, tmp_path):
    database = connection.settings_dict
    credentials = quote(database["USER"], safe="") + (f":{quote(database['PASSWORD'], safe='')}"
                                                      if database["PASSWORD"] else "")
    port = free_port()
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    environ = {
        **keep,
        "PYTHONPATH": str(ROOT),
        "SECRET_KEY": "e2e-" + "k" * 60,
        "SALEOR_API_URL": saleor.api_url,
        "APP_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": f"postgres://{credentials}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
        "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}?tls=false",
        "DEFAULT_FROM_EMAIL": "Harbor Goods <hello@harbor-goods.example>",
        "FLOWS_SHOP": json.dumps(SHOP),
        # Short waits through settings alone: an idle checkout is abandoned after 3 s; beat sweeps every second.
        "FLOWS_ABANDONED_CHECKOUT_IDLE_MINUTES": "0.05",
        "SWEEP_INTERVAL_SECONDS": "1",
        # The sweep's safety net re-enqueues an event whose enqueue was lost after a minute: not here, so a web
        # process that cannot reach the broker fails this test instead of passing a minute late.
        "FLOWS_EVENT_REQUEUE_SECONDS": "3600",
        "BEAT_SCHEDULE_FILE": str(tmp_path / "beat-schedule"),
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "LOG_LEVEL": "WARNING",
    }
    app = Service(environ, tmp_path)
    migrated = app.run("migrate")  # the test database is migrated already: the command finds nothing to do
    assert migrated.returncode == 0 and "No migrations to apply" in migrated.stdout, migrated
    with app.serving():
        yield app


def _gid(kind: str, pk) -> str:
    return base64.b64encode(f"{kind}:{pk}".encode()).decode()


def _iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())


def _user(email: str, *, consent: str) -> dict:
    return {"id": _gid("User", 21), "email": email, "firstName": "Jane", "lastName": "Doe", "isActive": True,
            "isConfirmed": True, "dateJoined": _iso(), "updatedAt": _iso(), "languageCode": "EN",
            "metadata": [{"key": "marketing_consent", "value": consent}], "defaultBillingAddress": None}


CHANNEL = {"slug": "default-channel", "currencyCode": "USD"}
VARIANT = {"id": _gid("ProductVariant", 301), "name": "M", "sku": "HOODIE-M",
           "product": {"id": _gid("Product", 72), "name": "Harbor Hoodie", "slug": "harbor-hoodie",
                       "thumbnail": {"url": "https://harbor-goods.example/media/hoodie.png"}}}


def _checkout(token: str, email: str) -> dict:
    return {"id": _gid("Checkout", token), "token": token, "email": email, "created": _iso(), "lastChange": _iso(),
            "languageCode": "EN", "voucherCode": None, "channel": CHANNEL,
            "user": {"id": _gid("User", 21), "email": email}, "metadata": [], "billingAddress": None,
            "shippingAddress": None, "discount": {"amount": 0.0, "currency": "USD"},
            "lines": [{"id": _gid("CheckoutLine", uuid.uuid4()), "quantity": 2,
                       "undiscountedUnitPrice": {"amount": 45.0, "currency": "USD"}, "variant": VARIANT}]}


def _order(order_id: str, checkout_token: str, email: str) -> dict:
    return {"id": _gid("Order", order_id), "number": "1042", "token": order_id, "created": _iso(),
            "status": "UNFULFILLED", "userEmail": email, "languageCodeEnum": "EN", "voucherCode": None,
            "checkoutId": _gid("Checkout", checkout_token), "channel": CHANNEL,
            "user": {"id": _gid("User", 21), "email": email}, "metadata": [], "billingAddress": None,
            "shippingAddress": None, "total": {"gross": {"amount": 90.0, "currency": "USD"}, "net": {"amount": 75.63}},
            "undiscountedTotal": {"gross": {"amount": 90.0}}, "shippingPrice": {"gross": {"amount": 0.0}},
            "lines": [{"id": _gid("OrderLine", uuid.uuid4()), "productName": "Harbor Hoodie", "variantName": "M",
                       "productSku": "HOODIE-M", "productVariantId": VARIANT["id"], "quantity": 2,
                       "unitPrice": {"gross": {"amount": 45.0, "currency": "USD"}},
                       "totalPrice": {"gross": {"amount": 90.0}}, "thumbnail": VARIANT["product"]["thumbnail"],
                       "variant": {"id": VARIANT["id"], "product": {"id": VARIANT["product"]["id"],
                                                                    "slug": "harbor-hoodie"}}}]}


def test_the_health_check_answers_on_any_host_name_and_the_app_only_on_its_own(service):
    """The container's health check asks 127.0.0.1/localhost; everything else needs APP_URL's host."""
    local = service.url.replace("127.0.0.1", "localhost")
    assert http("GET", f"{local}/healthz").status == 200
    assert http("GET", f"{local}{PLUGIN_PATH}app/manifest/").status == 400  # DisallowedHost
    manifest = http("GET", f"{service.url}{PLUGIN_PATH}app/manifest/")
    assert manifest.status == 200
    assert manifest.json["tokenTargetUrl"] == f"{service.url}{PLUGIN_PATH}app/register/"
    assert all(hook["targetUrl"].startswith(f"{service.url}{PLUGIN_PATH}") for hook in manifest.json["webhooks"])


def test_install_then_signup_abandoned_checkout_and_order_reach_the_inbox(service, saleor, sink):
    # 1. The shop admin installs the App from its manifest URL.
    installed = saleor.install(f"{service.url}{PLUGIN_PATH}app/manifest/")
    assert installed.status == 200 and installed.json == {"success": True}, installed
    row = SaleorAppInstallation.objects.get()
    assert row.saleor_api_url == saleor.api_url
    assert saleor.app_token not in row.token_encrypted  # encrypted at rest
    # One deployment serves one Saleor: another instance cannot install it.
    other = StandInSaleor()
    try:
        foreign = other.install(f"{service.url}{PLUGIN_PATH}app/manifest/")
    finally:
        other.close()
    assert foreign.status == 403 and foreign.json["error"]["code"] == "FOREIGN_SALEOR", foreign
    assert saleor.api_url in foreign.json["error"]["message"]
    assert SaleorAppInstallation.objects.get().saleor_api_url == saleor.api_url

    # 2. ... and turns journeys on in the Dashboard extension.
    turn_on_journeys(service, saleor.dashboard_token(["MANAGE_PLUGINS", "MANAGE_USERS"]))

    # The manifest subscribed the App to Saleor's events.
    assert {"CUSTOMER_CREATED", "CHECKOUT_UPDATED", "ORDER_CREATED", "ORDER_FULLY_PAID"} <= set(saleor.webhooks)

    # 3. A shopper registers with the newsletter box ticked (the storefront keeps it in user metadata).
    jane = "jane@harbor-goods.example"
    signup = saleor.body("CUSTOMER_CREATED", {"user": _user(jane, consent="true")})
    answered = saleor.deliver("CUSTOMER_CREATED", signup)
    assert answered.status == 200, answered
    welcome = sink.wait_for(jane, "Welcome! We're glad you're here")
    assert "Jane" in welcome.get_body(("html",)).get_content()
    contact = Contact.objects.get(email=jane)
    assert (contact.email_consent, contact.first_name) == ("subscribed", "Jane")
    # One-click unsubscribe leads to this service (its public URL), as the plugin's leads to Saleor's.
    assert welcome["List-Unsubscribe"].strip().startswith(f"<{service.url}{PLUGIN_PATH}unsubscribe/")

    # 4. She fills a checkout and leaves it: after the idle time and the journey's wait, the reminder.
    token = str(uuid.uuid4())
    assert saleor.deliver("CHECKOUT_CREATED", saleor.body("CHECKOUT_CREATED", {
        "checkout": {**_checkout(token, jane), "lines": []}})).status == 200
    assert saleor.deliver("CHECKOUT_UPDATED", saleor.body("CHECKOUT_UPDATED", {
        "checkout": _checkout(token, jane)})).status == 200
    reminder = sink.wait_for(jane, "You left something in your cart")
    assert "Harbor Hoodie" in reminder.get_body(("html",)).get_content()

    # 5. She comes back and orders: the thank-you email, once, although Saleor delivers the payment twice.
    order_id = str(uuid.uuid4())
    assert saleor.deliver("ORDER_CREATED", saleor.body("ORDER_CREATED", {
        "order": _order(order_id, token, jane)})).status == 200
    paid = saleor.body("ORDER_FULLY_PAID", {"order": _order(order_id, token, jane)})
    assert saleor.deliver("ORDER_FULLY_PAID", paid).status == 200
    assert saleor.deliver("ORDER_FULLY_PAID", paid).status == 200  # a retry of the same delivery
    thanks = sink.wait_for(jane, "Thank you for your order")
    html = thanks.get_body(("html",)).get_content()
    assert "Harbor Hoodie" in html and "1042" in html

    # 6. A delivery whose body was changed after Saleor signed it is refused, and changes nothing.
    forged = paid.replace(b"90.0", b"1.0")
    refused = saleor.deliver("ORDER_FULLY_PAID", forged, signature=saleor.sign(paid))
    assert refused.status == 401, refused

    time.sleep(3)  # room for a duplicate to show up (a retry, a second sweep)
    subjects = sorted(m["Subject"] for m in sink.to(jane))
    assert subjects == ["Thank you for your order", "Welcome! We're glad you're here",
                        "You left something in your cart"]

    # 7. She unsubscribes with her mailbox's one-click button: Flows stops marketing to her and tells Saleor,
    # with the App token, so the storefront's checkbox shows the same.
    saleor.answers.append({"data": {"m0": {"errors": []}}})
    one_click = welcome["List-Unsubscribe"].strip().split(">")[0].lstrip("<")
    assert welcome["List-Unsubscribe-Post"].strip() == "List-Unsubscribe=One-Click"
    clicked = http("POST", one_click, body=b"List-Unsubscribe=One-Click",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert clicked.status == 200, clicked
    assert Contact.objects.get(email=jane).email_consent == "unsubscribed"
    deadline = time.monotonic() + MAIL_SECONDS
    while not saleor.graphql_calls and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(saleor.graphql_calls) == 1, f"Saleor was told {saleor.graphql_calls} (the processes' logs follow)"
    (written,) = saleor.graphql_calls
    assert "updateMetadata" in written["query"]
    assert written["variables"] == {"m0_id": _gid("User", 21),
                                    "m0_input": [{"key": "marketing_consent", "value": "false"}]}

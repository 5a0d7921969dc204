"""App mode inside a real Saleor: the App service as its own processes, installed with ``appInstall``, fed by
the webhooks Saleor itself signs and delivers (issue 12, third test bullet).

The Flows plugin is off (not in ``PLUGINS``; no fixture here turns it on): the App is the only edge. Saleor's
own ``WebhookPlugin``, which every shop runs and Saleor's test settings leave out, is put back: it is what
turns most of Saleor's events into App webhook deliveries. The App service runs as a shop deploys it, ``python -m saleor_flows.app_service``
``migrate``, ``web`` (gunicorn), ``worker`` and ``beat`` (Celery), each a process of its own, on a PostgreSQL
database of its own (created here, next to Saleor's test database), this run's Redis and an aiosmtpd sink
(a process too, writing a maildir). Its ``SALEOR_API_URL`` is the live server's ``/graphql/``.

Saleor's test settings run Celery eagerly: ``appInstall``'s install task (manifest fetch, validation of every
subscription query against Saleor's schema, the token POST to our register endpoint) and each webhook
delivery (payload from our subscription query, detached JWS with Saleor's key, POST) happen inside the
mutation that causes them. The App's engine runs on its real Celery worker. Time is not moved: the waits are
short through the service's own settings (an idle checkout is abandoned after 3 s, the reminder journey's
first wait is 2 s, beat sweeps every second).

The App's processes need a Python with the service's dependencies (gunicorn, Celery, aiosmtpd); they never
import Saleor: ``FLOWS_APP_PYTHON``, else the checkout's ``.venv``, else this interpreter.
"""

import email as email_lib
import json
import mailbox
import os
import re
import subprocess
import sys
import time
from email import policy
from pathlib import Path

import pytest

from .saleor_env import NOT_INSTALLED, require_saleor

require_saleor()
pytest.importorskip("saleor", reason=NOT_INSTALLED)

import psycopg  # noqa: E402  (Saleor's database driver)
import requests  # noqa: E402
from django.contrib.auth.hashers import check_password  # noqa: E402
from django.db import connection, connections  # noqa: E402
from graphene import Node  # noqa: E402
from saleor.account.models import User  # noqa: E402
from saleor.app.models import App, AppInstallation  # noqa: E402
from saleor.core.models import EventDelivery  # noqa: E402
from saleor.core.jwt import create_access_token_for_app  # noqa: E402

from saleor_flows.dashboard.manifest import APP_ID  # noqa: E402
from saleor_flows.journeys import load_journey  # noqa: E402

from ..app_processes import PLUGIN_PATH, ROOT, AppProcesses, turn_on_journeys  # noqa: E402
from ..faults import free_port  # noqa: E402
from .saleor_graphql import complete, create_checkout, mutate, pay, prepare_for_payment, register  # noqa: E402

MAIL_SECONDS = 120
SHOP = {"name": "Flows Test Shop", "url": "https://shop.example.com", "logo_url": "", "currency": "USD",
        "address": "1 Test Street", "support_email": "help@shop.example.com"}
SENDER = "Flows Test Shop <hello@shop.example.com>"  # what the plugin tests configure as the plugin's sender
CHECKOUT_LINK = "https://shop.example.com/checkout?c={token}"
SHOPPER = "jane.app@example.com"
APP_INSTALL = """mutation($input: AppInstallInput!) { appInstall(input: $input) {
    appInstallation { id status message } errors { field code message } } }"""
WEBHOOK_PLUGIN = "saleor.plugins.webhook.plugin.WebhookPlugin"
STORED_TOKEN = "from saleor_flows.dashboard.register import app_token; print(app_token())"


def _app_python() -> str:
    """A Python that runs the App service: its dependencies importable, Saleor not needed."""
    probe = "import gunicorn, celery, aiosmtpd, redis, saleor_flows.app_service"
    candidates = [os.environ.get("FLOWS_APP_PYTHON", ""), str(ROOT / ".venv" / "bin" / "python"), sys.executable]
    for candidate in filter(None, candidates):
        if Path(candidate).exists() and subprocess.run(
                [candidate, "-c", probe], env={"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "")},
                capture_output=True).returncode == 0:
            return candidate
    pytest.fail("no Python with the App service's dependencies (pip install 'saleor-flows[app]' aiosmtpd): "
                "set FLOWS_APP_PYTHON")


class Inbox:
    """The aiosmtpd sink's maildir, read as the messages arrive."""

    def __init__(self, path: Path):
        self.path = path

    def messages(self):
        box = mailbox.Maildir(self.path, factory=None, create=False)
        return [email_lib.message_from_bytes(box.get_bytes(key), policy=policy.default) for key in box.keys()]

    def to(self, address: str):
        return [m for m in self.messages() if address in m["To"]]

    def wait_for(self, address: str, subject: str, app) -> email_lib.message.EmailMessage:
        deadline = time.monotonic() + MAIL_SECONDS
        while time.monotonic() < deadline:
            found = [m for m in self.to(address) if m["Subject"] == subject]
            if found:
                return found[0]
            app.alive()
            time.sleep(0.25)
        raise AssertionError(f"no email {subject!r} to {address} within {MAIL_SECONDS}s; got "
                             f"{[(m['To'], m['Subject']) for m in self.messages()]}\n{app.log_tail()}")


class AppService(AppProcesses):
    """The App service's processes and the mail sink, with what this test reads of them."""

    def link_targets(self, html: str) -> list[str]:
        """Where the email's links lead: our click redirects followed one hop, other links as they are."""
        targets = []
        for href in re.findall(r'href="([^"]+)"', html):
            href = href.replace("&amp;", "&")
            if href.startswith(f"{self.url}{PLUGIN_PATH}c/"):
                answer = requests.get(href, allow_redirects=False, timeout=10)
                assert answer.status_code in (301, 302, 303, 307), (href, answer.status_code)
                href = answer.headers["Location"]
            targets.append(href)
        return targets

    def sql(self, query: str) -> list[tuple]:
        with psycopg.connect(**self.database) as db:
            return db.execute(query).fetchall()


def _fresh_database(name: str) -> dict:
    """The App's own database on Saleor's PostgreSQL server, created empty (dropped first if a run left it)."""
    params = connection.settings_dict
    server = {"host": params["HOST"] or "127.0.0.1", "port": params["PORT"] or 5432, "user": params["USER"],
              "password": params["PASSWORD"] or None}
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{name}"')
    return {**server, "dbname": name}


@pytest.fixture
def app_service(transactional_db, live_server, settings, tmp_path, monkeypatch):
    # The App calls Saleor's GraphQL API (the register check, catalog reads) on the live server's threads, which
    # open their own connections: the replica alias there must read the test database as the writer does (the
    # test runner made it a mirror on this thread only).
    monkeypatch.setitem(connections.settings[settings.DATABASE_CONNECTION_REPLICA_NAME], "NAME",
                        connection.settings_dict["NAME"])
    # Saleor names itself after the live server: the Saleor-Api-Url header, its tokens' issuer, its JWKS.
    settings.PUBLIC_URL = live_server.url
    settings.HTTP_IP_FILTER_ALLOW_LOOPBACK_IPS = True
    # The Flows plugin is off (Saleor's fixtures may add their dummy payment gateway): the App is the only edge.
    assert not [plugin for plugin in settings.PLUGINS if plugin.startswith("saleor_flows")], settings.PLUGINS
    # Saleor's own webhook plugin, built in and on in every shop (its test settings leave it out), is what
    # turns most events (customer_created, ...) into App webhook deliveries.
    settings.PLUGINS = [*settings.PLUGINS, WEBHOOK_PLUGIN]
    python = _app_python()
    database = _fresh_database(connection.settings_dict["NAME"] + "_flows_app")
    credentials = database["user"] + (f":{database['password']}" if database["password"] else "")
    port, smtp_port = free_port(), free_port()
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    environ = {
        **keep,
        "PYTHONPATH": str(ROOT),
        "SECRET_KEY": "saleor-app-mode-" + "k" * 60,
        "SALEOR_API_URL": f"{live_server.url}/graphql/",
        "APP_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": f"postgres://{credentials}@{database['host']}:{database['port']}/{database['dbname']}",
        "REDIS_URL": os.environ.get("FLOWS_APP_REDIS_URL", "redis://127.0.0.1:6379/14"),
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}?tls=false",
        "DEFAULT_FROM_EMAIL": SENDER,
        "FLOWS_SHOP": json.dumps(SHOP),
        "FLOWS_CHECKOUT_URL_TEMPLATE": CHECKOUT_LINK,
        # Short waits through settings alone: an idle checkout is abandoned after 3 s; beat sweeps every second.
        "FLOWS_ABANDONED_CHECKOUT_IDLE_MINUTES": "0.05",
        "SWEEP_INTERVAL_SECONDS": "1",
        "FLOWS_EVENT_REQUEUE_SECONDS": "3600",  # a lost enqueue fails the test instead of passing a minute late
        "BEAT_SCHEDULE_FILE": str(tmp_path / "beat-schedule"),
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "LOG_LEVEL": "WARNING",
    }
    app = AppService(environ, tmp_path, python=python)
    app.database = database
    app.inbox = Inbox(tmp_path / "maildir")
    migrated = app.run("migrate")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    app.start("smtp", "-n", "-l", f"127.0.0.1:{smtp_port}", "-c", "aiosmtpd.handlers.Mailbox",
              str(tmp_path / "maildir"), module="aiosmtpd")
    with app.serving():
        yield app


def test_app_installed_in_saleor_gets_saleors_signed_webhooks_and_sends_the_plugins_emails(
        app_service, live_server, staff_api_client, api_client, app_api_client, channel_USD, shop_variant,
        permission_manage_apps, permission_manage_plugins, permission_manage_users, permission_manage_checkouts,
        permission_manage_orders, permission_manage_products, permission_manage_payments):
    app = app_service
    manifest_url = f"{app.url}{PLUGIN_PATH}app/manifest/"
    manifest = requests.get(manifest_url, timeout=10).json()
    assert manifest["tokenTargetUrl"] == f"{app.url}{PLUGIN_PATH}app/register/"

    # 1. A shop admin installs the App from its manifest URL. Saleor validates the manifest (every subscription
    # query against its own schema), creates the App and its webhooks, and posts the token to our register URL.
    staff_api_client.user.user_permissions.add(
        permission_manage_apps, permission_manage_plugins, permission_manage_users, permission_manage_checkouts,
        permission_manage_orders, permission_manage_products)
    result = mutate(staff_api_client, "appInstall", APP_INSTALL, {"input": {
        "appName": "Flows", "manifestUrl": manifest_url, "activateAfterInstallation": True,
        "permissions": manifest["permissions"]}})
    failed = list(AppInstallation.objects.filter(status="failed").values_list("message", flat=True))
    assert not failed, f"{failed}\n{app.log_tail()}"
    print("appInstall:", json.dumps(result))
    saleor_app = App.objects.get(identifier=APP_ID)
    assert saleor_app.is_active and saleor_app.is_installed
    assert sorted(p.codename for p in saleor_app.permissions.all()) == [
        "manage_checkouts", "manage_orders", "manage_plugins", "manage_products", "manage_users"]
    webhooks = {w.target_url: w for w in saleor_app.webhooks.prefetch_related("events")}
    assert len(webhooks) == len(manifest["webhooks"])
    for declared in manifest["webhooks"]:
        stored = webhooks[declared["targetUrl"]]
        assert stored.is_active and stored.subscription_query == declared["query"], declared["name"]
        assert [e.event_type for e in stored.events.all()] == [e.lower() for e in declared["asyncEvents"]]
    print(f"Saleor accepted {len(webhooks)} webhooks with the App's subscription queries")

    # The register handshake stored this App's token, encrypted: the App decrypts a real token of this App.
    (row,) = app.sql("SELECT saleor_api_url, app_id, token_encrypted, removed_at FROM saleor_flows_saleorappinstallation")
    assert row[:2] == (f"{live_server.url}/graphql/", Node.to_global_id("App", saleor_app.pk)) and row[3] is None
    shell = app.run("manage", "shell", "--no-imports", "-c", STORED_TOKEN)
    stored_token = shell.stdout.strip()
    assert shell.returncode == 0 and len(stored_token.split()) == 1, shell
    assert stored_token and stored_token not in row[2]
    assert any(check_password(stored_token, t.auth_token) for t in saleor_app.tokens.all())

    # 2. The merchant turns journeys on in the App's Dashboard pages, with the token Saleor's Dashboard hands them.
    merchant = User.objects.create(email="merchant@example.com", is_staff=True, is_active=True)
    merchant.user_permissions.add(permission_manage_plugins, permission_manage_users)
    turn_on_journeys(app, create_access_token_for_app(saleor_app, User.objects.get(pk=merchant.pk)))

    # 3. A shopper registers with the newsletter box ticked (user metadata): CUSTOMER_CREATED, signed by Saleor.
    welcome = load_journey("welcome")["steps"]["email_welcome"]["subject"]
    register(api_client, SHOPPER, channel=channel_USD.slug, consent=True)
    mail = app.inbox.wait_for(SHOPPER, welcome, app)
    assert "Jane" in mail.get_body(("html",)).get_content()
    assert mail["From"] == SENDER

    # 4. She fills a checkout (a real variant, two of it) and leaves: the reminder with Saleor's product and prices.
    reminder = load_journey("abandoned_checkout")["steps"]["email_reminder"]["subject"]
    checkout = create_checkout(api_client, channel=channel_USD.slug, variant=shop_variant, email=SHOPPER, quantity=2)
    mail = app.inbox.wait_for(SHOPPER, reminder, app)
    html = mail.get_body(("html",)).get_content()
    assert "Linen Summer Shirt" in html  # the product of the real checkout line
    assert "$24.90" in html and "$49.80" in html  # its unit price, and the lines total for 2
    # The plugin's link template leads back to the cart; App mode tracks clicks (TRACKING on), so the link goes
    # through the App's redirect: follow each as the shopper's mail client would.
    assert CHECKOUT_LINK.format(token=checkout["token"]) in app.link_targets(html)

    # 5. She comes back, pays and completes another checkout: ORDER_CREATED, ORDER_FULLY_PAID → the thank-you.
    thank_you = load_journey("post_purchase")["steps"]["email_thank_you"]["subject"]
    paid = create_checkout(api_client, channel=channel_USD.slug, variant=shop_variant, email=SHOPPER)
    prepare_for_payment(api_client, paid["id"])
    pay(app_api_client, paid["id"], permission_manage_payments)
    order = complete(api_client, paid["id"])
    assert order["chargeStatus"] == "FULL"
    mail = app.inbox.wait_for(SHOPPER, thank_you, app)
    html = mail.get_body(("html",)).get_content()
    assert "Linen Summer Shirt" in html and str(order["number"]) in html

    time.sleep(3)  # room for a duplicate to show up (a second delivery, a second sweep)
    assert sorted(m["Subject"] for m in app.inbox.to(SHOPPER)) == sorted([welcome, reminder, thank_you])
    # Saleor's side of it: it deletes a delivery once the App answered 2xx; none is left failed or awaiting a retry.
    left = list(EventDelivery.objects.filter(webhook__app=saleor_app).values_list("event_type", "status"))
    assert left == [], left
    received = app.sql("SELECT name, count(*) FROM saleor_flows_event GROUP BY name ORDER BY name")
    print("events the App recorded from Saleor's deliveries:", dict(received))

"""The Dashboard extension end to end: the built bundle served by the plugin on a live Django server
(real PostgreSQL), opened in real headless Chromium inside a parent page that speaks AppBridge as the
Saleor Dashboard does (dashboard-extension/e2e/run.mjs), with an App token of Saleor's real shape
verified against a real JWKS server. The browser turns a template on, draws and publishes a flow,
reads a report and a why-trail; this test then checks what the API stored.

Needs Node (with `npm ci` done in dashboard-extension/) and Chromium at /usr/bin/chromium (or
$CHROMIUM); `make test` installs both (scripts/ensure-dashboard-tools). Without them it fails,
it does not skip.

Screenshots of every page go to build/screenshots/ (git ignores build/), so a test run leaves the
tree clean; `FLOWS_UPDATE_SCREENSHOTS=1` writes them to docs/screenshots/ instead, to refresh the
pictures the README shows (then commit them).
"""

import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta
from datetime import timezone as tz
from pathlib import Path

import pytest
from django.core.cache import cache

from saleor_flows import flow_settings
from saleor_flows.api import auth
from saleor_flows.api.core import to_global_id
from saleor_flows.models import Contact, Flow, FlowSettings, Message
from tests.api.conftest import JwksServer, Tokens, jwk_of, new_key
from tests.flowkit import chain, email, nxt

REPO = Path(__file__).resolve().parents[2]
EXTENSION = REPO / "dashboard-extension"
PUBLISHED_SCREENSHOTS = REPO / "docs" / "screenshots"


def screenshots_dir() -> Path:
    """docs/screenshots/ only when asked (FLOWS_UPDATE_SCREENSHOTS=1); otherwise an ignored folder."""
    if os.environ.get("FLOWS_UPDATE_SCREENSHOTS") == "1":
        return PUBLISHED_SCREENSHOTS
    return REPO / "build" / "screenshots"
PREFIX = "/plugins/global/saleor.flows/"


@pytest.fixture
def saleor_tokens(settings):
    key = new_key()
    server = JwksServer()
    server.keys = [jwk_of(key, "store-key-1")]
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "API_JWKS_URL": server.url, "PUBLIC_KEY": "pk_test_shop_1",
                             "FROM_EMAIL": "Shop <shop@example.com>", "PUBLIC_URL": "https://api.example.com",
                             "CHECKOUT_URL_TEMPLATE": "https://shop.example.com/checkout/{token}"}
    auth.key_set.reset()
    cache.clear()
    yield Tokens(key, server.issuer)
    auth.key_set.reset()
    server.close()


def seed_report_data(flows):
    """A live flow with sends, a click and orders on several days, ending today (the browser's today)."""
    now = datetime.now(tz.utc).replace(microsecond=0)
    flows.travel_to(now - timedelta(days=4))
    flow = flows.flow(chain("signed_up", ("hello", email("Welcome aboard", next="wait")),
                            ("wait", nxt({"type": "wait", "duration": {"days": 1}})), ("later", email("Still there?"))),
                      slug="cart-rescue", name="Cart rescue (seeded)")
    people = ["ann@example.com", "bob@example.com", "cy@example.com"]
    for day, address in enumerate(people):
        flows.contact(address, email_consent="subscribed", first_name=address.split("@")[0].title())
        flows.event("signed_up", email=address)
        Message.objects.filter(to=address).update(opened_at=flows.now, clicked_at=flows.now)
        flows.advance(days=1)
        flows.sweep()
        flows.event("order_created", email=address,
                    payload={"id": f"T3JkZXI6{day}", "total_gross_amount": f"{40 + day * 10}.00", "currency": "EUR"})
    flows.travel_to(now)
    flows.sweep()
    return flow, Contact.objects.get(email="ann@example.com")


def browse(node, chromium, config) -> dict:
    """Run the browser script (dashboard-extension/e2e/run.mjs) and return what it saw."""
    run = subprocess.run([node, "e2e/run.mjs"], cwd=EXTENSION, capture_output=True, text=True, timeout=240,
                         env={**os.environ, "E2E_CONFIG": json.dumps(config), "CHROMIUM": chromium})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_a_merchant_turns_on_draws_publishes_and_measures_flows_in_the_dashboard(flows, transactional_db, live_server,
                                                                                 saleor_tokens, tmp_path):
    node = shutil.which("node")
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    assert node and Path(chromium).exists(), "make test installs Node's packages and Chromium (ensure-dashboard-tools)"
    assert (EXTENSION / "node_modules" / "playwright-core").is_dir(), "run `npm ci` in dashboard-extension/"
    report_flow, ann = seed_report_data(flows)
    ann.user_id = "VXNlcjo0Mg=="
    ann.save(update_fields=["user_id"])
    token = saleor_tokens.app("MANAGE_PLUGINS", "MANAGE_USERS")  # an App page token: thirdparty, Saleor's claims
    config = {"appUrl": f"{live_server.url}{PREFIX}app/", "token": token,
              "reportFlowId": to_global_id("Flow", report_flow.pk), "contactId": to_global_id("Contact", ann.pk),
              "customerId": ann.user_id, "orderId": "T3JkZXI60",
              "outDir": str(tmp_path), "screenshotsDir": str(screenshots_dir())}
    seen = browse(node, chromium, config)

    # The handshake: the App said it is ready, the parent answered with the token, and the API accepted it.
    assert "notifyReady" in seen["home"]["bridge"]
    assert seen["home"]["wide"] is True

    # Gallery: previews in every shipped language, sandboxed, checks shown; "Turn on" made it live.
    assert seen["gallery"]["sandbox"] == ""
    assert "DE" in seen["gallery"]["languages"] and seen["gallery"]["german"] != seen["gallery"]["english"]
    assert "All checks pass" in seen["gallery"]["checks"] or "✗" not in seen["gallery"]["checks"]
    turned_on = Flow.objects.get(definition__trigger__event="checkout_abandoned")
    assert turned_on.status == Flow.Status.LIVE and turned_on.live_version is not None

    # "Customize first" made a draft of the welcome journey and opened it on the canvas.
    draft = Flow.objects.get(definition__trigger__event="customer_created")
    assert draft.status == Flow.Status.DRAFT and draft.live_version is None
    assert seen["customize"]["nodes"] == len(draft.definition["steps"])

    # Builder: the drawn split → delay → email, published as version 1 with that definition.
    drawn = Flow.objects.get(name="Regulars (drawn in e2e)")
    assert drawn.status == Flow.Status.LIVE and drawn.live_version.number == 1
    stored = drawn.live_version.definition
    split = stored["steps"][stored["start"]]
    assert split["type"] == "split" and split["no"] is None
    delay = stored["steps"][split["yes"]]
    assert delay["type"] == "wait" and delay["duration"] == {"days": 1}
    mail = stored["steps"][delay["next"]]
    assert mail["type"] == "send_email" and mail["subject"] == "Thanks for being a regular" and mail["next"] is None
    assert seen["builder"]["nodes"] == 3
    # The step editor's variables help shows the recommendations loop the prebuilt emails use.
    assert "recommendations(3)" in seen["builder"]["recommendations"]
    assert "item.product_url" in seen["builder"]["recommendations"]
    # Before that, the same flow with an empty subject was refused, the problem shown on the email step.
    assert "subject" in seen["builder"]["stepErrors"] and "⚠" in seen["builder"]["invalidStep"]
    assert drawn.versions.count() == 1

    # Settings: the API's field error appears under the field it concerns; the corrected value is stored.
    assert "HH:MM" in seen["settings"]["error"]
    assert seen["settings"]["describedBy"] == "err-quietHours.email"
    assert FlowSettings.objects.get().quiet_hours["email"] == "21:00-08:00"

    # Report: totals with the seeded numbers, four series per day, a funnel of six bars; no sideways scroll.
    assert "€" in seen["report"]["totals"]
    assert seen["report"]["lines"] == 4 and seen["report"]["funnelBars"] >= 5
    # Every seeded send went to a subscriber: all of them under consent (issue 13 item 6).
    sent = Message.objects.filter(flow=report_flow, status="sent").count()
    assert seen["report"]["basis"] == f"Marketing messages sent under: consent (subscribed) {sent}" and sent == 6
    assert seen["narrow"]["home"] is True and seen["narrow"]["report"] is True

    # Contact page and the customer widget (found by the Saleor customer id the Dashboard passes, with the
    # flows API alone: nothing asked of Saleor's API): the why-trail.
    assert "Welcome aboard" in seen["contact"]["trail"] or "hello" in seen["contact"]["trail"]
    assert seen["widget"]["text"] and seen["widget"]["text"] == seen["contact"]["trail"][:200]  # Ann's
    assert "saleorApiRequests" not in seen
    assert "Cart rescue (seeded)" in seen["orderWidget"]["text"] and "€40.00" in seen["orderWidget"]["text"]
    assert "Simulation" in seen["builder"]["simulation"] and "entries by" in seen["builder"]["simulation"]
    assert seen["dark"]["theme"] == "dark"
    assert seen["keyboard"]["focused"] in {"Flows", "Templates", "Contacts", "Settings"}
    assert seen["consoleErrors"] == []

    # Later: a shopper abandons a checkout, gets the journey's first email, clicks and orders. The merchant
    # opens the report of the journey turned on above and sees the send and the revenue in the charts.
    # The quiet hours the merchant typed above (21:00-08:00) would hold Dee's reminder whenever this
    # test runs in the evening (the clock here is the real one, for the report's "today"): lift them.
    FlowSettings.objects.update(quiet_hours={})
    flow_settings.clear_cache()
    flows.contact("dee@example.com", email_consent="subscribed", first_name="Dee")
    flows.event("checkout_abandoned", email="dee@example.com",
                payload={"token": "c-1", "total_gross_amount": "64.00", "currency": "EUR",
                         "lines": [{"product_name": "Monospace Tee", "variant_name": "M", "quantity": 2,
                                    "base_price": "32.00", "thumbnail": ""}]})
    flows.advance(hours=1, minutes=5)
    flows.sweep()
    reminder = Message.objects.get(to="dee@example.com")
    Message.objects.filter(pk=reminder.pk).update(opened_at=flows.now, clicked_at=flows.now)
    flows.event("order_created", email="dee@example.com",
                payload={"id": "T3JkZXI6OTk=", "total_gross_amount": "64.00", "currency": "EUR"})
    flows.contact("eve@example.com", email_consent="subscribed", first_name="Eve")  # still waiting for her email
    flows.event("checkout_abandoned", email="eve@example.com",
                payload={"token": "c-2", "total_gross_amount": "12.00", "currency": "EUR",
                         "lines": [{"product_name": "Cold Brew", "variant_name": "", "quantity": 1,
                                    "base_price": "12.00", "thumbnail": ""}]})
    assert flows.enrolments("eve@example.com")[0].status == "active"
    today = flows.now.date()  # the range the merchant picks: yesterday and today (a line needs two days)
    later = browse(node, chromium, {**config, "only": ["report", "exit"], "exitEmail": "eve@example.com", "reportFlowId": to_global_id("Flow", turned_on.pk),
                                    "reportRange": f"?since={today - timedelta(days=1)}&until={today}",
                                    "shotPrefix": "abandoned-checkout-"})
    assert "€64.00" in later["report"]["totals"]
    # entered (Dee and Eve), active (Eve, waiting for her first email), sent (Dee)
    assert later["report"]["totals"].split("\n")[-2].split("\t")[:3] == ["2", "1", "1"]
    assert later["report"]["lines"] == 4
    # …and exits Eve from the journey on her contact page: the API stored it, nothing more goes to her.
    eve = flows.enrolments("eve@example.com")[0]
    assert eve.status == "exited" and "Exited" in later["exit"]["journeys"]
    flows.advance(hours=2)
    flows.sweep()
    assert not Message.objects.filter(to="eve@example.com").exists()

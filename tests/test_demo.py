"""The demo's simulated month on the test database: journeys run, reminders stop at the order, the outbox is complete."""

import email
import os
import re
import subprocess
import sys
from email import policy
from pathlib import Path

import pytest

from demo import store
from saleor_flows.models import Enrolment, Event, Flow, Message


def test_plan_is_deterministic_and_ordered():
    first = store.plan_events(customers=20, days=5, seed=3)
    second = store.plan_events(customers=20, days=5, seed=3)
    assert [(e.at, e.name, e.dedupe_key) for e in first.events] == [
        (e.at, e.name, e.dedupe_key) for e in second.events]
    assert [e.at for e in first.events] == sorted(e.at for e in first.events)
    assert len({e.dedupe_key for e in first.events}) == len(first.events)
    numbers = [e.payload["number"] for e in first.events if e.name == "order_created"]
    assert numbers == [str(n) for n in range(1001, 1001 + len(numbers))]


def test_demo_month(flows, settings, tmp_path):
    settings.EMAIL_BACKEND = "demo.outbox.EmailBackend"
    settings.DEMO_OUTBOX_DIR = str(tmp_path)

    result = store.simulate(customers=30, days=10, seed=7)

    assert not Event.objects.filter(status=Event.Status.DEAD).exists()
    for slug in ("welcome", "abandoned_checkout", "post_purchase"):
        assert Enrolment.objects.filter(flow__slug=slug).count() > 0, slug
    assert not Enrolment.objects.filter(status=Enrolment.Status.ACTIVE).exists()  # the quiet days let all finish

    # No cart reminder after the order that follows the abandoned checkout.
    abandoned = Flow.objects.get(slug="abandoned_checkout")
    reminders = Message.objects.filter(flow=abandoned, status=Message.Status.SENT).select_related(
        "execution__enrolment")
    assert reminders.exists()
    assert Enrolment.objects.filter(flow=abandoned, status=Enrolment.Status.CONVERTED).exists()
    for message in reminders:
        entered_at = message.execution.enrolment.entered_at
        for ordered_at in Event.objects.filter(contact=message.contact, name="order_created",
                                               occurred_at__gte=entered_at).values_list("occurred_at", flat=True):
            assert message.sent_at < ordered_at, (message.to, message.step_id, message.sent_at, ordered_at)

    # Every sent email is in the outbox as .eml and .html, and only those.
    sent = {str(m.send_id): m for m in Message.objects.filter(status=Message.Status.SENT)}
    assert len(sent) == result["emails"] > 0
    emls = sorted(tmp_path.glob("*.eml"))
    assert len(emls) == len(sent) and len(list(tmp_path.glob("*.html"))) == len(sent)
    for path in emls:
        parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        message = sent[parsed["X-Flows-Send-Id"]]
        assert parsed["To"] == message.to and parsed["Subject"] == message.subject
        html = path.with_suffix(".html").read_text(encoding="utf-8")
        assert html.lstrip().lower().startswith(("<!doctype", "<html")) and "Test Shop" in html


def test_a_fresh_database_url_is_created_not_a_traceback(settings):
    """The README's PostgreSQL demo command works on a server where the database does not exist yet."""
    import psycopg

    from saleor_flows.db import create_database_if_missing

    database = dict(settings.DATABASES["default"], NAME="saleor_flows_demo_fresh_probe")
    conninfo = {"host": database["HOST"], "port": database["PORT"], "user": database["USER"],
                "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**conninfo) as conn:
        conn.execute("DROP DATABASE IF EXISTS saleor_flows_demo_fresh_probe")
    try:
        assert create_database_if_missing(database) is True
        assert create_database_if_missing(database) is False  # a second run reuses it
        with psycopg.connect(**dict(conninfo, dbname="saleor_flows_demo_fresh_probe")) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("saleor_flows_demo_fresh_probe",)
    finally:
        with psycopg.connect(**conninfo) as conn:
            conn.execute("DROP DATABASE IF EXISTS saleor_flows_demo_fresh_probe")


def test_progress_prints_plain_lines_when_not_a_terminal(capsys, db):
    from demo.__main__ import ProgressBar

    progress = ProgressBar(days=14, interactive=False)
    for day in range(1, 19):
        progress(day, 18)
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["day 7/18  emails 0", "day 14/18  emails 0",
                     "day 18/18  emails 0  (month over: no new shoppers, journeys finishing)"]
    assert not any("\r" in line or "\033" in line for line in lines)


REPO = Path(__file__).resolve().parents[1]


def run_demo(outbox: Path, **env) -> tuple[str, str, list[str]]:
    """``python -m demo`` as a newcomer runs it (small month, seed 11): the worker it says it used, its
    summary without the timing and the outbox path, and the emails it wrote as "simulated time, recipient,
    subject" (sorted: emails sent in the same sweep may be numbered in another order)."""
    clean = {key: value for key, value in os.environ.items()
             if key not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CELERY_BROKER_URL")}
    run = subprocess.run([sys.executable, "-m", "demo", "--customers", "40", "--days", "10", "--seed", "11",
                          "--outbox", str(outbox)], cwd=REPO, env={**clean, **env},
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = re.sub(r" in [0-9.]+ s:", ":", run.stdout.split("\nOutbox:")[0])
    sent = sorted(f"{parsed['Date']} {parsed['To']} {parsed['Subject']}" for parsed in (
        email.message_from_bytes(path.read_bytes(), policy=policy.default) for path in outbox.glob("*.eml")))
    worker = re.search(r"worker: (\w+)", run.stderr).group(1)
    return worker, summary, sent


@pytest.mark.celery
def test_the_same_seed_gives_the_same_month_on_sqlite_inline_and_on_postgresql_with_celery(settings, tmp_path):
    """The README promises the same month for the same seed, whichever of its two commands runs it."""
    import psycopg

    database = settings.DATABASES["default"]
    name = (database["TEST"]["NAME"] or f"test_{database['NAME']}") + "_demo"
    conninfo = {"host": database["HOST"], "port": database["PORT"], "user": database["USER"],
                "password": database["PASSWORD"] or None, "dbname": "postgres", "autocommit": True}
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{name}"
    try:
        inline = run_demo(tmp_path / "inline", DEMO_SQLITE=str(tmp_path / "demo.sqlite3"))
        celery = run_demo(tmp_path / "celery", DATABASE_URL=url, CELERY_BROKER_URL=settings.CELERY_BROKER_URL)
    finally:
        with psycopg.connect(**{key: value for key, value in conninfo.items() if value}) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    assert (inline[0], celery[0]) == ("inline", "Celery")
    assert "emails" in inline[1] and len(inline[2]) > 50
    assert inline[1:] == celery[1:]


def test_demo_emails_show_recommended_products_and_every_shop_link_leads_to_a_local_page(flows, settings, tmp_path):
    """What a newcomer opens offline: products with prices and images that exist, buttons to real shop pages."""
    import re
    from html import unescape

    from demo import settings as demo_settings

    settings.EMAIL_BACKEND = "demo.outbox.EmailBackend"
    settings.DEMO_OUTBOX_DIR = str(tmp_path)
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, **{key: demo_settings.SALEOR_FLOWS[key] for key in (
        "CATALOG", "PRODUCT_URL_TEMPLATE", "RECOMMENDATION_MIN_SUPPORT", "SHOP")}}
    store.simulate(customers=40, days=10, seed=7)

    cross_sells = sorted(tmp_path.glob("*-picked-to-go-with-your-order.html"))
    assert cross_sells
    for path in cross_sells:
        html = path.read_text(encoding="utf-8")
        products = re.findall(r'<img src="(shop/media/[a-z0-9-]+\.png)"[^>]*alt="([^"]+)"', html)
        assert products, path.name  # the picks, with their images
        assert re.search(r"\$\d+\.\d\d", html)
    links, images = set(), set()
    for path in tmp_path.glob("*.html"):
        html = path.read_text(encoding="utf-8")
        links |= {unescape(h) for h in re.findall(r'<a\b[^>]*?href="([^"]*)"', html)}
        images |= {unescape(s) for s in re.findall(r'<img\b[^>]*?src="([^"]*)"', html)}
    shop_links = {link for link in links if link.startswith(("shop/", store.SHOP_URL))}
    # Every link to the shop (tracked ones resolved) is a local page; our own pages (unsubscribe, preferences) stay.
    assert {link for link in shop_links if not link.startswith("shop/")} <= {
        link for link in shop_links if "/saleor.flows/unsubscribe/" in link or "/saleor.flows/preferences/" in link}
    assert all((tmp_path / link).is_file() for link in shop_links if link.startswith("shop/"))
    assert {"shop/collections/best-sellers/index.html"} <= shop_links or not any(
        p.name.endswith("the-story-behind-our-shop.html") for p in tmp_path.glob("*.html"))
    assert any(link.startswith("shop/products/") for link in shop_links)
    product_images = {src for src in images if "/media/" in src}
    assert product_images and all(src.startswith("shop/media/") and (tmp_path / src).is_file()
                                  for src in product_images)

"""``python -m demo``: a month of a simulated shop through the three prebuilt journeys.

    python -m demo [--customers 300] [--days 30] [--seed 7] [--outbox demo-outbox]

Without configuration it needs nothing but this package: a fresh SQLite file
(``saleor-flows-demo.sqlite3`` in the temporary folder, ``DEMO_SQLITE`` to move it) and the engine running inline in this process. With
``DATABASE_URL=postgres://…`` it uses PostgreSQL; with
``CELERY_BROKER_URL=redis://…`` the work goes through Redis to a real Celery
worker, started here in a thread so it shares the simulated clock. The same
seed gives the same month in every mode (the main thread waits for the worker
before it moves the clock on); only emails sent in the same sweep may be
numbered in another order in the outbox.
"""

import argparse
import os
import sys
import time
from pathlib import Path


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=300, help="how many customers sign up (default 300)")
    parser.add_argument("--days", type=int, default=30, help="simulated days of shopping (default 30)")
    parser.add_argument("--seed", type=int, default=7, help="random seed; the same seed gives the same month")
    parser.add_argument("--outbox", default="demo-outbox", help="folder for the sent emails (default demo-outbox)")
    parser.add_argument("--reset", action="store_true",
                        help="with DATABASE_URL: empty the saleor_flows tables even if the database has other tables")
    return parser.parse_args(argv)


class ProgressBar:
    """``[#####-----] day 12/44  emails 123``, redrawn in place on a terminal.

    When stderr is not a terminal (CI logs, a pipe) it prints a plain line
    every few days instead of carriage returns and escape codes.
    """

    def __init__(self, days: int, width: int = 30, interactive: bool | None = None):
        self.days, self.width = days, width
        self.interactive = sys.stderr.isatty() if interactive is None else interactive

    def __call__(self, day: int, total_days: int):
        from saleor_flows.models import Message

        if not self.interactive and day % 7 and day != total_days:
            return
        emails = Message.objects.filter(status=Message.Status.SENT).count()
        note = "" if day <= self.days else "  (month over: no new shoppers, journeys finishing)"
        if not self.interactive:
            sys.stderr.write(f"day {day}/{total_days}  emails {emails}{note}\n")
            return
        filled = round(self.width * day / total_days)
        sys.stderr.write(f"\r[{'#' * filled}{'-' * (self.width - filled)}] day {day}/{total_days}"
                         f"  emails {emails}{note}\033[K")
        if day == total_days:
            sys.stderr.write("\n")
        sys.stderr.flush()


def prepare_database(reset: bool):
    """Start every run from empty tables.

    SQLite: the file is deleted and recreated. PostgreSQL: a database that holds
    only the demo's own tables is emptied and reused (so the README's command
    can be run again); one with other tables (a Saleor database, say) is left
    alone unless ``--reset`` says to empty the saleor_flows tables in it.
    """
    from django.apps import apps
    from django.conf import settings
    from django.core.management import call_command
    from django.core.management.color import no_style
    from django.db import connection

    database = settings.DATABASES["default"]
    if connection.vendor == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(database["NAME"] + suffix).unlink(missing_ok=True)
    else:
        from saleor_flows.db import create_database_if_missing

        if create_database_if_missing(database):
            print(f"created the database {database['NAME']!r}", file=sys.stderr)
        ours = {model._meta.db_table for model in apps.get_models(include_auto_created=True)} | {"django_migrations"}
        foreign = sorted(set(connection.introspection.table_names()) - ours)
        if foreign and not reset:
            sys.exit(f"The database {database['NAME']!r} has tables the demo did not create ({', '.join(foreign[:5])}"
                     f"{', …' if len(foreign) > 5 else ''}).\nUse an empty database, or pass --reset to empty the"
                     " saleor_flows tables in it anyway.")
    call_command("migrate", verbosity=0)
    if connection.vendor != "sqlite":
        tables = [model._meta.db_table for model in apps.get_app_config("saleor_flows").get_models()]
        connection.ops.execute_sql_flush(connection.ops.sql_flush(no_style(), tables, allow_cascade=True))


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    import django

    django.setup()
    from django.conf import settings

    from saleor_flows.engine import dispatch
    from saleor_flows.engine.report import flow_summary, format_summary
    from saleor_flows.models import Enrolment, Event

    from . import outbox, store

    prepare_database(args.reset)
    outbox_dir = Path(args.outbox).resolve()
    settings.DEMO_OUTBOX_DIR = str(outbox_dir)
    outbox.clear(outbox_dir)

    mode = dispatch.mode()
    database = settings.DATABASES["default"]
    where = "SQLite " + database["NAME"] if database["ENGINE"].endswith("sqlite3") else (
        f"PostgreSQL {database['HOST']}:{database['PORT']}/{database['NAME']}")
    print(f"Northwind Outfitters demo: {args.customers} customers, {args.days} days (+{store.QUIET_DAYS} quiet),"
          f" seed {args.seed}", file=sys.stderr)
    print(f"database: {where}; worker: " + ("Celery (in-process thread, broker "
                                            f"{settings.CELERY_BROKER_URL})" if mode == "celery" else "inline"),
          file=sys.stderr)

    started = time.monotonic()
    progress = ProgressBar(args.days)
    if mode == "celery":
        from .celery_app import running_worker, wait_until_idle

        with running_worker():
            result = store.simulate(customers=args.customers, days=args.days, seed=args.seed,
                                    settle=wait_until_idle, progress=progress)
    else:
        result = store.simulate(customers=args.customers, days=args.days, seed=args.seed, progress=progress)
    elapsed = time.monotonic() - started

    stats = result["stats"]
    print()
    derived = Event.objects.count() - result["events"]
    print(f"Simulated {args.days} days of shopping and {store.QUIET_DAYS} quiet days in {elapsed:.1f} s:"
          f" {result['events']} shopper events (+{derived} the engine derived: checkout_abandoned, first_order…),"
          f" {Enrolment.objects.count()} enrolments, {result['emails']} emails.")
    print("Shoppers: " + ", ".join(f"{key} {n}" for key, n in stats.items()))
    dead = Event.objects.filter(status=Event.Status.DEAD).count()
    if dead:
        print(f"Dead-lettered events: {dead} (see Event.error)")
    for flow in result["flows"]:
        print()
        print(format_summary(flow_summary(flow)))
    files = sorted(outbox_dir.glob("*.html")) if outbox_dir.is_dir() else []
    print()
    print(f"Outbox: {outbox_dir} ({len(files)} emails as .eml and .html)")
    if files:
        print(f"Open one in a browser, e.g.:  xdg-open '{files[0]}'   (macOS: open …;"
              " or drag the .html file into a browser window). The .eml files open in any mail client.")


if __name__ == "__main__":
    main()

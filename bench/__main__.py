"""``python -m bench [events|claim|sends|hook|scaleout|recommendations …]``: run benchmarks (all by default), then a summary."""

import argparse
import importlib
import os
import platform
import sys
import time

BENCHMARKS = ["events", "ingest", "claim", "sends", "render", "hook", "latency", "drain", "scaleout", "storage", "tracking",
              "offline", "report", "retention", "recommendations", "app_webhook"]

# --full: the sizes of the design brief with no time limits (far over 10 minutes with the engine as it is).
FULL = {
    "ingest": {"max_seconds": (None, None), "n_immediate": 5_000},
    "events": {"n": 100_000},
    "storage": {"n": 5_000},
    "sends": {"n_drain": 100_000},
    "scaleout": {"events": 20_000, "timeout": 3600},
    "drain": {"n": 100_000, "before": False},
    "retention": {"contacts": 10_000, "months": 18},
}


def machine() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
        cursor.execute("SELECT current_setting('shared_buffers'), current_setting('synchronous_commit'), "
                       "current_setting('autovacuum')")
        shared_buffers, sync_commit, autovacuum = cursor.fetchone()
    with open("/proc/meminfo") as meminfo:
        ram_gb = int(meminfo.readline().split()[1]) / 1024 / 1024
    load = os.getloadavg()
    return (f"{os.cpu_count()} CPUs, {ram_gb:.0f} GB RAM, PostgreSQL {pg} (shared_buffers {shared_buffers}, "
            f"synchronous_commit {sync_commit}, autovacuum {autovacuum}), Python {platform.python_version()}, "
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="name",
                        help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--full", action="store_true",
                        help="ingest: all 20,000 events without time limits; storage: 5,000 journeys; "
                             "sends: 100,000 due drained by 2 processes; "
                             "drain: event latency while 100,000 due emails drain; "
                             "retention: 10,000 contacts for 18 months")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = args.names or BENCHMARKS

    from bench.common import RESULTS, say, setup, truncate

    setup()
    truncate()  # a benchmark that stopped half-way last time leaves its rows behind
    say(f"machine: {machine()}")
    started = time.perf_counter()
    for name in names:
        say()
        module = importlib.import_module(f"bench.{name}")
        t0 = time.perf_counter()
        module.run(**(FULL.get(name, {}) if args.full else {}))
        truncate()
        say(f"({name}: {time.perf_counter() - t0:,.0f} s)")

    say()
    say(f"summary ({time.perf_counter() - started:,.0f} s; load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    width = max(len(f.name) for f in RESULTS.figures)
    for figure in RESULTS.figures:
        mark = {True: "✓", False: "✗", None: " "}[figure.met]
        say(f" {mark} {figure.name:<{width}}  {figure.value}")
        if figure.target:
            say(f"   {'':<{width}}  target: {figure.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

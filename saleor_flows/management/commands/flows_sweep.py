import time

from django.core.management.base import BaseCommand

from saleor_flows.engine.sweep import sweep


class Command(BaseCommand):
    help = (
        "Claim due flow steps and hand them to workers. Without --loop it runs once "
        "(for cron); with --loop it keeps sweeping every --interval seconds (for development, "
        "or where Celery beat does not run). Safe to run in many processes at once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="keep sweeping until interrupted")
        parser.add_argument("--interval", type=float, default=5.0, help="seconds between sweeps with --loop")
        parser.add_argument("--batch-size", type=int, default=None, help="executions claimed per batch")

    def handle(self, *args, loop=False, interval=5.0, batch_size=None, **options):
        while True:
            report = sweep(batch_size=batch_size)
            if report.claimed or report.released or report.ambiguous or report.requeued_events or options["verbosity"] > 1:
                self.stdout.write(
                    f"claimed {report.claimed}, released {report.released}, "
                    f"ambiguous {report.ambiguous}, events re-enqueued {report.requeued_events}"
                )
            if not loop:
                return
            try:
                time.sleep(interval)
            except KeyboardInterrupt:
                return

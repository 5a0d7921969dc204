from django.core.management.base import BaseCommand

from saleor_flows.engine.retention import prune


class Command(BaseCommand):
    help = (
        "Delete rows older than the RETENTION_* settings (events, trail, finished enrolments, messages, "
        "message events, simulations) in small batches, after folding the report rollup. The beat task "
        "saleor_flows.prune does this nightly. --dry-run counts what would go and deletes nothing. "
        "See docs/retention.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count per table, delete nothing")

    def handle(self, *args, dry_run=False, **options):
        report = prune(dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        if not dry_run:
            self.stdout.write(f"folded {report.folded:,} stat deltas into the rollup")
        for table, rows in sorted(report.deleted.items()):
            self.stdout.write(f"{table:<16} {verb} {rows:>12,}")
        for table, rows in sorted(report.kept.items()):
            self.stdout.write(f"{table:<16} kept    {rows:>12,} compact rows")
        self.stdout.write(f"{report.transactions:,} transactions, the largest {report.largest_transaction:,} rows")

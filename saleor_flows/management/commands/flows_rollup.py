from django.core.management.base import BaseCommand

from saleor_flows.engine.analytics import rebuild, rollup


class Command(BaseCommand):
    help = (
        "Fold counted changes (sends, opens, clicks, exits, orders...) into the flow reports' daily "
        "rollup, end held-out enrolments whose window passed and let A/B splits pick their winners. "
        "The beat task saleor_flows.rollup does this every minute; reports are exact either way. "
        "--rebuild recounts everything from the tables (after pruning, only what is left: see docs/retention.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rebuild", action="store_true", help="recount the rollup from scratch")

    def handle(self, *args, **options):
        if options.get("rebuild"):
            self.stdout.write(f"rebuilt: {rebuild():,} changes counted")
        result = rollup()
        self.stdout.write(f"folded {result['folded']:,} changes, ended {result['holdouts_ended']} held-out "
                          f"enrolments, winners chosen: {len(result['winners'])}")
        for winner in result["winners"]:
            self.stdout.write(f"  {winner['flow']}/{winner['step_id']}: {winner['variant']} "
                              f"(P(best) {winner['probability']:.3f})")

from django.core.management.base import BaseCommand, CommandError

from saleor_flows.engine import dispatch
from saleor_flows.models import Event


class Command(BaseCommand):
    help = (
        "List events that could not be processed (dead letters), with the reason. "
        "After fixing the cause (or the sender), --retry puts them back in the queue; "
        "their dedupe keys still guarantee nobody is enrolled twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("--retry", nargs="*", type=int, metavar="ID",
                            help="re-queue these event ids (no ids: every dead event)")
        parser.add_argument("--limit", type=int, default=50, help="how many to list")

    def handle(self, *args, retry=None, limit=50, **options):
        dead = Event.objects.filter(status=Event.Status.DEAD).order_by("-received_at")
        if retry is None:
            total = dead.count()
            for event in dead[:limit]:
                who = event.email or event.user_id or "-"
                self.stdout.write(f"{event.pk}\t{event.received_at:%Y-%m-%d %H:%M}\t{event.name}\t{who}\t{event.error}")
            self.stdout.write(f"{total} dead event(s)")
            return
        chosen = dead.filter(pk__in=retry) if retry else dead
        ids = list(chosen.values_list("pk", flat=True))
        if retry and len(ids) != len(set(retry)):
            missing = sorted(set(retry) - set(ids))
            raise CommandError(f"not dead events: {missing}")
        Event.objects.filter(pk__in=ids).update(status=Event.Status.PENDING, error="", processed_at=None)
        dispatch.events_pending(ids)
        self.stdout.write(f"re-queued {len(ids)} event(s)")

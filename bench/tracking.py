"""What our open pixel and click rewriting add to preparing a marketing email.

The prebuilt abandoned-checkout cart email for 400 contacts, ``delivery.prepare()``
with ``TRACKING`` off and on, alternated four times in one process (best run of
each), so that a busy machine slows both alike.
"""

import time
import uuid

from bench.common import RESULTS, say, truncate


def run(n=400, rounds=4):
    from django.conf import settings

    from saleor_flows import clock
    from saleor_flows.channels import delivery
    from saleor_flows.engine.definition import message_kind
    from saleor_flows.models import Enrolment

    from bench.render import STEP, setup_journeys

    say(f"tracking: prepare() of the cart email for {n} contacts, TRACKING off and on")
    truncate()
    clock.set_now(clock.now())
    flow = setup_journeys(n)
    definition = flow.live_version.definition
    step = definition["steps"][STEP]
    pairs = [(e.contact, e.trigger_event.payload)
             for e in Enrolment.objects.select_related("contact", "trigger_event").order_by("id")]
    original = settings.SALEOR_FLOWS

    def per_email_ms(tracking):
        settings.SALEOR_FLOWS = {**original, "TRACKING": tracking}
        started = time.perf_counter()
        for contact, payload in pairs:
            delivery.prepare(step, kind=message_kind(step, definition), flow=flow, contact=contact,
                             event_payload=payload, send_id=uuid.uuid4())
        return (time.perf_counter() - started) / len(pairs) * 1e3

    try:
        runs = {False: [], True: []}
        for _ in range(rounds):
            for tracking in (False, True):
                runs[tracking].append(per_email_ms(tracking))
    finally:
        settings.SALEOR_FLOWS = original
    off, on = min(runs[False]), min(runs[True])
    say(f"  {len(step.get('links') or {})} tracked links; prepare() {off:.2f} ms off, {on:.2f} ms on: "
        f"+{on - off:.2f} ms per email")
    RESULTS.add("tracking: prepare() with our pixel and link rewriting", f"+{on - off:.2f} ms per marketing email "
                f"({off:.2f} → {on:.2f} ms)")

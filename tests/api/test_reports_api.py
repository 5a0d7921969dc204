"""A flow's report through the API counts marketing sends by the consent rule that let each out
(issue 13 item 6): how many relied on soft opt-in or opt-out rather than a yes. Real engine, real
PostgreSQL triggers and rollup, over HTTP with a real token."""

import pytest

from saleor_flows.api.core import to_global_id
from saleor_flows.engine import analytics
from saleor_flows.models import Message
from tests.flowkit import chain, email, nxt

pytestmark = pytest.mark.django_db
REPORT = "query($id: ID!) { flowReport(id: $id) }"


def test_the_flow_report_counts_sends_by_consent_basis(flows, api, tokens, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "CONSENT_POLICY": {"default": "soft_opt_in",
                                                                          "us-store": "opt_out"}}
    flow = flows.flow(chain("promo", ("news", email("News", next="...")),
                            ("receipt", nxt(email("Your receipt", kind="transactional"))),
                            ("more", email("More news"))), slug="promo")
    flows.contact("yes@example.com", email_consent="subscribed")  # said yes: consent
    flows.contact("buyer@example.com", order_count=1)  # bought, never answered: soft opt-in
    flows.contact("browser@example.com")  # never bought, never answered: not reachable under soft opt-in
    flows.contact("us@example.com")  # nobody said no, in the opt-out channel
    for address in ("yes@example.com", "buyer@example.com", "browser@example.com"):
        flows.event("promo", email=address)
    flows.event("promo", email="us@example.com", channel="us-store")

    stored = dict(Message.objects.filter(step_id="news").values_list("to", "basis"))
    assert stored == {"yes@example.com": "consent", "buyer@example.com": "soft_opt_in", "us@example.com": "opt_out"}
    assert set(Message.objects.filter(step_id="receipt").values_list("basis", flat=True)) == {""}

    def report():
        return api(REPORT, {"id": to_global_id("Flow", flow.pk)}, token=tokens.staff("MANAGE_PLUGINS"))["flowReport"]

    expected = {"consent": 2, "soft_opt_in": 2, "opt_out": 2}  # two marketing emails each; receipts not in it
    before_fold = report()
    assert before_fold["sent_by_basis"] == expected
    assert before_fold["totals"]["sent"] == 4 + 6  # the browser got the receipt only
    analytics.fold_deltas()
    assert report()["sent_by_basis"] == expected
    analytics.rebuild()  # recounted from the messages themselves: the same
    assert report()["sent_by_basis"] == expected

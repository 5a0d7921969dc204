"""A paid order, then its fulfilment, in Saleor → post-purchase: a thank-you, the review request a week later."""

import pytest

from .saleor_env import NOT_INSTALLED, require_saleor

require_saleor()
pytest.importorskip("saleor", reason=NOT_INSTALLED)

from saleor_flows.models import Enrolment, Event  # noqa: E402

from .saleor_graphql import complete, create_checkout, fulfill, pay, prepare_for_payment  # noqa: E402


def test_paid_then_fulfilled_order_gets_thank_you_and_review_request(
        user_api_client, customer_user, app_api_client, staff_api_client, permission_manage_payments,
        permission_group_manage_orders, channel_USD, shop_variant, flows, journey):
    steps = journey("post_purchase")["steps"]
    thank_you, review = steps["email_thank_you"]["subject"], steps["email_review_request"]["subject"]
    email = customer_user.email
    flows.contact(email, email_consent="subscribed")  # the review request is marketing: it needs consent

    checkout = create_checkout(user_api_client, channel=channel_USD.slug, variant=shop_variant, email=email)
    prepare_for_payment(user_api_client, checkout["id"])
    pay(app_api_client, checkout["id"], permission_manage_payments)
    order = complete(user_api_client, checkout["id"])
    assert order["chargeStatus"] == "FULL"

    paid = Event.objects.get(name="order_fully_paid")
    assert paid.status == Event.Status.PROCESSED, paid.error
    assert paid.email == email and str(paid.payload["number"]) == order["number"]
    assert [m.subject for m in flows.emails_to(email)] == [thank_you], flows.why(email)
    assert "Linen Summer Shirt" in flows.emails_to(email)[0].alternatives[0][0]

    flows.advance(days=1)
    permission_group_manage_orders.user_set.add(staff_api_client.user)  # MANAGE_ORDERS, all channels
    fulfilled = fulfill(staff_api_client, order["id"])
    assert fulfilled["status"] == "FULFILLED"
    assert Event.objects.get(name="order_fulfilled").status == Event.Status.PROCESSED

    flows.advance(days=6)  # six days after fulfilment: not yet
    assert [m.subject for m in flows.emails_to(email)] == [thank_you]
    flows.advance(days=1, minutes=1)  # seven days after fulfilment
    assert [m.subject for m in flows.emails_to(email)] == [thank_you, review], flows.why(email)

    enrolment = Enrolment.objects.get(flow__slug="post_purchase")
    assert enrolment.trigger_event_id == paid.pk

"""Checkouts in Saleor → the abandoned-checkout journey: sent once for an abandoned one, never for a completed one."""

import pytest

from .saleor_env import NOT_INSTALLED, require_saleor

require_saleor()
pytest.importorskip("saleor", reason=NOT_INSTALLED)

from freezegun import freeze_time  # noqa: E402  (Saleor's dev dependency)

from saleor_flows.models import Event, IdleTimer  # noqa: E402

from .saleor_graphql import (  # noqa: E402
    complete, create_checkout, pay, prepare_for_payment, register, set_checkout_email, tick_checkout_box)

SHOPPER = "sam.shopper@example.com"


def subjects(flows, email):
    return [m.subject for m in flows.emails_to(email)]


def test_idle_checkout_gets_one_reminder_with_its_real_lines(api_client, channel_USD, shop_variant, flows, journey):
    steps = journey("abandoned_checkout")["steps"]
    reminder = steps["email_reminder"]["subject"]
    flows.contact(SHOPPER, email_consent="subscribed", first_name="Sam")

    checkout = create_checkout(api_client, channel=channel_USD.slug, variant=shop_variant, email=SHOPPER, quantity=2)

    created = Event.objects.get(name="checkout_created")
    assert created.status == Event.Status.PROCESSED, created.error
    assert created.payload["token"] == checkout["token"]
    timer = IdleTimer.objects.get(key=f"checkout:{checkout['token']}")
    assert timer.state == IdleTimer.State.WAITING

    flows.advance(minutes=59)  # not idle long enough yet
    assert not Event.objects.filter(name="checkout_abandoned").exists()
    flows.advance(minutes=2)  # idle for 61 minutes: abandoned; the journey waits one more hour
    assert Event.objects.filter(name="checkout_abandoned").count() == 1
    assert subjects(flows, SHOPPER) == []
    flows.advance(hours=1)

    assert subjects(flows, SHOPPER) == [reminder], flows.why(SHOPPER)
    html = flows.emails_to(SHOPPER)[0].alternatives[0][0]
    assert "Linen Summer Shirt" in html  # the product of the real checkout line
    assert "$24.90" in html and "$49.80" in html  # its unit price, and the lines total for 2
    assert f"https://shop.example.com/checkout?c={checkout['token']}" in html  # the plugin's link template

    for _ in range(3):  # the sweep runs again and again (beat, cron, several workers)
        flows.sweep()
        flows.advance(minutes=30)
    for _ in range(4):  # through the rest of the journey: +23 h, +48 h
        flows.advance(days=1)
        flows.sweep()
    assert subjects(flows, SHOPPER).count(reminder) == 1
    assert subjects(flows, SHOPPER) == [reminder, steps["email_social_proof"]["subject"],
                                        steps["email_last_chance"]["subject"]]
    assert Event.objects.filter(name="checkout_abandoned").count() == 1


def test_paid_and_completed_checkout_gets_no_abandoned_email(
        api_client, app_api_client, permission_manage_payments, channel_USD, shop_variant, flows, journey):
    journey("abandoned_checkout")
    flows.contact(SHOPPER, email_consent="subscribed", first_name="Sam")

    checkout = create_checkout(api_client, channel=channel_USD.slug, variant=shop_variant, email=SHOPPER)
    flows.advance(minutes=10)
    prepare_for_payment(api_client, checkout["id"])
    flows.advance(minutes=10)
    pay(app_api_client, checkout["id"], permission_manage_payments)
    order = complete(api_client, checkout["id"])
    assert order["userEmail"] == SHOPPER

    names = set(Event.objects.values_list("name", flat=True))
    assert {"checkout_created", "checkout_updated", "order_created"} <= names, names
    assert IdleTimer.objects.get(key=f"checkout:{checkout['token']}").state == IdleTimer.State.CANCELLED

    for _ in range(4):
        flows.advance(days=1)
    assert not Event.objects.filter(name="checkout_abandoned").exists()
    assert flows.emails_to(SHOPPER) == [], flows.why(SHOPPER)


def test_guest_checkout_counts_from_when_it_gets_an_email(api_client, channel_USD, shop_variant, flows, journey):
    steps = journey("abandoned_checkout")["steps"]
    flows.contact(SHOPPER, email_consent="subscribed")

    checkout = create_checkout(api_client, channel=channel_USD.slug, variant=shop_variant, email=None)
    assert not IdleTimer.objects.exists()  # nobody to write to yet
    flows.advance(minutes=30)
    with freeze_time(flows.now):  # Saleor's clock where the engine's is: half an hour later
        set_checkout_email(api_client, checkout["id"], SHOPPER)  # the storefront's email step
    assert IdleTimer.objects.get(key=f"checkout:{checkout['token']}").state == IdleTimer.State.WAITING

    flows.advance(minutes=59)
    assert not Event.objects.filter(name="checkout_abandoned").exists()  # idle since the email, not since creation
    flows.advance(minutes=2)
    flows.advance(hours=1)
    assert subjects(flows, SHOPPER) == [steps["email_reminder"]["subject"]], flows.why(SHOPPER)


def test_a_guest_who_ticks_the_box_at_checkout_and_leaves_gets_the_reminder(
        api_client, channel_USD, shop_variant, flows, journey):
    """No account, no earlier consent: the box on the checkout page (checkout metadata) is the consent, with proof."""
    from saleor_flows.models import ConsentChange, Contact

    steps = journey("abandoned_checkout")["steps"]
    guest = "gia.guest@example.com"
    checkout = create_checkout(api_client, channel=channel_USD.slug, variant=shop_variant, email=guest)
    with freeze_time(flows.now):
        tick_checkout_box(api_client, checkout["id"])
    contact = Contact.objects.get(email=guest)
    assert (contact.user_id, contact.email_consent, contact.email_consent_source) == (
        None, "subscribed", "saleor_checkout_metadata")
    assert ConsentChange.objects.get(contact=contact).detail == {"checkout": checkout["token"]}

    flows.advance(minutes=61)
    flows.advance(hours=1)
    assert subjects(flows, guest) == [steps["email_reminder"]["subject"]], flows.why(guest)


def test_a_guest_who_leaves_the_box_unticked_gets_nothing(api_client, channel_USD, shop_variant, flows, journey):
    journey("abandoned_checkout")
    guest = "nico.noconsent@example.com"
    create_checkout(api_client, channel=channel_USD.slug, variant=shop_variant, email=guest)
    flows.advance(minutes=61)
    flows.advance(hours=1)
    assert subjects(flows, guest) == []
    assert "consent" in flows.why(guest)


def test_a_subscriber_welcomed_an_hour_ago_gets_the_cart_reminder_on_time(
        api_client, channel_USD, shop_variant, flows, journey):
    """The shop's 16 h cap (the shipped default here) does not hold a cart reminder behind the welcome email."""
    welcome = journey("welcome")["steps"]["email_welcome"]["subject"]
    reminder = journey("abandoned_checkout")["steps"]["email_reminder"]["subject"]
    shopper = "wendy.welcomed@example.com"
    with freeze_time(flows.now):
        register(api_client, shopper, channel=channel_USD.slug, consent=True)
    assert subjects(flows, shopper) == [welcome]

    flows.advance(hours=1)
    with freeze_time(flows.now):
        create_checkout(api_client, channel=channel_USD.slug, variant=shop_variant, email=shopper)
    flows.advance(minutes=61)
    flows.advance(hours=1)
    assert subjects(flows, shopper) == [welcome, reminder], flows.why(shopper)

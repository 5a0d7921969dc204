"""Sign-up in Saleor → the welcome journey's first email."""

import pytest

from .saleor_env import NOT_INSTALLED, require_saleor

require_saleor()
pytest.importorskip("saleor", reason=NOT_INSTALLED)

from saleor_flows.models import Contact, Event  # noqa: E402

from .saleor_graphql import ACCOUNT_UPDATE, mutate, register, set_consent_metadata  # noqa: E402


def test_account_register_sends_the_welcome_email(api_client, channel_USD, flows, journey):
    welcome = journey("welcome")

    register(api_client, "Jane.Signup@Example.com", channel=channel_USD.slug, consent=True)

    event = Event.objects.get(name="customer_created")
    assert event.status == Event.Status.PROCESSED, event.error
    assert event.email == "jane.signup@example.com"
    contact = Contact.objects.get(email="jane.signup@example.com")
    assert contact.email_consent == "subscribed"  # from Saleor user metadata marketing_consent=true
    emails = flows.emails_to("jane.signup@example.com")
    assert [m.subject for m in emails] == [welcome["steps"]["email_welcome"]["subject"]], flows.why(contact.email)
    assert "Jane" in emails[0].alternatives[0][0]
    assert emails[0].from_email == "Flows Test Shop <hello@shop.example.com>"  # from the plugin's configuration


def test_no_welcome_email_without_consent(api_client, channel_USD, flows, journey):
    journey("welcome")

    register(api_client, "no.consent@example.com", channel=channel_USD.slug, consent=False)

    assert Contact.objects.get(email="no.consent@example.com").email_consent == "unsubscribed"
    assert flows.emails_to("no.consent@example.com") == []


def test_consent_follows_the_storefronts_metadata_changes(user_api_client, customer_user, flows):
    email = customer_user.email

    set_consent_metadata(user_api_client, customer_user, "true")
    assert Contact.objects.get(email=email).email_consent == "subscribed"
    set_consent_metadata(user_api_client, customer_user, "false")
    assert Contact.objects.get(email=email).email_consent == "unsubscribed"


def test_consent_withdrawn_right_after_a_profile_edit_is_not_lost(user_api_client, customer_user, flows):
    email = customer_user.email
    set_consent_metadata(user_api_client, customer_user, "true")
    assert Contact.objects.get(email=email).email_consent == "subscribed"

    mutate(user_api_client, "accountUpdate", ACCOUNT_UPDATE, {"input": {"firstName": "Janet"}})
    set_consent_metadata(user_api_client, customer_user, "false")  # the newsletter box unticked

    events = list(Event.objects.filter(name="customer_updated").order_by("id").values_list("dedupe_key", flat=True))
    assert Contact.objects.get(email=email).email_consent == "unsubscribed", events


def test_marketing_mail_shows_the_company_address_from_saleors_site_settings(
        api_client, channel_USD, flows, journey, site_settings, address):
    """CAN-SPAM: the postal address in Configuration → Site settings is in every marketing email (HTML and text)."""
    address.company_name = "Flows Test Shop Ltd"
    address.save()
    site_settings.company_address = address
    site_settings.save(update_fields=["company_address"])
    journey("welcome")

    register(api_client, "addressed@example.com", channel=channel_USD.slug, consent=True)

    [welcome] = flows.emails_to("addressed@example.com")
    html = welcome.alternatives[0][0]
    for part in ("Flows Test Shop Ltd", address.street_address_1, address.city):
        assert part in html and part in welcome.body, part
    assert "/preferences/" in html and "/unsubscribe/" in html

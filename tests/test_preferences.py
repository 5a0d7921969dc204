"""The preference centre, the localized public pages, and what every marketing email carries."""

from datetime import timedelta
from urllib.parse import urlparse

import re
import pytest

from saleor_flows.models import ConsentChange, Contact, Suppression
from saleor_flows.channels import tokens

from .flowkit import chain, email

TOPICS = [{"key": "newsletter", "label": {"en": "Newsletter", "de": "Newsletter"}},
          {"key": "offers", "label": {"en": "Offers", "de": "Angebote"}}]


@pytest.fixture
def shop(settings, flows):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "TOPICS": TOPICS}
    return flows


def _path(url: str) -> str:
    return urlparse(url).path


def preferences_path(contact) -> str:
    return _path(tokens.url("preferences", contact.pk))


def test_the_page_speaks_the_contacts_language_from_saleors_code(shop, client):
    jana = shop.contact("jana@example.com", email_consent="subscribed", locale="DE")  # Saleor's LanguageCodeEnum
    page = client.get(preferences_path(jana), HTTP_ACCEPT_LANGUAGE="en-US")
    html = page.content.decode()
    assert page.status_code == 200 and '<html lang="de">' in html and page["Content-Language"] == "de"
    assert "E-Mail-Einstellungen" in html and "Angebote" in html and "Höchstens einmal pro Woche" in html
    assert "ja••@example.com" in html and "jana@example.com" not in html
    assert "<script" not in html


@pytest.mark.parametrize("locale, accept, default, expected", [
    ("de_DE", "", "en", "de"),
    ("", "fr-FR,de;q=0.8,en;q=0.5", "en", "de"),  # no French: the next language the browser accepts
    ("", "de;q=0, en", "de", "en"),
    ("pt-BR", "", "de", "de"),  # no Portuguese: the shop's default
])
def test_language_fallbacks(shop, client, settings, locale, accept, default, expected):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "DEFAULT_LANGUAGE": default}
    contact = shop.contact("x@example.com", email_consent="subscribed", locale=locale)
    page = client.get(preferences_path(contact), HTTP_ACCEPT_LANGUAGE=accept)
    assert page["Content-Language"] == expected


def test_saving_topics_frequency_and_a_pause_keeps_proof(shop, client):
    jane = shop.contact("jane@example.com", email_consent="subscribed", email_consent_source="checkout")
    response = client.post(preferences_path(jane), {"action": "save", "topics": ["newsletter"], "frequency": "weekly",
                                                    "pause": "30"},
                           REMOTE_ADDR="192.0.2.9", HTTP_USER_AGENT="Mozilla/5.0 (prefs)")
    assert response.status_code == 200 and "Your choices are saved." in response.content.decode()
    jane.refresh_from_db()
    assert jane.unsubscribed_topics == ["offers"]
    assert jane.frequency == "weekly"
    assert jane.paused_until == shop.now + timedelta(days=30)
    assert (jane.email_consent, jane.email_consent_source) == ("subscribed", "checkout")  # the original proof stays
    change = ConsentChange.objects.get(contact=jane)
    assert (change.source, change.ip, change.user_agent) == ("preference_centre", "192.0.2.9", "Mozilla/5.0 (prefs)")
    assert change.detail["preferences"]["unsubscribed_topics"] == ["offers"]
    # The form shows what was saved, and keeps the pause unless told otherwise.
    html = client.get(preferences_path(jane)).content.decode()
    assert 'value="newsletter" checked' in html and 'value="offers">' in html
    assert 'value="weekly" checked' in html and 'value="keep" checked' in html
    client.post(preferences_path(jane), {"action": "save", "topics": ["newsletter"], "frequency": "weekly",
                                         "pause": "keep"})
    jane.refresh_from_db()
    assert jane.paused_until == shop.now + timedelta(days=30)
    assert ConsentChange.objects.filter(contact=jane).count() == 1  # nothing changed, nothing logged
    client.post(preferences_path(jane), {"action": "save", "topics": ["newsletter", "offers"], "frequency": "",
                                         "pause": "0"})
    jane.refresh_from_db()
    assert (jane.unsubscribed_topics, jane.frequency, jane.paused_until) == ([], "", None)


@pytest.mark.parametrize("form", [
    {"action": "save", "topics": ["unknown"], "frequency": "", "pause": "0"},
    {"action": "save", "frequency": "hourly", "pause": "0"},
    {"action": "save", "frequency": "", "pause": "3650"},
    {"action": "delete_everything"},
])
def test_forged_form_values_are_refused_and_change_nothing(shop, client, form):
    jane = shop.contact("jane@example.com", email_consent="subscribed")
    response = client.post(preferences_path(jane), form)
    assert response.status_code == 400 and "choose from the options" in response.content.decode()
    jane.refresh_from_db()
    assert (jane.unsubscribed_topics, jane.frequency, jane.paused_until) == ([], "", None)
    assert not ConsentChange.objects.exists()


def test_unsubscribe_from_all_and_come_back(shop, client):
    jane = shop.contact("jane@example.com", email_consent="subscribed")
    left = client.post(preferences_path(jane), {"action": "unsubscribe_all"})
    assert "gets no marketing emails" in left.content.decode() and 'value="resubscribe"' in left.content.decode()
    jane.refresh_from_db()
    assert (jane.email_consent, jane.email_consent_source, jane.suppressed) == ("unsubscribed", "preference_centre", True)
    assert Suppression.objects.filter(channel="email", reason="unsubscribed").exists()
    back = client.post(preferences_path(jane), {"action": "resubscribe"})
    assert "Welcome back" in back.content.decode()
    jane.refresh_from_db()
    assert (jane.email_consent, jane.suppressed) == ("subscribed", False)
    assert not Suppression.objects.exists()


@pytest.mark.parametrize("page", ["preferences", "unsubscribe", "confirm"])
def test_a_tampered_token_gets_a_clear_400_page(shop, client, page):
    jane = shop.contact("jane@example.com", email_consent="subscribed", locale="de")
    token = tokens.make(page, jane.pk)
    forged = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    response = client.post(f"/plugins/global/saleor.flows/{page}/{forged}/", {"action": "unsubscribe_all"},
                           HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 400
    assert "ungültig" in response.content.decode()
    assert Contact.objects.get().email_consent == "subscribed"


def test_the_unsubscribe_page_links_to_the_preference_centre(shop, client):
    jane = shop.contact("jane@example.com", email_consent="subscribed")
    page = client.get(_path(tokens.url("unsubscribe", jane.pk, s="1"))).content.decode()
    link = page.split('href="')[1].split('"')[0]
    assert "/preferences/" in link and client.get(_path(link)).status_code == 200


# --- what marketing emails carry -----------------------------------------------------------------

def _promo(shop, body="Hi {{ contact.first_name }}", **contact):
    shop.contact("jane@example.com", email_consent="subscribed", first_name="Jane", **contact)
    shop.flow(chain("go", ("promo", email("Spring sale", body))), slug="promo")
    shop.flow(chain("order_created", ("receipt", email("Your receipt")), kind="transactional"), slug="receipt")
    shop.event("go", email="jane@example.com")
    shop.event("order_created", email="jane@example.com", payload={"total_gross_amount": "1", "currency": "USD"})
    return shop.emails_to("jane@example.com")


def test_list_unsubscribe_has_the_mailto_variant_when_the_shop_has_a_mailbox(shop, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "UNSUBSCRIBE_MAILTO": "unsubscribe@shop.example.com"}
    promo, receipt = _promo(shop)
    https, mailto = [part.strip().strip("<>") for part in promo.extra_headers["List-Unsubscribe"].split(",")]
    assert https.startswith("https://shop.example.com/plugins/global/saleor.flows/unsubscribe/")
    assert mailto == "mailto:unsubscribe@shop.example.com?subject=unsubscribe"
    assert promo.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "List-Unsubscribe" not in receipt.extra_headers


def test_without_a_mailbox_only_the_https_link(shop):
    promo, _ = _promo(shop)
    assert promo.extra_headers["List-Unsubscribe"].count("<") == 1


def test_a_template_without_an_unsubscribe_link_still_shows_one(shop, client):
    promo, receipt = _promo(shop, locale="de")
    url = promo.extra_headers["List-Unsubscribe"].strip("<>")
    html = promo.alternatives[0][0]
    assert f'href="{url}"' in html and ">Abmelden</a>" in html and "E-Mail-Einstellungen" in html
    assert html.index(url) < html.lower().index("</body>")
    assert url in promo.body  # the text part too
    assert "/unsubscribe/" not in receipt.body + receipt.alternatives[0][0]  # transactional mail gets no footer
    # The footer's preference link opens the preference centre.
    preferences = html.split('href="')[-1].split('"')[0]
    assert "/preferences/" in preferences and client.get(_path(preferences)).status_code == 200


def test_a_template_with_its_own_links_is_left_alone(shop):
    promo, _ = _promo(shop, body="Hi <a href='{{ unsubscribe_url }}'>Leave</a> "
                                  "<a href='{{ preferences_url }}'>Choose</a>")
    url = promo.extra_headers["List-Unsubscribe"].strip("<>")
    html = promo.alternatives[0][0]
    assert html.count(url) == 1 and "Leave" in html and ">Unsubscribe</a>" not in html


def test_a_template_with_only_an_unsubscribe_link_gets_the_preference_link_and_the_postal_address(shop, client):
    """Every marketing email carries both links and the shop's postal address (CAN-SPAM), added where missing."""
    promo, receipt = _promo(shop, body="Hi <a href='{{ unsubscribe_url }}'>Leave</a>")
    html = promo.alternatives[0][0]
    url = promo.extra_headers["List-Unsubscribe"].strip("<>")
    assert html.count(url) == 1 and ">Unsubscribe</a>" not in html  # its own link is kept, not doubled
    preferences = re.search(r'href="([^"]+)"[^>]*>Email preferences</a>', html).group(1)
    assert "/preferences/" in preferences and client.get(_path(preferences)).status_code == 200
    assert "1 Test Street" in html and "1 Test Street" in promo.body and preferences in promo.body
    assert "1 Test Street" not in receipt.body  # transactional mail is left as the merchant wrote it

"""Unsubscribing: the link in the email, the one-click POST, and what is sent afterwards."""

import re
from urllib.parse import urlparse

import pytest
from django.core import signing

from saleor_flows.models import Contact

from .flowkit import chain, email, nxt
from .test_smtp import smtp  # noqa: F401  (the real SMTP sink fixture)

JANE = "jane@example.com"


def _path(url: str) -> str:
    return urlparse(url).path


def _journeys(flows):
    flows.contact(JANE, email_consent="subscribed", first_name="Jane", locale="en")
    flows.flow(chain("go", ("promo", nxt(email("Spring sale", "Hi {{ contact.first_name }} "
                                                "<a href='{{ unsubscribe_url }}'>Unsubscribe</a>"))),
                     ("wait", nxt({"type": "wait", "duration": {"days": 1}})), ("promo2", email("Last day of the sale"))),
               slug="promo")
    flows.flow(chain("order_created", ("receipt", email("Your receipt")), kind="transactional"), slug="receipt")


def test_one_click_unsubscribe_from_the_headers_stops_marketing_but_not_receipts(flows, smtp, client):
    _journeys(flows)
    flows.event("go", email=JANE)
    (marketing,) = smtp.messages
    assert marketing["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = marketing["List-Unsubscribe"].strip().strip("<>")
    assert url.startswith("https://shop.example.com/plugins/global/saleor.flows/unsubscribe/")
    assert JANE not in url and "jane" not in url.lower()  # no readable personal data in the link
    # What Gmail/Yahoo do: POST the URL with this body, no cookies, no further interaction.
    response = client.post(_path(url), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "no more marketing emails" in response.content.decode()
    contact = Contact.objects.get()
    # The one-click body tells a mailbox provider's POST from a click on the page's button.
    assert (contact.email_consent, contact.email_consent_source) == ("unsubscribed", "list_unsubscribe")
    flows.advance(days=1)
    flows.event("order_created", email=JANE, payload={"total_gross_amount": "10", "currency": "USD"})
    assert [m["Subject"] for m in smtp.messages] == ["Spring sale", "Your receipt"]
    receipt = smtp.messages[-1]
    assert receipt["List-Unsubscribe"] is None  # transactional mail carries no unsubscribe
    assert "unsubscribed" in flows.trail_kinds(JANE)


def test_get_only_asks_link_scanners_never_unsubscribe(flows, client):
    _journeys(flows)
    flows.event("go", email=JANE)
    url = flows.emails_to(JANE)[0].extra_headers["List-Unsubscribe"].strip("<>")
    page = client.get(_path(url))
    assert page.status_code == 200 and 'method="post"' in page.content.decode()
    assert "ja••@example.com" in page.content.decode()  # masked
    assert Contact.objects.get().email_consent == "subscribed"


def test_the_body_link_works_too_and_twice_is_harmless(flows, client):
    _journeys(flows)
    flows.event("go", email=JANE)
    html = flows.emails_to(JANE)[0].alternatives[0][0]
    url = re.search(r'href="([^"]+)"[^>]*>Unsubscribe</a>', html).group(1).replace("&amp;", "&")
    for _ in range(2):
        assert client.post(_path(url)).status_code == 200
    assert Contact.objects.get().email_consent == "unsubscribed"


@pytest.mark.parametrize("mangle", [lambda t: t[:-2] + "xx", lambda t: "garbage", lambda t: signing.dumps(
    {"c": 1, "s": "x"}, salt="another-salt")])
def test_tampered_links_get_a_clear_400_and_change_nothing(flows, client, mangle):
    _journeys(flows)
    flows.event("go", email=JANE)
    url = flows.emails_to(JANE)[0].extra_headers["List-Unsubscribe"].strip("<>")
    token = url.rstrip("/").rsplit("/", 1)[1]
    response = client.post(f"/plugins/global/saleor.flows/unsubscribe/{mangle(token)}/")
    assert response.status_code == 400 and "not valid" in response.content.decode()
    assert Contact.objects.get().email_consent == "subscribed"


def test_edges_hear_about_committed_consent_changes(flows, client, django_capture_on_commit_callbacks):
    from saleor_flows.signals import consent_changed

    heard = []

    def listener(sender, contact, channel, status, source, **kwargs):
        heard.append((contact.email, channel, status, source))

    consent_changed.connect(listener)
    try:
        _journeys(flows)
        flows.event("go", email=JANE)
        url = flows.emails_to(JANE)[0].extra_headers["List-Unsubscribe"].strip("<>")
        with django_capture_on_commit_callbacks(execute=True):
            client.post(_path(url))
    finally:
        consent_changed.disconnect(listener)
    assert heard == [(JANE, "email", "unsubscribed", "unsubscribe_link")]


def test_the_plugin_router_serves_the_same_routes_as_the_url_conf(rf):
    """Saleor hands the plugin a path relative to its URL; ``serve`` resolves it like Django would."""
    from saleor_flows import urls

    assert urls.serve(rf.get("/x"), "nothing/here").status_code == 404
    # A tampered token reaches the unsubscribe view (400), with or without the trailing slash.
    assert urls.serve(rf.get("/x"), "/unsubscribe/forged-token/").status_code == 400
    assert urls.serve(rf.get("/x"), "unsubscribe/forged-token").status_code == 400

"""Issue 11, items 1, 6, 7, 14 on the API's anonymous doors: what a storefront sends cannot become the shop's
phishing mail, cross-site signups, a crash or a lost event. Over HTTP through the plugin's URL."""

import json
import re
from urllib.parse import urlsplit

import pytest

from saleor_flows.channels.links import links_in
from saleor_flows.engine.definition import create_flow, publish_flow
from saleor_flows.journeys import load_journey
from saleor_flows.models import Contact, Enrolment, Event
from tests.api.conftest import ENDPOINT, PUBLIC_KEY

TRACK = """mutation($key: String!, $input: TrackEventInput!) { trackEvent(publicKey: $key, input: $input) {
  errors { field code message } event { id duplicate } } }"""
SHOP_HOST = "shop.example.com"  # tests/settings.py SHOP url
TEE_VARIANT = "UHJvZHVjdFZhcmlhbnQ6Mjk3"
HOSTILE = {
    "product_name": '<a href="https://evil.example/x">Tee</a>\r\nBcc: victim@evil.example\u202e\x00 '
                    + "A" * 5000 + " https://evil.example/claim www.evil.example/win",
    "variant_name": "<img src=https://evil.example/v.gif>",
    "product_url": "https://evil.example/login",
    "thumbnail": "https://tracker.evil.example/p.gif",
    "image_url": "//evil.example/i.png",
    "price": "20.00", "currency": "USD",
    "extra": {"url": "javascript:alert(1)", "nested": [{"href": "http://evil.example/deep"}],
              "note": "https://shop.example.com@evil.example/"},
}


def catalog_lookup(*, product_id, variant_id, channel):
    """The test host's catalog: one known variant (as the Saleor edge would answer from Saleor's products)."""
    if variant_id != TEE_VARIANT:
        return None
    return {"product_name": "Monospace Tee", "variant_name": "M", "price": "20.00", "currency": "USD",
            "product_url": "https://shop.example.com/products/monospace-tee/",
            "thumbnail": "https://media.example.net/thumbnails/tee.png"}


def _view(api, payload, email="ann@example.com", event_id="view-1"):
    data = api(TRACK, {"key": PUBLIC_KEY, "input": {"event": "PRODUCT_VIEWED", "email": email, "payload": payload,
                                                    "eventId": event_id}})
    assert data["trackEvent"]["errors"] == [], data


def _browse_email(flows, api, payload):
    publish_flow(create_flow("browse", load_journey("browse_abandonment")))
    flows.contact("ann@example.com", email_consent="subscribed")
    _view(api, payload)
    flows.advance(hours=2, minutes=1)
    return flows.emails_to("ann@example.com")


def _everything(message) -> str:
    html = "".join(body for body, kind in message.alternatives if kind == "text/html")
    headers = "\n".join(f"{name}: {value}" for name, value in message.message().items())
    return "\n".join([message.subject, message.body, html, headers])


def _link_and_image_hosts(message) -> set[str]:
    html = "".join(body for body, kind in message.alternatives if kind == "text/html")
    urls = links_in(html) + re.findall(r"""<img\b[^>]*\bsrc\s*=\s*["']([^"']*)""", html, re.I)
    return {urlsplit(url).hostname for url in urls if not url.startswith("mailto:")}


def test_hostile_product_view_mails_no_foreign_link_image_or_markup(flows, api):
    emails = _browse_email(flows, api, HOSTILE)
    assert len(emails) == 1
    message = emails[0]
    assert "evil.example" not in _everything(message)
    assert _link_and_image_hosts(message) == {SHOP_HOST}
    assert "\n" not in message.subject and "\r" not in message.subject and len(message.subject) < 250
    assert message.subject.startswith("Still thinking about Tee Bcc: AAAA")
    html = "".join(body for body, kind in message.alternatives if kind == "text/html")
    assert "AAAA" in html and "A" * 300 not in html  # bounded plain text
    assert "\u202e" not in _everything(message) and "\x00" not in _everything(message)


def test_legitimate_product_view_still_mails_the_product(flows, api, client, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "STOREFRONT_URL_HOSTS": ["media.example.net"]}
    product = {"product_name": "Monospace Tee", "variant_name": "M", "price": "20.00", "currency": "USD",
               "product_url": "https://shop.example.com/products/monospace-tee/",
               "thumbnail": "https://media.example.net/thumbnails/tee.png",
               "details": {"size": "Size: M", "tags": ["cotton", "unisex"], "stock": 3, "rating": 4.5}}
    [message] = _browse_email(flows, api, product)
    stored = Event.objects.get(name="product_viewed").payload
    assert {key: stored[key] for key in product} == product  # a good view is stored as sent
    assert message.subject == "Still thinking about Monospace Tee?"
    html = "".join(body for body, kind in message.alternatives if kind == "text/html")
    assert 'src="https://media.example.net/thumbnails/tee.png"' in html and "$20.00" in html
    assert _product_link_target(client, html) == "https://shop.example.com/products/monospace-tee/"


def _product_link_target(client, html):
    """Where the email's button leads, through our click redirect."""
    targets = set()
    for url in links_in(html):
        path = urlsplit(url).path
        if "/c/" in path:
            response = client.get(path)
            if response.status_code == 302:
                targets.add(response["Location"])
    products = [target for target in targets if "/products/" in target]
    assert len(products) == 1, targets
    return products[0]


def test_with_a_catalog_the_shop_data_replaces_what_the_storefront_said(flows, api, client, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "CATALOG": f"{__name__}.catalog_lookup"}
    [message] = _browse_email(flows, api, {**HOSTILE, "variant_id": TEE_VARIANT})
    assert "evil.example" not in _everything(message) and "AAAA" not in _everything(message)
    assert message.subject == "Still thinking about Monospace Tee?"
    html = "".join(body for body, kind in message.alternatives if kind == "text/html")
    assert 'src="https://media.example.net/thumbnails/tee.png"' in html  # the catalog's own media host
    assert _product_link_target(client, html) == "https://shop.example.com/products/monospace-tee/"


def test_with_a_catalog_an_unknown_product_starts_no_journey(flows, api, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "CATALOG": f"{__name__}.catalog_lookup"}
    emails = _browse_email(flows, api, {**HOSTILE, "variant_id": "UHJvZHVjdFZhcmlhbnQ6OTk5"})
    assert emails == [] and not Enrolment.objects.exists()
    payload = Event.objects.get(name="product_viewed").payload
    assert "product_name" not in payload and "product_url" not in payload and "thumbnail" not in payload


def test_a_registered_catalog_is_used_before_the_setting(flows, api):
    from saleor_flows import catalog

    catalog.register_catalog(catalog_lookup)
    try:
        [message] = _browse_email(flows, api, {"product_name": "Fake", "variant_id": TEE_VARIANT})
    finally:
        catalog.register_catalog(None)
    assert message.subject == "Still thinking about Monospace Tee?"


SUBSCRIBE = """mutation($key: String!, $input: SubscribeInput!) { subscribe(publicKey: $key, input: $input) {
  errors { field code message } confirmationRequired } }"""
STOREFRONT = "https://shop.example.com"


@pytest.fixture
def storefront(api_settings):
    api_settings.SALEOR_FLOWS = {**api_settings.SALEOR_FLOWS, "SUBSCRIBE_ALLOWED_ORIGINS": [STOREFRONT]}
    return api_settings


def test_subscribe_mutation_refuses_other_origins_as_post_subscribe_does(flows, api, storefront):
    variables = {"key": PUBLIC_KEY, "input": {"email": "victim@example.com"}}
    data = api(SUBSCRIBE, variables, HTTP_ORIGIN="https://evil.example")
    assert data["subscribe"]["errors"][0]["code"] == "INVALID"
    assert "SUBSCRIBE_ALLOWED_ORIGINS" in data["subscribe"]["errors"][0]["message"]
    assert not Contact.objects.exists()
    assert api(SUBSCRIBE, variables, HTTP_ORIGIN=STOREFRONT)["subscribe"]["errors"] == []
    assert api(SUBSCRIBE, {"key": PUBLIC_KEY, "input": {"email": "server@example.com"}})["subscribe"]["errors"] == []
    assert set(Contact.objects.values_list("email", flat=True)) == {"victim@example.com", "server@example.com"}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_cross_site_posts_without_a_preflight_are_refused(flows, client, storefront, content_type):
    """A page on any site can POST these without a CORS preflight; the API reads only application/json."""
    body = json.dumps({"query": SUBSCRIBE, "variables": {"key": PUBLIC_KEY, "input": {"email": "victim@example.com"}}})
    if content_type == "multipart/form-data":
        response = client.post(ENDPOINT, data={"query": body}, HTTP_ORIGIN="https://evil.example")
    else:
        response = client.post(ENDPOINT, data=body, content_type=content_type, HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 415
    assert response.json()["errors"][0]["extensions"]["exception"]["code"] == "UnsupportedMediaType"
    assert not Contact.objects.exists()


EVENT_RECORD = """mutation($input: EventRecordInput!) { eventRecord(input: $input) {
  errors { field code message } event { id duplicate } } }"""


@pytest.mark.parametrize("bad", ["\x00", "\ud800", "\udfff"])
def test_nul_and_lone_surrogates_in_events_are_kept_and_dead_lettered_never_500(flows, api, tokens, bad):
    token = tokens.staff("MANAGE_PLUGINS", "MANAGE_USERS")
    for field in ("payload", "channel", "userId", "dedupeKey", "name"):
        value = {"note": f"x{bad}y", f"k{bad}": 1} if field == "payload" else f"v{bad}1"
        data = api(EVENT_RECORD, {"input": {"name": "quiz_completed", "email": "ann@example.com", field: value}},
                   token=token)
        assert data["eventRecord"]["errors"] == [] and data["eventRecord"]["event"]["id"], (field, data)
    events = list(Event.objects.order_by("pk"))
    assert len(events) == 5
    assert all(event.status == "dead" and "NUL bytes or lone surrogates" in event.error for event in events)
    assert events[0].payload == {"note": "x\ufffdy", "k\ufffd": 1} and events[1].channel == "v\ufffd1"

    # trackEvent: the payload's text is cleaned (and processed); bad ids are kept dead-lettered.
    data = api(TRACK, {"key": PUBLIC_KEY, "input": {"event": "SEARCH_PERFORMED", "email": "ann@example.com",
                                                    "payload": {"query": f"tee{bad}"}}})
    assert data["trackEvent"]["errors"] == []
    assert Event.objects.get(name="search_performed").payload["query"] == "tee"
    data = api(TRACK, {"key": PUBLIC_KEY, "input": {"event": "PAGE_VIEWED", "email": "ann@example.com",
                                                    "channel": f"c{bad}", "eventId": f"e{bad}"}})
    assert data["trackEvent"]["errors"] == []
    assert Event.objects.get(name="page_viewed").status == "dead"


@pytest.mark.parametrize("field", ["channel", "firstName", "language", "email"])
def test_subscribe_mutation_refuses_nul_with_a_clear_error_and_stores_nothing(flows, api, storefront, field):
    data = api(SUBSCRIBE, {"key": PUBLIC_KEY, "input": {"email": "ann@example.com", field: "de\x00"}})
    [problem] = data["subscribe"]["errors"]
    assert problem["code"] == "INVALID" and problem["field"] == f"input.{field}", problem
    assert not Contact.objects.exists() and not Event.objects.exists()


@pytest.mark.parametrize("levels", [120, 10_000])
def test_deeply_nested_json_bodies_are_a_400(flows, client, api_settings, levels):
    nested = "[" * levels + "]" * levels
    for body in (nested, '{"query": "{ __typename }", "variables": {"a": %s}}' % nested):
        response = client.post(ENDPOINT, data=body, content_type="application/json")
        assert response.status_code == 400, response.content[:200]
        assert response.json()["errors"][0]["extensions"]["exception"]["code"] == "BadRequest"


@pytest.mark.parametrize("address", ["a@[127.0.0.1]", "a@[IPv6:::1]", "a@localhost", "a@10.0.0.1", '"a b"@example.com',
                                     "a@example", "a..b@example.com"])
def test_non_deliverable_addresses_are_refused_at_every_door(flows, api, storefront, address):
    data = api(SUBSCRIBE, {"key": PUBLIC_KEY, "input": {"email": address}})
    assert data["subscribe"]["errors"][0]["field"] == "input.email"
    data = api(TRACK, {"key": PUBLIC_KEY, "input": {"event": "PAGE_VIEWED", "email": address}})
    assert data["trackEvent"]["errors"][0]["field"] == "email"
    assert not Contact.objects.exists() and not Event.objects.exists()


def failing_lookup(**ids):
    raise RuntimeError("catalog down")


def test_a_failing_catalog_keeps_the_event_without_the_storefronts_product(flows, api, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "CATALOG": f"{__name__}.failing_lookup"}
    _view(api, {**HOSTILE, "variant_id": TEE_VARIANT})
    payload = Event.objects.get(name="product_viewed").payload
    assert payload["variant_id"] == TEE_VARIANT and "product_url" not in payload and "product_name" not in payload

"""Our own open pixel and click redirect: links stored at publish, rewritten at send, followed safely."""

import re
from html import unescape
from urllib.parse import urlparse

from django.core import signing
from django.test import RequestFactory

from saleor_flows import urls
from saleor_flows.channels import links
from saleor_flows.models import Event, Message, MessageEvent, TrackedLink

from .flowkit import chain, email

JANE = "jane@example.com"
BROWSER = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
           "Version/17.4 Safari/605.1.15")
BODY = (
    '<a href="https://shop.example.com/sale?utm_source=email&amp;utm_campaign=spring">Shop the sale</a> '
    '<a href="{{ event.checkout_url }}">Back to your cart</a> '
    '<a href="https://shop.example.com/hello/{{ contact.first_name }}">Hello</a> '
    '<a href="mailto:help@example.com">Write to us</a> <a href="#top">Top</a> '
    '{% for line in event.lines %}<a href="{{ line.url }}">{{ line.name }}</a>{% endfor %} '
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a>'
)
PAYLOAD = {"checkout_url": "https://shop.example.com/checkout?token=abc",
           "lines": [{"url": "https://shop.example.com/p/mug", "name": "Mug"}]}


def _send(flows, *, kind="marketing", first_name="Jane", payload=None):
    flows.contact(JANE, email_consent="subscribed", first_name=first_name)
    flows.flow(chain("go", ("mail", email("Spring sale", BODY)), kind=kind))
    flows.event("go", email=JANE, payload=payload or PAYLOAD)
    (sent,) = flows.outbox
    return Message.objects.get(), sent.alternatives[0][0], sent.body


def _hrefs(html):
    return [unescape(href) for href in re.findall(r'<a\b[^>]*?href="([^"]*)"', html)]


def _path(url):
    return urlparse(url).path


def test_publishing_stores_the_links_worth_tracking_and_no_others(flows):
    flow = flows.flow(chain("go", ("mail", email("Spring sale", BODY))))
    stored = set(TrackedLink.objects.filter(version=flow.live_version).values_list("step_id", "url"))
    assert stored == {
        ("mail", "https://shop.example.com/sale?utm_source=email&utm_campaign=spring"),  # entities decoded
        ("mail", "{{ event.checkout_url }}"),
        ("mail", "https://shop.example.com/hello/{{ contact.first_name }}"),
        ("mail", "{{ line.url }}"),  # a loop variable's: its target is signed into the token at send time
    }  # not mailto:, #anchors or the unsubscribe link
    step = flow.live_version.definition["steps"]["mail"]
    assert set(step["links"]) == {url for _, url in stored} - {"{{ line.url }}"}
    loop_link = TrackedLink.objects.get(url="{{ line.url }}")
    assert f'<a data-flows-link="{loop_link.pk}" href="{{{{ line.url }}}}">' in step["compiled"]["default"]["html"]


def test_a_marketing_email_links_through_our_redirect_and_carries_the_pixel(flows):
    message, html, text = _send(flows)
    hrefs = _hrefs(html)
    redirects = [href for href in hrefs if "/saleor.flows/c/" in href]
    assert len(redirects) == 4  # the loop variable's link too (on the shop's host)
    assert all(href.startswith("https://shop.example.com/plugins/global/saleor.flows/c/") for href in redirects)
    assert JANE not in " ".join(redirects) and "Jane" not in " ".join(redirects)  # only signed ids
    assert "mailto:help@example.com" in hrefs and "#top" in hrefs
    assert "https://shop.example.com/p/mug" not in hrefs and "data-flows-link" not in html
    assert any("/saleor.flows/unsubscribe/" in href for href in hrefs)  # never through the redirect
    pixel = re.search(r'<img src="([^"]+/saleor\.flows/o/[^"]+\.gif)" width="1" height="1"', html)
    assert pixel and html.index(pixel.group(0)) < html.lower().index("</body>")
    assert "(https://shop.example.com/plugins/global/saleor.flows/c/" in text  # the text part too
    assert "utm_campaign=spring" not in text


def test_following_a_link_redirects_to_it_and_counts_a_human_click(flows, client):
    message, html, _ = _send(flows)
    flows.advance(minutes=3)
    followed = {}
    for href in _hrefs(html):
        if "/saleor.flows/c/" in href:
            response = client.get(_path(href), HTTP_USER_AGENT=BROWSER)
            assert response.status_code == 302
            followed[response["Location"]] = response
            flows.advance(seconds=30)
    assert set(followed) == {"https://shop.example.com/sale?utm_source=email&utm_campaign=spring",
                             "https://shop.example.com/checkout?token=abc", "https://shop.example.com/hello/Jane",
                             "https://shop.example.com/p/mug"}
    clicks = MessageEvent.objects.filter(type="clicked")
    assert {(c.provider, c.machine, c.message_id) for c in clicks} == {("redirect", False, message.pk)}
    message.refresh_from_db()
    assert message.clicked_at is not None
    assert Event.objects.filter(name="message_clicked").count() == 4


def test_the_pixel_records_an_open_and_always_answers_with_an_image(flows, client):
    message, html, _ = _send(flows)
    pixel = re.search(r'src="([^"]+\.gif)"', html).group(1)
    flows.advance(minutes=10)
    response = client.get(_path(unescape(pixel)), HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    assert response.content.startswith(b"GIF89a") and "no-store" in response["Cache-Control"]
    message.refresh_from_db()
    assert message.opened_at == flows.now and message.machine_opened_at is None
    assert Event.objects.filter(name="message_opened").count() == 1

    bad = client.get("/plugins/global/saleor.flows/o/not-a-token.gif", HTTP_USER_AGENT=BROWSER)
    forged = client.get(f"/plugins/global/saleor.flows/o/{signing.dumps(message.send_id.hex)}.gif")
    assert bad.status_code == forged.status_code == 200 and bad.content == response.content
    assert MessageEvent.objects.count() == 1  # nothing recorded for a token that is not ours


def test_machine_opens_and_clicks_are_flagged_not_counted(flows, client):
    message, html, _ = _send(flows)
    pixel = _path(unescape(re.search(r'src="([^"]+\.gif)"', html).group(1)))
    first, second, *_ = [_path(h) for h in _hrefs(html) if "/saleor.flows/c/" in h]
    # A security gateway follows links within a second of delivery.
    assert client.get(first, HTTP_USER_AGENT=BROWSER).status_code == 302
    flows.advance(minutes=5)
    client.get(pixel, HTTP_USER_AGENT="Mozilla/5.0")  # Apple Mail Privacy Protection's prefetch
    client.head(second, HTTP_USER_AGENT=BROWSER)
    events = {(e.type, e.detail.get("machine_reason")) for e in MessageEvent.objects.all()}
    assert events == {("clicked", "too_soon_after_send"), ("opened", "apple_privacy_proxy"),
                      ("clicked", "head_request")}
    message.refresh_from_db()
    assert message.machine_opened_at is not None
    assert message.opened_at is None and message.clicked_at is None
    assert not Event.objects.filter(name__in=["message_opened", "message_clicked"]).exists()


def test_clicks_on_many_links_in_the_same_second_are_a_scanner(flows, client):
    _, html, _ = _send(flows)
    flows.advance(minutes=5)
    paths = [_path(h) for h in _hrefs(html) if "/saleor.flows/c/" in h]
    for path in paths:
        client.get(path, HTTP_USER_AGENT=BROWSER)
    flags = list(MessageEvent.objects.order_by("id").values_list("machine", flat=True))
    assert flags == [False, True, True, True]


def test_transactional_mail_and_tracking_off_carry_no_pixel_and_no_redirects(flows, settings):
    _, html, _ = _send(flows, kind="transactional")
    assert "/saleor.flows/o/" not in html and "/saleor.flows/c/" not in html
    assert "https://shop.example.com/checkout?token=abc" in _hrefs(html)

    flows.outbox.clear()
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "TRACKING": False}
    flows.flow(chain("again", ("promo", email("Promo", BODY))), slug="promo")
    flows.event("again", email=JANE, payload=PAYLOAD)
    html = flows.outbox[0].alternatives[0][0]
    assert "/saleor.flows/o/" not in html and "/saleor.flows/c/" not in html


def test_a_link_whose_host_is_contact_data_is_left_untracked_and_the_redirect_refuses_it(flows, client):
    # The host of "{{ event.checkout_url }}" comes from data: elsewhere than the shop, no redirect of ours.
    message, html, _ = _send(flows, payload={**PAYLOAD, "checkout_url": "https://evil.example.net/login"})
    assert "https://evil.example.net/login" in _hrefs(html)
    link = TrackedLink.objects.get(url="{{ event.checkout_url }}")
    response = client.get(_path(links.click_url(message.send_id, link.pk)))
    assert response.status_code == 400 and "Location" not in response
    assert "cannot be opened" in response.content.decode()
    assert not MessageEvent.objects.exists()


def test_a_token_for_a_link_of_another_flow_or_step_is_refused(flows, client):
    message, _, _ = _send(flows)
    other = flows.flow(chain("other", ("x", email("Other", '<a href="https://elsewhere.example.org/">x</a>'))),
                       slug="other")
    foreign = TrackedLink.objects.get(version=other.live_version)
    for token in (links.click_token(message.send_id, foreign.pk),
                  signing.dumps([message.send_id.hex, foreign.pk]),  # the default salt
                  links.click_token(message.send_id, 10**9), "garbage"):
        response = client.get(f"/plugins/global/saleor.flows/c/{token}/")
        assert response.status_code == 404 and "Location" not in response
    assert not MessageEvent.objects.exists()


def test_the_plugin_serves_the_same_routes(flows):
    message, html, _ = _send(flows)
    flows.advance(minutes=2)
    href = next(h for h in _hrefs(html) if "/saleor.flows/c/" in h)
    subpath = _path(href).split("/saleor.flows/", 1)[1]
    response = urls.serve(RequestFactory().get("/", HTTP_USER_AGENT=BROWSER), subpath)
    assert response.status_code == 302 and response["Location"].startswith("https://shop.example.com/")


def test_the_provider_s_message_id_is_kept_for_matching_its_events(flows, settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    message, _, _ = _send(flows)
    assert message.provider_message_id == "0"  # anymail's test backend: the outbox index
    assert flows.outbox[0].metadata["send_id"] == str(message.send_id)


def test_the_plugin_s_tracking_switch_is_applied(flows):
    from saleor_flows import conf
    from saleor_flows.saleor_plugin.config import as_engine_settings

    assert as_engine_settings({"tracking": False})["TRACKING"] is False
    assert as_engine_settings({"tracking": True})["TRACKING"] is True
    assert "TRACKING" not in as_engine_settings({})  # unset: the host's setting (default on) applies
    source = lambda: as_engine_settings({"tracking": False})  # noqa: E731 - as the plugin's stored configuration
    conf.add_settings_source(source)
    try:
        _, html, _ = _send(flows)
    finally:
        conf._sources.remove(source)
    assert "/saleor.flows/o/" not in html and "/saleor.flows/c/" not in html

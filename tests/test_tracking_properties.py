"""Properties: the click redirect never leads anywhere but a stored link; the template sandbox stays shut and bounded."""

import re
import time
from html import unescape
from urllib.parse import urlsplit

from django.core import signing
from django.test import RequestFactory
from django.utils.encoding import iri_to_uri
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from saleor_flows.channels import links
from saleor_flows.channels.delivery import template_context
from saleor_flows.channels.templating import MAX_OUTPUT_CHARS, TemplateError, render_email, render_text
from saleor_flows.models import Contact, Message, TrackedLink
from saleor_flows.web.tracking import click

from .flowkit import chain, email

SHOP_HOST = "shop.example.com"  # the test settings' SHOP url
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)

HOSTILE_VALUES = ["@evil.example", "//evil.example", ".evil.example", "\\evil.example", "javascript:alert(1)",
                  "evil.example/", "\r\nLocation: https://evil.example", "https://evil.example", "%2F%2Fevil.example",
                  "\u202eevil", "x\x01y", "?next=https://evil.example", "#frag", ":8080", "@", "Jane"]
HOSTILE_URLS = [
    "javascript:alert(document.cookie)", "JaVaScRiPt:alert(1)", "//evil.example/path", "http:\\\\evil.example",
    "https:\\\\evil.example", "data:text/html,<script>alert(1)</script>", "/relative/path", "relative", "",
    "https://shop.example.com@evil.example/", "https://evil.example\\@shop.example.com/", "ftp://shop.example.com/",
    "mailto:jane@example.com", "http://", "https:///evil.example", " https://evil.example", "https://shop.example.com",
    "https://shop.example.com.evil.example/", "{{ contact.first_name }}", "https://{{ contact.first_name }}/",
    "https://shop.example.com{{ contact.first_name }}", "https://shop.example.com/{{ contact.first_name }}",
    "{{ 'java' ~ 'script:alert(1)' }}", "{{ event.next }}", "https://shop.example.com/?q={{ contact.first_name }}",
    "{% if contact.first_name %}https://evil.example{% else %}https://shop.example.com/{% endif %}",
    "{{ contact.__class__ }}", "https://shop.example.com/{{ contact.first_name|e }}",
]
url_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40)
built_urls = st.builds(
    lambda scheme, host, middle, tail: f"{scheme}{host}{middle}{tail}",
    st.sampled_from(["https://", "http://", "HTTPS://", "//", "javascript:", "", "http:\\\\", "data:", "https:/"]),
    st.sampled_from([SHOP_HOST, "evil.example", "{{ contact.first_name }}", "shop.example.com@evil.example", ""]),
    st.sampled_from(["", "/", "/p/", "?a=", "#", "{{ contact.first_name }}", "/{{ contact.first_name }}"]),
    url_text)
stored_urls = st.one_of(st.sampled_from(HOSTILE_URLS), built_urls, url_text)
contact_values = st.one_of(st.sampled_from(HOSTILE_VALUES), url_text)


def _world(flows):
    """Two messages of two flows, each with its stored links."""
    flows.contact("jane@example.com", email_consent="subscribed", first_name="Jane")
    flows.contact("bob@example.com", email_consent="subscribed", first_name="Bob")
    flows.flow(chain("a", ("mail", email("A", '<a href="https://shop.example.com/a">a</a>'))), slug="a")
    flows.flow(chain("b", ("mail", email("B", '<a href="https://shop.example.com/b">b</a>'))), slug="b")
    flows.event("a", email="jane@example.com", payload={"next": "https://shop.example.com/next"})
    flows.event("b", email="bob@example.com")
    return Message.objects.get(flow__slug="a"), Message.objects.get(flow__slug="b")


def _follow(token):
    return click(RequestFactory().get("/", HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/123.0"), token)


def _refused(response):
    return response.status_code in (400, 404) and not response.has_header("Location")


def test_the_redirect_goes_to_the_stored_link_rendered_for_the_message_or_nowhere(flows):
    jane_message, _ = _world(flows)
    version_id = jane_message.execution.enrolment.version_id
    flows.advance(minutes=10)
    answers = set()

    @PROPERTY
    @given(url=stored_urls, first_name=contact_values)
    @example(url="https://{{ contact.first_name }}/", first_name="evil.example")
    @example(url="https://shop.example.com{{ contact.first_name }}", first_name="@evil.example")
    @example(url="https://shop.example.com/{{ contact.first_name }}", first_name="/evil.example")
    @example(url="{{ contact.first_name }}", first_name="javascript:alert(1)")
    @example(url="{{ contact.first_name }}", first_name="https://shop.example.com/ok")
    def check(url, first_name):
        Contact.objects.filter(pk=jane_message.contact_id).update(first_name=first_name[:100])
        link, _ = TrackedLink.objects.get_or_create(version_id=version_id, step_id="mail", url=url)
        response = _follow(links.click_token(jane_message.send_id, link.pk))
        event(f"answered {response.status_code}")
        answers.add(response.status_code)
        if response.status_code != 302:
            assert _refused(response), (url, first_name, response.status_code)
            return
        message = Message.objects.select_related("contact", "flow").get(pk=jane_message.pk)
        expected = url if "{" not in url else render_text(url, template_context(
            contact=message.contact, flow=message.flow, event_payload=message.execution.enrolment.trigger_event.payload,
            send_id=message.send_id)).strip()
        assert response["Location"] == iri_to_uri(expected)
        target = urlsplit(expected)
        assert target.scheme.lower() in ("http", "https") and target.hostname and "@" not in target.netloc
        assert not re.search(r"[\s\\]", expected)
        # The host is the shop's, or written out in the stored link before any placeholder.
        literal = url.split("{", 1)[0].lower()
        origin = f"{target.scheme}://{target.netloc}".lower()
        assert target.hostname == SHOP_HOST or (literal.startswith(origin) and (
            literal == url.lower() == origin or literal[len(origin):len(origin) + 1] in ("/", "?", "#")))

    check()
    assert {302, 400} <= answers, answers  # both sides of the property were exercised


def test_tokens_that_are_not_ours_for_this_message_and_link_are_refused(flows):
    jane_message, bob_message = _world(flows)
    jane_link = TrackedLink.objects.get(version__flow__slug="a")
    bob_link = TrackedLink.objects.get(version__flow__slug="b")
    good = links.click_token(jane_message.send_id, jane_link.pk)
    assert _follow(good).status_code == 302
    crossed = [links.click_token(jane_message.send_id, bob_link.pk),  # another flow's link
               links.click_token(bob_message.send_id, jane_link.pk),  # another message
               signing.dumps([jane_message.send_id.hex, jane_link.pk]),  # no salt
               signing.dumps([jane_message.send_id.hex, jane_link.pk], salt=links.OPEN_SALT),  # the pixel's salt
               signing.Signer(salt=links.OPEN_SALT).sign(f"{jane_message.send_id.hex}.{jane_link.pk}"),
               signing.Signer(salt=links.CLICK_SALT, key="another-key").sign(f"{jane_message.send_id.hex}.{jane_link.pk}"),
               signing.Signer(salt=links.CLICK_SALT).sign(f"{jane_message.send_id.hex}.{jane_link.pk}.{bob_link.pk}"),
               signing.Signer(salt=links.CLICK_SALT).sign(f"{jane_message.send_id.hex}.-{jane_link.pk}"),
               signing.Signer().sign(f"{jane_message.send_id.hex}.{jane_link.pk}"),
               signing.dumps([jane_message.send_id.hex, jane_link.pk], salt="saleor-flows.unsubscribe"),
               signing.dumps([jane_message.send_id.hex, jane_link.pk], salt=links.CLICK_SALT, key="another-key"),
               signing.dumps([jane_message.send_id.hex, str(jane_link.pk)], salt=links.CLICK_SALT),
               signing.dumps([jane_message.send_id.hex, True], salt=links.CLICK_SALT),
               signing.dumps({"s": jane_message.send_id.hex, "l": jane_link.pk}, salt=links.CLICK_SALT),
               links.open_token(jane_message.send_id)]
    for token in crossed:
        assert _refused(_follow(token)), token

    @PROPERTY
    @given(st.one_of(
        st.text(max_size=200), st.binary(max_size=120).map(lambda b: b.decode("latin-1")),
        st.tuples(st.integers(0, len(good) - 1), st.characters(blacklist_categories=["Cs"])).map(
            lambda change: good[:change[0]] + change[1] + good[change[0] + 1:]),
        st.integers(0, len(good) - 1).map(lambda cut: good[:cut] + good[cut + 1:]),
        st.integers(-10, 10**6).map(lambda link_id: links.click_token(bob_message.send_id, link_id)),
        st.uuids().map(lambda send_id: links.click_token(send_id, jane_link.pk)),
    ))
    def check(token):
        response = _follow(token)
        if token == good:
            assert response.status_code == 302
        else:
            assert _refused(response), token

    check()


# --- The template sandbox -----------------------------------------------------------------------------

PRIVATE = ["__class__", "__globals__", "__subclasses__", "__mro__", "mro", "__init__", "__dict__", "__builtins__",
           "objects", "_meta", "__code__", "func_globals", "gi_frame", "f_back", "__self__", "__func__",
           "__reduce__", "__getattribute__", "format_map", "__len__"]
ROOTS = ["contact", "event", "shop", "flow", "message", "''", "[]", "{}", "range", "dict", "cycler", "joiner",
         "(1).real", "loop", "self", "caller", "unsubscribe_url", "event.lines", "contact.attributes"]
RUNAWAY = [
    "{{ range(10**9)|list }}", "{{ 'x' * 10**9 }}", "{{ ('x' * 1999999) + ('x' * 1999999) }}",
    "{{ ('x' * 1999999) ~ ('x' * 1999999) }}", "{{ 9 ** 9 ** 9 }}", "{{ '%999999999s' % 'a' }}",
    "{{ '{:>999999999}'.format('a') }}", "{{ 'x'|center(999999999) }}", "{{ [1] * 10**9 }}",
    "{{ ('x' * 100000)|list|join('y' * 100000) }}", "{{ ('y' * 100000).join(('x' * 100000)|list) }}",
    "{% for a in 'x' * 100000 %}{% for b in 'x' * 100000 %}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "{% for x in [1, 2] recursive %}{{ loop([1, 2]) }}{% endfor %}",
    "{% set a = [1,2,3,4,5,6,7,8,9,10] %}{% set b = [a,a,a,a,a,a,a,a,a,a] %}{% set c = [b,b,b,b,b,b,b,b,b,b] %}"
    "{% set d = [c,c,c,c,c,c,c,c,c,c] %}{% set e = [d,d,d,d,d,d,d,d,d,d] %}{% set f = [e,e,e,e,e,e,e,e,e,e] %}"
    "{% set g = [f,f,f,f,f,f,f,f,f,f] %}{{ g }}{{ g|length }}{{ g|string }}{{ g|join }}{{ g|sort }}",
    "{{ [[1], [2]] * 3|sum(start=[]) }}", "{{ ('x' * 1000000).replace('x', 'yyy') }}",
    "{{ 'x'.ljust(10**9) }}", "{{ ('x' * 2000000)|wordwrap(1) }}", "{{ ('x'.encode() * 1999999) * 10 }}",
    "{{ ('ab' * 1000000)|replace('a', 'a' * 1000) }}", "{{ (('x' * 1000)|list) * 5000 }}",
]
SAFE = ["{{ contact.first_name }}", "{{ event.lines|length }}", "{% for l in event.lines %}{{ l.name }}{% endfor %}",
        "{{ shop.name|upper }}", "{{ 3 * 4 }}", "{{ event.total | money('USD') }}"]
piece = st.one_of(
    st.builds(lambda root, attr: "{{ %s.%s }}" % (root, attr), st.sampled_from(ROOTS), st.sampled_from(PRIVATE)),
    st.builds(lambda root, attr: "{{ %s[%r] }}" % (root, attr), st.sampled_from(ROOTS), st.sampled_from(PRIVATE)),
    st.builds(lambda root, attr: "{{ %s|attr(%r) }}" % (root, attr), st.sampled_from(ROOTS), st.sampled_from(PRIVATE)),
    st.builds(lambda root, a, b: "{{ %s.%s.%s }}" % (root, a, b), st.sampled_from(ROOTS), st.sampled_from(PRIVATE),
              st.sampled_from(PRIVATE)),
    st.sampled_from(RUNAWAY), st.sampled_from(SAFE),
    st.text(alphabet="{}%#()[]|.'~+*-_ 0123456789abcxyz", max_size=30),
)
templates = st.builds(
    lambda pieces, wrap, times: (f"{{% for i in range({times}) %}}{''.join(pieces)}{{% endfor %}}" if wrap
                                 else "".join(pieces)),
    st.lists(piece, min_size=1, max_size=4), st.booleans(), st.sampled_from([1, 3, 1000, 10**5, 10**9]))
LEAKS = ["<class", "<function", "<built-in", "<module", "<bound method", "mappingproxy", "<method", "Manager",
         "<frame", "<code", "__globals__", "<generator"]
CONTEXT = {"contact": {"first_name": "Jane", "attributes": {"vip": True}}, "shop": {"name": "Shop"},
           "event": {"lines": [{"name": "Mug"}], "total": "9.50"}, "flow": {"name": "F", "slug": "f"},
           "message": {"send_id": "0"}, "unsubscribe_url": "https://shop.example.com/u/"}
SECONDS = 15  # MAX_RENDER_SECONDS (10) and one last operation, on a busy shared machine


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(templates)
@example("{{ cycler.__init__.__globals__ }}")
@example("{{ ''.__class__.__mro__[1].__subclasses__() }}")
@example("{{ contact.objects }}{{ contact._meta }}")
@example("{{ self.__dict__ }}{{ self._TemplateReference__context }}")
@example("{{ (1).real.__class__ }}{{ dict.mro() }}")
@example("{{ joiner.__init__.__globals__.__builtins__ }}")
@example("{% for a in 'x' * 2000000 %}{% for b in 'x' * 2000000 %}{% endfor %}{% endfor %}")
def test_the_sandbox_exposes_no_internals_and_always_stops(source):
    for render in (lambda: render_text(source, CONTEXT),
                   lambda: render_email({"default": {"subject": "s", "html": source, "text": None}}, CONTEXT,
                                        language=None).html):
        started = time.monotonic()
        try:
            output = render()
        except TemplateError as exc:
            assert str(exc)  # a clear message, for the step's failure
        else:
            assert len(output) <= MAX_OUTPUT_CHARS * 2  # (the html part plus its text version)
            text = unescape(output)  # the HTML render escapes what it prints
            for leak in LEAKS:
                assert leak not in text or leak in source, (leak, source)
        assert time.monotonic() - started < SECONDS, source

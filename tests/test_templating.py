"""Email and text templates: publish-time checks and compilation, send-time rendering, building the message.

No database: everything here works on plain dicts.
"""

import json
import re
import subprocess
import sys
import time

import css_inline
import pytest
from django.core import mail
from django.test import override_settings
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from saleor_flows.channels.email import build_email, send_email_message
from saleor_flows.channels.templating import (
    MAX_MJML_DEPTH,
    RenderedEmail,
    TemplateError,
    check_text_template,
    compile_email,
    html_to_text,
    render_email,
    render_text,
)

CART_MJML = """<mjml>
  <mj-head>
    <mj-title>{{ shop.name }}</mj-title>
    <mj-style inline="inline">.price { color: #cc0000; font-weight: bold; }</mj-style>
  </mj-head>
  <mj-body>
    <mj-section><mj-column>
      <mj-image src="{{ shop.logo_url }}" alt="{{ shop.name }}" href="{{ shop.url }}" width="120px" />
      <mj-text>Hi {{ contact.first_name }},<br/>you left {{ event.lines | length }} items in your cart.</mj-text>
      <mj-table>
        <tr><th>Product</th><th>Qty</th><th>Price</th></tr>
        {% for line in event.lines %}
        <tr>
          <td><img src="{{ line.thumbnail }}" width="48" alt="" /></td>
          <td>{{ line.product_name }}</td>
          <td>{{ line.quantity }}</td>
          <td class="price">{{ line.unit_price_gross_amount | money(event.currency) }}</td>
        </tr>
        {% endfor %}
      </mj-table>
      {% if event.voucher_code %}<mj-text>Use code {{ event.voucher_code }}</mj-text>{% endif %}
      <mj-button href="{{ event.checkout_url }}">Back to your cart</mj-button>
      <mj-text><a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text>
    </mj-column></mj-section>
  </mj-body>
</mjml>"""

CART_STEP = {
    "type": "send_email",
    "subject": "{{ contact.first_name }}, your cart is waiting",
    "preheader": "Still {{ event.lines | length }} items in your cart",
    "mjml": CART_MJML,
}


def simple_mjml(text):
    return f"<mjml><mj-body><mj-section><mj-column><mj-text>{text}</mj-text></mj-column></mj-section></mj-body></mjml>"


def make_context(**contact):
    return {
        "contact": {"email": "ann@example.com", "first_name": "Ann", "locale": "en", **contact},
        "event": {
            "currency": "EUR",
            "checkout_url": "https://shop.example.com/checkout?token=abc&step=1",
            "voucher_code": "",
            "lines": [
                {"product_name": "Running shoe", "quantity": 2, "unit_price_gross_amount": "40.00",
                 "thumbnail": "https://cdn.example.com/shoe.png"},
                {"product_name": "Wool hat", "quantity": 1, "unit_price_gross_amount": 12.5,
                 "thumbnail": "https://cdn.example.com/hat.png"},
            ],
        },
        "shop": {"name": "Test Shop", "url": "https://shop.example.com", "logo_url": "https://cdn.example.com/logo.png",
                 "currency": "EUR"},
        "flow": {"name": "Abandoned cart", "slug": "abandoned-cart"},
        "message": {"send_id": "s-1"},
        "unsubscribe_url": "https://shop.example.com/u/abc",
    }


def errors_of(step):
    with pytest.raises(TemplateError) as caught:
        compile_email(step)
    return caught.value.errors


# --- compile -----------------------------------------------------------------------------------

def test_cart_email_compiles_to_json_and_renders_one_row_per_line():
    compiled = compile_email(CART_STEP)
    assert json.loads(json.dumps(compiled)) == compiled
    assert "{% for line in event.lines %}" in compiled["default"]["html"]

    email = render_email(compiled, make_context(), language=None)

    assert email.subject == "Ann, your cart is waiting"
    assert email.html.count('class="price"') == 2
    for expected in ("Running shoe", "Wool hat", "€40.00", "€12.50", 'src="https://cdn.example.com/shoe.png"',
                     'src="https://cdn.example.com/hat.png"', "checkout?token=abc&amp;step=1"):
        assert expected in email.html
    assert "Use code" not in email.html  # the {% if %} around a component


def test_inline_style_rule_ends_up_in_a_style_attribute():
    html = compile_email(CART_STEP)["default"]["html"]
    price_cell = html[html.index('class="price"'):].split(">", 1)[0]
    assert "color: #cc0000" in price_cell and "font-weight: bold" in price_cell
    assert "@media" in html  # responsive rules are kept in <style>, not dropped by the inliner


def test_preheader_is_hidden_preview_text_and_not_in_the_text_part():
    email = render_email(compile_email(CART_STEP), make_context(), language=None)
    body = email.html[email.html.index("<body"):]
    assert body.index("Still 2 items in your cart") < body.index("Running shoe")
    assert "display:none" in body[:body.index("Still 2 items")]
    assert "Still 2 items" not in email.text


def test_preheader_and_mj_preview_together_is_an_error():
    mjml = "<mjml><mj-head><mj-preview>Hi</mj-preview></mj-head><mj-body><mj-section><mj-column>" \
           "<mj-text>x</mj-text></mj-column></mj-section></mj-body></mjml>"
    errors = errors_of({"subject": "x", "mjml": mjml, "preheader": "Also hi"})
    assert errors == ["preheader: the MJML has its own <mj-preview>; keep only one of them"]


@pytest.fixture
def stylesheet_server(tmp_path):
    """A web server with /remote.css, in its own process (css_inline holds the GIL while fetching)."""
    (tmp_path / "remote.css").write_text(".remote { color: #00ff00; }")
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = re.search(r"port (\d+)", server.stdout.readline()).group(1)
        yield f"http://127.0.0.1:{port}/remote.css", server
    finally:
        server.terminate()
        server.wait(timeout=5)


def _requests_seen(server):
    server.terminate()
    return [line for line in server.communicate(timeout=5)[1].splitlines() if "GET /remote.css" in line]


def test_remote_stylesheets_are_never_fetched(stylesheet_server):
    url, server = stylesheet_server
    link = f'<link rel="stylesheet" href="{url}">'
    mjml = f"<mjml><mj-head><mj-raw>{link}</mj-raw><mj-style>@import url({url});</mj-style></mj-head><mj-body>" \
           '<mj-section><mj-column><mj-text><span class="remote">x</span></mj-text></mj-column></mj-section></mj-body></mjml>'
    html = compile_email({"subject": "x", "mjml": mjml})["default"]["html"]
    # The server does answer: an inliner allowed to fetch uses it.
    assert "#00ff00" in css_inline.CSSInliner().inline(f"<html><head>{link}</head><body><p class=remote></p></body></html>")
    assert "#00ff00" not in html
    assert len(_requests_seen(server)) == 1  # the control request only


def test_every_problem_is_reported_at_once_with_its_place():
    errors = errors_of({
        "subject": "Hi {{ contact.frist_name }}",
        "mjml": "<mjml><mj-body><mj-section><mj-column>\n<mj-text>\n{% for x in event.lines %}\n"
                "</mj-text></mj-column></mj-section></mj-body></mjml>",
        "translations": {
            "de": {"subject": "Hallo {{ shop.nam }}", "mjml": simple_mjml("{{ foo }}")},
            "fr": {"subject": "Salut", "mjml": "<mjml><mj-body><mj-text>unclosed"},
        },
    })
    assert "subject: unknown variable 'contact.frist_name'" in errors
    assert any(e.startswith("mjml: line 3: Unexpected end of template") and "endfor" in e for e in errors), errors
    assert "translations.de.subject: unknown variable 'shop.nam'" in errors
    assert "translations.de.mjml: unknown variable 'foo'" in errors
    assert "translations.fr.mjml: unexpected end of stream in root template" in errors


def test_bad_mjml_error_names_the_line_of_the_merchants_source():
    mjml = "<mjml><mj-body>\n<mj-section><mj-column>\n<mj-text>{{ contact.first_name }}</mj-text>\n" \
           "<mj-include path=\"/etc/passwd\" />\n</mj-column></mj-section></mj-body></mjml>"
    assert errors_of({"subject": "x", "mjml": mjml}) == [
        "mjml: unable to load included template in root template at line 4"]


def test_non_ascii_text_next_to_a_greater_than_sign_compiles():
    # mrml 0.2.4 panics on this input unless given character references instead.
    compiled = compile_email({"subject": "x", "mjml": simple_mjml("Für > 50 € 😀R> {{ contact.first_name }}")})
    email = render_email(compiled, make_context(), language=None)
    assert "Für &gt; 50 € 😀R&gt; Ann" in email.html
    assert "Für > 50 € 😀R> Ann" in email.text


def test_missing_and_malformed_fields():
    assert errors_of({"mjml": simple_mjml("x")}) == ["subject: must be text"]
    assert errors_of({"subject": " ", "mjml": simple_mjml("x")}) == ["subject: required"]
    assert "translations.x y: not a language code (use e.g. 'de' or 'pt-BR')" in errors_of(
        {"subject": "x", "mjml": simple_mjml("x"), "translations": {"x y": {"subject": "x", "mjml": simple_mjml("x")}}})


def test_loop_variables_set_names_and_open_roots_are_not_errors():
    source = ("{% set total = event.total_gross_amount %}{% for line in event.lines %}{{ line.product_name }}"
              "{{ loop.index }}{% endfor %}{{ total }} {{ contact.attributes.favourite_colour }} {{ event.any.thing }}"
              " {{ flow.name }} {{ message.send_id }} {{ unsubscribe_url }} {{ shop['support_email'] }}")
    assert check_text_template(source, "body") == []


def test_check_text_template_reports_names_filters_and_private_attributes():
    assert check_text_template("{{ contact.phone }} {{ shop.name }}", "body") == []
    assert check_text_template("{{ shop.colour }} {{ customer }} {{ x | shout }} {{ event._private }}", "body") == [
        "body: line 1: unknown filter 'shout'",
        "body: unknown variable 'customer'",
        "body: unknown variable 'x'",
        "body: unknown variable 'shop.colour'",
        "body: line 1: '_private' is not allowed (names starting with '_' are private)",
    ]
    assert check_text_template("{% if %}", "sms.body") == [
        "sms.body: line 1: Expected an expression, got 'end of statement block'"]
    assert check_text_template('{% include "x.html" %}', "body") == [
        "body: line 1: include, import and extends are not available"]


def test_tag_the_mjml_compiler_would_move_is_an_error():
    mjml = "<mjml><mj-head>{% if event.x %}<mj-style>.a { color: red }</mj-style>{% endif %}</mj-head>" \
           "<mj-body><mj-section><mj-column><mj-text>x</mj-text></mj-column></mj-section></mj-body></mjml>"
    [error] = errors_of({"subject": "x", "mjml": mjml})
    assert error.startswith("mjml: the MJML compiler moved or copied '{% if event.x %}'")


def test_content_the_html_parser_moves_out_of_its_loop_is_an_error():
    # In a column an <mj-raw> sits between table rows, where a <p> is not allowed: the parser moves it.
    mjml = "<mjml><mj-body><mj-section><mj-column><mj-raw>{% for line in event.lines %}" \
           "<p>{{ line.product_name }}</p>{% endfor %}</mj-raw></mj-column></mj-section></mj-body></mjml>"
    [error] = errors_of({"subject": "x", "mjml": mjml})
    assert error.startswith("mjml: the MJML compiler moved content out of its loop or condition (unknown variable 'line')")


@pytest.mark.parametrize("mjml", [
    simple_mjml("<ul>{% for line in event.lines %}<li>{{ line.product_name }}</li>{% endfor %}</ul>"),
    "<mjml><mj-body><mj-section><mj-column><mj-table>{% for line in event.lines %}"
    "<tr><td>{{ line.product_name }}</td></tr>{% endfor %}</mj-table></mj-column></mj-section></mj-body></mjml>",
    "<mjml><mj-body><mj-section><mj-column><mj-raw>{% for line in event.lines %}"
    "<tr><td>{{ line.product_name }}</td></tr>{% endfor %}</mj-raw></mj-column></mj-section></mj-body></mjml>",
    "<mjml><mj-body><mj-raw>{% for line in event.lines %}<p>{{ line.product_name }}</p>{% endfor %}</mj-raw>"
    "</mj-body></mjml>",
    "<mjml><mj-body><mj-section><mj-column>{% for line in event.lines %}"
    "<mj-text>{{ line.product_name }}</mj-text>{% endfor %}</mj-column></mj-section></mj-body></mjml>",
    "<mjml><mj-body>{% for line in event.lines %}<mj-section><mj-column><mj-text>{{ line.product_name }}"
    "</mj-text></mj-column></mj-section>{% endfor %}</mj-body></mjml>",
])
def test_loops_work_where_the_docstring_says(mjml):
    email = render_email(compile_email({"subject": "x", "mjml": mjml}), make_context(), language=None)
    assert email.html.count("Running shoe") == email.html.count("Wool hat") == 1
    assert email.html.index("Running shoe") < email.html.index("Wool hat")
    assert "Running shoe" in email.text and "Wool hat" in email.text


# --- render ------------------------------------------------------------------------------------

def test_translation_is_chosen_by_language_with_fallbacks():
    step = {
        "subject": "Hello", "mjml": simple_mjml("Hello"),
        "translations": {
            "de": {"subject": "Hallo", "mjml": simple_mjml("Hallo")},
            "pt_BR": {"subject": "Olá (BR)", "mjml": simple_mjml("Olá BR")},
            "pt": {"subject": "Olá", "mjml": simple_mjml("Olá")},
        },
    }
    compiled = compile_email(step)
    assert set(compiled["translations"]) == {"de", "pt-br", "pt"}
    context = make_context()
    cases = {"de": ("Hallo", "de"), "de-DE": ("Hallo", "de"), "DE_at": ("Hallo", "de"), "pt_BR": ("Olá (BR)", "pt-br"),
             "pt-br": ("Olá (BR)", "pt-br"), "pt_PT": ("Olá", "pt"), "fr": ("Hello", None), None: ("Hello", None),
             "": ("Hello", None), "??": ("Hello", None)}
    for language, (subject, used) in cases.items():
        email = render_email(compiled, context, language=language)
        assert (email.subject, email.language) == (subject, used), language


def test_html_is_autoescaped_but_subject_and_text_are_not():
    compiled = compile_email(CART_STEP)
    email = render_email(compiled, make_context(first_name="<script>alert(1)</script>"), language=None)
    assert "<script>alert(1)</script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert email.subject == "<script>alert(1)</script>, your cart is waiting"
    assert "Hi <script>alert(1)</script>," in email.text


def test_subject_is_one_line():
    compiled = compile_email({"subject": "Hello\n{{ contact.first_name }}\r\n!", "mjml": simple_mjml("x")})
    assert render_email(compiled, make_context(first_name="A\nB"), language=None).subject == "Hello A B !"


def test_undefined_variable_at_send_time_is_a_template_error():
    compiled = compile_email({"subject": "x", "mjml": simple_mjml("{{ event.cart.total }}")})
    with pytest.raises(TemplateError) as caught:
        render_email(compiled, make_context(), language=None)
    assert caught.value.errors == ["html: 'dict object' has no attribute 'cart'"]
    with pytest.raises(TemplateError):
        render_text("{{ contact.nickname }}", make_context())


def test_text_part_is_readable():
    email = render_email(compile_email(CART_STEP), make_context(), language=None)
    assert email.text == (
        "Test Shop (https://shop.example.com)\n\n"
        "Hi Ann,\nyou left 2 items in your cart.\n\n"
        "Product — Qty — Price\nRunning shoe — 2 — €40.00\nWool hat — 1 — €12.50\n\n"
        "Back to your cart (https://shop.example.com/checkout?token=abc&step=1)\n\n"
        "Unsubscribe (https://shop.example.com/u/abc)"
    )


def test_html_to_text():
    html = """<html><head><title>T</title><style>p { color: red }</style></head><body>
      <div style="display: none">preview</div><script>x()</script>
      <h1>Hello&nbsp;there</h1><p>First   line<br>second line<br><br>new paragraph</p>
      <ul><li>one</li><li>two</li></ul>
      <table><tr><td>a</td><td>b</td></tr><tr><td><img src="x.png"></td><td>c</td></tr></table>
      <p><a href="https://x.example/a">Shop now</a> or <a href="https://x.example">https://x.example</a>,
      <a href="mailto:help@x.example">help@x.example</a>, <a href="https://x.example/l"><img alt="Logo"></a></p>
    </body></html>"""
    assert html_to_text(html) == (
        "Hello there\n\nFirst line\nsecond line\n\nnew paragraph\n\n- one\n- two\n\na — b\nc\n\n"
        "Shop now (https://x.example/a) or https://x.example, help@x.example, Logo (https://x.example/l)"
    )


def test_rendering_without_a_stored_text_template_converts_the_html():
    compiled = compile_email(CART_STEP)
    compiled["default"]["text"] = None
    email = render_email(compiled, make_context(), language=None)
    assert email.text == render_email(compile_email(CART_STEP), make_context(), language=None).text


def test_text_part_falls_back_when_hidden_tags_are_needed():
    # The {% set %} sits in a hidden element, which the text part leaves out.
    mjml = "<mjml><mj-body><mj-raw><div style=\"display: none\">{% set greeting = 'Welcome' %}</div></mj-raw>" \
           "<mj-section><mj-column><mj-text>{{ greeting }}, {{ contact.first_name }}</mj-text></mj-column>" \
           "</mj-section></mj-body></mjml>"
    compiled = compile_email({"subject": "x", "mjml": mjml})
    assert compiled["default"]["text"] is None
    assert render_email(compiled, make_context(), language=None).text == "Welcome, Ann"


def test_money_filter_formats_in_the_contacts_locale():
    template = "{{ amount | money(currency) }}"
    for locale, amount, currency, expected in [
        ("en", "40.00", "EUR", "€40.00"),
        ("en", 40, "USD", "$40.00"),
        ("de", "40.00", "EUR", "40,00\xa0€"),
        ("de_DE", 1234.5, "eur", "1.234,50\xa0€"),
        ("xx-unknown", "40", "EUR", "€40.00"),  # unknown locale: English
        (None, "40", "EUR", "€40.00"),
    ]:
        context = {"contact": {"locale": locale}, "amount": amount, "currency": currency}
        assert render_text(template, context) == expected, (locale, amount)
    for garbage in ["abc", "", "NaN", "1e999", [1], {"a": 1}, True, None]:
        context = {"contact": {"locale": "de"}, "amount": garbage, "currency": "EUR"}
        assert render_text(template, context) == str(garbage)
    assert render_text("{{ 5 | money(None) }}", {"contact": {"locale": "en"}}) == "5"
    assert render_text("{{ 5 | money }}", {"contact": {}, "shop": {"currency": "USD"}}) == "$5.00"
    assert render_text("{{ 5 | money('EUR') }}", {"contact": {}}, language="de") == "5,00\xa0€"
    for _ in range(2):  # babel formats each (amount, currency, locale) once; the repeats still read their own
        for locale, amount, expected in [("de", "40.00", "40,00\xa0€"), ("en", "40.00", "€40.00"),
                                          ("en", "40.001", "€40.00"), ("en", "-0", "-€0.00"), ("en", "0", "€0.00")]:
            context = {"contact": {"locale": locale}, "amount": amount, "currency": "EUR"}
            assert render_text(template, context) == expected, (locale, amount)


def test_date_filter():
    context = {"contact": {"locale": "en", "timezone": "Europe/Berlin"}, "when": "2024-03-05T23:30:00+00:00"}
    assert render_text("{{ when | date }}", context) == "Mar 6, 2024"  # already the 6th in Berlin
    context["contact"]["locale"] = "de"
    assert render_text("{{ when | date }}", context) == "06.03.2024"
    assert render_text("{{ when | date('long') }}", {**context, "when": "2024-03-05"}) == "5. März 2024"
    assert render_text("{{ when | date }}", {**context, "when": "soon"}) == "soon"


# --- sandbox ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("source", [
    "{{ contact.__class__ }}",
    "{{ contact.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__base__ }}",
    "{{ contact['__class__'] }}",
    "{{ event.lines.append(1) }}",
    "{{ cycler.__init__.__globals__ }}",
])
def test_private_and_mutating_access_is_blocked(source):
    with pytest.raises(TemplateError):
        render_text(source, make_context())


def test_private_attributes_are_rejected_at_publish_time():
    errors = errors_of({"subject": "{{ contact.__class__ }}", "mjml": simple_mjml("x")})
    assert errors == ["subject: line 1: '__class__' is not allowed (names starting with '_' are private)"]


def test_objects_other_than_plain_data_are_opaque():
    class Order:
        total = 10

        def delete(self):
            raise AssertionError("called from a template")

    with pytest.raises(TemplateError):
        render_text("{{ event.order.delete() }}", {"event": {"order": Order()}})
    with pytest.raises(TemplateError):
        render_text("{{ event.order.total }}", {"event": {"order": Order()}})


def test_dict_keys_win_over_dict_methods():
    assert render_text("{{ event.items }}/{{ event.keys }}", {"event": {"items": 3, "keys": "k"}}) == "3/k"


@pytest.mark.parametrize("source", [
    "{% for i in range(100000000000) %}{% endfor %}",
    "{% for i in range(5000) %}{% for j in range(5000) %}{% endfor %}{% endfor %}",
    "{{ 'x' * 3000000 }}",
    "{{ [1, 2] * 2000000 }}",
    "{{ 7 ** 9999999 }}",
    "{% for i in range(9000) %}{{ event.kb }}{% endfor %}",
    "{{ 'x' | center(999999999) }}",
    "{{ 'x' | indent(999999999) }}",
    "{{ [1] | batch(999999999, 0) | list }}",
    "{{ 'x'.ljust(999999999) }}",
    "{{ ('y' * 10000).replace('', 'x' * 1000) }}",
    "{{ ('y' * 10000) | replace('', 'x' * 1000) }}",
    "{{ '%999999999d' % 1 }}",
    "{{ '%*d' | format(999999999, 1) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ lipsum(999999) }}",
    "{% set ns = namespace(s='x') %}",
])
def test_runaway_templates_fail_fast(source):
    started = time.monotonic()
    assert check_text_template(source, "body") in ([], ["body: unknown variable 'lipsum'"],
                                                    ["body: unknown variable 'namespace'"])
    with pytest.raises(TemplateError):
        render_text(source, {"event": {"kb": "k" * 1000}})
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("source, message", [
    ("{{ 10**100000 }}", "beyond 18446744073709551616 (2**64)"),
    # Each step squares the size: the last one would take seconds in one multiplication, holding the GIL.
    ("{% set a = 3**50000 %}{% set b = a*a*a*a %}{% set c = b*b*b*b %}{% set d = c*c*c*c %}{{ d % 10 }}",
     "beyond 18446744073709551616 (2**64)"),
    ("{{ (9**9)*(9**9)*(9**9)*(9**9)*(9**9)*(9**9)*(9**9)*(9**9) }}", "beyond 18446744073709551616 (2**64)"),
    ("{% set a = 2**64 %}{{ (a * a // 7) % 10 }}", "beyond 18446744073709551616 (2**64)"),
    ("{{ (event.id - 1) % 10 }}", "beyond 18446744073709551616 (2**64)"),
    ("{{ 2.5 * 2**70 }}", "beyond 18446744073709551616 (2**64)"),
    ("{{ (3).to_bytes(10**7, 'big') | length }}", "to_bytes(): 10000000 is too large"),
    ("{{ 'x'.encode().ljust(10**7) | length }}", "ljust(): 10000000 is too large"),
    ("{{ 'ab' * 10**7 }}", "'*' would build a value longer than 2000000"),
])
def test_arithmetic_on_huge_numbers_and_huge_repetition_are_refused_quickly(source, message):
    started = time.monotonic()
    with pytest.raises(TemplateError) as refused:
        render_text(source, {"event": {"id": 10**30}})
    assert message in str(refused.value)
    assert time.monotonic() - started < 0.5


def test_no_single_check_of_a_string_takes_quadratic_time():
    """The render deadline is only checked between operations: each one must stay linear.
    (Both took over 10 s before: a format-width regex and the Jinja-tag scan before MJML compiling.)"""
    started = time.monotonic()
    assert render_text("{{ ('{' ~ ':' * 20000) | format }}", {}) == "{" + ":" * 20000
    assert time.monotonic() - started < 1
    started = time.monotonic()
    with pytest.raises(TemplateError):
        compile_email({"subject": "Hi", "mjml": simple_mjml("{{" * 20000)})
    assert time.monotonic() - started < 1


def test_everyday_arithmetic_is_untouched_by_the_integer_bound():
    source = ("{{ 2**64 }} {{ -(2**64) + 2**64 }} {{ 7 // 2 }} {{ 7 / 2 }} {{ 7 % 3 }} {{ 2 ** -1 }}"
              " {{ (2**32) * (2**32) }} {{ event.price * event.qty }} {{ event.total - 0.5 }} {{ 1e308 * 10 }}")
    assert render_text(source, {"event": {"price": 19.99, "qty": 3, "total": 40}}) == (
        "18446744073709551616 0 3 3.5 1 0.5 18446744073709551616 59.97 39.5 inf")


def test_reasonable_uses_of_the_guarded_features_still_work():
    source = ("{% for i in range(3) %}{{ i }}{% endfor %} {{ 'ab' * 2 }} {{ 2 ** 10 }} {{ 'x' | center(5) }}|"
              " {{ '%05.1f' | format(3.14159) }} {{ '{:>4}'.format(7) }} {{ 'a-b' | replace('-', '+') }}")
    assert render_text(source, {}) == "012 abab 1024   x  | 003.1    7 a+b"


template_pieces = st.sampled_from([
    "{{", "}}", "{%", "%}", "{#", "#}", " for ", " in ", " if ", " endif ", " endfor ", " set ", "=", "|", "(", ")",
    "contact.", "first_name", "event.", "lines", "shop.", "__class__", "money", "range(", "9999999999", "'", '"',
    "<mj-text>", "</mj-text>", "<mj-table>", "<tr><td>", "</td></tr>", "</mj-table>", "<mj-raw>", "<", ">", "&",
    "<!--", "-->", "\n", "ü€😀", "<mjml><mj-body><mj-section><mj-column>", "</mj-column></mj-section></mj-body></mjml>",
])
template_ish = st.lists(st.one_of(template_pieces, st.text(max_size=5)), max_size=30).map("".join)


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=template_ish, body=template_ish, wrap=st.booleans())
def test_arbitrary_input_only_ever_raises_template_error(subject, body, wrap):
    mjml = f"<mjml><mj-body><mj-section><mj-column><mj-text>{body}</mj-text></mj-column></mj-section></mj-body></mjml>" \
        if wrap else body
    assert isinstance(check_text_template(subject, "subject"), list)
    try:
        compiled = compile_email({"subject": subject, "mjml": mjml, "preheader": body,
                                  "translations": {"de": {"subject": body, "mjml": mjml}}})
    except TemplateError as exc:
        assert exc.errors and all(isinstance(error, str) for error in exc.errors)
        return
    json.dumps(compiled)
    try:
        render_email(compiled, make_context(), language="de")
    except TemplateError:
        pass


# --- building and sending the message ---------------------------------------------------------------

RENDERED = RenderedEmail(subject="Hi", html="<p>Hi <b>Ann</b></p>", text="Hi Ann", language=None)


def test_build_email_sets_parts_and_tracking_headers():
    msg = build_email(RENDERED, to="ann@example.com", from_email=None, reply_to=None, send_id="s-42",
                      headers={"List-Unsubscribe": "<https://shop.example.com/u/abc>"})
    assert msg.to == ["ann@example.com"]
    assert msg.from_email == "Test Shop <shop@example.com>"  # DEFAULT_FROM_EMAIL
    assert msg.body == "Hi Ann"
    assert msg.alternatives[0][:2] == ("<p>Hi <b>Ann</b></p>", "text/html")
    assert msg.extra_headers["X-Flows-Send-Id"] == "s-42"
    assert msg.extra_headers["List-Unsubscribe"] == "<https://shop.example.com/u/abc>"
    message_id = msg.extra_headers["Message-ID"]
    assert message_id.startswith("<") and message_id.endswith("@saleor-flows.local>")
    assert msg.message()["Message-ID"] == message_id
    assert not hasattr(msg, "metadata") and not hasattr(msg, "tags")


def test_build_email_without_html_is_text_only():
    text_only = RenderedEmail(subject="New order", html="", text="Order #12 came in", language=None)
    msg = build_email(text_only, to="staff@example.com", from_email=None, reply_to=None, send_id="s-5")
    assert msg.alternatives == []
    assert msg.message().get_content_type() == "text/plain"


def test_build_email_uses_settings_for_sender_and_reply_to():
    flows = {"FROM_EMAIL": "Flows <flows@example.com>", "REPLY_TO": "care@example.com", "MESSAGE_ID_DOMAIN": "m.example"}
    with override_settings(SALEOR_FLOWS=flows):
        msg = build_email(RENDERED, to="ann@example.com", from_email=None, reply_to=None, send_id="s-1")
    assert msg.from_email == "Flows <flows@example.com>"
    assert msg.reply_to == ["care@example.com"]
    assert msg.extra_headers["Message-ID"].endswith("@m.example>")
    msg = build_email(RENDERED, to="a@example.com", from_email="x@example.com", reply_to=["r@example.com"], send_id="s")
    assert (msg.from_email, msg.reply_to) == ("x@example.com", ["r@example.com"])


def test_anymail_metadata_and_tags_only_with_an_anymail_backend():
    with override_settings(EMAIL_BACKEND="anymail.backends.postmark.EmailBackend"):
        msg = build_email(RENDERED, to="ann@example.com", from_email=None, reply_to=None, send_id="s-7",
                          metadata={"flow": "abandoned-cart"}, tags=["flows", "abandoned-cart"])
    assert msg.metadata == {"send_id": "s-7", "flow": "abandoned-cart"}
    assert msg.tags == ["flows", "abandoned-cart"]


def test_send_email_message_uses_the_configured_backend(mailoutbox):
    msg = build_email(RENDERED, to="ann@example.com", from_email=None, reply_to=None, send_id="s-9")
    send_email_message(msg)
    assert len(mailoutbox) == 1
    assert mailoutbox[0].extra_headers["X-Flows-Send-Id"] == "s-9"


def test_send_email_message_lets_backend_errors_through():
    with override_settings(EMAIL_BACKEND="tests.test_templating.FailingBackend"):
        with pytest.raises(ConnectionRefusedError):
            send_email_message(build_email(RENDERED, to="a@example.com", from_email=None, reply_to=None, send_id="s"))
    assert mail.outbox == []


class FailingBackend:
    def __init__(self, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("smtp down")


@pytest.mark.parametrize("language, free, shoe, hat, zero", [
    ("en", "Free", "€40.00", "€12.50", "€0.00"), ("de", "Kostenlos", "40,00\xa0€", "12,50\xa0€", "0,00\xa0€")])
def test_the_order_email_reads_well_as_plain_text_and_free_shipping_says_free(language, free, shoe, hat, zero):
    """One line per item, no table pipes, quantities as in the HTML and the cart emails, "Free" for $0 shipping."""
    from saleor_flows.journeys import load_journey

    step = load_journey("post_purchase")["steps"]["email_thank_you"]
    context = make_context(locale=language)
    context["preferences_url"] = "https://shop.example.com/p/abc"
    context["shop"].update(address="1 Test Street", support_email="help@shop.example.com")
    context["event"].update(number="1002", shipping_price_gross_amount="0.00", total_gross_amount="92.50", lines=[
        {"product_name": "Running shoe", "variant_name": "42", "quantity": 2, "unit_price_gross_amount": "40.00",
         "thumbnail": "https://cdn.example.com/shoe.png"},
        {"product_name": "Wool hat", "variant_name": "", "quantity": 1, "unit_price_gross_amount": "12.50"}])
    email = render_email(compile_email(step), context, language=language)
    lines = email.text.splitlines()
    assert "|" not in email.text
    assert [line for line in lines if "Running shoe" in line] == [f"Running shoe, 42 — 2 × {shoe}"]
    assert [line for line in lines if "Wool hat" in line] == [f"Wool hat — 1 × {hat}"]
    [shipping] = [line for line in lines if line.endswith(f" — {free}")]
    assert shipping in ("Shipping — Free", "Versand — Kostenlos") and free in email.html
    assert f">{zero}<" not in email.html
    assert f"2 × {shoe}" in email.html  # the same format in the HTML


@pytest.mark.parametrize("open_tag, close_tag", [
    ("<div>", "</div>"), ("<mj-wrapper>", "</mj-wrapper>"), ("<DIV>", "</div>"), ("<_a>", "</_a>"),
    ("<é>", "</é>"), ("<a:b>", "</a:b>"), ("<div title=\"/>\">", "</div>"), ("<div title='a>b'>", "</div>"),
])
def test_markup_nesting_is_measured_before_the_native_compiler_whatever_the_tags_look_like(open_tag, close_tag):
    """Every spelling the MJML compiler nests (and overflows its stack on, thousands deep) is counted."""
    depth = MAX_MJML_DEPTH + 10
    deep = {"subject": "Hi", "mjml": simple_mjml(open_tag * depth + "x" + close_tag * depth)}
    with pytest.raises(TemplateError) as refused:
        compile_email(deep)
    assert f"mjml: elements nested more than {MAX_MJML_DEPTH} deep" in str(refused.value)


def test_comments_self_closing_and_void_tags_do_not_count_as_nesting():
    body = ("<!--" + "<div>" * 100 + "-->" + "<br>" * 100 + "<img src='a.png' alt=''/>" * 100
            + "{% if contact.first_name %}" * 60 + "x" + "{% endif %}" * 60 + "<p>" * 40 + "y" + "</p>" * 40)
    assert compile_email({"subject": "Hi", "mjml": simple_mjml(body)})["default"]["html"]

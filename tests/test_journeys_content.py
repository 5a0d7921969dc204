"""The prebuilt journeys' content: definitions, step graphs, translations and email templates.

No database: these tests read the files under ``saleor_flows/journeys/`` only. The render
test runs each template through the same pipeline as publishing and sending (mrml, then
css-inline, then a sandboxed Jinja with strict undefined), so a Jinja tag that the HTML
stages would move or mangle shows up here.
"""

from decimal import Decimal
from pathlib import Path

import css_inline
import mrml
import pytest
from jinja2 import StrictUndefined, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from saleor_flows.channels.delivery import recommendations_function
from saleor_flows.fields import CONTACT_FIELDS, FLOW_FIELDS, SHOP_FIELDS, TEMPLATE_ROOTS
from saleor_flows.journeys import JOURNEYS, list_journeys, load_journey

JOURNEYS_DIR = Path(__file__).resolve().parent.parent / "saleor_flows" / "journeys"
MJML_FILES = sorted(JOURNEYS_DIR.glob("*/*/*.mjml"))
LANGUAGES = ("en", "de")
REF_KEYS = ("next", "yes", "no", "timeout_next", "else")
ATTRIBUTE_FIELDS = {"contact": set(CONTACT_FIELDS), "shop": SHOP_FIELDS, "flow": FLOW_FIELDS}


def _env():
    env = ImmutableSandboxedEnvironment(autoescape=True, undefined=StrictUndefined)
    env.filters["money"] = lambda amount, currency, zero=None: (
        zero if zero is not None and Decimal(str(amount)) == 0 else f"{currency} {Decimal(str(amount)):.2f}")
    return env


def _emails(definition):
    """(step_id, language, subject, preheader, mjml) for every email of a definition."""
    for step_id, step in definition["steps"].items():
        if step["type"] != "send_email":
            continue
        yield step_id, "en", step["subject"], step.get("preheader", ""), step["mjml"]
        for lang, tr in step.get("translations", {}).items():
            yield step_id, lang, tr["subject"], tr.get("preheader", ""), tr["mjml"]


def _successors(step):
    refs = [step.get(key) for key in REF_KEYS]
    refs += [b.get("next") for b in step.get("branches", [])]
    refs += [v.get("next") for v in step.get("variants", [])]
    return refs


def _compile(source):
    html = mrml.to_html(source).content
    return css_inline.CSSInliner(load_remote_stylesheets=False, keep_style_tags=True).inline(html)


def _conditions(value):
    """Every leaf comparison in a condition tree."""
    if isinstance(value, dict):
        if "field" in value:
            yield value
        for key in ("all", "any"):
            for child in value.get(key, []):
                yield from _conditions(child)
        if "not" in value:
            yield from _conditions(value["not"])


# ------------------------------------------------------------------ catalogue


def test_list_journeys():
    listed = list_journeys()
    assert [j["slug"] for j in listed] == JOURNEYS
    assert {j["slug"]: j["trigger_event"] for j in listed} == {
        "welcome": "customer_created",
        "abandoned_checkout": "checkout_abandoned",
        "post_purchase": "order_fully_paid",
        "win_back": "customer_lapsed",
        "browse_abandonment": "product_viewed",
        "birthday": "birthday",
        "back_in_stock": "back_in_stock",
    }
    for j in listed:
        assert j["name"] and j["description"]


def test_unknown_journey_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown journey 'nope'"):
        load_journey("nope")
    with pytest.raises(ValueError):
        load_journey("../welcome")


def test_load_journey_returns_a_fresh_copy():
    first = load_journey("welcome")
    first["steps"].clear()
    assert load_journey("welcome")["steps"]


# ---------------------------------------------------------------- definitions


@pytest.mark.parametrize("slug", JOURNEYS)
def test_definition_shape(slug):
    d = load_journey(slug)
    assert d["version"] == 1 and d["name"] and d["description"]
    assert d["trigger"]["event"]
    assert d["kind"] in ("marketing", "transactional")
    assert d["reentry"]["mode"] in ("once", "always", "once_per_period", "single_active")
    assert d["start"] in d["steps"]


@pytest.mark.parametrize("slug", JOURNEYS)
def test_step_graph_is_closed_acyclic_and_reachable(slug):
    steps = load_journey(slug)["steps"]
    for step_id, step in steps.items():
        for key in REF_KEYS:
            if step["type"] == "split" and key in ("yes", "no"):
                assert key in step, f"{slug}.{step_id} lacks {key!r}"
        if step["type"] == "wait_event":
            assert "timeout" in step and "timeout_next" in step, f"{slug}.{step_id}"
        for ref in _successors(step):
            assert ref is None or ref in steps, f"{slug}.{step_id} points to unknown step {ref!r}"

    start = load_journey(slug)["start"]
    seen, order = set(), []

    def visit(step_id, path):
        assert step_id not in path, f"{slug}: cycle through {step_id}"
        if step_id in seen:
            return
        seen.add(step_id)
        order.append(step_id)
        for ref in _successors(steps[step_id]):
            if ref is not None:
                visit(ref, path | {step_id})

    visit(start, frozenset())
    assert seen == set(steps), f"{slug}: unreachable steps {set(steps) - seen}"


@pytest.mark.parametrize("slug", JOURNEYS)
def test_condition_fields_exist(slug):
    d = load_journey(slug)
    trees = [d["trigger"].get("filter"), d.get("exit"), d.get("goal")]
    trees += [s["condition"] for s in d["steps"].values() if s["type"] == "split"]
    for leaf in (c for tree in trees for c in _conditions(tree)):
        root, _, name = leaf["field"].partition(".")
        assert root in ("contact", "event"), leaf
        if root == "contact":
            assert name.split(".")[0] in CONTACT_FIELDS, leaf


@pytest.mark.parametrize("slug", JOURNEYS)
def test_every_email_has_english_and_german(slug):
    d = load_journey(slug)
    emails = [s for s in d["steps"].values() if s["type"] == "send_email"]
    assert emails
    for step in emails:
        assert step["subject"].strip() and step["preheader"].strip()
        assert step["mjml"].lstrip().startswith("<mjml")
        assert set(step["translations"]) == {"de"}
        de = step["translations"]["de"]
        assert de["subject"].strip() and de["preheader"].strip()
        assert de["mjml"].lstrip().startswith('<mjml lang="de"')
        assert de["subject"] != step["subject"]
        assert de["mjml"] != step["mjml"]


@pytest.mark.parametrize("slug", JOURNEYS)
def test_files_match_the_email_steps(slug):
    d = load_journey(slug)
    expected = {
        f"{lang}/{step_id}.mjml"
        for step_id, s in d["steps"].items()
        if s["type"] == "send_email"
        for lang in LANGUAGES
    }
    on_disk = {str(p.relative_to(JOURNEYS_DIR / slug)) for p in (JOURNEYS_DIR / slug).glob("*/*.mjml")}
    assert on_disk == expected


@pytest.mark.parametrize("slug", [s for s in JOURNEYS if load_journey(s)["kind"] == "marketing"])
def test_marketing_emails_have_an_unsubscribe_and_a_preferences_link_and_the_address(slug):
    for step_id, lang, _, _, source in _emails(load_journey(slug)):
        assert 'href="{{ unsubscribe_url }}"' in source, f"{slug}.{step_id} ({lang})"
        assert 'href="{{ preferences_url }}"' in source, f"{slug}.{step_id} ({lang})"
        assert "{{ shop.address }}" in source, f"{slug}.{step_id} ({lang})"


def test_cross_sell_in_the_transactional_journey_has_an_unsubscribe_link():
    d = load_journey("post_purchase")
    split = d["steps"]["split_marketing_consent"]
    assert split["yes"] == "email_cross_sell"
    assert {"field": "contact.email_consent", "op": "eq", "value": "subscribed"} in list(
        _conditions(split["condition"])
    )
    for step_id, lang, _, _, source in _emails(d):
        if step_id == "email_cross_sell":
            assert 'href="{{ unsubscribe_url }}"' in source, lang


# ------------------------------------------------------------------ templates


@pytest.mark.parametrize("path", MJML_FILES, ids=lambda p: str(p.relative_to(JOURNEYS_DIR)))
def test_mjml_compiles(path):
    source = path.read_text(encoding="utf-8")
    out = mrml.to_html(source)
    assert "<html" in out.content
    assert not list(out.warnings), [str(w) for w in out.warnings]
    assert 80 > len(source.splitlines()) > 10


@pytest.mark.parametrize("path", MJML_FILES, ids=lambda p: str(p.relative_to(JOURNEYS_DIR)))
def test_template_variables_are_known(path):
    env = _env()
    ast = env.parse(path.read_text(encoding="utf-8"))
    assert meta.find_undeclared_variables(ast) <= TEMPLATE_ROOTS
    for node in ast.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name in ATTRIBUTE_FIELDS:
            assert node.attr in ATTRIBUTE_FIELDS[node.node.name], f"{node.node.name}.{node.attr}"
    for node in ast.find_all(nodes.Filter):
        assert node.name in ("money", "default"), node.name


SHOP = {
    "name": "Test Shop", "url": "https://shop.example.com", "logo_url": "", "currency": "USD",
    "address": "1 Test Street", "support_email": "help@example.com",
    "best_sellers_url": "https://shop.example.com/collections/best-sellers/",
    "new_arrivals_url": "https://shop.example.com/collections/new-arrivals/",
}
PICKS = [{"product_id": "p-mug", "product_name": "Enamel Mug", "product_url": "https://shop.example.com/products/mug/",
          "thumbnail": "https://cdn.example.com/mug.png", "price": "12.50", "currency": "EUR",
          "reason": "bought_together"}]
CONTACT = {name: None for name in CONTACT_FIELDS} | {"email": "ann@example.com", "first_name": ""}
CHECKOUT = {
    "id": "Q2hlY2tvdXQ6MQ==", "token": "t-1", "email": "ann@example.com", "currency": "USD",
    "language_code": "en", "checkout_url": "https://shop.example.com/checkout/t-1", "total_gross_amount": "52.00",
    "lines": [
        {"product_name": "Monospace Tee", "variant_name": "S", "full_name": "Monospace Tee (S)", "quantity": 2,
         "base_price": "20.00", "currency": "USD", "sku": "328223580", "variant_id": "v1",
         "thumbnail": "https://cdn.example.com/tee.png"},
        {"product_name": "Apple Juice", "variant_name": "", "full_name": "Apple Juice", "quantity": 1,
         "base_price": "12.00", "currency": "USD", "sku": "1", "variant_id": "v2"},
    ],
}
ORDER = {
    "id": "T3JkZXI6MQ==", "number": 23, "user_email": "ann@example.com", "currency": "USD", "language_code": "en",
    "total_gross_amount": "52.00", "shipping_price_gross_amount": "0.00",
    "lines": [
        {"product_name": "Monospace Tee", "variant_name": "S", "product_sku": "328223580", "quantity": 2,
         "currency": "USD", "unit_price_gross_amount": "20.00", "total_price_gross_amount": "40.00",
         "thumbnail": "https://cdn.example.com/tee.png"},
        {"product_name": "Apple Juice", "variant_name": "", "product_sku": "1", "quantity": 1, "currency": "USD",
         "unit_price_gross_amount": "12.00", "total_price_gross_amount": "12.00"},
    ],
}
# Derived by the engine (customer_lapsed, birthday, back_in_stock) or sent by storefront tracking (product_viewed).
LAPSED = {"days_since_last_order": 90, "last_order_at": "2024-02-01T10:00:00+00:00", "order_count": 3,
          "total_spent": "182.40", "currency": "USD"}
PRODUCT = {"product_name": "Monospace Tee", "variant_name": "S", "product_url": "https://shop.example.com/p/tee",
           "thumbnail": "https://cdn.example.com/tee.png", "price": "20.00", "currency": "USD"}
BIRTHDAY = {"date": "1990-05-10", "age": 34}
RESTOCK = PRODUCT | {"quantity_available": 3}
PAYLOADS = {"welcome": {}, "abandoned_checkout": CHECKOUT, "post_purchase": ORDER, "win_back": LAPSED,
            "browse_abandonment": PRODUCT, "birthday": BIRTHDAY, "back_in_stock": RESTOCK}
PRODUCT_JOURNEYS = ("browse_abandonment", "back_in_stock")
RENDER_CASES = [(slug, step_id, lang) for slug in JOURNEYS for step_id, lang, *_ in _emails(load_journey(slug))]


def _render(slug, step_id, lang, event, contact=CONTACT, shop=SHOP, picks=()):
    d = load_journey(slug)
    email = next(e for e in _emails(d) if e[0] == step_id and e[1] == lang)
    context = {
        "contact": contact, "event": event, "shop": shop, "flow": {"name": d["name"], "slug": slug},
        "message": {"send_id": "s-1"}, "unsubscribe_url": "https://shop.example.com/u/TOKEN",
        "preferences_url": "https://shop.example.com/p/TOKEN", "recommendations": recommendations_function(picks),
    }
    env = _env()
    subject = env.from_string(email[2]).render(context)
    html = env.from_string(_compile(email[4])).render(context)
    return subject, html


@pytest.mark.parametrize("slug,step_id,lang", RENDER_CASES)
def test_renders_after_compilation(slug, step_id, lang):
    subject, html = _render(slug, step_id, lang, PAYLOADS[slug])
    assert subject and "{{" not in subject
    assert "{{" not in html and "{%" not in html
    assert "Test Shop" in html and "1 Test Street" in html
    assert "there" in html if lang == "en" else "Hallo," in html
    if "event.lines" in load_journey(slug)["steps"][step_id]["mjml"]:
        assert html.count("Monospace Tee") >= 2 and "Apple Juice" in html  # alt text + name
        assert html.count('src="https://cdn.example.com/tee.png"') == 1  # no image for the juice
    if slug == "abandoned_checkout":
        assert 'href="https://shop.example.com/checkout/t-1"' in html
        assert "USD 20.00" in html and "USD 52.00" in html
    if slug in PRODUCT_JOURNEYS:
        assert "Monospace Tee" in subject
        assert 'href="https://shop.example.com/p/tee"' in html and "USD 20.00" in html
        assert html.count('src="https://cdn.example.com/tee.png"') == 1


def test_checkout_emails_fall_back_to_the_shop_and_show_an_optional_code():
    event = {k: v for k, v in CHECKOUT.items() if k != "checkout_url"}
    for lang in LANGUAGES:
        _, html = _render("abandoned_checkout", "email_last_chance", lang, event)
        assert 'href="https://shop.example.com"' in html and "SAVE10" not in html
        _, html = _render("abandoned_checkout", "email_last_chance", lang, event | {"discount_code": "SAVE10"})
        assert "SAVE10" in html


@pytest.mark.parametrize("slug", PRODUCT_JOURNEYS)
def test_product_emails_without_the_optional_keys(slug):
    # thumbnail and variant_name may be absent; a missing product_url falls back to the shop.
    event = {k: v for k, v in PAYLOADS[slug].items() if k not in ("thumbnail", "variant_name", "product_url")}
    (step_id,) = [step_id for step_id, lang, *_ in _emails(load_journey(slug)) if lang == "en"]
    for lang in LANGUAGES:
        _, html = _render(slug, step_id, lang, event)
        assert "<img" not in html  # no product image (and SHOP has no logo)
        assert 'href="https://shop.example.com"' in html and "USD 20.00" in html


def test_birthday_shows_an_optional_code():
    for lang in LANGUAGES:
        _, html = _render("birthday", "email_birthday", lang, {"date": "1990-05-10"})  # no age, no code
        assert "BDAY15" not in html and "dashed" not in html
        _, html = _render("birthday", "email_birthday", lang, BIRTHDAY | {"discount_code": "BDAY15"})
        assert "BDAY15" in html


def test_back_in_stock_mentions_low_stock_only():
    for lang, phrase in (("en", "Only 3 left"), ("de", "Nur noch 3 auf Lager")):
        _, html = _render("back_in_stock", "email_back_in_stock", lang, RESTOCK)
        assert phrase in html
        _, html = _render("back_in_stock", "email_back_in_stock", lang, RESTOCK | {"quantity_available": 40})
        assert "Only" not in html and "Nur noch" not in html


def test_win_back_splits_on_opens_of_its_own_first_email():
    d = load_journey("win_back")
    split = d["steps"]["split_opened_first_email"]
    assert split["condition"] == {"history": "message", "action": "opened", "scope": "flow", "since": "entered"}
    yes, no = d["steps"][split["yes"]], d["steps"][split["no"]]
    assert yes["type"] == no["type"] == "send_email" and yes["next"] is no["next"] is None
    assert yes["subject"] != no["subject"]
    assert yes["translations"]["de"]["subject"] != no["translations"]["de"]["subject"]
    assert len(no["mjml"]) < len(yes["mjml"])


def test_back_in_stock_is_a_requested_notification():
    d = load_journey("back_in_stock")
    assert d["kind"] == "transactional" and d["reentry"] == {"mode": "always"}
    assert "asked" in d["description"]
    for _, lang, _, _, source in _emails(d):
        assert ("you asked" if lang == "en" else "gebeten") in source


def test_named_contact_and_logo():
    contact = CONTACT | {"first_name": "Ann"}
    shop = SHOP | {"logo_url": "https://cdn.example.com/logo.png"}
    _, html = _render("welcome", "email_nudge", "en", {}, contact, shop)
    assert "Hi Ann," in html and 'src="https://cdn.example.com/logo.png"' in html
    _, html = _render("welcome", "email_nudge", "de", {}, contact, shop)
    assert "Hallo Ann," in html


# ------------------------------------------------------------------ the engine's own checks


@pytest.mark.parametrize("slug", JOURNEYS)
def test_conditions_pass_the_engine_validator(slug):
    from saleor_flows.engine.conditions import validate_condition

    d = load_journey(slug)
    trees = [d["trigger"].get("filter"), d.get("exit"), d.get("goal")]
    trees += [s["condition"] for s in d["steps"].values() if s["type"] == "split"]
    for tree in filter(None, trees):
        assert validate_condition(tree) == [], tree


@pytest.mark.parametrize("slug", JOURNEYS)
def test_definition_passes_the_engine_validator_and_compiles(slug):
    definition = pytest.importorskip("saleor_flows.engine.definition")  # until templating lands
    d = load_journey(slug)
    assert definition.validate_definition(d) == []
    compiled = definition.compile_definition(d)
    assert all("compiled" in s for s in compiled["steps"].values() if s["type"] == "send_email")


RECOMMENDING = [("post_purchase", "email_cross_sell"), ("abandoned_checkout", "email_social_proof"),
                ("win_back", "email_we_miss_you"), ("win_back", "email_new_arrivals")]


def _real(slug, step_id, lang, event, picks=()):
    """The step compiled and rendered as the engine does (channels.templating), in ``lang``."""
    from saleor_flows.channels.templating import compile_email, render_email

    context = {"contact": CONTACT | {"locale": lang}, "event": event, "shop": SHOP,
               "flow": {"name": slug, "slug": slug}, "message": {"send_id": "s-1"},
               "unsubscribe_url": "https://shop.example.com/u/TOKEN", "preferences_url": "https://shop.example.com/p/TOKEN",
               "recommendations": recommendations_function(picks)}
    return render_email(compile_email(load_journey(slug)["steps"][step_id]), context, language=lang).html


@pytest.mark.parametrize("slug,step_id", RECOMMENDING)
@pytest.mark.parametrize("lang,price", [("en", "€12.50"), ("de", "12,50\xa0€")])
def test_recommended_products_show_with_image_name_price_and_link(slug, step_id, lang, price):
    html = _real(slug, step_id, lang, PAYLOADS[slug], PICKS)
    assert 'src="https://cdn.example.com/mug.png"' in html and "Enamel Mug" in html and price in html
    assert html.count('href="https://shop.example.com/products/mug/"') == 2  # image and name
    without = _real(slug, step_id, lang, PAYLOADS[slug])
    assert "Enamel Mug" not in without
    titles = ("You might also like", "Picked for you", "Picked to go with your order", "Das könnte dir auch gefallen",
              "Für dich ausgesucht", "Passend zu deiner Bestellung")
    assert sum(html.count(title) for title in titles) == sum(without.count(title) for title in titles) + 1


@pytest.mark.parametrize("lang", ["en", "de"])
def test_review_requests_link_to_each_products_page_and_listings_to_real_listings(lang):
    order = ORDER | {"lines": [ORDER["lines"][0] | {"product_url": "https://shop.example.com/products/tee/"},
                               ORDER["lines"][1] | {"product_url": "https://shop.example.com/products/juice/"}]}
    html = _real("post_purchase", "email_review_request", lang, order)
    assert 'href="https://shop.example.com/products/juice/"' in html
    assert html.count('href="https://shop.example.com/products/tee/"') == 2  # its line and the button
    html = _real("welcome", "email_brand_story", lang, {})
    assert 'href="https://shop.example.com/collections/best-sellers/"' in html
    for step_id in ("email_we_miss_you", "email_new_arrivals", "email_new_arrivals_short"):
        html = _real("win_back", step_id, lang, LAPSED)
        assert 'href="https://shop.example.com/collections/new-arrivals/"' in html

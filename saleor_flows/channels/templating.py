"""Merchant templates: checked and compiled when a flow is published, rendered in a sandbox at send time.

Merchants write emails in MJML with Jinja ``{{ variable }}`` placeholders, and
plain-text templates (SMS, staff notifications, webhook bodies) in Jinja.

Publish time (``compile_email``, ``check_text_template``) does the slow work
once and finds every mistake while the merchant is still looking: Jinja
syntax, unknown variables (checked against ``saleor_flows.fields``), MJML errors.
The MJML becomes HTML with ``mrml`` and its CSS is inlined with ``css_inline``
(remote stylesheets are never fetched: publishing must not depend on, or leak
to, the network). The result is a JSON-serializable dict stored on the flow
version.

Send time (``render_email``, ``render_text``) only renders the stored Jinja
source against plain JSON-like data (dicts, lists, strings, numbers, never ORM
objects) in an ``ImmutableSandboxedEnvironment``: HTML autoescaped, undefined
variables are errors, attributes starting with ``_`` are unreachable, and
runaway templates are stopped (see "Runaway guards" below). Every failure is
a ``TemplateError`` so the engine can record the step as failed.

Where Jinja tags may go in MJML
-------------------------------
Placeholders ``{{ … }}`` may go in text and in attribute values
(``<mj-image src="{{ line.thumbnail }}">``, ``<mj-button href="{{ event.checkout_url }}">``),
and in ``<mj-style>`` and ``<mj-preview>``.

Statements (``{% for %}``, ``{% if %}``, …) may go

* inside ``<mj-text>`` around any HTML;
* inside ``<mj-raw>`` around any HTML when the ``<mj-raw>`` is directly in
  ``<mj-body>``; inside an ``<mj-column>`` an ``<mj-raw>`` sits between table
  rows, so there it must hold rows (``<tr><td>…</td></tr>``), as anything else
  is moved out of the table by HTML parsers (browsers' too);
* inside ``<mj-table>`` around whole rows, which is how a cart is listed::

    <mj-table>
      <tr><th>Product</th><th>Qty</th><th>Price</th></tr>
      {% for line in event.lines %}
      <tr>
        <td><img src="{{ line.thumbnail }}" width="48" alt=""></td>
        <td>{{ line.product_name }}</td><td>{{ line.quantity }}</td>
        <td>{{ line.unit_price_gross_amount | money(event.currency) }}</td>
      </tr>
      {% endfor %}
    </mj-table>

* inside an ``<mj-column>`` around whole components
  (``{% if event.voucher_code %}<mj-text>…</mj-text>{% endif %}``);
* inside ``<mj-body>`` around whole ``<mj-section>`` elements.

Not around ``<mj-column>`` elements: column widths are computed when publishing,
for the columns as written. Elsewhere (in ``<mj-head>``, around ``<mj-body>``)
the MJML compiler moves or copies tags; publishing then fails with an error
that says so, rather than producing an email that breaks at send time.

How tags survive compilation: before ``mrml`` sees the MJML, every ``{% … %}``
becomes an HTML comment and every ``{{ … }}`` a plain word. Both pass through
``mrml`` and ``css_inline`` untouched (a bare ``{% for %}`` between table rows
would be moved out of the table by the HTML parser, and ``>`` inside a tag
would be escaped), and are put back verbatim afterwards.

Runaway guards
--------------
A template is merchant input that runs on every send, so a mistake must not
take a worker down: output is capped at ``MAX_OUTPUT_CHARS``; ``range()``
yields at most ``MAX_RANGE_ITEMS`` numbers per render in total; ``*`` and
``**`` refuse results that would be huge; arithmetic on whole numbers keeps
operands and results within ``MAX_TEMPLATE_INTEGER`` (2**64), so no single
operation can run long between two deadline checks; padding widths in format
strings, ``int.to_bytes`` lengths and the numeric arguments of ``center``,
``indent``, ``batch`` and ``slice`` are bounded; ``lipsum`` and ``namespace``
(the only way to grow a value across loop iterations) are not available.
Loops run at most ``MAX_LOOP_ITERATIONS`` times per render in total, ``+``,
``~`` and ``join`` refuse results that would be huge, ``sum`` adds numbers
only, and a value nested so deep or wide that it would print as more than
``MAX_OUTPUT_CHARS`` cannot be printed or passed to a filter or method
(``{% set %}`` can nest a list in itself ten times over without copying
anything: only its printing would explode). As a last resort a render stops
after ``MAX_RENDER_SECONDS``.
"""

import contextvars
import datetime
import decimal
import functools
import html as html_lib
import inspect
import math
import re
import threading
import time
import types
import zoneinfo
from dataclasses import dataclass, field
from html.parser import HTMLParser

import css_inline
import mrml
from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency
from jinja2 import (StrictUndefined, TemplateSyntaxError, Undefined, meta, nodes, pass_context, pass_environment,
                    pass_eval_context)
from jinja2.filters import FILTERS
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from ..fields import CONTACT_FIELDS, FLOW_FIELDS, MESSAGE_FIELDS, SHOP_FIELDS, TEMPLATE_ROOTS

MAX_SOURCE_CHARS = 500_000
MAX_OUTPUT_CHARS = 2_000_000
MAX_RANGE_ITEMS = 10_000
MAX_FILTER_WIDTH = 1_000
MAX_LOOP_ITERATIONS = 100_000
MAX_RENDER_SECONDS = 10.0
# Whole numbers in template arithmetic: a few lines of `*` could otherwise build a number of
# gigabytes, each multiplication holding the GIL for seconds between two deadline checks.
MAX_TEMPLATE_INTEGER = 2**64
# The MJML compiler (mrml) and the CSS inliner are native code that recurses once per nesting
# level: about 12,000 nested elements overflow the stack and kill the whole process (mrml 0.2.4
# crashes from about 700 nested <mj-hero> on an 8 MB stack, 88 on 1 MB). Markup is measured first
# (``markup_problem``) and refused past these bounds, and compiles on a thread with a known stack.
MAX_MJML_DEPTH = 50
MAX_MJML_ELEMENTS = 10_000
NATIVE_STACK_BYTES = 16 * 1024 * 1024  # <mj-hero> overflows it at ~1,436 levels: 28 times the bound

# Roots whose first attribute is checked at publish time. `contact.attributes.*`
# and `event.*` are open: their keys are the merchant's and the event's own.
KNOWN_FIELDS = {
    "contact": frozenset(CONTACT_FIELDS),
    "shop": frozenset(SHOP_FIELDS),
    "flow": frozenset(FLOW_FIELDS),
    "message": frozenset(MESSAGE_FIELDS),
}


class TemplateError(ValueError):
    """A template cannot be published or rendered; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str] | str):
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("; ".join(self.errors))


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str
    language: str | None  # the translation used; None for the default


# --- The sandbox -----------------------------------------------------------------------

# Attributes (as opposed to dict keys) are reachable only on these plain types, so
# an ORM object passed by mistake stays opaque instead of offering `.delete()`.
_PLAIN_MODULES = frozenset({"builtins", "datetime", "decimal", "markupsafe", "jinja2.runtime", "jinja2.utils"})

_PRINTF_TOO_WIDE = re.compile(r"%[-#0 +]*(?:\*|\d{4,})|%[-#0 +]*\d*\.(?:\*|\d{4,})")
_FORMAT_TOO_WIDE = re.compile(r"\{[^{}:]*:[^{}]*?(?:\d{4,}|\{)")  # from the first ':': linear, not quadratic


@dataclass
class _RenderState:
    range_items_left: int
    language: str | None
    loop_iterations_left: int = MAX_LOOP_ITERATIONS
    deadline: float = math.inf
    weights: dict = field(default_factory=dict)  # id → (container, _weight): measured once per render


_render_state = contextvars.ContextVar("saleor_flows_render_state", default=None)


class _Runaway(TemplateError):
    pass


def _check_time():
    state = _render_state.get()
    if state is not None and time.monotonic() > state.deadline:
        raise _Runaway(f"rendering took longer than {MAX_RENDER_SECONDS:g} seconds")


_CONTAINERS = (list, tuple, set, frozenset, dict, range)


def _weight(value, limit=MAX_OUTPUT_CHARS):
    """About how many characters ``value`` prints as (anything past ``limit`` counts as ``limit + 1``).

    Shared references count every time they would print, which is the point:
    ``[a] * 10`` nested ten times is small in memory and enormous as text. Each
    distinct container is measured once per render (templates cannot change them).
    """
    if isinstance(value, (str, bytes, bytearray)):
        return len(value)
    if not isinstance(value, _CONTAINERS):
        return 3
    state = _render_state.get()
    known = state.weights if state is not None else {}
    stack = [(value, False)]
    while stack:
        item, children_known = stack.pop()
        if id(item) in known:
            continue
        if isinstance(item, range):
            known[id(item)] = (item, min(2 + 4 * len(item), limit + 1))
            continue
        elements = [*item.keys(), *item.values()] if isinstance(item, dict) else item
        if not children_known:
            stack.append((item, True))
            stack.extend((element, False) for element in elements
                         if isinstance(element, _CONTAINERS) and id(element) not in known)
            continue
        total = 2
        for element in elements:
            if isinstance(element, (str, bytes, bytearray)):
                total += 4 + len(element)
            elif isinstance(element, _CONTAINERS):
                total += 2 + known[id(element)][1]
            else:
                total += 3
            if total > limit:
                total = limit + 1
                break
        known[id(item)] = (item, total)  # the item is kept so its id cannot be reused meanwhile
    return known[id(value)][1]


def _check_weight(*values):
    for value in values:
        if isinstance(value, _CONTAINERS) and _weight(value) > MAX_OUTPUT_CHARS:
            raise _Runaway(f"a value that would print as more than {MAX_OUTPUT_CHARS} characters")
        if isinstance(value, str) and len(value) > MAX_OUTPUT_CHARS:
            raise _Runaway(f"a value longer than {MAX_OUTPUT_CHARS} characters")


def _bounded_loop(iterable):
    """What every ``{% for %}`` iterates (see ``_FlowsSandbox._generate``): counted against the budget."""
    state = _render_state.get()
    for item in iterable:
        if state is not None:
            state.loop_iterations_left -= 1
            if state.loop_iterations_left < 0:
                raise _Runaway(f"loops may run at most {MAX_LOOP_ITERATIONS} times per message in total")
            if not state.loop_iterations_left % 1000:
                _check_time()
        yield item


def _checked_join(sep, items):
    items = list(items)
    _check_weight(items)
    if len(sep) * max(len(items) - 1, 0) > MAX_OUTPUT_CHARS:
        raise _Runaway(f"join() would build a value longer than {MAX_OUTPUT_CHARS}")
    return items


def _bounded_concat(join):
    def concat(*values):
        _check_weight(*values)
        if sum(len(value) if isinstance(value, str) else _weight(value) for value in values) > MAX_OUTPUT_CHARS:
            raise _Runaway(f"'~' would build a value longer than {MAX_OUTPUT_CHARS}")
        return join(values)
    return concat


class _GuardLoops(NodeTransformer):
    """Every ``{% for %}`` iterates through ``_bounded_loop``, every ``~`` goes through a checked join,
    and a constant printed value is checked at render time like any other (Jinja would otherwise fold
    ``{{ ''.format_map }}`` into the template's text while compiling, escaped, past ``finalize``).
    """

    def __init__(self, environment):
        self.eval_ctx = nodes.EvalContext(environment)

    def visit_Output(self, node):
        self.generic_visit(node)
        for index, child in enumerate(node.nodes):
            if isinstance(child, nodes.TemplateData):
                continue
            try:
                child.as_const(self.eval_ctx)
            except Exception:  # noqa: BLE001 - not a constant: checked by finalize when rendered
                continue
            node.nodes[index] = nodes.Call(nodes.Name("_flows_print", "load"), [child], [], None, None,
                                           lineno=child.lineno)
        return node

    def visit_For(self, node):
        self.generic_visit(node)
        node.iter = nodes.Call(nodes.Name("_flows_loop", "load"), [node.iter], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node):
        self.generic_visit(node)
        return nodes.Call(nodes.Name("_flows_concat", "load"), node.nodes, [], None, None, lineno=node.lineno)


def _check_format_string(fmt):
    if _PRINTF_TOO_WIDE.search(fmt) or _FORMAT_TOO_WIDE.search(fmt):
        raise _Runaway(f"format string {fmt[:40]!r} asks for a width or precision over {MAX_FILTER_WIDTH - 1}")


def _bounded_range(*args):
    numbers = range(*args)
    try:
        count = len(numbers)
    except OverflowError:
        count = math.inf
    state = _render_state.get()
    left = state.range_items_left if state else MAX_RANGE_ITEMS
    if count > left:
        raise _Runaway(f"range() may yield at most {MAX_RANGE_ITEMS} numbers per message")
    if state:
        state.range_items_left -= count
    return numbers


def _check_replace(s, old, new, count=None):
    if isinstance(s, (str, bytes)) and isinstance(old, type(s)) and isinstance(new, type(s)):
        times = s.count(old) if count is None or count < 0 else min(count, s.count(old))
        if len(s) + times * (len(new) - len(old)) > MAX_OUTPUT_CHARS:
            raise _Runaway(f"replace() would build a value longer than {MAX_OUTPUT_CHARS}")


def _check_width(name, width):
    if isinstance(width, int) and not isinstance(width, bool) and abs(width) >= MAX_FILTER_WIDTH:
        raise _Runaway(f"{name}(): {width} is too large (the limit is {MAX_FILTER_WIDTH - 1})")


def _bounded_filter(name, width_parameter):
    builtin = FILTERS[name]
    signature = inspect.signature(builtin)

    @functools.wraps(builtin)  # keeps Jinja's pass_eval_context marker
    def bounded(*args, **kwargs):
        _check_width(name, signature.bind(*args, **kwargs).arguments.get(width_parameter))
        return builtin(*args, **kwargs)

    return bounded


def _guarded_filter(function):
    """Any filter: its arguments must not be huge once printed, and the render must be on time."""
    skip = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0  # the context Jinja passes first

    @functools.wraps(function)  # keeps Jinja's pass_context / pass_eval_context marker
    def guarded(*args, **kwargs):
        _check_time()
        _check_weight(*args[skip:], *kwargs.values())
        return function(*args, **kwargs)

    return guarded


@pass_environment
def _bounded_wordwrap(environment, s, width=79, break_long_words=True, wrapstring=None, break_on_hyphens=True):
    # Python's textwrap cuts a long word one slice at a time: quadratic in the word's length.
    if isinstance(width, int) and len(str(s)) ** 2 / max(width, 1) > 4e8:
        raise _Runaway("wordwrap(): the text is too long to wrap at this width")
    return FILTERS["wordwrap"](environment, s, width, break_long_words, wrapstring, break_on_hyphens)


@pass_eval_context
def _bounded_join(eval_ctx, value, d="", attribute=None):
    return FILTERS["join"](eval_ctx, _checked_join(str(d), value), d, attribute)


@pass_environment
def _numbers_sum(environment, iterable, attribute=None, start=0):
    if isinstance(start, bool) or not isinstance(start, (int, float, decimal.Decimal)):
        raise _Runaway("sum() adds numbers only")
    return FILTERS["sum"](environment, iterable, attribute, start)


@pass_eval_context
def _bounded_replace(eval_ctx, s, old, new, count=None):
    _check_replace(str(s), str(old), str(new), count)
    return FILTERS["replace"](eval_ctx, s, old, new, count)


def _bounded_format(value, *args, **kwargs):
    _check_format_string(str(value))
    return FILTERS["format"](value, *args, **kwargs)


def _size(value):
    return _weight(value) if isinstance(value, (str, list, tuple, bytes, bytearray)) else None


# Filters and str methods whose numeric argument sets the size of what they build.
_WIDTH_PARAMETERS = {"center": "width", "indent": "width", "batch": "linecount", "slice": "slices", "tojson": "indent"}
_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


_INTEGER_TOO_BIG = f"arithmetic on whole numbers beyond {MAX_TEMPLATE_INTEGER} (2**64) is not available"


def _check_integers(*values):
    for value in values:
        if isinstance(value, int) and not -MAX_TEMPLATE_INTEGER <= value <= MAX_TEMPLATE_INTEGER:
            raise _Runaway(_INTEGER_TOO_BIG)


def _bounded_arithmetic(operator, left, right, compute):
    """``left <operator> right`` for two numbers, with every whole number within ``MAX_TEMPLATE_INTEGER``.

    With both operands that small every operator is cheap, except ``**``, whose size is
    known before computing it; the result is checked too, so no chain of steps can grow.
    """
    _check_integers(left, right)
    if operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0 and \
            right * (abs(left).bit_length() - 1) > MAX_TEMPLATE_INTEGER.bit_length():
        raise _Runaway(_INTEGER_TOO_BIG)
    result = compute()
    _check_integers(result)
    return result


_NUMBERS = (int, float, decimal.Decimal)
_SIZED_TEXT = (str, bytes)  # bytes come from .encode() and int.to_bytes(): bounded like text


class _FlowsSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+", "-", "/", "//"})

    def __init__(self, **kwargs):
        super().__init__(undefined=StrictUndefined, finalize=self._finalize, **kwargs)
        self.globals = {"range": _bounded_range, "dict": self.globals["dict"],
                        "cycler": self.globals["cycler"], "joiner": self.globals["joiner"],
                        "_flows_loop": _bounded_loop, "_flows_print": self._finalize,
                        "_flows_concat": _bounded_concat(markup_join if self.autoescape else str_join)}
        for name, width_parameter in _WIDTH_PARAMETERS.items():
            self.filters[name] = _bounded_filter(name, width_parameter)
        self.filters["replace"] = _bounded_replace
        self.filters["format"] = _bounded_format
        self.filters["join"] = _bounded_join
        self.filters["sum"] = _numbers_sum
        self.filters["wordwrap"] = _bounded_wordwrap
        self.filters["money"] = money
        self.filters["date"] = date
        self.filters = {name: _guarded_filter(function) for name, function in self.filters.items()}

    @staticmethod
    def _finalize(value):
        """Every printed value: not too big, and never a method or a generator (their text is Python's)."""
        _check_weight(value)  # before Jinja turns it into text
        if isinstance(value, types.GeneratorType):
            raise TemplateError("a filter's result cannot be printed as it is; add '| list' or '| join(\", \")'")
        if callable(value) and not isinstance(value, Undefined):
            raise TemplateError("a method or function cannot be printed; call it with '()' or remove it")
        return value

    def _generate(self, source, name, filename, defer_init=False):
        # The one place every template passes on its way to Python code, parsed or not.
        if isinstance(source, nodes.Template):
            source = _GuardLoops(self).visit(source)
        return super()._generate(source, name, filename, defer_init=defer_init)

    def getattr(self, obj, attribute):
        # Templates read JSON data: `event.items` is the payload's key, not dict.items.
        if type(obj) is dict and not attribute.startswith("_") and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def is_safe_attribute(self, obj, attr, value):
        return type(obj).__module__ in _PLAIN_MODULES and super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context, operator, left, right):
        _check_time()
        if isinstance(left, _NUMBERS) and isinstance(right, _NUMBERS):
            return _bounded_arithmetic(operator, left, right,
                                       lambda: super(_FlowsSandbox, self).call_binop(context, operator, left, right))
        if operator == "+":
            if _size(left) is not None and _size(right) is not None and \
                    _size(left) + _size(right) > MAX_OUTPUT_CHARS:
                raise _Runaway(f"'+' would build a value longer than {MAX_OUTPUT_CHARS}")
        elif operator == "*":
            size, times = (_size(left), right) if _size(left) is not None else (_size(right), left)
            if size is not None and isinstance(times, int) and size * times > MAX_OUTPUT_CHARS:
                raise _Runaway(f"'*' would build a value longer than {MAX_OUTPUT_CHARS}")
        elif operator == "%" and isinstance(left, str):
            _check_format_string(left)
            _check_weight(right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's spelling, frees `self=` for templates
        _check_time()
        _check_weight(*args, *kwargs.values())
        owner, name = getattr(__obj, "__self__", None), getattr(__obj, "__name__", "")
        if isinstance(owner, _SIZED_TEXT) and name == "join" and args:
            args = (_checked_join(owner, args[0]), *args[1:])
        if isinstance(owner, _SIZED_TEXT) and name in _PADDING_METHODS:
            for arg in (*args, *kwargs.values()):
                _check_width(name, arg)
        elif isinstance(owner, int) and name == "to_bytes":
            _check_width(name, (args or (kwargs.get("length", 1),))[0])
        elif isinstance(owner, _SIZED_TEXT) and name == "replace":
            _check_replace(owner, *args, **kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value):
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format_string(value.__self__)
        return wrapped


# --- money and date filters --------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def _babel_locale(code):
    try:
        return Locale.parse(code.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


def _locale_for(ctx):
    """The contact's locale, else the language being rendered, else English."""
    contact = ctx.get("contact")
    state = _render_state.get()
    for code in (contact.get("locale") if isinstance(contact, dict) else None, state and state.language):
        if isinstance(code, str) and code and (locale := _babel_locale(code)):
            return locale
    return _babel_locale("en")


@pass_context
def money(ctx, value, currency=None, zero=None):
    """``{{ amount | money(event.currency) }}`` in the contact's locale: ``$40.00``, ``40,00 €``.

    ``zero="Free"`` shows that word for a zero amount (free shipping reads
    "Free", not "$0.00").

    Event payloads carry amounts as numbers or decimal strings; anything else is
    shown as it is, because a slightly ugly price beats a failed send.
    """
    if isinstance(value, Undefined):
        return value
    if currency is None:
        shop = ctx.get("shop")
        currency = shop.get("currency") if isinstance(shop, dict) else None
    try:
        if isinstance(value, bool) or not isinstance(currency, str):
            raise ValueError(value)
        amount = decimal.Decimal(value.strip() if isinstance(value, str) else str(value))
        if not amount.is_finite() or amount.adjusted() > 15:
            raise ValueError(value)
        if zero is not None and amount == 0:
            return zero
        return _formatted_money(str(amount), currency.upper(), _locale_for(ctx))
    except (ValueError, TypeError, ArithmeticError, LookupError):
        return value


@functools.lru_cache(maxsize=4096)
def _formatted_money(amount: str, currency: str, locale) -> str:
    """A shop's prices repeat from email to email: each (amount, currency, locale) is formatted by babel once."""
    return format_currency(decimal.Decimal(amount), currency, locale=locale)


@pass_context
def date(ctx, value, format="medium"):
    """``{{ contact.created_at | date }}``: a datetime or ISO string as a date in the contact's locale.

    An aware datetime is first moved to the contact's timezone, so an order placed
    late in the evening is not shown as the next day.
    """
    if isinstance(value, Undefined):
        return value
    try:
        moment = datetime.datetime.fromisoformat(value) if isinstance(value, str) else value
        if isinstance(moment, datetime.datetime) and moment.tzinfo is not None:
            contact = ctx.get("contact")
            tz_name = contact.get("timezone") if isinstance(contact, dict) else None
            if isinstance(tz_name, str) and tz_name:
                try:
                    moment = moment.astimezone(zoneinfo.ZoneInfo(tz_name))
                except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                    pass
        if not isinstance(moment, datetime.date):
            raise ValueError(value)
        return format_date(moment, format=format, locale=_locale_for(ctx))
    except (ValueError, TypeError, LookupError, AttributeError):
        return value


_html_env = _FlowsSandbox(autoescape=True)
_text_env = _FlowsSandbox(autoescape=False)


# --- Publish time ---------------------------------------------------------------------------

def check_text_template(source: str, label: str) -> list[str]:
    """Every problem in one Jinja template (syntax, unknown variables and filters), as messages."""
    if not isinstance(source, str):
        return [f"{label}: must be text"]
    if len(source) > MAX_SOURCE_CHARS:
        return [f"{label}: longer than {MAX_SOURCE_CHARS} characters"]
    try:
        ast = _text_env.parse(source)
        errors = _name_errors(ast, label)
        if not errors:
            _text_env.compile(ast)  # what only code generation finds, e.g. nesting too deep for Python
    except TemplateSyntaxError as exc:
        return [f"{label}: line {exc.lineno}: {exc.message}"]
    except (RecursionError, SyntaxError, ValueError, OverflowError, MemoryError) as exc:
        return [f"{label}: cannot be read as a template ({exc.__class__.__name__})"]
    return errors


def template_roots(source: str) -> set[str]:
    """The template variables (``contact``, ``event``, ``shop``…) a checked template reads."""
    return set(meta.find_undeclared_variables(_text_env.parse(source))) & TEMPLATE_ROOTS


def _name_errors(ast, label):
    """Unknown variables, fields, filters and tests; private attributes; include and friends."""
    errors = []
    for node in ast.find_all((nodes.Filter, nodes.Test)):
        kind, known = ("filter", _text_env.filters) if isinstance(node, nodes.Filter) else ("test", _text_env.tests)
        if node.name not in known:
            errors.append(f"{label}: line {node.lineno}: unknown {kind} '{node.name}'")
            node.name = "string" if kind == "filter" else "defined"  # reported; now let the analysis go on
    errors += [f"{label}: unknown variable '{name}'"
               for name in sorted(meta.find_undeclared_variables(ast) - TEMPLATE_ROOTS)]
    # A loop variable or {% set %} may reuse a root's name; it is then the template's own.
    rebound = {node.name for node in ast.find_all(nodes.Name) if node.ctx in ("store", "param")}
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            key = node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            key = node.arg.value
        else:
            continue
        base = node.node
        if key.startswith("_"):
            errors.append(f"{label}: line {node.lineno}: '{key}' is not allowed (names starting with '_' are private)")
        elif isinstance(base, nodes.Name) and base.name in KNOWN_FIELDS and base.name not in rebound \
                and key not in KNOWN_FIELDS[base.name]:
            errors.append(f"{label}: unknown variable '{base.name}.{key}'")
    for node in ast.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        errors.append(f"{label}: line {node.lineno}: include, import and extends are not available")
    return list(dict.fromkeys(errors))


def compile_email(step: dict) -> dict:
    """A ``send_email`` step's templates, checked and compiled to inlined HTML, for storage.

    Returns ``{"default": {"subject", "html", "text", "preheader"}, "translations": {lang: {…}}}``
    (language keys normalized: ``pt_BR`` → ``pt-br``); ``html`` and ``text`` are Jinja
    sources, ``text`` the text part made from ``html`` (None when it cannot be, then
    ``render_email`` converts the rendered HTML). Raises ``TemplateError`` listing
    every problem of the default and of every translation at once.
    """
    if not isinstance(step, dict):
        raise TemplateError("step: must be an object {subject, mjml, preheader, translations}")
    errors = []
    compiled = {"default": _compile_variant(step, "", errors), "translations": {}}
    translations = step.get("translations") or {}
    if not isinstance(translations, dict):
        errors.append("translations: must be an object {language: {subject, mjml, preheader}}")
        translations = {}
    for code, variant in translations.items():
        prefix = f"translations.{code}."
        key = language_key(code)
        if key is None:
            errors.append(f"translations.{code}: not a language code (use e.g. 'de' or 'pt-BR')")
        elif key in compiled["translations"]:
            errors.append(f"translations.{code}: another translation has the same language")
        if not isinstance(variant, dict):
            errors.append(f"translations.{code}: must be an object {{subject, mjml, preheader}}")
            continue
        compiled["translations"][key] = _compile_variant(variant, prefix, errors)
    if errors:
        raise TemplateError(errors)
    return compiled


def _compile_variant(variant, prefix, errors):
    subject, mjml, preheader = variant.get("subject"), variant.get("mjml"), variant.get("preheader")
    problems = {}
    for name, value in (("subject", subject), ("mjml", mjml), ("preheader", preheader)):  # `field` is dataclasses'
        if name == "preheader" and value is None:
            continue
        if not isinstance(value, str):
            problems[name] = [f"{prefix}{name}: must be text"]
        elif name != "preheader" and not value.strip():
            problems[name] = [f"{prefix}{name}: required"]
        else:
            problems[name] = check_text_template(value, prefix + name)
        errors.extend(problems[name])
    html = None
    if isinstance(mjml, str) and mjml.strip() and len(mjml) <= MAX_SOURCE_CHARS:
        html = _mjml_to_html(mjml, preheader or None, prefix, errors,
                             check_result=not problems["mjml"] and not problems.get("preheader"))
    return {"subject": subject, "html": html, "text": html and _text_template(html), "preheader": preheader or None}


# Jinja comments are dropped, statements become HTML comments, expressions plain words.
_JINJA_OPEN = re.compile(r"\{[#%{]")
_JINJA_CLOSE = {"{#": "#}", "{%": "%}", "{{": "}}"}
_PLACEHOLDER = re.compile(r"<!--flowstag(\d+)-->|flows(?:tag|var)(\d+)x")
_MRML_PARSER = mrml.ParserOptions(include_loader=mrml.noop_loader())  # <mj-include> never reads files or URLs
_MRML_RENDER = mrml.RenderOptions(disable_comments=False)  # our statement placeholders are comments
_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_style_tags=True, keep_link_tags=True)
_WHERE_TAGS_GO = ("put loops and conditions inside <mj-text>, <mj-table> (around rows) or <mj-raw>, "
                  "around components inside an <mj-column>, or around whole sections inside <mj-body>")
_HIDDEN = ("display:none;font-size:1px;color:#ffffff;line-height:1px;max-height:0px;"
           "max-width:0px;opacity:0;overflow:hidden;mso-hide:all;")


def _jinja_tags(source):
    """(start, end) of every Jinja comment, statement and expression, left to right.

    What ``{#.*?#}|{%.*?%}|{{.*?}}`` finds, in one pass: that regex rescans to the end
    for every opener left unclosed, so 20,000 stray ``{{`` took 12 s. Here an opener
    whose closer is nowhere after it means no later opener of its kind is closed either.
    """
    position, unclosed = 0, set()
    while (opener := _JINJA_OPEN.search(source, position)) is not None:
        kind = opener.group(0)
        close = -1 if kind in unclosed else source.find(_JINJA_CLOSE[kind], opener.end())
        if close < 0:
            unclosed.add(kind)
            position = opener.start() + 1
            continue
        yield opener.start(), close + 2
        position = close + 2


def _protect(source, *, statement="<!--flowstag{}-->"):
    """``source`` with Jinja tags replaced by placeholders, the tags, and the shifts for error positions.

    Statements become ``statement`` (an HTML comment unless told otherwise), each its
    own; equal expressions share one word, so ``href="{{ url }}">{{ url }}`` stays equal.
    """
    tags, seen, shifts, parts, last = [], {}, [], [], 0
    for start, end in _jinja_tags(source):
        tag = source[start:end]
        if tag.startswith("{#"):
            placeholder = ""
        elif tag.startswith("{%"):
            placeholder = statement.format(len(tags))
            tags.append(tag)
        else:
            if tag not in seen:
                seen[tag] = len(tags)
                tags.append(tag)
            placeholder = f"flowsvar{seen[tag]}x"
        parts += [source[last:start], placeholder]
        shifts.append((start, len(tag) - len(placeholder)))
        last = end
    parts.append(source[last:])
    return "".join(parts), tags, shifts


def _restore(text, tags):
    return _PLACEHOLDER.sub(lambda m: tags[int(m.group(1) or m.group(2))], text)


# Any name the compiler could take for an element (it accepts "<_a>", "<:a>", "<é>"): counting too
# much is harmless, missing one is not.
_TAG_NAME = re.compile(r"<(/?)([^\s/>!?<\"'=][^\s/>\"'=]*)")
_TAG_BODY = re.compile(r"[^>\"']*")


def markup_problem(source: str) -> str:
    """Why ``source`` (MJML or HTML) is too big for the native compilers, or "".

    One pass over the text, never recursing: tags are counted and their nesting
    tracked on a list (an end tag closes up to its opening tag, as the compiler
    requires), quotes inside a tag are skipped so ``title="/>"`` cannot hide an
    open tag, and comments (where Jinja statements wait) count for nothing.
    """
    if len(source) > MAX_SOURCE_CHARS:
        return f"longer than {MAX_SOURCE_CHARS} characters"
    open_tags, elements, position, end = [], 0, 0, len(source)
    while (start := source.find("<", position)) >= 0:
        if source.startswith("<!--", start):
            close = source.find("-->", start + 4)
            position = end if close < 0 else close + 3
            continue
        name = _TAG_NAME.match(source, start)
        if name is None:  # "<!doctype", "<?xml", a stray "<": no element
            position = start + 1
            continue
        position = name.end()
        while True:  # to the tag's '>', stepping over quoted attribute values
            position = _TAG_BODY.match(source, position).end()
            if position >= end or source[position] == ">":
                break
            quote = source.find(source[position], position + 1)
            position = end if quote < 0 else quote + 1
        closing, tag = name.group(1), name.group(2).lower()
        if closing:
            if tag in open_tags:
                del open_tags[len(open_tags) - 1 - open_tags[::-1].index(tag):]
        else:
            elements += 1
            if elements > MAX_MJML_ELEMENTS:
                return f"more than {MAX_MJML_ELEMENTS} elements; split the email or simplify it"
            if tag not in _VOID and source[position - 1:position] != "/":  # any other open tag must be closed
                open_tags.append(tag)
                if len(open_tags) > MAX_MJML_DEPTH:
                    return f"elements nested more than {MAX_MJML_DEPTH} deep (at a <{tag}>); flatten the layout"
        position += 1
    return ""


_STACK_SIZE_LOCK = threading.Lock()  # threading.stack_size() is process-wide: set, start, restore


def _on_native_stack(function, *args, **kwargs):
    """``function(*args, **kwargs)`` on a thread with ``NATIVE_STACK_BYTES`` of stack.

    The markup bounds keep native recursion far below any stack, and this keeps
    the margin the same whatever stack the host gives its request threads.
    """
    outcome = {}

    def run():
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as it is
            outcome["error"] = exc

    with _STACK_SIZE_LOCK:
        previous = threading.stack_size(NATIVE_STACK_BYTES)
        try:
            thread = threading.Thread(target=run, name="saleor-flows-mjml", daemon=True)
            thread.start()
        finally:
            threading.stack_size(previous)
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _compile_native(protected):
    """MJML → HTML with inlined CSS: the only calls into native code, on a known stack."""
    output = _run_mrml(protected)
    return output, _INLINER.inline(output.content)


def _run_mrml(source):
    """mrml's output, working around its parser panicking on some non-ASCII text before '>'.

    The panic (mrml 0.2.4, htmlparser 0.2.1: "byte index is not a char boundary")
    is a Rust bug surfacing as ``PanicException``, a ``BaseException``. The same
    MJML with non-ASCII characters as character references compiles; it is only
    the fallback because inside ``<mj-style>`` a reference is not decoded.
    """
    for attempt in (source, source.encode("ascii", "xmlcharrefreplace").decode()):
        try:
            return mrml.to_html(attempt, parser_options=_MRML_PARSER, render_options=_MRML_RENDER)
        except BaseException as exc:  # noqa: BLE001 - only the panic is handled, the rest re-raised
            if type(exc).__name__ != "PanicException":
                raise
    raise OSError("the MJML compiler failed on this input; check for stray '<' or '>' characters")


def _mrml_message(exc, protected, original, shifts):
    """mrml's message with byte offsets in the protected source turned into a line of the merchant's MJML."""
    def to_line(match):
        offset = len(protected.encode()[:int(match.group(1))].decode(errors="ignore"))
        for start, shift in shifts:
            if start < offset:
                offset += shift
        return f"at line {original.count(chr(10), 0, offset) + 1}"
    return re.sub(r"at position (\d+):(\d+)", to_line, str(exc))


def _mjml_to_html(mjml_source, preheader, prefix, errors, *, check_result):
    protected, tags, shifts = _protect(mjml_source)
    problem = markup_problem(protected)
    if problem:
        errors.append(f"{prefix}mjml: {problem}")
        return None
    try:
        output, html = _on_native_stack(_compile_native, protected)
    except (OSError, ValueError) as exc:  # mrml raises OSError, css_inline InlineError (a ValueError)
        errors.append(f"{prefix}mjml: {_mrml_message(exc, protected, mjml_source, shifts)}")
        return None
    if preheader is not None:
        if output.preview:
            errors.append(f"{prefix}preheader: the MJML has its own <mj-preview>; keep only one of them")
        html = _inject_preheader(html, preheader)

    # Statements must come out once each and in order, or the template now means something else.
    statements = [int(m.group(1)) for m in _PLACEHOLDER.finditer(html) if m.group(1) is not None]
    expected = [index for index, tag in enumerate(tags) if tag.startswith("{%")]
    if statements != expected:
        misplaced = _first_difference(expected, statements)
        errors.append(f"{prefix}mjml: the MJML compiler moved or copied '{tags[misplaced]}'; {_WHERE_TAGS_GO}")
        return None
    html = _restore(html, tags)
    if check_result:  # the source is clean, so what is wrong now was done by compiling
        try:
            moved = _name_errors(_html_env.parse(html), "")
        except TemplateSyntaxError as exc:
            errors.append(f"{prefix}mjml: the compiled HTML is not a valid template ({exc.message}); "
                          "look for '{{' or '{%' written as HTML entities")
            return None
        if moved:
            errors.append(f"{prefix}mjml: the MJML compiler moved content out of its loop or condition "
                          f"({moved[0].removeprefix(': ')}); {_WHERE_TAGS_GO}")
            return None
    return html


def _first_difference(expected, found):
    for want, got in zip(expected, found):
        if want != got:
            return want
    longer = expected if len(expected) > len(found) else found
    return longer[min(len(expected), len(found))]


def _inject_preheader(html, preheader):
    """The preheader as the hidden first text of the body, where inbox previews read it."""
    protected, tags, _ = _protect(preheader)
    hidden = f'<div style="{_HIDDEN}">{html_lib.escape(protected, quote=False)}</div>'
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + _restore(hidden, tags), html, count=1)


# --- Send time ------------------------------------------------------------------------------------

def language_key(code: str | None) -> str | None:
    """``"pt_BR"`` → ``"pt-br"``: the form translations are stored and looked up under; None if not a code."""
    if not isinstance(code, str):
        return None
    key = code.strip().replace("_", "-").lower()
    return key if re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{1,8})*", key) else None


def _pick_variant(compiled, language):
    key = language_key(language)
    if key:
        translations = compiled.get("translations") or {}
        for candidate in (key, key.split("-")[0]):
            if candidate in translations:
                return candidate, translations[candidate]
    return None, compiled["default"]


@functools.lru_cache(maxsize=1024)
def _template(source, autoescape):
    return (_html_env if autoescape else _text_env).from_string(source)


def _render(source, context, *, autoescape, language, label):
    token = _render_state.set(_RenderState(range_items_left=MAX_RANGE_ITEMS, language=language,
                                           deadline=time.monotonic() + MAX_RENDER_SECONDS))
    try:
        size, chunks = 0, []
        for chunk in _template(source, autoescape).generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise _Runaway(f"output longer than {MAX_OUTPUT_CHARS} characters")
            chunks.append(chunk)
        return "".join(chunks)
    except TemplateError as exc:
        raise TemplateError([f"{label}: {error}" for error in exc.errors]) from exc
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{label}: line {exc.lineno}: {exc.message}") from exc
    except Exception as exc:  # noqa: BLE001 - any failure of merchant code is a failed step, not a crash
        message = getattr(exc, "message", None) or str(exc)
        raise TemplateError(f"{label}: {message}" if message else f"{label}: {exc.__class__.__name__}") from exc
    finally:
        _render_state.reset(token)


def render_email(compiled: dict, context: dict, *, language: str | None) -> RenderedEmail:
    """Subject, HTML and text of one email for one contact, in their language if translated."""
    used, variant = _pick_variant(compiled, language)
    subject = _render(variant["subject"], context, autoescape=False, language=language, label="subject")
    html = _render(variant["html"], context, autoescape=True, language=language, label="html")
    if variant.get("text"):
        text = _tidy_text(_render(variant["text"], context, autoescape=False, language=language, label="text"))
    else:
        text = html_to_text(html)
    return RenderedEmail(subject=" ".join(subject.split()), html=html, text=text, language=used)


def render_text(source: str, context: dict, *, language: str | None = None) -> str:
    """A plain-text template (SMS, staff notification, webhook value): no HTML escaping."""
    return _render(source, context, autoescape=False, language=language, label="text")


# --- Text part -------------------------------------------------------------------------------------
#
# The text part is derived from the HTML so the two never disagree. Converting every
# rendered email would cost more than rendering it, so publishing converts the HTML
# *template* once (Jinja tags protected as plain words) into a text template that is
# rendered like any other; ``html_to_text`` on the rendered HTML is the fallback.

_SKIPPED = frozenset({"head", "style", "script", "title", "template"})
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})
_PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote", "pre", "hr"})
_LINE = frozenset({"div", "tr", "li", "section", "header", "footer", "article", "center", "dt", "dd"})
# Break markers while collecting: \n a line, \f a paragraph, \r a <br> (two in a row make a paragraph).


class _TextExtractor(HTMLParser):
    """Readable plain text from email HTML: what a text-only client should show."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out = []
        self.line_has_text = False
        self.skip_depth = 0  # inside <head>, <style>, hidden elements (the preheader)
        self.links = []  # [href, index in out where the link text starts, alt of an image inside]
        self.rows = []  # open <tr>s: {"start": index in out, "cells": [index of each cell's start], "nested": bool}

    def _break(self, marker):
        self.out.append(marker)
        self.line_has_text = False

    def handle_starttag(self, tag, attrs):
        if self.skip_depth:
            self.skip_depth += tag not in _VOID
            return
        attrs = dict(attrs)
        style = (attrs.get("style") or "").replace(" ", "").lower()
        if tag in _SKIPPED or "display:none" in style or "mso-hide:all" in style:
            self.skip_depth = int(tag not in _VOID)
        elif tag in _PARAGRAPH:
            if tag == "table" and self.rows:
                self.rows[-1]["nested"] = True
            self._break("\f")
        elif tag == "br":
            self._break("\r")
        elif tag in _LINE:
            self._break("\n")
            if tag == "li":
                self.out.append("- ")
            elif tag == "tr":
                self.rows.append({"start": len(self.out), "cells": [], "nested": False})
        elif tag in ("td", "th") and self.rows:
            self.rows[-1]["cells"].append(len(self.out))
        elif tag == "a":
            self.links.append([attrs.get("href") or "", len(self.out), ""])
        elif tag == "img" and self.links and attrs.get("alt"):
            self.links[-1][2] = self.links[-1][2] or attrs["alt"]

    def handle_endtag(self, tag):
        if self.skip_depth:
            self.skip_depth -= tag not in _VOID
        elif tag in _PARAGRAPH:
            self._break("\f")
        elif tag in _LINE:
            if tag == "tr" and self.rows:
                self._one_line_per_row(self.rows.pop())
            self._break("\n")
        elif tag == "a" and self.links:
            href, start, alt = self.links.pop()
            text = " ".join("".join(self.out[start:]).split())
            if not text and alt:
                self.handle_data(alt)
                text = alt
            if href and not href.startswith("#") and href not in (text, f"mailto:{text}", f"tel:{text}"):
                self.handle_data(f" ({href})" if text else href)

    def _one_line_per_row(self, row):
        """A row of a data table (an order line, a total) reads as one line: ``Jeans, 32/32 — 1 × $119.00``.

        Only rows that hold no table of their own: the layout tables MJML wraps
        around everything are left to the line and paragraph rules.
        """
        if row["nested"] or len(row["cells"]) < 2:
            return
        bounds = row["cells"] + [len(self.out)]
        cells = []
        for start, end in zip(bounds, bounds[1:]):
            text = re.sub(r"\s*[\f\r\n]+\s*", ", ", "".join(self.out[start:end]))
            text = " ".join(text.split()).strip(", ")
            if text:
                cells.append(text)
        self.out[row["start"]:] = [" — ".join(cells)]
        self.line_has_text = bool(cells)

    def handle_data(self, data):
        if not self.skip_depth:
            self.out.append(re.sub(r"\s+", " ", data))  # a newline in HTML source is just a space
            self.line_has_text = self.line_has_text or not data.isspace()

    def text(self):
        raw = re.sub(r"\r(?:\s*\r)+", "\f", "".join(self.out)).replace("\r", "\n")
        paragraphs = []
        for chunk in raw.split("\f"):
            lines = (" ".join(line.split()) for line in chunk.split("\n"))
            paragraphs.append("\n".join(line for line in lines if line))
        return "\n\n".join(paragraph for paragraph in paragraphs if paragraph)


def html_to_text(html: str) -> str:
    """Plain text of an email's HTML: paragraphs, a data table's row on one line, links as ``text (url)``."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return extractor.text()


def _text_template(html_template):
    """The text part of a compiled HTML template, as a Jinja template; None if it cannot be made one."""
    protected, tags, _ = _protect(html_template, statement="flowstag{}x")
    text = html_to_text(protected)
    # A line holding only statements disappears when rendered, like Jinja's trim_blocks.
    text = re.sub(r"^(?:flowstag\d+x ?)+\n", lambda m: m.group(0).rstrip(), text, flags=re.M)
    source = _restore(text, tags)
    try:
        # Tags inside skipped parts (<head>, the hidden preheader) are gone: a dangling
        # {% endif %} or a {% set %} used later would break the text, so fall back.
        return None if _name_errors(_text_env.parse(source), "") else source
    except (TemplateSyntaxError, RecursionError, ValueError):
        return None


def _tidy_text(text):
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", re.sub(r"[ \t]{2,}", " ", text))
    # A table cell or a line part whose Jinja condition rendered nothing leaves a lone separator behind.
    text = re.sub(r",(?:\s*,)+", ",", re.sub(r" —(?: —)+", " —", text))
    text = re.sub(r"^(?:\s*(?:—|,)\s*)+|(?:\s*—)+$", "", text, flags=re.M)
    text = re.sub(r",(?= —)", "", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()

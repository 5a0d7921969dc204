"""The bytes of our emails, written by ``channels/mime.py`` instead of the email package's generator.

What a server receives must be exactly what Django's generator would have
written for the same message object: every test compares the two, byte for
byte, and reads the result back with the email parser as a mail client would.
No database. (tests/test_smtp.py sends these messages through Django's SMTP
backend to a real aiosmtpd server and reads them there.)
"""

import email
import email.policy
from email import quoprimime
from email.mime.multipart import MIMEMultipart

import pytest
from django.core.mail.message import SafeMIMEText
from hypothesis import given, settings as hypothesis_settings, strategies as st

from saleor_flows.channels import mime
from saleor_flows.channels.email import build_email
from saleor_flows.channels.templating import RenderedEmail

LONG_LINE_HTML = "<html><body><table>" + "".join(
    f'<tr><td style="padding:4px;color:#333">Item {i} — 1 × 19,00 €</td></tr>' for i in range(60)
) + "</table><p>Größe: M</p></body></html>"


def _email(subject="You left something in your cart", html=LONG_LINE_HTML, text="Hi Jane,\nyour cart — 1 × $19.00\n",
           to="shopper@example.com", from_email="Bench Shop <shop@example.com>", headers=None, reply_to=None):
    rendered = RenderedEmail(subject=subject, html=html, text=text, language=None)
    return build_email(rendered, to=to, from_email=from_email, reply_to=reply_to or [], send_id="5f0c0e5e-1",
                       headers=headers)


def _both(message, linesep):
    """(our bytes, the generator's bytes) of one message object (ours first: it sets the boundary, as the
    generator does)."""
    ours = message.as_bytes(linesep=linesep)
    standard = type(message).__mro__[2].as_bytes(message, linesep=linesep)  # SafeMIMEMultipart / SafeMIMEText
    return ours, standard


def _parsed(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


@pytest.mark.parametrize("linesep", ["\r\n", "\n"])
@pytest.mark.parametrize("case", [
    {},
    {"subject": "Ihr Warenkorb wartet – 20 % Rabatt für Sie, Jürgen"},
    {"subject": "A very long subject line that goes on and on well past the seventy-eight characters of a line"},
    {"to": "Jürgen Groß <juergen@example.com>", "from_email": "Bücherstube Köln <shop@example.com>"},
    {"headers": {"List-Unsubscribe": "<https://shop.example.com/plugins/global/saleor.flows/unsubscribe/"
                                     "eyJjIjo5NDAxLCJzIjoiNGM0NzRiMGUtMWI1OC00NGZlLWFkMzctNmMxMDY3YjkzNzAzIn0/>"
                                     ", <mailto:leave@example.com?subject=unsubscribe>",
                 "List-Unsubscribe-Post": "List-Unsubscribe=One-Click", "X-Flows-Stream": "marketing"}},
    {"headers": {"X-Note": "two  spaces and a\ttab"}, "reply_to": ["Support Team <help@example.com>"]},
    {"html": "", "text": "Order #12 came in.\nNo HTML here.\n"},  # a staff notification: one text part
    {"text": "Line one\r\nLine two\rLine three\n\n\nend"},
    {"html": "<p>" + "x" * 2000 + "</p>"},  # one line over 998 bytes: quoted-printable
])
def test_our_bytes_are_the_generators_and_read_back_the_same(case, linesep):
    message = _email(**case)
    mime_message = message.message()
    assert isinstance(mime_message, (mime.FastMultipart, mime.FastText))

    ours, standard = _both(mime_message, linesep)

    assert mime.flatten(mime_message, linesep) is not None  # written here, not by the generator
    assert ours == standard
    parsed = _parsed(ours)
    # (.strip(): a folded header starts on its own line, which this parser keeps as a space)
    assert parsed["Subject"].strip() == message.subject
    assert parsed["To"].strip() == message.to[0]
    assert parsed["From"].strip() == message.from_email
    assert parsed["Message-ID"] == message.extra_headers["Message-ID"]
    assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == \
        message.body.replace("\r\n", "\n").replace("\r", "\n")
    if case.get("html", LONG_LINE_HTML):
        assert parsed.get_body(("html",)).get_content().rstrip("\n") == message.alternatives[0].content
    if linesep == "\r\n":
        assert b"\n" not in ours.replace(b"\r\n", b"")  # what smtplib sends: CRLF only


@hypothesis_settings(max_examples=300, deadline=None)
@given(subject=st.text(min_size=1, max_size=120).filter(lambda s: s.strip() and "\n" not in s and "\r" not in s),
       name=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40),
       body=st.text(max_size=400))
def test_any_subject_name_and_body_give_the_generators_bytes(subject, name, body):
    message = _email(subject=" ".join(subject.split()), to=f'"{name}" <a@example.com>' if name.strip('"\\') else
                     "a@example.com", text=body, html=f"<p>{body}</p>")
    try:
        mime_message = message.message()
    except ValueError:  # Django refuses the address itself: nothing to compare
        return

    ours, standard = _both(mime_message, "\r\n")

    assert ours == standard


def test_shapes_it_does_not_know_are_left_to_the_generator():
    message = _email()
    message.attach("cart.pdf", b"%PDF-1.4 ...", "application/pdf")
    mime_message = message.message()  # multipart/mixed holding a base64 attachment

    assert mime.flatten(mime_message, "\r\n") is None
    ours, standard = _both(mime_message, "\r\n")
    assert ours == standard
    plain = MIMEMultipart()  # not one of Django's classes: left as it is
    assert mime.fast(plain) is plain and type(plain) is MIMEMultipart
    with_preamble = _email().message()
    with_preamble.preamble = "This is a multi-part message in MIME format."
    assert mime.flatten(with_preamble, "\r\n") is None



@hypothesis_settings(max_examples=500, deadline=None)
@given(text=st.lists(st.sampled_from(list("ab =\t\r\n.-é€\x00\x7f\x85\x1c") + ["x" * 30, "y" * 75]),
                     max_size=60).map("".join))
def test_quoted_printable_bodies_are_the_standard_librarys(text):
    body = text.encode("utf-8").decode("latin1")  # as Charset.body_encode hands it over: a byte per character

    assert mime.qp_body(body) == quoprimime.body_encode(body)
    fast, standard = mime.FastText(text, "html", "utf-8"), SafeMIMEText(text, "html", "utf-8")
    assert fast.as_bytes(linesep="\r\n").split(b"\r\n\r\n", 1)[1] == standard.as_bytes(linesep="\r\n").split(
        b"\r\n\r\n", 1)[1]

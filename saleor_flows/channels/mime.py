"""The bytes of a Django email message, written without the email package's generator when that is safe.

Django's SMTP backend (and its console and file backends) send
``email_message.message().as_bytes(linesep="\\r\\n")``. The standard library's
``BytesGenerator`` behind it folds every header through ``email.header.Header``
and writes the body a line at a time; for our messages (a dozen short ASCII
headers, a text and an HTML part) that was the largest single cost of a send.

``flatten()`` writes the same bytes directly for the shapes it knows: text
parts with string payloads and multipart containers without preamble or
epilogue, under the compat32 policy Django's messages use. A header is
written as it is when the generator would leave it unchanged (printable ASCII
words with single spaces that fit on one line); any other header goes through
the policy's own ``fold_binary``, and any other shape (an attachment, a
message/rfc822 part, a preamble) makes ``flatten()`` return None so the
caller uses the generator. Byte-for-byte the generator's output:
``tests/test_mime.py`` compares the two over many messages.

Nothing here chooses how a message is sent: the host's backend still does.
"""

import re
from email import charset as email_charset
from email import policy as email_policy
from email.generator import BytesGenerator, NLCRE
from email.quoprimime import _QUOPRI_BODY_ENCODE_MAP

from django.core.mail.message import SafeMIMEMultipart, SafeMIMEText, utf8_charset_qp

# A header value the compat32 folding returns unchanged when it fits on one line.
_PLAIN_VALUE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")
_MULTIPARTS = frozenset({"mixed", "alternative", "related"})


def flatten(msg, linesep: str = "\n") -> bytes | None:
    """``msg.as_bytes(linesep=linesep)`` as Django's generator writes it, or None for a shape not handled here."""
    if msg.policy is not email_policy.compat32 or not msg.policy.max_line_length:
        return None
    out = []
    if _write(msg, msg.policy, linesep, out) is None:
        return None
    return b"".join(out)


def _write(msg, policy, linesep, out) -> bool | None:
    """Append ``msg``'s bytes (headers, blank line, body) to ``out``; None if its shape is not handled.

    ``policy`` is the outermost message's, as the generator applies it to every part."""
    if msg.preamble is not None or msg.epilogue is not None:
        return None
    main, sub = msg.get_content_maintype(), msg.get_content_subtype()
    payload = msg._payload
    if main == "text" and isinstance(payload, str):
        if "\r" in payload:  # = Generator._write_lines: every line ending becomes ``linesep``
            payload = NLCRE.sub(linesep, payload)
        elif linesep != "\n":
            payload = payload.replace("\n", linesep)
        body = payload.encode("ascii", "surrogateescape")
    elif main == "multipart" and sub in _MULTIPARTS and isinstance(payload, list) and payload:
        parts = []
        for part in payload:
            part_out = []
            if _write(part, policy, linesep, part_out) is None:
                return None
            parts.append(b"".join(part_out))
        boundary = msg.get_boundary()
        if not boundary:  # as the generator does: a random one that occurs in no part, set on the message
            boundary = BytesGenerator._make_boundary()
            while any(b"--" + boundary.encode("ascii") in part for part in parts):
                boundary = BytesGenerator._make_boundary()
            msg.set_boundary(boundary)
        nl, dashes = linesep.encode("ascii"), b"--" + boundary.encode("ascii")
        body = dashes + nl + (nl + dashes + nl).join(parts) + nl + dashes + b"--" + nl
    else:
        return None
    _write_headers(msg, policy, linesep, out)
    out.append(body)
    return True


def _write_headers(msg, policy, linesep, out):
    limit, folding = policy.max_line_length, None
    for name, value in msg.raw_items():
        if isinstance(value, str) and len(name) + 2 + len(value) <= limit and _PLAIN_VALUE.fullmatch(value):
            out.append(f"{name}: {value}{linesep}".encode("ascii"))
        else:
            folding = folding or policy.clone(linesep=linesep)
            out.append(folding.fold_binary(name, value))
    out.append(linesep.encode("ascii"))


# --- Quoted-printable bodies -------------------------------------------------------------------
#
# Django encodes a text part quoted-printable when a line is longer than 998 bytes, as the HTML of
# an MJML email always is. The standard library's ``quoprimime.body_encode`` maps every character
# through a 256-entry table in ``str.translate``, the slowest step of building a message. ``qp_body``
# returns the same text: it escapes "=" with ``str.replace`` and each run of other unsafe bytes (a
# UTF-8 character) with one ``bytes.hex``, then breaks the lines exactly as ``body_encode`` does.

_QP_UNSAFE = re.compile("[^=" + re.escape("".join(  # "=" (in every HTML attribute) is escaped first, apart
    chr(c) for c in range(256) if _QUOPRI_BODY_ENCODE_MAP[c] == chr(c))) + "]+")


def _escaped_run(match) -> str:
    """A run of unsafe characters (a UTF-8 sequence, as latin-1) as ``=XX`` escapes."""
    return "=" + match[0].encode("latin1").hex("=").upper()


def qp_body(body: str, maxlinelen: int = 76, eol: str = "\n") -> str:
    """``email.quoprimime.body_encode(body)``: ``body`` holds one character per byte (latin-1)."""
    if not body:
        return body
    escaped = _QP_UNSAFE.sub(_escaped_run, body.replace("=", "=3D"))
    soft_break, maxlinelen1, encoded = "=" + eol, maxlinelen - 1, []
    append = encoded.append
    for line in escaped.splitlines():
        start, laststart = 0, len(line) - 1 - maxlinelen
        while start <= laststart:
            stop = start + maxlinelen1
            if line[stop - 2] == "=":  # never break inside an escape
                append(line[start:stop - 1])
                start = stop - 2
            elif line[stop - 1] == "=":
                append(line[start:stop])
                start = stop - 1
            else:
                append(line[start:stop] + "=")
                start = stop
        if line and line[-1] in " \t":  # white space at the end of a line is escaped or kept by a soft break
            room = start - laststart
            if room >= 3:
                tail = "=%02X" % ord(line[-1])
            elif room == 2:
                tail = line[-1] + soft_break
            else:
                tail = soft_break + "=%02X" % ord(line[-1])
            append(line[start:-1] + tail)
        else:
            append(line[start:])
    if escaped[-1] in "\r\n":
        append("")
    return eol.join(encoded)


class _QuotedPrintable(email_charset.Charset):
    """Django's UTF-8 quoted-printable charset, its body encoded by ``qp_body``."""

    def body_encode(self, string):
        if not string or self.body_encoding is not email_charset.QP:
            return super().body_encode(string)
        if isinstance(string, str):
            string = string.encode(self.output_charset)
        return qp_body(string.decode("latin1"))


_utf8_qp = _QuotedPrintable("utf-8")
_utf8_qp.body_encoding = email_charset.QP


class _FlattensFast:
    """``as_bytes()`` through ``flatten()``, the generator for anything else; no state of its own."""

    def as_bytes(self, unixfrom=False, linesep="\n"):
        data = None if unixfrom else flatten(self, linesep)
        return super().as_bytes(unixfrom=unixfrom, linesep=linesep) if data is None else data


class FastMultipart(_FlattensFast, SafeMIMEMultipart):
    pass


class FastText(_FlattensFast, SafeMIMEText):
    """Django's text part; where Django picks quoted-printable, ``qp_body`` writes it."""

    def set_charset(self, charset):
        super().set_charset(_utf8_qp if charset is utf8_charset_qp else charset)


_FAST = {SafeMIMEMultipart: FastMultipart, SafeMIMEText: FastText}


def fast(msg):
    """Django's message object, its ``as_bytes()`` written by ``flatten()`` (the class only adds that method)."""
    fast_class = _FAST.get(type(msg))
    if fast_class is not None:
        msg.__class__ = fast_class
    return msg

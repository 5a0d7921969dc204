"""Turn a rendered email into a Django message and hand it to the host's mail backend.

We never talk to an ESP ourselves: the host has configured ``EMAIL_BACKEND``
(SMTP, or django-anymail for an ESP) and we use it as is. Two headers let us
find the message again whatever the backend: ``X-Flows-Send-Id`` (our send id)
and a ``Message-ID`` we generate and the caller stores, so bounces and replies
can be matched. When the backend is django-anymail, the send id also goes into
anymail's ``metadata``, which comes back on its tracking webhooks.
"""

import logging
import smtplib

import django
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection, make_msgid
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend

from ..conf import flows_setting

logger = logging.getLogger(__name__)

SEND_ID_HEADER = "X-Flows-Send-Id"
ANYMAIL_SEND_ID_KEY = "send_id"  # in anymail's metadata, which comes back on its tracking events


if django.VERSION < (6, 0):  # the host's pin (Saleor 3.24: Django 5.2); Django 6 builds messages another way
    from . import mime

    class FlowsEmail(EmailMultiAlternatives):
        """Django's multipart email, whose MIME object writes its bytes without the generator (``mime.py``).

        Only the MIME object differs, and only in how fast it is built and written: the
        host's backend still sends it (Django's SMTP backend calls ``as_bytes``;
        django-anymail's ESP backends read the fields and never call it).
        """

        def message(self):
            return mime.fast(super().message())

        def _create_mime_attachment(self, content, mimetype):
            """A text part (the HTML alternative) as ``mime.FastText``: Django's, its quoted-printable written faster."""
            basetype, subtype = mimetype.split("/", 1)
            if basetype != "text":
                return super()._create_mime_attachment(content, mimetype)
            return mime.FastText(content, subtype, self.encoding or settings.DEFAULT_CHARSET)
else:  # pragma: no cover - Django 6: its own message building, unchanged
    FlowsEmail = EmailMultiAlternatives


def build_email(rendered, *, to: str, from_email: str | None, reply_to: list[str] | None, send_id: str,
                headers: dict | None = None, metadata: dict | None = None,
                tags: list[str] | None = None, esp_extra: dict | None = None) -> EmailMultiAlternatives:
    """An ``EmailMultiAlternatives`` (text body, HTML alternative if any) ready for ``send_email_message``.

    Its ``Message-ID`` is in ``msg.extra_headers["Message-ID"]`` for the caller to store.
    ``from_email`` and ``reply_to`` default to the FROM_EMAIL and REPLY_TO settings
    (then Django's DEFAULT_FROM_EMAIL).
    """
    if reply_to is None:
        reply_to = flows_setting("REPLY_TO")
    if isinstance(reply_to, str):
        reply_to = [reply_to]
    msg = FlowsEmail(
        subject=rendered.subject,
        body=rendered.text,
        from_email=from_email or flows_setting("FROM_EMAIL") or settings.DEFAULT_FROM_EMAIL,
        to=[to],
        reply_to=reply_to or None,
        headers={
            **(headers or {}),
            SEND_ID_HEADER: str(send_id),
            "Message-ID": make_msgid(domain=flows_setting("MESSAGE_ID_DOMAIN")),
        },
    )
    if rendered.html:  # a staff notification is text only
        msg.attach_alternative(rendered.html, "text/html")
    if settings.EMAIL_BACKEND.startswith("anymail."):
        msg.metadata = {ANYMAIL_SEND_ID_KEY: str(send_id), **(metadata or {})}
        msg.tags = list(tags or [])
        if esp_extra:  # e.g. Postmark's {"MessageStream": "broadcast"}, SendGrid's {"ip_pool_name": …}
            msg.esp_extra = dict(esp_extra)
    return msg


class EmailSendError(Exception):
    """A failed send, in the terms the engine decides on (the same attributes as ``SmsError``).

    ``retryable``: trying again later can help (4xx answers, timeouts, refused
    or dropped connections before the message went over). ``ambiguous``: the
    message went over and no answer came back, so it may be delivered; the
    engine never sends it again.
    """

    def __init__(self, message: str, *, retryable: bool, ambiguous: bool = False, stale_connection: bool = False):
        super().__init__(message)
        self.retryable, self.ambiguous = retryable, ambiguous
        # The server had closed the connection before our MAIL command (nothing went over).
        self.stale_connection = stale_connection


def email_connection(smtp: dict | None = None):
    """A connection of the host's configured backend, not opened yet; ``smtp`` (a stream's own server) wins.

    An SMTP server set in the plugin configuration (the SMTP setting) wins over
    the host's backend too. A timeout without a timeout setting would hold the
    worker for ever: SMTP_TIMEOUT_SECONDS applies when the host set none.
    """
    smtp = smtp or flows_setting("SMTP")
    if smtp:
        connection = get_connection("django.core.mail.backends.smtp.EmailBackend", **{
            key: smtp[key] for key in ("host", "port", "username", "password", "use_tls", "use_ssl", "timeout")
            if smtp.get(key) not in (None, "")})
    else:
        connection = get_connection()
    if isinstance(connection, SmtpBackend) and connection.timeout is None:
        connection.timeout = flows_setting("SMTP_TIMEOUT_SECONDS")
    return connection


def send_email_message(msg: EmailMultiAlternatives, *, smtp: dict | None = None) -> None:
    """Send one message on a connection of its own; errors propagate, the engine decides the state."""
    connection = email_connection(smtp)
    try:
        send_on(connection, msg)
    finally:
        close_quietly(connection)


def close_quietly(connection) -> None:
    """QUIT: once a message is accepted, nothing here may fail its send."""
    try:
        connection.close()
    except Exception as exc:
        logger.info("saleor-flows: closing the mail connection failed after the send: %s", exc)


def send_on(connection, msg) -> None:
    """One message on ``connection``, opened here if needed and left open for the next one.

    A chunk of sends shares one connection (one TCP and TLS handshake, not
    one per email) yet learns each message's own outcome. With Django's SMTP
    backend each failure is told apart by when it happened (``_send_over_smtp``);
    after any failure the connection is closed, so the next message starts
    on a fresh one.
    """
    if not isinstance(connection, SmtpBackend):
        connection.send_messages([msg])
        return
    reused = connection.connection is not None
    try:
        _send_over_smtp(connection, msg)
    except EmailSendError as exc:
        _drop(connection)
        if not (reused and exc.retryable and exc.stale_connection):
            raise
        _send_over_smtp(connection, msg)  # the server hung up an idle connection before MAIL: once more, fresh
        # (a second failure propagates; the connection is closed by the caller's next failure or at the end)


def _drop(connection: SmtpBackend) -> None:
    """After a failure: close the socket without QUIT (a stalled server would hold QUIT for the whole timeout)."""
    for server in (connection.connection, connection._partial_connection):
        if server is not None:
            try:
                server.close()
            except OSError:
                pass
    connection.connection = connection._partial_connection = None


def _send_over_smtp(connection: SmtpBackend, msg) -> None:
    """One message over Django's SMTP backend, each failure told apart by when it happened.

    Django's backend raises the same ``SMTPServerDisconnected`` for a server
    that hung up before our MAIL command and for one that took the message
    and never answered; only the second may be delivered. So we note when the
    DATA command starts (smtplib's ``sendmail()`` calls ``self.data()``): from
    there on, the server may have the message.
    """
    try:
        connection.open()  # does nothing if it is open already
        server = connection.connection
        if not hasattr(server, "flows_stage"):
            start_data = server.data

            def data(content):
                server.flows_stage = "data"
                return start_data(content)

            server.data = data
        server.flows_stage = "before DATA"
        connection.send_messages([msg])  # on the open connection, which it leaves open
    except OSError as exc:  # smtplib's errors are OSErrors, as are refused connections and timeouts
        server = connection.connection
        raise _classified(exc, getattr(server, "flows_stage", "before DATA")) from exc


def _classified(exc: OSError, stage: str) -> EmailSendError:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):  # every recipient refused: the lowest code decides
        code, answer = min(exc.recipients.values())
    elif isinstance(exc, smtplib.SMTPResponseException):  # a definite answer to HELO, AUTH, MAIL or DATA
        code, answer = exc.smtp_code, exc.smtp_error
    elif stage == "data":
        return EmailSendError(f"no answer from the SMTP server after the message was sent: {exc}",
                              retryable=False, ambiguous=True)
    else:
        return EmailSendError(f"{type(exc).__name__}: {exc}", retryable=True,
                              stale_connection=isinstance(exc, smtplib.SMTPServerDisconnected))
    text = answer.decode(errors="replace") if isinstance(answer, bytes) else str(answer)
    return EmailSendError(f"SMTP {code} {text}"[:500], retryable=not 500 <= code < 600)

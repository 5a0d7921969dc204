"""Turn a rendered email into a Django message and hand it to the host's mail backend.

We never talk to an ESP ourselves: the host has configured ``EMAIL_BACKEND``
(SMTP, or django-anymail for an ESP) and we use it as is. Two headers let us
find the message again whatever the backend: ``X-Flows-Send-Id`` (our send id)
and a ``Message-ID`` we generate and the caller stores, so bounces and replies
can be matched. When the backend is django-anymail, the send id also goes into
anymail's ``metadata``, which comes back on its tracking webhooks.
"""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection, make_msgid

from ..conf import flows_setting

SEND_ID_HEADER = "X-Flows-Send-Id"
ANYMAIL_SEND_ID_KEY = "send_id"  # in anymail's metadata, which comes back on its tracking events


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
    msg = EmailMultiAlternatives(
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


def send_email_message(msg: EmailMultiAlternatives, *, smtp: dict | None = None) -> None:
    """Send through the host's configured backend; errors propagate, the engine decides the state.

    ``smtp`` (a stream's own server, see MESSAGE_STREAMS) wins over the SMTP setting.
    """
    smtp = smtp or flows_setting("SMTP")
    if smtp:
        # An SMTP server set in the plugin configuration wins over the host's backend.
        connection = get_connection("django.core.mail.backends.smtp.EmailBackend", **{
            key: smtp[key] for key in ("host", "port", "username", "password", "use_tls", "use_ssl", "timeout")
            if smtp.get(key) not in (None, "")})
    else:
        connection = get_connection()
    connection.send_messages([msg])

"""Flow-level settings stored in our own table, edited in the Dashboard App, read by the engine first.

Frequency caps, quiet hours, senders per Saleor channel and the preference
centre's topics belong with flows, not with the plugin's install-level
configuration: a merchant edits them next to the flows they shape, and gets
an error on the field that is wrong. A section left unset (null) here falls
back to the plugin's configuration, then to ``SALEOR_FLOWS``.

The engine reads them through ``conf.flows_setting`` (this module is its
first settings source), cached for a few seconds per process so the send
path does not query for every message; the process that saves sees the new
values at once, workers within ``CACHE_SECONDS``.
"""

import re
import time
from email.utils import parseaddr

from django.core.exceptions import ImproperlyConfigured

from . import clock
from .events import valid_email

CACHE_SECONDS = 5
CHANNELS = ("email", "sms")
MAX_CAP_HOURS = 24 * 30
MAX_SENDERS = 200
MAX_TOPICS = 50
MAX_LABEL = 200
SENDER_KEYS = ("from_email", "reply_to", "sms_from")
# The stored sections and the SALEOR_FLOWS keys they stand for.
SECTIONS = {"frequency_cap_hours": "FREQUENCY_CAP_HOURS", "quiet_hours": "QUIET_HOURS", "senders": "SENDERS",
            "topics": "TOPICS"}
OFF = {"", "off", "none"}
_TOPIC_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}([-_][a-zA-Z0-9]{2,8})?$")
_CHANNEL_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
# An SMS sender: a number in E.164, an alphanumeric sender ID (at most 11 characters), or a Twilio Messaging Service.
_SMS_SENDER = re.compile(r"^(\+[1-9]\d{6,14}|[A-Za-z0-9][A-Za-z0-9 .-]{0,10}|MG[0-9a-fA-F]{32})$")

_cache: dict = {"at": -1e9, "value": {}}


class SettingsError(ValueError):
    """Field-level problems: ``errors`` is a list of (field path, message)."""

    def __init__(self, errors: list[tuple[str, str]]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors))
        self.errors = errors


# --- reading ---------------------------------------------------------------------------


def clear_cache():
    _cache.update(at=-1e9, value={})


def stored_settings() -> dict:
    """The ``SALEOR_FLOWS`` keys set in the table (a settings source for ``conf.flows_setting``)."""
    if 0 <= time.monotonic() - _cache["at"] < CACHE_SECONDS:
        return _cache["value"]
    try:
        from django.db import transaction

        from .models import FlowSettings

        with transaction.atomic():  # a savepoint: a failed read never breaks the caller's transaction
            row = FlowSettings.objects.filter(pk=1).values(*SECTIONS).first() or {}
    except Exception:  # no table yet (before migrate), or no database at hand: the other sources apply
        row = {}
    value = {SECTIONS[name]: row[name] for name in SECTIONS if row.get(name) is not None}
    _cache.update(at=time.monotonic(), value=value)
    return value


def stored_row():
    from .models import FlowSettings

    return FlowSettings.objects.filter(pk=1).first()


# --- writing ---------------------------------------------------------------------------


def save(changes: dict):
    """Validate and store ``changes`` (section → value; None resets a section to the plugin's value).

    All or nothing: any invalid field raises ``SettingsError`` and nothing is stored.
    """
    from .models import FlowSettings

    cleaners = {"frequency_cap_hours": clean_caps, "quiet_hours": clean_quiet_hours, "senders": clean_senders,
                "topics": clean_topics}
    cleaned, errors = {}, []
    for section, value in changes.items():
        if value is None:
            cleaned[section] = None
            continue
        try:
            cleaned[section] = cleaners[section](value)
        except SettingsError as exc:
            errors.extend(exc.errors)
    if errors:
        raise SettingsError(errors)
    row, _ = FlowSettings.objects.get_or_create(pk=1, defaults={"updated_at": clock.now()})
    for section, value in cleaned.items():
        setattr(row, section, value)
    row.updated_at = clock.now()
    row.save()
    clear_cache()
    return row


def clean_caps(value: dict) -> dict:
    """``{"email": 16, "sms": 24}`` (hours; 0 or null: no cap)."""
    out, errors = {}, []
    for channel in CHANNELS:
        hours = value.get(channel)
        if hours is None:
            out[channel] = None
        elif isinstance(hours, bool) or not isinstance(hours, int) or not 0 <= hours <= MAX_CAP_HOURS:
            errors.append((f"frequencyCapHours.{channel}",
                           f"A whole number of hours from 0 (no limit) to {MAX_CAP_HOURS}."))
        else:
            out[channel] = hours or None
    _raise(errors)
    return out


def clean_quiet_hours(value: dict) -> dict:
    """``{"sms": "21:00-08:00", "email": null}`` in the contact's local time."""
    from .engine.gate import parse_window

    out, errors = {}, []
    for channel in CHANNELS:
        text = str(value.get(channel) or "").strip()
        if text.lower() in OFF:
            out[channel] = None
            continue
        try:
            parse_window(text)
        except ImproperlyConfigured:
            errors.append((f"quietHours.{channel}", f"Use HH:MM-HH:MM, e.g. 21:00-08:00 (got {text[:40]!r})."))
            continue
        out[channel] = text
    _raise(errors)
    return out


def clean_senders(entries: list) -> dict:
    """``[{"channel", "from_email", "reply_to", "sms_from"}]`` → ``{"<channel>": {...}}``."""
    if len(entries) > MAX_SENDERS:
        raise SettingsError([("senders", f"At most {MAX_SENDERS} channels.")])
    out, errors = {}, []
    for index, entry in enumerate(entries):
        where = f"senders.{index}"
        channel = str(entry.get("channel") or "").strip()
        if not _CHANNEL_SLUG.match(channel):
            errors.append((f"{where}.channel", "A Saleor channel slug, e.g. default-channel."))
        elif channel in out:
            errors.append((f"{where}.channel", f"Channel {channel!r} is listed twice."))
        sender = {}
        for key, field in (("from_email", "fromEmail"), ("reply_to", "replyTo")):
            text = str(entry.get(key) or "").strip()
            if text and not _is_address(text):
                errors.append((f"{where}.{field}", f"Not an email address: {text[:80]!r} "
                                                   "(e.g. hello@shop.example or Shop <hello@shop.example>)."))
            elif text:
                sender[key] = text
        sms_from = str(entry.get("sms_from") or "").strip()
        if sms_from and not _SMS_SENDER.match(sms_from):
            errors.append((f"{where}.smsFrom", "A number in international format (+15551234567), a sender name of "
                                               "at most 11 letters and digits, or a Twilio Messaging Service SID."))
        elif sms_from:
            sender["sms_from"] = sms_from
        if not sender and not any(e[0].startswith(where + ".") for e in errors):
            errors.append((where, "Give at least a from address, a reply-to address or an SMS sender."))
        out[channel] = sender
    _raise(errors)
    return out


def _is_address(text: str) -> bool:
    """``hello@shop.example`` or ``Shop <hello@shop.example>``, the address checked as every door checks one.

    ``events.valid_email`` refuses what Django's validator lets through but no shop sends from:
    a bare host (``shop@localhost``), an IP literal, a quoted local part, a domain without a TLD.
    """
    if len(text) > 254 or "\n" in text or "\r" in text:
        return False
    return valid_email(parseaddr(text)[1])


def clean_topics(entries: list) -> list:
    """``[{"key": "newsletter", "label": {"en": "Newsletter", "de": "Neuigkeiten"}}]`` for the preference centre."""
    if len(entries) > MAX_TOPICS:
        raise SettingsError([("topics", f"At most {MAX_TOPICS} topics.")])
    out, seen, errors = [], set(), []
    for index, entry in enumerate(entries):
        where = f"topics.{index}"
        key = str(entry.get("key") or "").strip()
        if not _TOPIC_KEY.match(key):
            errors.append((f"{where}.key", "Lower-case letters, digits, - and _, e.g. newsletter."))
        elif key in seen:
            errors.append((f"{where}.key", f"Topic {key!r} is listed twice."))
        seen.add(key)
        labels = entry.get("label")
        if not isinstance(labels, dict) or not labels:
            errors.append((f"{where}.label", 'Give a label per language, e.g. {"en": "Newsletter"}.'))
            continue
        clean = {}
        for language, text in labels.items():
            text = str(text or "").strip() if isinstance(text, (str, int, float)) else ""
            if not _LANGUAGE.match(str(language)):
                errors.append((f"{where}.label.{str(language)[:10]}", "A language code such as en or de."))
            elif not text or len(text) > MAX_LABEL:
                errors.append((f"{where}.label.{language}", f"A label of 1 to {MAX_LABEL} characters."))
            else:
                clean[str(language).lower()] = text
        out.append({"key": key, "label": clean})
    _raise(errors)
    return out


def _raise(errors):
    if errors:
        raise SettingsError(errors)

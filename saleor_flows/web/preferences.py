"""The preference centre: which topics, how often, a pause, or no marketing email at all.

GET shows the form with the contact's current choices; POST saves them (with
a ConsentChange holding the IP address and user agent as proof). The link
comes from an email the contact received, so the signed token is the proof
of who they are (see ``pages.py`` on CSRF). The engine's send gate honours
what is stored here (topics, frequency, pause); this page only stores it.
"""

from datetime import timedelta

from django.db import transaction
from django.http import HttpResponse
from django.utils import formats, translation
from django.utils.html import escape

from .. import clock
from ..conf import flows_setting
from ..engine.consent import FREQUENCIES, SUBSCRIBED, UNSUBSCRIBED, set_email_status, topic_keys, update_preferences
from ..models import Contact
from ..channels import texts
from .pages import client_proof, open_link, render_page

PAUSE_DAYS = (7, 30, 90)
ACTIONS = ("save", "unsubscribe_all", "resubscribe")


def _topic_label(topic: dict, language: str) -> str:
    label = topic.get("label") or topic["key"]
    if isinstance(label, dict):
        return str(label.get(language) or label.get(texts.default_language()) or next(iter(label.values()), topic["key"]))
    return str(label)


def _date(moment, language: str) -> str:
    with translation.override(language):
        return formats.date_format(moment, "DATE_FORMAT")


def _form(contact: Contact, language: str, say) -> str:
    topics = [topic for topic in flows_setting("TOPICS") or [] if isinstance(topic, dict) and topic.get("key")]
    parts = ['<form method="post">']
    if topics:
        parts.append(f"<fieldset><legend>{say('preferences.topics')}</legend>")
        for topic in topics:
            key = str(topic["key"])
            checked = "" if key in contact.unsubscribed_topics else " checked"
            parts.append(f'<label><input type="checkbox" name="topics" value="{escape(key)}"{checked}> '
                         f"{escape(_topic_label(topic, language))}</label><br>")
        parts.append("</fieldset>")
    parts.append(f"<fieldset><legend>{say('preferences.frequency')}</legend>")
    for value in FREQUENCIES:
        checked = " checked" if contact.frequency == value else ""
        parts.append(f'<label><input type="radio" name="frequency" value="{value}"{checked}> '
                     f"{say('preferences.frequency.' + value)}</label><br>")
    parts.append(f"</fieldset><fieldset><legend>{say('preferences.pause')}</legend>")
    now = clock.now()
    options = []
    if contact.paused_until and contact.paused_until > now:
        options.append(("keep", texts.say(language, "preferences.pause.keep", date=_date(contact.paused_until, language))))
    options.append(("0", texts.say(language, "preferences.pause.0")))
    options += [(str(days), texts.say(language, "preferences.pause.days", days=days)) for days in PAUSE_DAYS]
    for position, (value, label) in enumerate(options):
        checked = " checked" if position == 0 else ""
        parts.append(f'<label><input type="radio" name="pause" value="{value}"{checked}> {escape(label)}</label><br>')
    parts.append(f'</fieldset><p><button type="submit" name="action" value="save">{say("preferences.save")}</button></p>')
    if contact.email_consent == SUBSCRIBED:
        parts.append(f'<p><button type="submit" name="action" value="unsubscribe_all">'
                     f'{say("preferences.unsubscribe_all")}</button></p>')
    else:
        parts.append(f'<p><button type="submit" name="action" value="resubscribe">'
                     f'{say("preferences.resubscribe")}</button></p>')
    parts.append("</form>")
    return "".join(parts)


def _read_choices(request, contact: Contact):
    """The posted form as (unsubscribed topics, frequency, paused_until), or None if it was not ours."""
    known = topic_keys()
    chosen = request.POST.getlist("topics")
    frequency = request.POST.get("frequency", contact.frequency)
    pause = request.POST.get("pause", "keep")
    if any(key not in known for key in chosen) or frequency not in FREQUENCIES:
        return None
    if pause == "keep":
        paused_until = contact.paused_until
    elif pause == "0":
        paused_until = None
    elif pause.isdigit() and int(pause) in PAUSE_DAYS:
        paused_until = clock.now() + timedelta(days=int(pause))
    else:
        return None
    return [key for key in known if key not in chosen], frequency, paused_until


def preferences(request, token: str) -> HttpResponse:
    page = open_link(request, "preferences", token)
    if isinstance(page, HttpResponse):
        return page
    contact, language, say = page.contact, page.language, page.say
    title = texts.say(language, "preferences.title")
    notice, status = "", 200
    if request.method == "POST":
        action = request.POST.get("action", "save")
        with transaction.atomic():
            contact = Contact.objects.select_for_update().get(pk=contact.pk)
            proof = client_proof(request, "preference_centre")
            choices = _read_choices(request, contact) if action == "save" else None
            if action not in ACTIONS or (action == "save" and choices is None):
                notice, status = say("preferences.invalid"), 400
            elif action == "save":
                topics_out, frequency, paused_until = choices
                update_preferences(contact, unsubscribed_topics=topics_out, frequency=frequency,
                                   paused_until=paused_until, proof=proof)
                notice = say("preferences.saved")
            elif action == "unsubscribe_all":
                set_email_status(contact, UNSUBSCRIBED, proof=proof)
                notice = say("preferences.unsubscribed")
            else:
                # The link reached them in an email to this address: proof enough to opt in again.
                set_email_status(contact, SUBSCRIBED, proof=proof)
                notice = say("preferences.resubscribed")
    paused = ""
    if contact.paused_until and contact.paused_until > clock.now():
        paused = f"<p>{escape(texts.say(language, 'preferences.paused_until', date=_date(contact.paused_until, language)))}</p>"
    body = (f'<p role="status"><strong>{notice}</strong></p>' if notice else "") + \
        f"<p>{say('preferences.intro')}</p>{paused}{_form(contact, language, say)}"
    return render_page(language, title, body, status=status)

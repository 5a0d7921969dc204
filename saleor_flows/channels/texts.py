"""The words of our public pages and consent emails, in each supported language, and how a language is picked.

One table rather than Django's gettext catalogues: saleor-flows runs inside
hosts (Saleor) whose LANGUAGE_CODE and middleware are not ours, and a page
about one contact must speak *their* language, not the request's. A
language missing here falls back to the shop's DEFAULT_LANGUAGE, then English.
"""


from ..conf import flows_setting

TEXT = {
    "en": {
        # unsubscribe page
        "unsubscribe.title": "Unsubscribe",
        "unsubscribe.ask": "Stop marketing emails to {email}?",
        "unsubscribe.button": "Unsubscribe",
        "unsubscribe.done": "{email} will get no more marketing emails from {shop}. Order and account emails still arrive.",
        "unsubscribe.bad": "This unsubscribe link is not valid. Please use the link from a recent email.",
        "unsubscribe.rather": "Rather get fewer emails, or only some topics?",
        # preference centre
        "preferences.title": "Email preferences",
        "preferences.intro": "Choose which emails {email} gets from {shop}.",
        "preferences.topics": "Topics",
        "preferences.frequency": "How often",
        "preferences.frequency.": "As often as there is news",
        "preferences.frequency.daily": "At most once a day",
        "preferences.frequency.weekly": "At most once a week",
        "preferences.frequency.monthly": "At most once a month",
        "preferences.pause": "Take a break",
        "preferences.pause.keep": "Keep my break until {date}",
        "preferences.pause.0": "No break",
        "preferences.pause.days": "Pause for {days} days",
        "preferences.save": "Save my choices",
        "preferences.saved": "Your choices are saved.",
        "preferences.unsubscribe_all": "Unsubscribe from all marketing emails",
        "preferences.unsubscribed": "{email} gets no marketing emails from {shop}. Order and account emails still arrive.",
        "preferences.resubscribe": "Subscribe again",
        "preferences.resubscribed": "Welcome back: {email} gets marketing emails from {shop} again.",
        "preferences.paused_until": "Paused until {date}.",
        "preferences.bad": "This preferences link is not valid. Please use the link from a recent email.",
        "preferences.link": "Manage your email preferences",
        "preferences.invalid": "Please choose from the options shown.",
        # double opt-in
        "confirm.title": "Confirm your subscription",
        "confirm.ask": "Please confirm that {email} wants emails from {shop}.",
        "confirm.button": "Yes, subscribe me",
        "confirm.done": "Thank you! {email} is now subscribed to emails from {shop}.",
        "confirm.bad": "This confirmation link is not valid or has expired. Please sign up again.",
        "confirm.not_pending": "There is nothing to confirm for {email}. To get our emails, please sign up again.",
        "confirm.email.subject": "Please confirm your subscription to {shop}",
        "confirm.email.body": "You (or someone using your address) asked to get emails from {shop}. "
                              "Please confirm with the button below. If it wasn't you, ignore this email: "
                              "without your confirmation we send you nothing.",
        # footer added to marketing emails whose template lacks an unsubscribe link
        "footer.unsubscribe": "Unsubscribe",
        "footer.preferences": "Email preferences",
        # staff
        "staff.subject": "New subscriber: {address}",
        "staff.body": "{address} subscribed to {channels} ({source}) at {at}.",
    },
    "de": {
        "unsubscribe.title": "Abmelden",
        "unsubscribe.ask": "Keine Marketing-E-Mails mehr an {email} senden?",
        "unsubscribe.button": "Abmelden",
        "unsubscribe.done": "{email} bekommt keine Marketing-E-Mails von {shop} mehr. E-Mails zu Bestellungen und "
                            "zum Konto kommen weiterhin an.",
        "unsubscribe.bad": "Dieser Abmeldelink ist ungültig. Bitte nutze den Link aus einer aktuellen E-Mail.",
        "unsubscribe.rather": "Lieber weniger E-Mails oder nur bestimmte Themen?",
        "preferences.title": "E-Mail-Einstellungen",
        "preferences.intro": "Wähle, welche E-Mails {email} von {shop} bekommt.",
        "preferences.topics": "Themen",
        "preferences.frequency": "Wie oft",
        "preferences.frequency.": "Sooft es Neuigkeiten gibt",
        "preferences.frequency.daily": "Höchstens einmal am Tag",
        "preferences.frequency.weekly": "Höchstens einmal pro Woche",
        "preferences.frequency.monthly": "Höchstens einmal im Monat",
        "preferences.pause": "Pause einlegen",
        "preferences.pause.keep": "Pause bis {date} beibehalten",
        "preferences.pause.0": "Keine Pause",
        "preferences.pause.days": "{days} Tage pausieren",
        "preferences.save": "Auswahl speichern",
        "preferences.saved": "Deine Auswahl ist gespeichert.",
        "preferences.unsubscribe_all": "Von allen Marketing-E-Mails abmelden",
        "preferences.unsubscribed": "{email} bekommt keine Marketing-E-Mails von {shop}. E-Mails zu Bestellungen und "
                                    "zum Konto kommen weiterhin an.",
        "preferences.resubscribe": "Wieder anmelden",
        "preferences.resubscribed": "Willkommen zurück: {email} bekommt wieder Marketing-E-Mails von {shop}.",
        "preferences.paused_until": "Pausiert bis {date}.",
        "preferences.bad": "Dieser Link zu den Einstellungen ist ungültig. Bitte nutze den Link aus einer aktuellen "
                           "E-Mail.",
        "preferences.link": "E-Mail-Einstellungen verwalten",
        "preferences.invalid": "Bitte wähle aus den angezeigten Möglichkeiten.",
        "confirm.title": "Anmeldung bestätigen",
        "confirm.ask": "Bitte bestätige, dass {email} E-Mails von {shop} bekommen möchte.",
        "confirm.button": "Ja, anmelden",
        "confirm.done": "Danke! {email} ist jetzt für E-Mails von {shop} angemeldet.",
        "confirm.bad": "Dieser Bestätigungslink ist ungültig oder abgelaufen. Bitte melde dich erneut an.",
        "confirm.not_pending": "Für {email} gibt es nichts zu bestätigen. Wenn du unsere E-Mails bekommen möchtest, "
                               "melde dich bitte erneut an.",
        "confirm.email.subject": "Bitte bestätige deine Anmeldung bei {shop}",
        "confirm.email.body": "Du (oder jemand mit deiner Adresse) möchtest E-Mails von {shop} bekommen. Bitte "
                              "bestätige das mit dem Button unten. Warst du das nicht, ignoriere diese E-Mail: ohne "
                              "deine Bestätigung senden wir dir nichts.",
        "footer.unsubscribe": "Abmelden",
        "footer.preferences": "E-Mail-Einstellungen",
        "staff.subject": "Neue Anmeldung: {address}",
        "staff.body": "{address} hat sich für {channels} angemeldet ({source}), {at}.",
    },
}


def _supported(code) -> str | None:
    """``"DE"``, ``"de_DE"``, ``"de-DE"`` → ``"de"`` if we have that language, else None."""
    if not isinstance(code, str):
        return None
    primary = code.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in TEXT else None


def _accepted(header: str) -> list[str]:
    """Accept-Language entries, most preferred first (q=0 means "not this one")."""
    ranked = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(ranked)]


def default_language() -> str:
    return _supported(flows_setting("DEFAULT_LANGUAGE")) or "en"


def language_for(contact=None, request=None, *, given: str | None = None) -> str:
    """The language of a page or email: the contact's (Saleor's language code), else what was asked
    (``given``, e.g. a signup form's field), else the browser's Accept-Language, else the shop default."""
    candidates = [getattr(contact, "locale", None), given]
    if request is not None:
        candidates += _accepted(request.headers.get("Accept-Language", ""))
    for candidate in candidates:
        language = _supported(candidate)
        if language:
            return language
    return default_language()


def say(language: str, key: str, **values) -> str:
    """The text for ``key`` in ``language`` (plain text: escape it where it goes into HTML)."""
    table = TEXT.get(language) or TEXT[default_language()]
    template = table.get(key, TEXT["en"][key])
    return template.format(**values) if values else template


def masked(email: str) -> str:
    """``jane@example.com`` → ``ja••@example.com``: recognisable to its owner, not harvestable from a page."""
    if not email:
        return ""
    name, _, domain = email.partition("@")
    return f"{name[:2]}{'•' * max(len(name) - 2, 1)}@{domain}"

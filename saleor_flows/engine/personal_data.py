"""Steps that send contact data to someone other than the contact: staff mail and webhooks.

Reading contacts through the API needs MANAGE_USERS besides MANAGE_PLUGINS.
A flow whose staff notification prints ``{{ contact.email }}``, or whose
webhook posts the contact to a URL, reads contacts too, for every contact
that passes, so saving or publishing it needs the same permissions
(api/flows.py asks this module which steps do that).
"""

from ..channels.templating import template_roots

# Template roots that say nothing about a contact; every other root does (contact, event, personal links).
NOT_PERSONAL = {"shop", "flow", "message"}


def steps_sending_contact_data(definition) -> dict[str, str]:
    """Step id → why it sends contact data out, for every such step of a (possibly unchecked) draft."""
    steps = definition.get("steps") if isinstance(definition, dict) else None
    found = {}
    for step_id, step in steps.items() if isinstance(steps, dict) else ():
        if not isinstance(step, dict):
            continue
        if step.get("type") == "webhook":
            found[str(step_id)] = "a webhook posts the contact's email and user id"
        elif step.get("type") == "notify_staff":
            personal = sorted(set().union(*(_roots(step.get(key)) for key in ("subject", "body"))) - NOT_PERSONAL)
            if personal:
                found[str(step_id)] = f"its text uses {', '.join(personal)}"
    return found


def _roots(source) -> set[str]:
    if not isinstance(source, str):
        return set()
    try:
        return template_roots(source)
    except Exception:  # unreadable (publishing refuses it anyway): count it as reading the contact
        return {"contact"}

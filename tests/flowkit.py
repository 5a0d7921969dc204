"""Small builders for flow definitions used across the tests."""


def mjml(body: str) -> str:
    return f"<mjml><mj-body><mj-section><mj-column><mj-text>{body}</mj-text></mj-column></mj-section></mj-body></mjml>"


def email(subject: str, body: str = "Hello {{ contact.first_name }}", next=None, **extra) -> dict:
    return {"type": "send_email", "subject": subject, "mjml": mjml(body), "next": next, **extra}


def chain(trigger_event: str, *steps: tuple[str, dict], **top) -> dict:
    """A linear flow: each step's `next` is the following one (unless it sets its own)."""
    ids = [step_id for step_id, _ in steps]
    built = {}
    for index, (step_id, step) in enumerate(steps):
        step = dict(step)
        if "next" in step and step["next"] == "...":
            step["next"] = ids[index + 1] if index + 1 < len(ids) else None
        built[step_id] = step
    definition = {"trigger": {"event": trigger_event}, "start": ids[0], "steps": built}
    definition.update(top)
    return definition


def nxt(step: dict) -> dict:
    """Mark a step to continue with the following one in `chain`."""
    return {**step, "next": "..."}

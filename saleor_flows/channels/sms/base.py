"""The interface every SMS backend implements, shaped like Django's ``BaseEmailBackend``."""

from ...conf import flows_setting


class SmsError(Exception):
    """A send the provider did not accept.

    ``retryable`` tells the engine whether trying again later can help (a
    timeout, a 5xx, throttling) or not (an invalid number, bad credentials,
    a recipient who texted STOP): the runner retries the first kind with
    backoff and fails the step at once on the second. ``code`` is the
    provider's own error code, kept for the trail. ``suppress`` is a
    suppression reason when the answer proves the number must not be texted
    again ("sms_stop": the person opted out at the provider; "hard_bounce": the
    number does not exist); the engine suppresses it at once, across flows.
    """

    def __init__(self, message: str, *, retryable: bool, code: str = "", status: int | None = None,
                 suppress: str = ""):
        super().__init__(message)
        self.retryable, self.code, self.status, self.suppress = retryable, str(code or ""), status, suppress


class BaseSmsBackend:
    """Send ``SmsMessage`` objects; a provider backend overrides ``send_messages``.

    With ``fail_silently`` a backend swallows its own errors and reports them
    only through the returned count, as Django's mail backends do.
    """

    def __init__(self, fail_silently: bool = False, **kwargs):
        self.fail_silently = fail_silently

    def send_messages(self, messages) -> int:
        """Send ``messages``; return how many were sent."""
        raise NotImplementedError("subclasses of BaseSmsBackend must override send_messages()")


class ProviderBackend(BaseSmsBackend):
    """A provider's HTTP API: one request per message, the provider's id kept on the message.

    Credentials come from the ``SMS_PROVIDER`` setting (the plugin fills it
    from its configuration) unless given as keyword arguments.
    """

    required: tuple[str, ...] = ()

    def __init__(self, fail_silently: bool = False, **config):
        super().__init__(fail_silently=fail_silently)
        self.config = {**(flows_setting("SMS_PROVIDER") or {}), **config}
        missing = [key for key in self.required if not self.config.get(key)]
        if missing:
            raise SmsError(f"{type(self).__module__}: SMS_PROVIDER lacks {', '.join(missing)}", retryable=False)

    def send_messages(self, messages) -> int:
        sent = 0
        for message in messages:
            try:
                message.provider_message_id = self.send(message, sender=message.from_ or flows_setting("SMS_FROM"))
            except SmsError:
                if not self.fail_silently:
                    raise
                continue
            sent += 1
        return sent

    def send(self, message, *, sender: str) -> str:
        """Send one message; return the provider's id for it or raise ``SmsError``."""
        raise NotImplementedError

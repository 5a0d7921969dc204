"""The interface every SMS backend implements, shaped like Django's ``BaseEmailBackend``."""


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

"""Phone numbers as E.164 (``+4930123456``): the one form we store, compare and hand to SMS providers.

``phonenumbers`` is imported from the ``phonenumberslite`` distribution (the
same module without geocoding data), which is what Saleor installs; never
depend on the ``phonenumbers`` distribution, the two would overwrite each other.
"""

import phonenumbers


def to_e164(raw: str, region: str | None = None) -> str:
    """``raw`` as E.164, or ValueError saying what is wrong with it.

    A number without a leading ``+`` needs ``region`` (ISO 3166 code, e.g. "DE").
    """
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("a phone number is required")
    try:
        number = phonenumbers.parse(raw, (region or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise ValueError(f"{raw!r} has no country code: write it as +<country code><number>") from None
        raise ValueError(f"{raw!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{raw!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

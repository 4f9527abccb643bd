"""E.164 phone numbers: validation for the REST API and masking for logs."""

import re

_E164 = re.compile(r"\+[1-9]\d{1,14}")


def is_e164(number: str | None) -> bool:
    """Whether ``number`` is a full E.164 number (``+`` then 2-15 digits, no leading 0)."""
    return bool(number) and _E164.fullmatch(number) is not None


def mask(number: str | None) -> str:
    """Hide the middle of a phone number so logs never carry a whole one.

    ``+14155550123`` becomes ``+1415***0123``. Anything that is not E.164 (a SIP
    URI, "anonymous", a client name) is reduced to its length, since it may hold
    a number in a shape we do not know.
    """
    if not number:
        return "(none)"
    if is_e164(number) and len(number) >= 9:
        return f"{number[:5]}***{number[-4:]}"
    return f"<{len(number)} chars>"

"""Phone numbers: the forms people write them in turned into E.164, and masking for logs."""

import re

# How people space a number out: any space, a hyphen or typographic dash, a dot, a bracket.
_SEPARATORS = re.compile(r"[\s.()\-\u2010-\u2015]")
# "+44 (0)20 7946 0018": the bracketed 0 is dialled inside the country only, never after +44.
_TRUNK_ZERO = re.compile(r"\(\s*0\s*\)")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
# Fewer digits cannot be a number with its country code: the shortest in use (small islands)
# have 7.
MIN_DIGITS = 7
MAX_DIGITS = 15  # E.164's limit, country code included.
EXAMPLE = "+1 415 555 0123"


class PhoneNumberError(ValueError):
    """Text that cannot be a phone number; the message names where it came from and why."""


def e164(text: str, *, what: str) -> str:
    """The E.164 form of a number as people write it; raises PhoneNumberError saying why not.

    Accepted: ``+`` (or ``00``, the international prefix most countries dial) then the
    country code and number, spaced with spaces, dashes, dots or brackets, e.g.
    "+1 (415) 555-0123", "0044 20 7946 0018", "+44 (0)20 7946 0018" (the bracketed
    trunk 0 is dropped). Refused: a number without its country code ("415 555 0123",
    or behind North America's prefix 011), since no rule can tell its country, and
    anything with letters or other signs (extensions, "1-800-FLOWERS"). ``what``
    names the number in the message, e.g. "--to" or "TRANSFER_NUMBER".
    """
    compact = _SEPARATORS.sub("", _TRUNK_ZERO.sub("", text))
    if not compact:
        raise PhoneNumberError(f"{what} is empty: give a number like {EXAMPLE}")
    stray = next((char for char in compact if char not in "+0123456789"), None)
    if stray is not None:
        raise PhoneNumberError(
            f"{what} is not a phone number: {stray!r} is not a digit, space, dash, dot or bracket"
        )
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if "+" in compact[1:]:
        raise PhoneNumberError(f"{what} is not a phone number: '+' may only come first")
    if not compact.startswith("+"):
        raise PhoneNumberError(
            f"{what} has no country code: start it with + and the country code, e.g. {EXAMPLE}"
        )
    digits = len(compact) - 1
    if compact[1:2] == "0":
        raise PhoneNumberError(f"{what} has no country code: country codes never start with 0")
    if digits < MIN_DIGITS:
        raise PhoneNumberError(
            f"{what} is too short: {digits} digits, a number with its country code has at "
            f"least {MIN_DIGITS}"
        )
    if digits > MAX_DIGITS:
        raise PhoneNumberError(
            f"{what} is too long: {digits} digits, a number with its country code has at "
            f"most {MAX_DIGITS}"
        )
    return compact


def is_e164(number: str | None) -> bool:
    """Whether ``number`` is already a full E.164 number (``+`` then 2-15 digits, no leading 0)."""
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

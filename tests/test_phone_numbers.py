"""The one phone number rule: the forms people write numbers in become E.164; the rest is named."""

import pytest

from bot_runtime.phone_numbers import PhoneNumberError, e164, mask


@pytest.mark.parametrize(
    ("written", "number"),
    [
        ("+14155550123", "+14155550123"),
        ("+1 (415) 555-0123", "+14155550123"),
        ("+1.415.555.0123", "+14155550123"),
        ("  +1 415 555 0123  ", "+14155550123"),
        ("+1\u00a0415\u2011555\u20130123", "+14155550123"),  # No-break space, typographic dashes.
        ("0044 20 7946 0018", "+442079460018"),  # 00, the international prefix.
        ("+44 (0)20 7946 0018", "+442079460018"),  # The bracketed trunk 0 is never dialled.
        ("+49 (0) 30 901820", "+4930901820"),
        ("(+33) 1 23 45 67 89", "+33123456789"),
        ("+683 4002", "+6834002"),  # As short as numbers get.
        ("+86 138 0013 8000", "+8613800138000"),
    ],
)
def test_the_ways_people_write_a_number_become_e164(written, number):
    assert e164(written, what="--to") == number


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("", "--to is empty: give a number like +1 415 555 0123"),
        ("415 555 0123", "--to has no country code: start it with + and the country code"),
        ("14155550123", "--to has no country code"),  # A spreadsheet ate the +.
        ("011 44 20 7946 0018", "--to has no country code"),  # North America's prefix: ambiguous.
        ("+0 415 555 0123", "--to has no country code: country codes never start with 0"),
        ("+1 415 555 0123 ext 5", "--to is not a phone number: 'e' is not a digit, space"),
        ("1-800-FLOWERS", "--to is not a phone number: 'F' is not a digit"),
        ("+1/415/555/0123", "--to is not a phone number: '/' is not a digit"),
        ("+1 415 ٥٥٥ 0123", "--to is not a phone number: '٥' is not a digit"),  # Arabic-Indic.
        ("1+415 555 0123", "--to is not a phone number: '+' may only come first"),
        ("+1 23", "--to is too short: 3 digits, a number with its country code has at least 7"),
        ("+1 415 555 0123 45678", "--to is too long: 16 digits"),
    ],
)
def test_what_cannot_be_a_number_is_refused_saying_why(written, message):
    with pytest.raises(PhoneNumberError) as error:
        e164(written, what="--to")
    assert str(error.value).startswith(message)


def test_masking_hides_the_middle_of_a_number_and_all_of_anything_else():
    assert mask("+14155550123") == "+1415***0123"
    assert mask("client:alice") == "<12 chars>"
    assert mask(None) == "(none)"

"""Phone numbers: parsed with libphonenumber and kept in E.164 (+77001234567)."""

from __future__ import annotations

import phonenumbers


class PhoneError(ValueError):
    pass


def to_e164(raw: str, *, default_region: str) -> str:
    """Normalise a phone number; Kazakh ``8XXXXXXXXXX`` and ``+7…`` both give +7XXXXXXXXXX."""
    text = raw.strip()
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"{raw!r} is not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise PhoneError(f"{raw!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def to_kz_national(e164: str) -> str:
    """+77001234567 -> 87001234567, the form Kazakh APIs show."""
    if e164.startswith("+7") and len(e164) == 12:
        return "8" + e164[2:]
    return e164

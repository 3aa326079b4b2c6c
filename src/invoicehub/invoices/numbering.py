"""Invoice number patterns such as ``INV-{YYYY}-{seq:04}``.

Tokens: {YYYY} year, {YY} two-digit year, {MM} month, {seq} or {seq:0N} the sequence.
The sequence restarts in each period the pattern names (a year with {YYYY}/{YY}, a month
with {MM} too), so INV-2026-0001 follows INV-2025-0831.
"""

from __future__ import annotations

import datetime as dt
import re

from invoicehub.errors import ValidationFailed

_TOKEN = re.compile(r"\{(YYYY|YY|MM|seq(?::0(\d))?)\}")
_ANY_BRACE = re.compile(r"\{[^}]*\}")


def validate_number_pattern(pattern: str) -> None:
    if len(pattern) > 100:
        raise ValidationFailed(
            "invoice number pattern is longer than 100 characters", param="invoice_number_pattern"
        )
    tokens = [m.group(1) for m in _TOKEN.finditer(pattern)]
    unknown = [m.group(0) for m in _ANY_BRACE.finditer(pattern) if not _TOKEN.fullmatch(m.group(0))]
    if unknown:
        raise ValidationFailed(
            f"invoice number pattern has unknown token {unknown[0]}; use {{YYYY}}, {{YY}}, {{MM}}, {{seq}} or {{seq:04}}",
            param="invoice_number_pattern",
        )
    if sum(1 for t in tokens if t.startswith("seq")) != 1:
        raise ValidationFailed(
            "invoice number pattern needs exactly one {seq} token", param="invoice_number_pattern"
        )


def period_of(pattern: str, on: dt.date) -> str:
    """The period the sequence counts in: "" (never restarts), "2026" or "2026-11"."""
    has_year = "{YYYY}" in pattern or "{YY}" in pattern
    if "{MM}" in pattern:
        return f"{on.year:04d}-{on.month:02d}"
    return f"{on.year:04d}" if has_year else ""


def format_number(pattern: str, on: dt.date, seq: int) -> str:
    def replace(match: re.Match[str]) -> str:
        token = match.group(1)
        if token == "YYYY":  # noqa: S105 - a pattern token, not a secret
            return f"{on.year:04d}"
        if token == "YY":  # noqa: S105
            return f"{on.year % 100:02d}"
        if token == "MM":  # noqa: S105
            return f"{on.month:02d}"
        width = int(match.group(2) or 0)
        return str(seq).zfill(width)

    return _TOKEN.sub(replace, pattern)

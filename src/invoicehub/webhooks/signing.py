"""Standard Webhooks signatures (webhook-id, webhook-timestamp, webhook-signature), made
with the ``standardwebhooks`` library. During a secret rotation both secrets sign, so a
receiver holding either verifies."""

from __future__ import annotations

import base64
import datetime as dt
import secrets

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def signature_headers(
    *, message_id: str, timestamp: dt.datetime, payload: str, secrets_: list[str]
) -> dict[str, str]:
    signatures = [Webhook(secret).sign(message_id, timestamp, payload) for secret in secrets_]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(signatures),
    }

"""A local stand-in for Stripe's API on 127.0.0.1, and Stripe's signed webhook events.

``FakeStripe`` is a threaded stdlib HTTP server that answers the two calls invoicehub makes
through the official ``stripe`` library:

* ``POST /v1/checkout/sessions`` -> a ``checkout.session`` (``cs_test_…``) for the line items;
* ``POST /v1/refunds`` -> a ``refund`` (``re_test_…``), or a Stripe error when told to fail.

Every request is recorded (method, path, form params, headers with ``Authorization``) so tests
can prove the library talked to the fake and to nothing else. The event helpers build the
JSON Stripe posts to a webhook endpoint and sign it the way Stripe does
(``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.payload">``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

CHECKOUT_HOST = "https://checkout.stripe.test"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]  # the form body, flat: "line_items[0][price_data][unit_amount]"
    headers: dict[str, str]  # lower-case names

    def sub(self, prefix: str) -> dict[str, str]:
        """The params under ``prefix[...]``, e.g. sub("metadata") -> {"invoicehub_…": …}."""
        return sub_params(self.params, prefix)


def sub_params(params: dict[str, str], prefix: str) -> dict[str, str]:
    """One level of Stripe's bracketed form keys: ``metadata[key]=value`` -> {key: value}."""
    start = f"{prefix}["
    return {
        key[len(start) : -1]: value
        for key, value in params.items()
        if key.startswith(start) and key.endswith("]") and "][" not in key[len(start) :]
    }


@dataclass(frozen=True)
class StripeErrorReply:
    """What Stripe answers when it refuses a call (e.g. 402 card_error, 400 invalid_request)."""

    status: int = 402
    type: str = "card_error"
    code: str = "charge_disputed"
    message: str = "The charge is disputed and cannot be refunded."

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "type": self.type,
                "code": self.code,
                "message": self.message,
                "request_log_url": "https://dashboard.stripe.test/logs/req_test",
            }
        }


@dataclass
class FakeStripe:
    """``with FakeStripe() as fake: fake.url`` -> ``http://127.0.0.1:<port>``."""

    refund_error: StripeErrorReply | None = None
    checkout_error: StripeErrorReply | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeStripe:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.sessions.clear()
            self.refunds.clear()
            self.refund_error = None
            self.checkout_error = None

    # ------------------------------------------------------------ what happened

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def completed_session(self, session_id: str, **changes: Any) -> dict[str, Any]:
        """The stored session as Stripe sends it once the customer has paid."""
        with self._lock:
            obj = json.loads(json.dumps(self.sessions[session_id]))
        obj.update(payment_status="paid", status="complete")
        obj.update(changes)
        return obj

    # ------------------------------------------------------------ the API

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _create_session(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if self.checkout_error is not None:
            return self.checkout_error.status, self.checkout_error.body()
        if params.get("mode") != "payment":
            return 400, _invalid("mode", "mode must be payment")
        amount_total, currency, index = 0, None, 0
        while f"line_items[{index}][quantity]" in params:
            prefix = f"line_items[{index}][price_data]"
            try:
                quantity = int(params[f"line_items[{index}][quantity]"])
                unit_amount = int(params[f"{prefix}[unit_amount]"])
            except (KeyError, ValueError):
                return 400, _invalid(f"{prefix}[unit_amount]", "unit_amount must be an integer")
            if unit_amount < 0 or quantity < 1:
                return 400, _invalid(f"{prefix}[unit_amount]", "invalid amount")
            amount_total += quantity * unit_amount
            currency = params.get(f"{prefix}[currency]")
            index += 1
        if index == 0 or not currency:
            return 400, _invalid("line_items", "line_items with price_data are required")
        token = secrets.token_hex(12)
        session_id = f"cs_test_{token}"
        metadata = sub_params(params, "metadata")
        obj: dict[str, Any] = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "amount_subtotal": amount_total,
            "amount_total": amount_total,
            "currency": currency,
            "client_reference_id": params.get("client_reference_id"),
            "customer_email": params.get("customer_email"),
            "metadata": metadata,
            "payment_intent": f"pi_test_{secrets.token_hex(12)}",
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "url": f"{CHECKOUT_HOST}/c/pay/{session_id}",
            "livemode": False,
            "created": int(time.time()),
        }
        with self._lock:
            self.sessions[session_id] = obj
        return 200, obj

    def _create_refund(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if self.refund_error is not None:
            return self.refund_error.status, self.refund_error.body()
        intent = params.get("payment_intent")
        if not intent or not intent.startswith("pi_"):
            return 400, _invalid("payment_intent", "a payment_intent is required")
        try:
            amount = int(params["amount"])
        except (KeyError, ValueError):
            return 400, _invalid("amount", "amount must be an integer")
        if amount <= 0:
            return 400, _invalid("amount", "amount must be positive")
        refund_id = f"re_test_{secrets.token_hex(12)}"
        with self._lock:
            session = next(
                (s for s in self.sessions.values() if s["payment_intent"] == intent), None
            )
            currency = session["currency"] if session else "usd"
            if session is not None:  # like Stripe: never more than the charge has left
                left = session["amount_total"] - sum(
                    r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent
                )
                if amount > left:
                    return 400, _invalid(
                        "amount",
                        f"Refund amount ({amount}) is greater than unrefunded amount on"
                        f" charge ({left})",
                    )
        obj = {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "currency": currency,
            "payment_intent": intent,
            "status": "succeeded",
            "created": int(time.time()),
        }
        with self._lock:
            self.refunds[refund_id] = obj
        return 200, obj


def _invalid(param: str, message: str) -> dict[str, Any]:
    return {"error": {"type": "invalid_request_error", "param": param, "message": message}}


class _Handler(BaseHTTPRequestHandler):
    owner: FakeStripe
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", f"req_test_{secrets.token_hex(6)}")
        if status >= 400:
            self.send_header("Stripe-Should-Retry", "false")
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        params = dict(parse_qsl(raw.decode() or split.query, keep_blank_values=True))
        request = RecordedRequest(
            method=self.command,
            path=split.path,
            params=params,
            headers={k.lower(): v for k, v in self.headers.items()},
        )
        self.owner._record(request)
        if request.headers.get("authorization", "") != "Bearer sk_test_fake":
            self._answer(
                401,
                {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}},
            )
            return
        if (self.command, split.path) == ("POST", "/v1/checkout/sessions"):
            self._answer(*self.owner._create_session(params))
        elif (self.command, split.path) == ("POST", "/v1/refunds"):
            self._answer(*self.owner._create_refund(params))
        else:
            self._answer(404, _invalid("path", f"Unrecognized request URL ({split.path})"))

    do_GET = _handle
    do_POST = _handle
    do_DELETE = _handle


# ------------------------------------------------------------------ webhook events


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header Stripe sends for ``payload`` at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def signed(
    event: dict[str, Any], secret: str, *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of Stripe's POST for ``event``."""
    payload = json.dumps(event, separators=(",", ":")).encode()
    when = int(time.time()) if timestamp is None else timestamp
    return payload, {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": sign(payload, secret, when),
    }


def invoice_metadata(invoice_id: str, organization_internal_id: int) -> dict[str, str]:
    """What invoicehub puts on its Checkout Sessions and PaymentIntents."""
    return {
        "invoicehub_invoice_id": invoice_id,
        "invoicehub_organization_id": str(organization_internal_id),
    }


def event(type_: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_test_{secrets.token_hex(12)}",
        "object": "event",
        "api_version": "2025-09-30.clover",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
        "data": {"object": obj},
    }


def checkout_session_completed(
    *,
    metadata: dict[str, str],
    amount_total: int,
    currency: str,
    payment_intent: str,
    session_id: str | None = None,
    payment_status: str = "paid",
    event_id: str | None = None,
) -> dict[str, Any]:
    session_id = session_id or f"cs_test_{secrets.token_hex(12)}"
    return event(
        "checkout.session.completed",
        {
            "id": session_id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "complete",
            "payment_status": payment_status,
            "amount_subtotal": amount_total,
            "amount_total": amount_total,
            "currency": currency,
            "client_reference_id": metadata.get("invoicehub_invoice_id"),
            "metadata": dict(metadata),
            "payment_intent": payment_intent,
            "url": None,
            "livemode": False,
        },
        event_id=event_id,
    )


def payment_intent_succeeded(
    *,
    metadata: dict[str, str],
    amount: int,
    currency: str,
    payment_intent: str,
    event_id: str | None = None,
) -> dict[str, Any]:
    return event(
        "payment_intent.succeeded",
        {
            "id": payment_intent,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": amount,
            "currency": currency,
            "status": "succeeded",
            "metadata": dict(metadata),
            "latest_charge": f"ch_test_{secrets.token_hex(12)}",
            "livemode": False,
        },
        event_id=event_id,
    )


def charge_refunded(
    *,
    metadata: dict[str, str],
    amount: int,
    amount_refunded: int,
    currency: str,
    payment_intent: str,
    event_id: str | None = None,
) -> dict[str, Any]:
    """``amount_refunded`` is cumulative, as on Stripe's Charge object."""
    return event(
        "charge.refunded",
        {
            "id": f"ch_test_{secrets.token_hex(12)}",
            "object": "charge",
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": amount_refunded,
            "refunded": amount_refunded >= amount,
            "currency": currency,
            "paid": True,
            "status": "succeeded",
            "payment_intent": payment_intent,
            "metadata": dict(metadata),
            "livemode": False,
        },
        event_id=event_id,
    )


def invoice_payment_failed(
    *,
    metadata: dict[str, str],
    amount_due: int,
    currency: str,
    payment_intent: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    return event(
        "invoice.payment_failed",
        {
            "id": f"in_test_{secrets.token_hex(12)}",
            "object": "invoice",
            "amount_due": amount_due,
            "amount_paid": 0,
            "attempt_count": 1,
            "attempted": True,
            "currency": currency,
            "status": "open",
            "payment_intent": payment_intent,
            "metadata": dict(metadata),
            "livemode": False,
        },
        event_id=event_id,
    )

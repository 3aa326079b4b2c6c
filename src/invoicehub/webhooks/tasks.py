"""The webhook sender: leases due deliveries, signs and sends them, records each attempt.

Tasks take ids and reload, and are safe to run twice and in many processes at once: a
delivery is leased (``locked_until``) for longer than an attempt may take, and its outcome
is written only while the lease is still ours.

Retry schedule after a failed attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (eight
attempts in all, the first at once), each with ±10% jitter, or later when the receiver
asks so with Retry-After. 2xx is success; 3xx is a failure and is never followed; 410
disables the endpoint; an endpoint that has failed without a success for 5 days is disabled.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import anyio.to_thread
import httpx
from sqlalchemy.orm import Session

from invoicehub.api.runtime import Runtime
from invoicehub.events.service import record_event
from invoicehub.kit import clock
from invoicehub.models import WebhookEndpoint
from invoicehub.webhooks import repository, service
from invoicehub.webhooks.signing import signature_headers
from invoicehub.webhooks.ssrf import (
    DestinationRefused,
    Resolver,
    resolve_destination,
    system_resolver,
)

log = logging.getLogger(__name__)

RETRY_DELAYS = (
    dt.timedelta(seconds=5),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=5),
    dt.timedelta(hours=10),
    dt.timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
RESPONSE_KEEP_BYTES = 2048
# A Retry-After beyond this is not honoured as such; the normal schedule applies.
MAX_RETRY_AFTER = dt.timedelta(hours=24)
USER_AGENT = "invoicehub-webhooks/1"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """Everything one attempt needs, read in the claiming transaction."""

    delivery_id: int
    token: str
    url: str
    message_id: str
    payload: str
    secrets: list[str]
    attempt_number: int


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    latency_ms: int
    body: str | None
    error: str | None
    retry_after: dt.timedelta | None


def event_payload(
    event_public_id: str, event_type: str, created_at: dt.datetime, data: dict[str, object]
) -> str:
    return json.dumps(
        {
            "id": event_public_id,
            "object": "event",
            "type": event_type,
            "timestamp": created_at.isoformat().replace("+00:00", "Z"),
            "data": data,
        },
        separators=(",", ":"),
    )


def next_delay(
    attempt_number: int, retry_after: dt.timedelta | None, rng: random.Random
) -> dt.timedelta | None:
    """When to try again after failed attempt ``attempt_number`` (1-based); None: give up."""
    if attempt_number >= MAX_ATTEMPTS:
        return None
    base = RETRY_DELAYS[attempt_number - 1]
    delay = base * rng.uniform(0.9, 1.1)
    if retry_after is not None and retry_after <= MAX_RETRY_AFTER:
        delay = max(delay, retry_after)
    return delay


def _parse_retry_after(value: str | None, now: dt.datetime) -> dt.timedelta | None:
    if not value:
        return None
    if value.strip().isdigit():
        return dt.timedelta(seconds=int(value.strip()))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(dt.timedelta(0), when - now)


class WebhookSender:
    """Sends due deliveries with bounded concurrency. One endpoint holds at most
    ``per_endpoint`` slots, so a slow or dead endpoint never delays the others."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        resolver: Resolver = system_resolver,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.resolver = resolver
        self.rng = rng or random.Random()
        self.client = httpx.AsyncClient(transport=transport, follow_redirects=False, verify=True)
        self.in_flight: Counter[int] = Counter()  # endpoint id -> deliveries being sent
        self.tasks: set[asyncio.Task[None]] = set()
        self.capacity = self.settings.webhook_max_concurrency
        # Set whenever an attempt finishes: a worker waiting for work wakes at once to claim
        # more for that endpoint instead of sleeping out its poll interval.
        self.slot_freed = asyncio.Event()
        self.lease = dt.timedelta(seconds=self.settings.webhook_timeout_seconds * 2 + 30)

    async def aclose(self) -> None:
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.client.aclose()

    async def dispatch_due(self) -> int:
        """Claims what is due (up to free capacity) and starts sending it; returns how many."""
        free = self.capacity - len(self.tasks)
        if free <= 0:
            return 0
        outgoing = await anyio.to_thread.run_sync(self._claim, free, dict(self.in_flight))
        for item, endpoint_id in outgoing:
            self.in_flight[endpoint_id] += 1
            task = asyncio.create_task(self._send_and_record(item, endpoint_id))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return len(outgoing)

    async def drain(self) -> None:
        """Waits for every attempt already started (tests, shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    def _claim(self, limit: int, in_flight: dict[int, int]) -> list[tuple[Outgoing, int]]:
        now = clock.utcnow()
        token = secrets.token_hex(16)
        with self.runtime.database.session(write=True) as session:
            ids = repository.claim_due(
                session,
                now=now,
                lease_until=now + self.lease,
                token=token,
                limit=limit,
                per_endpoint=self.settings.webhook_per_endpoint_batch,
                in_flight=in_flight,
            )
            rows = repository.load_for_sending(session, ids) if ids else []
            session.commit()
        return [
            (
                Outgoing(
                    delivery_id=delivery.id,
                    token=token,
                    url=endpoint.url,
                    message_id=event.public_id,
                    payload=event_payload(
                        event.public_id, event.type, event.created_at, event.data
                    ),
                    secrets=service.signing_secrets(endpoint, now),
                    attempt_number=delivery.attempt_count + 1,
                ),
                endpoint.id,
            )
            for delivery, endpoint, event in rows
        ]

    async def _send_and_record(self, item: Outgoing, endpoint_id: int) -> None:
        try:
            outcome = await self._send(item)
            await anyio.to_thread.run_sync(self._record, item, outcome)
        except Exception:  # a bug must not kill the sender; the lease will run out and retry
            log.exception("webhook delivery %s failed unexpectedly", item.delivery_id)
        finally:
            self.slot_freed.set()
            self.in_flight[endpoint_id] -= 1
            if self.in_flight[endpoint_id] <= 0:
                del self.in_flight[endpoint_id]

    async def _send(self, item: Outgoing) -> Outcome:
        started = time.monotonic()

        def elapsed() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            destination = await anyio.to_thread.run_sync(
                lambda: resolve_destination(
                    item.url,
                    allow_private=self.settings.webhook_allow_private,
                    resolver=self.resolver,
                )
            )
        except DestinationRefused as exc:
            return Outcome(None, elapsed(), None, f"refused destination: {exc}", None)
        headers = {
            **signature_headers(
                message_id=item.message_id,
                timestamp=clock.utcnow(),
                payload=item.payload,
                secrets_=item.secrets,
            ),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "host": destination.host_header,
        }
        extensions = {"sni_hostname": destination.host} if destination.scheme == "https" else {}
        try:
            async with asyncio.timeout(self.settings.webhook_timeout_seconds):
                request = self.client.build_request(
                    "POST",
                    destination.connect_url(),
                    content=item.payload.encode(),
                    headers=headers,
                    extensions=extensions,
                )
                response = await self.client.send(request, stream=True)
                try:
                    body = await _read_prefix(response, RESPONSE_KEEP_BYTES)
                finally:
                    await response.aclose()
        except TimeoutError:
            return Outcome(
                None,
                elapsed(),
                None,
                f"timed out after {self.settings.webhook_timeout_seconds:g}s",
                None,
            )
        except httpx.HTTPError as exc:
            return Outcome(None, elapsed(), None, f"{type(exc).__name__}: {exc}"[:500], None)
        return Outcome(
            response.status_code,
            elapsed(),
            body.decode("utf-8", errors="replace"),
            None,
            _parse_retry_after(response.headers.get("retry-after"), clock.utcnow()),
        )

    def _record(self, item: Outgoing, outcome: Outcome) -> None:
        now = clock.utcnow()
        ok = outcome.status_code is not None and 200 <= outcome.status_code < 300
        gone = outcome.status_code == 410
        error = outcome.error
        if not ok and error is None and outcome.status_code is not None:
            error = f"HTTP {outcome.status_code}" + (
                " (redirects are not followed)" if 300 <= outcome.status_code < 400 else ""
            )
        delay = (
            None if ok or gone else next_delay(item.attempt_number, outcome.retry_after, self.rng)
        )
        if ok:
            values = {"status": "succeeded", "completed_at": now, "next_attempt_at": None}
        elif delay is None:
            values = {"status": "failed", "completed_at": now, "next_attempt_at": None}
        else:
            values = {"status": "pending", "next_attempt_at": now + delay}
        values.update(
            attempt_count=item.attempt_number,
            last_status_code=outcome.status_code,
            last_error=error,
            updated_at=now,
        )
        with self.runtime.database.session(write=True) as session:
            finished = repository.finish_attempt(
                session, item.delivery_id, token=item.token, values=values
            )
            if (
                finished is None
            ):  # our lease ran out and another worker took over: its result counts
                session.rollback()
                return
            organization_id, endpoint_id = finished
            repository.add_attempt(
                session,
                {
                    "delivery_id": item.delivery_id,
                    "attempt_number": item.attempt_number,
                    "attempted_at": now,
                    "status_code": outcome.status_code,
                    "latency_ms": outcome.latency_ms,
                    "response_body": outcome.body,
                    "error": error,
                },
            )
            if ok:
                # The common case, without reading the endpoint: one UPDATE that usually
                # matches nothing.
                repository.clear_failing_since(session, endpoint_id)
            else:
                self._update_endpoint_health_after_failure(
                    session, organization_id, endpoint_id, gone=gone, now=now
                )
            session.commit()

    def _update_endpoint_health_after_failure(
        self,
        session: Session,
        organization_id: int,
        endpoint_id: int,
        *,
        gone: bool,
        now: dt.datetime,
    ) -> None:
        endpoint = repository.get_endpoint_by_internal_id(session, organization_id, endpoint_id)
        if endpoint is None:
            return
        failing_since = endpoint.failing_since or now
        limit = dt.timedelta(days=self.settings.webhook_disable_after_failing_days)
        reason = None
        if gone:
            reason = "the endpoint answered 410 Gone"
        elif now - failing_since >= limit:
            reason = f"every delivery failed for {self.settings.webhook_disable_after_failing_days:g} days"
        if reason is None:
            if endpoint.failing_since is None:
                repository.update_endpoint(session, endpoint.id, {"failing_since": now})
            return
        disabled = repository.update_endpoint(
            session,
            endpoint.id,
            {
                "enabled": False,
                "disabled_reason": reason,
                "failing_since": failing_since,
                "updated_at": now,
            },
            only_if=[WebhookEndpoint.enabled.is_(True)],
        )
        if disabled is not None:
            record_event(
                session,
                organization_id=organization_id,
                type="webhook_endpoint.disabled",
                object_type="webhook_endpoint",
                object_id=disabled.public_id,
                data={
                    "object": service.present_endpoint(disabled).model_dump(mode="json"),
                    "reason": reason,
                },
            )


async def _read_prefix(response: httpx.Response, limit: int) -> bytes:
    kept = bytearray()
    async for chunk in response.aiter_raw():
        kept.extend(chunk[: limit - len(kept)])
        if len(kept) >= limit:
            break
    return bytes(kept)


SenderFactory = Callable[[Runtime], WebhookSender]

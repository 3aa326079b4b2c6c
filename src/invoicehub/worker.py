"""The background worker: sends webhooks and runs periodic housekeeping.

It runs inside ``invoicehub serve`` (one per API process) and as ``invoicehub worker``
processes for deployments that scale out; any number may run against one database, since
every job claims its rows atomically.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio.to_thread
from sqlalchemy.orm import Session

from invoicehub.api.runtime import Runtime
from invoicehub.idempotency.service import purge_expired_keys
from invoicehub.invoices.service import (
    decline_stale_attempts,
    expire_due_invoices,
    mark_overdue_invoices,
)
from invoicehub.users.service import purge_ended_sessions
from invoicehub.webhooks.service import purge_old_events
from invoicehub.webhooks.tasks import WebhookSender

log = logging.getLogger(__name__)


@dataclass
class PeriodicJob:
    name: str
    every_seconds: float
    run: Callable[[Session], object]
    last_run: float = field(default=float("-inf"))


def housekeeping_jobs(runtime: Runtime) -> list[PeriodicJob]:
    settings = runtime.settings
    return [
        PeriodicJob("expire invoices", 15, lambda s: expire_due_invoices(s)),
        PeriodicJob("mark overdue invoices", 60, lambda s: mark_overdue_invoices(s)),
        PeriodicJob(
            "decline abandoned payment attempts",
            60,
            lambda s: decline_stale_attempts(
                s, older_than=dt.timedelta(minutes=settings.payment_attempt_timeout_minutes)
            ),
        ),
        PeriodicJob(
            "purge idempotency keys",
            3600,
            lambda s: purge_expired_keys(
                s, ttl=dt.timedelta(hours=settings.idempotency_key_ttl_hours)
            ),
        ),
        PeriodicJob(
            "purge old events",
            3600,
            lambda s: purge_old_events(
                s, retention=dt.timedelta(days=settings.event_retention_days)
            ),
        ),
        PeriodicJob(
            "purge ended dashboard sessions",
            3600,
            lambda s: purge_ended_sessions(s, older_than=dt.timedelta(days=1)),
        ),
    ]


class Worker:
    def __init__(self, runtime: Runtime, *, sender: WebhookSender | None = None) -> None:
        self.runtime = runtime
        self.sender = sender or WebhookSender(runtime)
        self.jobs = housekeeping_jobs(runtime)
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        self.stopping.set()

    async def run_forever(self) -> None:
        poll = self.runtime.settings.worker_poll_seconds
        failures = 0
        try:
            while not self.stopping.is_set():
                # Cleared before the claim: an attempt finishing during it still wakes the idle wait.
                self.sender.slot_freed.clear()
                try:
                    started = await self.sender.dispatch_due()
                    await self.run_due_jobs()
                    failures = 0
                except Exception:  # the database may be down for a moment; keep going
                    failures += 1
                    log.exception("worker round failed (%d in a row)", failures)
                    started = 0
                if started == 0:
                    delay = poll if failures == 0 else min(30.0, poll * 2**failures)
                    await self._idle(delay)
                else:
                    await asyncio.sleep(0)  # more may be due right away; yield and claim again
        finally:
            await self.sender.aclose()

    async def _idle(self, delay: float) -> None:
        """Waits for the poll interval, or less: until stopped, or until an attempt in flight
        finishes (its endpoint may have more due that the per-endpoint cap held back)."""
        waits = [
            asyncio.ensure_future(self.stopping.wait()),
            asyncio.ensure_future(self.sender.slot_freed.wait()),
        ]
        try:
            await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()

    async def run_due_jobs(self) -> None:
        now = time.monotonic()
        for job in self.jobs:
            if now - job.last_run >= job.every_seconds:
                job.last_run = now
                await anyio.to_thread.run_sync(self._run_job, job)

    def _run_job(self, job: PeriodicJob) -> None:
        with self.runtime.database.session(write=True) as session:
            try:
                job.run(session)
                session.commit()
            except Exception:
                session.rollback()
                log.exception("periodic job %r failed", job.name)

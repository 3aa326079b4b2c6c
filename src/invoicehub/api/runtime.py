"""What every request needs and every process builds once: settings, database, limiter.
Nothing here is state another process needs; shared state lives in the database or Redis."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from invoicehub.config import Settings
from invoicehub.kit.db import Database, create_db_engine
from invoicehub.kit.ratelimit import KeyRateLimiter

if TYPE_CHECKING:
    from invoicehub.models import Invoice
    from invoicehub.payments.stripe_gateway import StripeGateway


@dataclass(slots=True)
class Runtime:
    settings: Settings
    database: Database
    limiter: KeyRateLimiter
    _api_threads: dict[bool, anyio.CapacityLimiter] = field(default_factory=dict)

    def api_threads(self, *, write: bool) -> anyio.CapacityLimiter:
        """The worker threads the native API's endpoints run on (api.one_hop), a pool for
        reads and one for writes, each ``settings.api_threads`` wide: made on first use,
        inside the event loop."""
        pool = self._api_threads.get(write)
        if pool is None:
            pool = self._api_threads[write] = anyio.CapacityLimiter(self.settings.api_threads)
        return pool

    def checkout_factory(self) -> Callable[[Invoice, str], tuple[str, str]] | None:
        """The configured provider's checkout maker for new payment links (Stripe), if any."""
        if not self.settings.stripe_secret_key:
            return None
        from invoicehub.payments.stripe_gateway import StripeGateway

        return StripeGateway(self.settings).create_checkout

    def stripe_gateway(self) -> StripeGateway | None:
        if not self.settings.stripe_secret_key:
            return None
        from invoicehub.payments.stripe_gateway import StripeGateway

        return StripeGateway(self.settings)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = create_db_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            sqlite_busy_timeout_seconds=settings.sqlite_busy_timeout_seconds,
        )
        return cls(
            settings=settings,
            database=Database(engine),
            limiter=KeyRateLimiter(
                per_minute=settings.rate_limit_per_minute,
                burst_per_second=settings.rate_limit_burst_per_second,
                redis_url=settings.redis_url,
            ),
        )

"""What every request needs and every process builds once: settings, database, limiter.
Nothing here is state another process needs; shared state lives in the database or Redis."""

from __future__ import annotations

from dataclasses import dataclass

from invoicehub.config import Settings
from invoicehub.kit.db import Database, create_db_engine
from invoicehub.kit.ratelimit import KeyRateLimiter


@dataclass(slots=True)
class Runtime:
    settings: Settings
    database: Database
    limiter: KeyRateLimiter

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

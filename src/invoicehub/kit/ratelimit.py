"""Per-key rate limits with the ``limits`` library: a sustained rate per minute and a burst
rate per second, both enforced. In memory by default; in Redis when a URL is configured, so
every API process shares one count."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter, RateLimiter


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # epoch seconds when the minute window frees up
    retry_after: int  # seconds to wait, when not allowed


class KeyRateLimiter:
    def __init__(
        self, *, per_minute: int, burst_per_second: int, redis_url: str | None = None
    ) -> None:
        storage = storage_from_string(redis_url) if redis_url else MemoryStorage()
        if not isinstance(storage, Storage):
            raise ValueError(f"{redis_url!r} is not a synchronous limits storage URL")
        self.storage = storage
        self.limiter: RateLimiter = MovingWindowRateLimiter(self.storage)
        self.sustained = RateLimitItemPerMinute(per_minute)
        self.burst = RateLimitItemPerSecond(burst_per_second)

    def hit(self, key: str) -> RateLimitResult:
        # Each hit is atomic in the storage (a Lua script in Redis), so processes sharing
        # one Redis never together exceed a window.
        burst_ok = self.limiter.hit(self.burst, key)
        allowed = burst_ok and self.limiter.hit(self.sustained, key)
        stats = self.limiter.get_window_stats(self.sustained, key)
        retry_after = 0
        if not allowed:
            refused_by = self.burst if not burst_ok else self.sustained
            reset = self.limiter.get_window_stats(refused_by, key).reset_time
            retry_after = max(1, math.ceil(reset - time.time()))
        return RateLimitResult(
            allowed=allowed,
            limit=self.sustained.amount,
            remaining=max(0, stats.remaining),
            reset_at=math.ceil(stats.reset_time),
            retry_after=retry_after,
        )

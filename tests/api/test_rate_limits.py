"""Per-key rate limits: a sustained limit per minute and a burst limit per second, in memory
or shared through Redis, with X-RateLimit-* headers on every authenticated answer."""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Iterator

import httpx
import limits.storage.memory
import limits.storage.redis
import pytest
import redis
from sqlalchemy import text

import invoicehub.kit.ratelimit
from invoicehub.auth.service import create_api_key
from invoicehub.config import Settings
from invoicehub.kit.db import Database, create_db_engine
from invoicehub.models import Organization
from tests.conftest import LiveServer, OrgKeys, create_org, invoice_body, make_settings

REDIS_URL = "redis://127.0.0.1:6379/15"
STORAGES = ["memory", "redis"]


class LimiterClock:
    """The time the rate limiter sees, frozen and moved by hand so window tests never sleep.

    The ``limits`` storages and invoicehub's limiter read ``time.time()`` through their module's
    ``time`` name; the test server runs in this process, so swapping that name is enough.
    (Redis still expires a window's list by its own clock after the window's length, which
    only matters if the test stalls for a whole window.)
    """

    def __init__(self) -> None:
        # A whole half second: Redis hands timestamps back through Lua's 14-digit tostring,
        # which would round a finer fraction and shift Retry-After and the reset by a second.
        self.now = math.floor(time.time()) + 0.5

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def limiter_clock(monkeypatch: pytest.MonkeyPatch) -> LimiterClock:
    fake = LimiterClock()
    for module in (limits.storage.memory, limits.storage.redis, invoicehub.kit.ratelimit):
        monkeypatch.setattr(module, "time", fake)
    return fake


@pytest.fixture
def redis_keys() -> Iterator[list[int]]:
    """API key ids whose Redis windows are removed after the test."""
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()  # Redis is part of this test run; fail, never skip, when it is missing
    ids: list[int] = []
    try:
        yield ids
    finally:
        for key_id in ids:
            for name in client.scan_iter(match=f"LIMITS:LIMITER/key:{key_id}/*"):
                client.delete(name)
        client.close()


def give_key_a_random_id(settings: Settings, redis_keys: list[int], public_key: str) -> None:
    """The limiter's bucket is ``key:<api_keys.id>`` and every test run starts a new database
    whose ids start at 1, so a shared Redis would otherwise carry counts from an earlier or a
    concurrent run (SQLite and PostgreSQL suites) into this one. No table refers to
    api_keys.id, so the test may move it."""
    new_id = secrets.randbelow(10**9) + 10**9
    engine = create_db_engine(settings.database_url, pool_size=1, max_overflow=0)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE api_keys SET id = :new WHERE public_key = :pk"),
                {"new": new_id, "pk": public_key},
            )
    finally:
        engine.dispose()
    redis_keys.append(new_id)


@pytest.fixture
def make_org(settings: Settings, redis_keys: list[int]) -> Callable[..., OrgKeys]:
    def make(name: str = "Limited Org") -> OrgKeys:
        keys = create_org(settings, name=name)
        give_key_a_random_id(settings, redis_keys, keys.public_key)
        return keys

    return make


@pytest.fixture
def add_key(settings: Settings, redis_keys: list[int]) -> Callable[[OrgKeys], str]:
    """Another API key of an existing organization; returns its secret."""

    def add(org: OrgKeys) -> str:
        database = Database(create_db_engine(settings.database_url, pool_size=1, max_overflow=0))
        try:
            with database.session(write=True) as session:
                organization = session.get(Organization, org.internal_id)
                assert organization is not None
                issued = create_api_key(session, organization, name="second")
                public_key, secret = issued.key.public_key, issued.secret_key
                session.commit()
        finally:
            database.dispose()
        give_key_a_random_id(settings, redis_keys, public_key)
        return secret

    return add


def limited_settings(database_url: str, storage: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"rate_limit_per_minute": 5, "rate_limit_burst_per_second": 100}
    if storage == "redis":
        values["redis_url"] = REDIS_URL
    values.update(overrides)
    return make_settings(database_url, **values)


def limit_headers(response: httpx.Response) -> tuple[int, int, int]:
    for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
        assert name in response.headers, (response.status_code, dict(response.headers))
    return (
        int(response.headers["x-ratelimit-limit"]),
        int(response.headers["x-ratelimit-remaining"]),
        int(response.headers["x-ratelimit-reset"]),
    )


def first_retry_after(response: httpx.Response) -> int:
    values = response.headers.get_list("retry-after")
    assert values, dict(response.headers)
    return int(values[0])


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert error["code"] == "rate_limit_exceeded"
    assert error["message"]


@pytest.mark.parametrize("storage", STORAGES)
def test_headers_on_every_answer_then_429(database_url: str, storage: str, make_org) -> None:
    org = make_org()
    with (
        LiveServer(limited_settings(database_url, storage)) as live,
        live.client(org.secret_key) as api,
    ):
        started = time.time()
        answers = [
            api.get("/v1/invoices"),
            api.get("/v1/invoices/inv_000000000000000000000000"),
            api.post("/v1/invoices", json={"currency": "USD"}),
            api.post("/v1/invoices", json=invoice_body()),
            api.get("/v1/events"),
        ]
        finished = time.time()
        assert [r.status_code for r in answers] == [200, 404, 422, 201, 200]
        seen = [limit_headers(r) for r in answers]
        assert [limit for limit, _, _ in seen] == [5] * 5
        assert [remaining for _, remaining, _ in seen] == [4, 3, 2, 1, 0]
        # The minute window frees up a minute after the first request of it (+1: rounding).
        resets = {reset for _, _, reset in seen}
        assert len(resets) == 1
        assert math.floor(started + 60) <= resets.pop() <= math.ceil(finished + 60) + 1

        refused = api.get("/v1/invoices")
        assert_rate_limited(refused)
        assert limit_headers(refused)[:2] == (5, 0)
        assert 1 <= first_retry_after(refused) <= 60

        # A refused request does nothing: this create never happens.
        assert_rate_limited(api.post("/v1/invoices", json=invoice_body()))

    with (
        LiveServer(make_settings(database_url)) as unlimited,
        unlimited.client(org.secret_key) as api,
    ):
        assert len(api.get("/v1/invoices").json()["data"]) == 1


@pytest.mark.parametrize("storage", STORAGES)
def test_limits_are_per_key(database_url: str, storage: str, make_org, add_key) -> None:
    org = make_org()
    other = make_org("Other Org")
    second_secret = add_key(org)
    with LiveServer(limited_settings(database_url, storage)) as live:
        with live.client(org.secret_key) as api:
            for _ in range(5):
                assert api.get("/v1/invoices").status_code == 200
            assert_rate_limited(api.get("/v1/invoices"))
            assert_rate_limited(api.post("/v1/invoices", json=invoice_body()))
        with live.client(other.secret_key) as api:
            fresh = api.get("/v1/invoices")
            assert fresh.status_code == 200
            assert limit_headers(fresh)[:2] == (5, 4)
        # Another key of the same organization has its own count too, and shows that the
        # refused create above never happened.
        with live.client(second_secret) as api:
            listed = api.get("/v1/invoices")
            assert listed.status_code == 200
            assert limit_headers(listed)[:2] == (5, 4)
            assert listed.json()["data"] == []
        with live.client(org.secret_key) as api:
            assert_rate_limited(api.get("/v1/invoices"))


def test_429_has_exactly_one_retry_after_header(database_url: str, make_org) -> None:
    org = make_org()
    settings = limited_settings(database_url, "memory", rate_limit_per_minute=1)
    with LiveServer(settings) as live, live.client(org.secret_key) as api:
        assert api.get("/v1/invoices").status_code == 200
        refused = api.get("/v1/invoices")
        assert_rate_limited(refused)
        # Two Retry-After headers read as "60, 60": not a number a client can use.
        assert len(refused.headers.get_list("retry-after")) == 1, refused.headers.raw
        assert int(refused.headers["retry-after"]) >= 1


@pytest.mark.parametrize("storage", STORAGES)
def test_burst_limit_per_second(
    database_url: str, storage: str, make_org, limiter_clock: LimiterClock
) -> None:
    org = make_org()
    settings = limited_settings(
        database_url, storage, rate_limit_per_minute=100, rate_limit_burst_per_second=3
    )
    with LiveServer(settings) as live, live.client(org.secret_key) as api:
        allowed = [api.get("/v1/invoices") for _ in range(3)]
        assert [r.status_code for r in allowed] == [200, 200, 200]
        assert [limit_headers(r)[1] for r in allowed] == [99, 98, 97]

        refused = api.get("/v1/invoices")
        assert_rate_limited(refused)
        assert first_retry_after(refused) == 1
        # A request refused by the burst limit does not use up the minute's budget.
        assert limit_headers(refused)[:2] == (100, 97)
        assert_rate_limited(api.get("/v1/invoices"))

        limiter_clock.advance(1.5)
        again = api.get("/v1/invoices")
        assert again.status_code == 200
        assert limit_headers(again)[1] == 96


@pytest.mark.parametrize("storage", STORAGES)
def test_the_minute_window_moves(
    database_url: str, storage: str, make_org, limiter_clock: LimiterClock
) -> None:
    org = make_org()
    start = limiter_clock.now
    with (
        LiveServer(limited_settings(database_url, storage)) as live,
        live.client(org.secret_key) as api,
    ):
        for _ in range(3):
            assert api.get("/v1/invoices").status_code == 200
        limiter_clock.advance(30)
        for _ in range(2):
            assert api.get("/v1/invoices").status_code == 200

        refused = api.get("/v1/invoices")
        assert_rate_limited(refused)
        assert first_retry_after(refused) == 30
        assert limit_headers(refused) == (5, 0, math.ceil(start + 60))

        limiter_clock.advance(31)  # the first three have left the window, the last two not
        freed = [api.get("/v1/invoices") for _ in range(3)]
        assert [r.status_code for r in freed] == [200, 200, 200]
        assert [limit_headers(r)[1] for r in freed] == [2, 1, 0]
        assert_rate_limited(api.get("/v1/invoices"))


def test_two_processes_share_one_count_through_redis(database_url: str, make_org) -> None:
    org = make_org()
    other = make_org("Other Org")
    settings = limited_settings(database_url, "redis")
    # Two servers, two Runtime objects, two limiters: like two API processes.
    with LiveServer(settings) as first, LiveServer(settings) as second:
        assert first.runtime.limiter is not second.runtime.limiter
        with first.client(org.secret_key) as a, second.client(org.secret_key) as b:
            remaining = [limit_headers(client.get("/v1/invoices"))[1] for client in (a, b, a, b, a)]
            assert remaining == [4, 3, 2, 1, 0]
            assert_rate_limited(b.get("/v1/invoices"))
            assert_rate_limited(a.get("/v1/invoices"))
        with second.client(other.secret_key) as c:
            assert limit_headers(c.get("/v1/invoices"))[:2] == (5, 4)


def test_memory_limits_are_per_process(database_url: str, make_org) -> None:
    org = make_org()
    settings = limited_settings(database_url, "memory")
    with (
        LiveServer(settings) as first,
        LiveServer(settings) as second,
        first.client(org.secret_key) as a,
        second.client(org.secret_key) as b,
    ):
        for _ in range(5):
            assert a.get("/v1/invoices").status_code == 200
        assert_rate_limited(a.get("/v1/invoices"))
        assert limit_headers(b.get("/v1/invoices"))[:2] == (5, 4)


def test_idempotent_replays_count_and_carry_the_headers(database_url: str, make_org) -> None:
    org = make_org()
    settings = limited_settings(database_url, "memory", rate_limit_per_minute=3)
    key = {"Idempotency-Key": f"limit-{secrets.token_hex(6)}"}
    with LiveServer(settings) as live, live.client(org.secret_key) as api:
        created = api.post("/v1/invoices", json=invoice_body(), headers=key)
        assert created.status_code == 201
        assert limit_headers(created)[:2] == (3, 2)

        replay = api.post("/v1/invoices", json=invoice_body(), headers=key)
        assert replay.headers.get("idempotent-replayed") == "true"
        # A replay is an answer to an authenticated request like any other: it is counted
        # and says so; otherwise reusing one key sends requests past any limit.
        assert limit_headers(replay)[:2] == (3, 1)
        api.post("/v1/invoices", json=invoice_body(), headers=key)
        assert_rate_limited(api.post("/v1/invoices", json=invoice_body(), headers=key))

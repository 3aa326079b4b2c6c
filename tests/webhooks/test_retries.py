"""Retries, redirects, Retry-After, endpoint health, redelivery from the command line and
event retention. The clock is moved, never slept on: every schedule is checked as data.

The module has a database (and server) of its own, and every test disables its endpoints
when it ends, so a sender here only ever sees this test's deliveries even when the clock
has been moved days ahead."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from email.utils import format_datetime, parsedate_to_datetime

import httpx
import pytest
from sqlalchemy import select, update

from invoicehub.config import Settings
from invoicehub.kit import clock
from invoicehub.models import Event, WebhookAttempt, WebhookDelivery
from invoicehub.webhooks.service import purge_old_events
from tests.conftest import LiveServer, fresh_database, make_settings
from tests.webhooks.helpers import open_invoice, register, run_sender_once
from tests.webhooks.receiver import Receiver, Reply
from tests.webhooks.support import (
    db_session,
    deliveries_of,
    disable_every_endpoint,
    endpoint_row,
    move_clock_to,
    parse_time,
    run_cli,
    set_failing_since,
)

# What the documentation promises after failed attempt 1, 2, … 7; an 8th failure is final.
SCHEDULE = [
    dt.timedelta(seconds=5),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=5),
    dt.timedelta(hours=10),
    dt.timedelta(hours=10),
]
SECOND = dt.timedelta(seconds=1)


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(str(tmp_path_factory.mktemp("retries-db"))) as url:
        yield url


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(settings) as live:
        yield live


@pytest.fixture(autouse=True)
def _nothing_left_to_send(settings: Settings) -> Iterator[None]:
    yield
    disable_every_endpoint(settings)


def the_delivery(api: httpx.Client, endpoint: dict) -> dict:
    """The endpoint's one delivery, as the delivery log shows it."""
    response = api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert len(data) == 1, data
    return data[0]


def gap_after_last_attempt(delivery: dict) -> dt.timedelta:
    return parse_time(delivery["next_attempt_at"]) - parse_time(
        delivery["attempts"][-1]["attempted_at"]
    )


# ------------------------------------------------------------------ the schedule


def test_a_failing_delivery_follows_the_whole_schedule_and_fails_after_eight_attempts(
    api: httpx.Client, settings: Settings, moved_clock: list[float]
) -> None:
    with Receiver(Reply(status=500, body="down for maintenance")) as receiver:
        endpoint = register(api, receiver.url, enabled_events=["invoice.created"])
        open_invoice(api)
        gaps: list[dt.timedelta] = []
        for attempt in range(1, 9):
            assert run_sender_once(settings) == 1, f"attempt {attempt} was not sent"
            delivery = the_delivery(api, endpoint)
            assert delivery["attempt_count"] == attempt
            assert len(delivery["attempts"]) == attempt
            if attempt == 8:
                break
            assert delivery["status"] == "pending"
            gap = gap_after_last_attempt(delivery)
            gaps.append(gap)
            due = parse_time(delivery["next_attempt_at"])
            move_clock_to(moved_clock, due - 3 * SECOND)
            assert run_sender_once(settings) == 0, f"retry {attempt + 1} went out early"
            move_clock_to(moved_clock, due + SECOND)
        received = receiver.wait_for(8)

        final = the_delivery(api, endpoint)
        # Nothing more is ever tried, however long one waits.
        moved_clock[0] += dt.timedelta(days=2).total_seconds()
        assert run_sender_once(settings) == 0

    for number, (gap, scheduled) in enumerate(zip(gaps, SCHEDULE, strict=True), start=1):
        assert scheduled * 0.9 <= gap <= scheduled * 1.1, (
            f"after attempt {number}: next try {gap} later, scheduled {scheduled} ±10%"
        )
    assert (final["status"], final["attempt_count"]) == ("failed", 8)
    assert final["next_attempt_at"] is None
    assert final["completed_at"] is not None
    assert final["last_status_code"] == 500
    assert [a["attempt_number"] for a in final["attempts"]] == list(range(1, 9))
    assert [a["status_code"] for a in final["attempts"]] == [500] * 8
    assert all(a["response_body"] == "down for maintenance" for a in final["attempts"])
    assert all(a["error"] == "HTTP 500" for a in final["attempts"])
    assert len(received) == 8
    assert {r.headers["webhook-id"] for r in received} == {final["event_id"]}
    # The endpoint failed for about 28 hours: far from the 5 days that disable it.
    after = api.get(f"/v1/webhook-endpoints/{endpoint['id']}").json()
    assert after["enabled"] is True


def test_a_redirect_is_a_failure_and_is_not_followed(api: httpx.Client, settings: Settings) -> None:
    with (
        Receiver() as elsewhere,
        Receiver(Reply(status=302, headers={"Location": elsewhere.url}, body="")) as redirecting,
    ):
        endpoint = register(api, redirecting.url, enabled_events=["invoice.created"])
        open_invoice(api)
        assert run_sender_once(settings) == 1
        assert len(redirecting.wait_for(1)) == 1
        delivery = the_delivery(api, endpoint)
        assert elsewhere.requests == []
        assert elsewhere.connections == 0
    assert (delivery["status"], delivery["attempt_count"]) == ("pending", 1)
    assert delivery["last_status_code"] == 302
    assert "redirects are not followed" in delivery["last_error"]
    assert [a["status_code"] for a in delivery["attempts"]] == [302]
    assert SCHEDULE[0] * 0.9 <= gap_after_last_attempt(delivery) <= SCHEDULE[0] * 1.1
    assert endpoint_row(settings, endpoint["id"]).failing_since is not None


# ------------------------------------------------------------------ Retry-After


def test_retry_after_in_seconds_puts_the_next_try_at_least_that_far_away(
    api: httpx.Client, settings: Settings, moved_clock: list[float]
) -> None:
    replies = iter([Reply(status=429, headers={"Retry-After": "600"}, body="slow down"), Reply()])
    with Receiver(lambda _r: next(replies)) as receiver:
        endpoint = register(api, receiver.url, enabled_events=["invoice.created"])
        open_invoice(api)
        assert run_sender_once(settings) == 1
        first = the_delivery(api, endpoint)
        attempted = parse_time(first["attempts"][0]["attempted_at"])
        assert gap_after_last_attempt(first) >= dt.timedelta(seconds=600)
        move_clock_to(moved_clock, attempted + dt.timedelta(seconds=590))
        assert run_sender_once(settings) == 0, "retried before Retry-After ran out"
        move_clock_to(moved_clock, attempted + dt.timedelta(seconds=601))
        assert run_sender_once(settings) == 1
        assert len(receiver.wait_for(2)) == 2
    final = the_delivery(api, endpoint)
    assert (final["status"], [a["status_code"] for a in final["attempts"]]) == (
        "succeeded",
        [429, 200],
    )


def test_retry_after_as_an_http_date_is_honoured(
    api: httpx.Client, settings: Settings, moved_clock: list[float]
) -> None:
    named: list[dt.datetime] = []

    def busy(_request: object) -> Reply:
        when = clock.utcnow() + dt.timedelta(hours=2)
        header = format_datetime(when, usegmt=True)
        named.append(parsedate_to_datetime(header))
        return Reply(status=503, headers={"Retry-After": header}, body="busy")

    with Receiver(busy) as receiver:
        endpoint = register(api, receiver.url, enabled_events=["invoice.created"])
        open_invoice(api)
        assert run_sender_once(settings) == 1
        receiver.wait_for(1)
        delivery = the_delivery(api, endpoint)
        next_at = parse_time(delivery["next_attempt_at"])
        move_clock_to(moved_clock, named[0] - 10 * SECOND)
        assert run_sender_once(settings) == 0, "retried before the date Retry-After named"
    assert delivery["last_status_code"] == 503
    assert next_at >= named[0]
    assert next_at - named[0] < dt.timedelta(minutes=1)


def test_a_retry_after_beyond_a_day_is_not_honoured(api: httpx.Client, settings: Settings) -> None:
    with Receiver(Reply(status=503, headers={"Retry-After": str(25 * 3600)})) as receiver:
        endpoint = register(api, receiver.url, enabled_events=["invoice.created"])
        open_invoice(api)
        assert run_sender_once(settings) == 1
        receiver.wait_for(1)
        delivery = the_delivery(api, endpoint)
    assert SCHEDULE[0] * 0.9 <= gap_after_last_attempt(delivery) <= SCHEDULE[0] * 1.1


# ------------------------------------------------------------------ endpoint health


@pytest.mark.parametrize(
    ("failing_for", "disabled"),
    [(dt.timedelta(days=5, hours=1), True), (dt.timedelta(days=4, hours=23), False)],
    ids=["over-5-days", "under-5-days"],
)
def test_an_endpoint_failing_for_five_days_is_disabled_on_its_next_failure(
    api: httpx.Client,
    settings: Settings,
    moved_clock: list[float],
    failing_for: dt.timedelta,
    disabled: bool,
) -> None:
    answer = [Reply(status=500)]
    with Receiver(lambda _r: answer[0]) as receiver:
        # Two events, two deliveries failing at the same time: one disabling, one event.
        endpoint = register(
            api, receiver.url, enabled_events=["invoice.created", "invoice.finalized"]
        )
        since = clock.utcnow() - failing_for
        set_failing_since(settings, endpoint["id"], since)
        open_invoice(api)
        assert run_sender_once(settings) == 2
        assert len(receiver.wait_for(2)) == 2
        after = api.get(f"/v1/webhook-endpoints/{endpoint['id']}").json()
        events = api.get("/v1/events", params={"type": "webhook_endpoint.disabled"}).json()
        row = endpoint_row(settings, endpoint["id"])
        assert abs(row.failing_since - since) < SECOND  # a failure does not restart the count
        if not disabled:
            assert (after["enabled"], after["disabled_reason"]) == (True, None)
            assert events["data"] == []
            return
        assert after["enabled"] is False
        assert "5 days" in after["disabled_reason"]
        assert [e["object_id"] for e in events["data"]] == [endpoint["id"]]
        assert events["data"][0]["data"]["object"]["enabled"] is False
        assert events["data"][0]["data"]["reason"] == after["disabled_reason"]

        # Nothing is lost: turned back on, its pending deliveries resume.
        pending = deliveries_of(settings, endpoint["id"])
        assert [(d.status, d.attempt_count) for d in pending] == [("pending", 1)] * 2
        move_clock_to(moved_clock, max(d.next_attempt_at for d in pending) + SECOND)
        assert run_sender_once(settings) == 0  # not while it is disabled
        api.patch(
            f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": True}
        ).raise_for_status()
        answer[0] = Reply()
        assert run_sender_once(settings) == 2
        assert len(receiver.wait_for(4)) == 4
    assert [d.status for d in deliveries_of(settings, endpoint["id"])] == ["succeeded"] * 2
    assert endpoint_row(settings, endpoint["id"]).failing_since is None


def test_a_success_clears_failing_since(
    api: httpx.Client, settings: Settings, moved_clock: list[float]
) -> None:
    replies = iter([Reply(status=500), Reply(status=200)])
    with Receiver(lambda _r: next(replies)) as receiver:
        endpoint = register(api, receiver.url, enabled_events=["invoice.created"])
        assert endpoint_row(settings, endpoint["id"]).failing_since is None
        open_invoice(api)
        assert run_sender_once(settings) == 1
        failed = the_delivery(api, endpoint)
        since = endpoint_row(settings, endpoint["id"]).failing_since
        assert since == parse_time(failed["attempts"][0]["attempted_at"])
        move_clock_to(moved_clock, parse_time(failed["next_attempt_at"]) + SECOND)
        assert run_sender_once(settings) == 1
        assert len(receiver.wait_for(2)) == 2
    assert the_delivery(api, endpoint)["status"] == "succeeded"
    assert endpoint_row(settings, endpoint["id"]).failing_since is None


# ------------------------------------------------------------------ redelivery from the CLI


def test_redeliver_on_the_command_line_queues_a_new_delivery(
    api: httpx.Client, settings: Settings, database_url: str
) -> None:
    with Receiver() as receiver:
        endpoint = register(api, receiver.url, enabled_events=["invoice.created"])
        open_invoice(api)
        assert run_sender_once(settings) == 1
        original = the_delivery(api, endpoint)
        assert original["status"] == "succeeded"

        done = run_cli("webhooks", "redeliver", original["id"], database_url=database_url)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert len(lines) == 1, done.stdout
        verb, new_id = lines[0].split()
        assert verb == "queued"
        assert new_id.startswith("whd_")
        assert new_id != original["id"]

        queued = api.get(f"/v1/webhook-deliveries/{new_id}")
        assert queued.status_code == 200, queued.text
        assert (queued.json()["status"], queued.json()["attempt_count"]) == ("pending", 0)
        assert queued.json()["event_id"] == original["event_id"]
        assert queued.json()["endpoint_id"] == endpoint["id"]
        assert run_sender_once(settings) == 1
        received = receiver.wait_for(2)
    assert [r.headers["webhook-id"] for r in received] == [original["event_id"]] * 2
    assert api.get(f"/v1/webhook-deliveries/{new_id}").json()["status"] == "succeeded"
    assert api.get(f"/v1/webhook-deliveries/{original['id']}").json() == original


def test_redeliver_of_an_unknown_delivery_fails_with_one_line(database_url: str) -> None:
    unknown = "whd_000000000000000000000000"
    done = run_cli("webhooks", "redeliver", unknown, database_url=database_url)
    assert done.returncode != 0
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert unknown in done.stderr


# ------------------------------------------------------------------ retention


def test_old_events_are_purged_with_their_deliveries_and_attempts(
    api: httpx.Client, settings: Settings
) -> None:
    retention = dt.timedelta(days=settings.event_retention_days)
    with Receiver() as receiver:
        register(api, receiver.url, enabled_events=["invoice.created", "invoice.finalized"])
        invoices = [open_invoice(api)["id"] for _ in range(3)]
        sent = 0
        while claimed := run_sender_once(settings):  # at most 4 of one endpoint per claim
            sent += claimed
        assert sent == 6
        assert len(receiver.wait_for(6)) == 6

    now = clock.utcnow()
    ages = {
        invoices[0]: retention + dt.timedelta(days=1),  # past retention: goes
        invoices[1]: retention - dt.timedelta(days=1),  # nearly as old: stays
    }
    with db_session(settings, write=True) as session:
        for invoice_id, age in ages.items():
            session.execute(
                update(Event).where(Event.object_id == invoice_id).values(created_at=now - age)
            )
        session.commit()

    def snapshot() -> dict[str, tuple[int, int, int]]:
        """Per invoice: its events, their deliveries and those deliveries' attempts."""
        counts = {}
        with db_session(settings) as session:
            for invoice_id in invoices:
                event_ids = list(
                    session.scalars(select(Event.id).where(Event.object_id == invoice_id))
                )
                delivery_ids = list(
                    session.scalars(
                        select(WebhookDelivery.id).where(WebhookDelivery.event_id.in_(event_ids))
                    )
                )
                attempt_ids = list(
                    session.scalars(
                        select(WebhookAttempt.id).where(
                            WebhookAttempt.delivery_id.in_(delivery_ids)
                        )
                    )
                )
                counts[invoice_id] = (len(event_ids), len(delivery_ids), len(attempt_ids))
        return counts

    assert snapshot() == dict.fromkeys(invoices, (2, 2, 2))
    with db_session(settings, write=True) as session:
        removed = purge_old_events(session, retention=retention)
        session.commit()
    assert removed == 2
    assert snapshot() == {
        invoices[0]: (0, 0, 0),
        invoices[1]: (2, 2, 2),
        invoices[2]: (2, 2, 2),
    }
    listed = api.get("/v1/events", params={"object_id": invoices[0]}).json()["data"]
    assert listed == []

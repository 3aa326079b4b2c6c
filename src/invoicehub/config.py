"""Settings: the only place that reads the environment (prefix ``INVOICEHUB_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INVOICEHUB_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{Path('invoicehub.db').resolve().as_posix()}",
        description="sqlite:///path/to/file.db or postgresql://user@host:5432/db",
    )
    # Kept open: at least the expected concurrent requests (16 in bench/) plus the in-process
    # worker, so connections are not closed and reopened under load (docs/benchmarks.md).
    database_pool_size: int = Field(default=20, ge=1)
    database_max_overflow: int = Field(default=20, ge=0)
    sqlite_busy_timeout_seconds: float = Field(default=30.0, gt=0)
    # Worker threads the native API's endpoints run on (api.one_hop), for reads and again for
    # writes. Few on purpose: the work is Python holding the GIL, so more threads add
    # contention, not speed (docs/benchmarks.md, session 5); enough that writers waiting on
    # a lock leave other writers room (reads have their own pool).
    api_threads: int = Field(default=8, ge=1)

    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL that customers and clients reach this service at.",
    )

    redis_url: str | None = Field(default=None, description="redis://host:6379/0 for shared limits")
    rate_limit_per_minute: int = Field(default=100, ge=1)
    rate_limit_burst_per_second: int = Field(default=10, ge=1)
    rate_limit_enabled: bool = True

    idempotency_key_ttl_hours: int = Field(default=24, ge=1)
    idempotency_stale_lock_seconds: int = Field(
        default=60,
        ge=1,
        description="An in-progress idempotent request older than this is taken as abandoned.",
    )

    default_invoice_number_pattern: str = "INV-{YYYY}-{seq:04}"
    default_due_days: int = Field(default=30, ge=0)
    default_currency: str = "USD"
    phone_default_region: str = Field(
        default="KZ", description="Region for phone numbers given without a country code."
    )

    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook URLs on loopback/private networks (local development, tests).",
    )
    webhook_max_concurrency: int = Field(
        default=32, ge=1, description="Deliveries in flight per worker."
    )
    webhook_per_endpoint_batch: int = Field(
        default=4, ge=1, description="At most this many deliveries of one endpoint per claim."
    )
    webhook_disable_after_failing_days: float = Field(default=5.0, gt=0)
    webhook_secret_rotation_overlap_hours: float = Field(default=24.0, ge=0)
    event_retention_days: int = Field(default=365, ge=1)

    run_worker_in_serve: bool = Field(
        default=True, description="Run the background worker (webhooks, expiry) inside serve."
    )
    worker_poll_seconds: float = Field(default=1.0, gt=0)

    stripe_secret_key: str | None = Field(
        default=None,
        description="sk_test_… or sk_live_…: organizations may then use the stripe provider.",
    )
    stripe_webhook_secret: str | None = Field(
        default=None, description="whsec_… of the Stripe webhook endpoint."
    )
    stripe_api_base: str = Field(
        default="https://api.stripe.com",
        description="Stripe's API base (tests point it at a local fake).",
    )
    stripe_webhook_tolerance_seconds: int = Field(default=300, ge=1)
    payment_attempt_timeout_minutes: int = Field(
        default=30, ge=1, description="A payment left in processing this long is declined."
    )

    p2p_currency: str = Field(default="KZT", description="Currency of wallet and bot balances.")
    login_max_failures: int = Field(
        default=5, ge=1, description="Wrong passwords/PINs before a lock."
    )
    login_lock_minutes: int = Field(default=15, ge=1)

    secret_key: str | None = Field(
        default=None,
        description=(
            "Signs dashboard session cookies and CSRF tokens. Unset: a random key made by the "
            "first migration and kept in the database (shared by every process) is used."
        ),
    )
    dashboard_session_hours: int = Field(
        default=12, ge=1, description="A dashboard login lasts this long."
    )
    dashboard_login_delay_seconds: float = Field(
        default=0.25,
        ge=0,
        description="Each recent failed login of an email delays its next answer by this much.",
    )

    # Where each seed API is served: its document's own paths follow the prefix. An empty
    # prefix mounts at the root (one API at most); overlapping mounts refuse to start.
    compat_apipay_prefix: str = "/compat/apipay"
    compat_clawprint_prefix: str = "/compat/clawprint"
    compat_magento_prefix: str = "/compat/magento"
    compat_wallet_prefix: str = "/compat/wallet"
    compat_botsbusiness_prefix: str = "/compat/botsbusiness"

    log_level: str = "info"


@lru_cache
def get_settings() -> Settings:
    return Settings()

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from invoicehub.cli.magento import magento_app
from invoicehub.config import Settings, get_settings
from invoicehub.errors import AppError
from invoicehub.kit.db import Database, create_db_engine

app = typer.Typer(
    name="invoicehub",
    help="Self-hosted invoicing and payment requests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
org_app = typer.Typer(help="Organizations (merchants, businesses, tenants).", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(org_app, name="org")
webhooks_app = typer.Typer(help="Webhook deliveries.", no_args_is_help=True)
app.add_typer(key_app, name="key")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(magento_app, name="magento")
user_app = typer.Typer(help="People who log in to the dashboard.", no_args_is_help=True)
app.add_typer(user_app, name="user")

err = Console(stderr=True, highlight=False, soft_wrap=True)
T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(code)


def load_settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"bad setting INVOICEHUB_{str(first['loc'][0]).upper()}: {first['msg']}")


@contextmanager
def transaction(settings: Settings) -> Iterator[Session]:
    """One CLI command, one transaction: commit on success, roll back on any error."""
    try:
        engine = create_db_engine(settings.database_url, pool_size=1, max_overflow=0)
    except (ValueError, SQLAlchemyError) as exc:
        fail(f"cannot use INVOICEHUB_DATABASE_URL: {exc}")
    database = Database(engine)
    session = database.session(write=True)
    try:
        yield session
        session.commit()
    except AppError as exc:
        session.rollback()
        fail(exc.message)
    except SQLAlchemyError as exc:
        session.rollback()
        fail(f"database error: {_first_line(exc)}. Has `invoicehub migrate` been run?")
    finally:
        session.close()
        database.dispose()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def emit(payload: dict[str, Any], *, as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        human()


@app.command()
def migrate() -> None:
    """Apply pending database migrations."""
    from invoicehub.migrations import upgrade_to_head

    settings = load_settings()
    try:
        upgrade_to_head(settings.database_url)
    except (ValueError, SQLAlchemyError) as exc:
        fail(f"migration failed: {_first_line(exc)}")
    typer.echo("database is up to date")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="API processes.", min=1)] = 1,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply pending migrations first.")
    ] = True,
) -> None:
    """Run the HTTP server (applies pending migrations first)."""
    from invoicehub.api import serving
    from invoicehub.migrations import upgrade_to_head

    settings = load_settings()
    if migrate_first:
        try:
            upgrade_to_head(settings.database_url)
        except (ValueError, SQLAlchemyError) as exc:
            fail(f"cannot prepare the database: {_first_line(exc)}")
    serving.run(host=host, port=port, workers=workers, log_level=settings.log_level)


@org_app.command("create")
def org_create(
    name: Annotated[str, typer.Option(help="Organization name.")],
    verified: Annotated[bool, typer.Option("--verified", help="Mark as verified at once.")] = False,
    currency: Annotated[str | None, typer.Option(help="Default currency (ISO 4217).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create an organization and its first API key."""
    from invoicehub.auth.service import create_api_key
    from invoicehub.orgs.service import create_organization

    settings = load_settings()
    with transaction(settings) as session:
        organization = create_organization(
            session, name=name, settings=settings, verified=verified, default_currency=currency
        )
        issued = create_api_key(session, organization, name="first key")
        payload = {
            "org_id": organization.public_id,
            "public_key": issued.key.public_key,
            "secret_key": issued.secret_key,
        }

    def human() -> None:
        typer.echo(f"organization {payload['org_id']} ({name}{', verified' if verified else ''})")
        typer.echo(f"public key  {payload['public_key']}")
        typer.echo(f"secret key  {payload['secret_key']}   (shown once; store it now)")

    emit(payload, as_json=as_json, human=human)


@org_app.command("verify")
def org_verify(org_id: Annotated[str, typer.Argument(help="Organization id (org_…).")]) -> None:
    """Mark an organization as verified."""
    from invoicehub.orgs.service import verify_organization

    with transaction(load_settings()) as session:
        verify_organization(session, org_id)
    typer.echo(f"organization {org_id} is verified")


@key_app.command("create")
def key_create(
    org: Annotated[str, typer.Option("--org", help="Organization id (org_…).")],
    name: Annotated[str | None, typer.Option(help="A name to recognise the key by.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create another API key for an organization."""
    from invoicehub.auth.service import create_api_key
    from invoicehub.orgs.service import get_organization

    with transaction(load_settings()) as session:
        organization = get_organization(session, org)
        issued = create_api_key(session, organization, name=name)
        payload = {
            "org_id": organization.public_id,
            "public_key": issued.key.public_key,
            "secret_key": issued.secret_key,
        }

    def human() -> None:
        typer.echo(f"public key  {payload['public_key']}")
        typer.echo(f"secret key  {payload['secret_key']}   (shown once; store it now)")

    emit(payload, as_json=as_json, human=human)


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="The email the person logs in with.")],
    password: Annotated[str, typer.Option(help="At least 8 characters.")],
    org: Annotated[str, typer.Option("--org", help="Organization id (org_…).")],
    role: Annotated[
        str, typer.Option(help="owner (keys, webhooks, settings too) or member (invoices).")
    ] = "member",
    name: Annotated[str | None, typer.Option(help="The person's name.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create a dashboard login in an organization, or add an existing person to another one
    (their password must then be the one given; it is not changed)."""
    from invoicehub.orgs.service import get_organization
    from invoicehub.users.service import add_user

    with transaction(load_settings()) as session:
        organization = get_organization(session, org)
        added = add_user(
            session,
            email=email,
            password=password,
            organization=organization,
            role=role,
            name=name,
        )
        payload = {
            "user_id": added.user.public_id,
            "email": added.user.email,
            "org_id": organization.public_id,
            "role": added.membership.role,
            "created": added.created,
        }

    def human() -> None:
        verb = "created" if payload["created"] else "added"
        typer.echo(f"{verb} {payload['email']} as {payload['role']} of {payload['org_id']}")

    emit(payload, as_json=as_json, human=human)


@app.command()
def worker() -> None:
    """Run a background worker (webhook deliveries, expiry, retention) until interrupted."""
    import asyncio
    import signal

    from invoicehub.api.runtime import Runtime
    from invoicehub.worker import Worker

    settings = load_settings()
    runtime = Runtime.build(settings)

    async def main() -> None:
        running = Worker(runtime)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, running.stop)
        typer.echo("worker started", err=True)
        await running.run_forever()

    try:
        asyncio.run(main())
    finally:
        runtime.database.dispose()


@webhooks_app.command("redeliver")
def webhooks_redeliver(
    delivery_id: Annotated[str, typer.Argument(help="Delivery id (whd_…).")],
) -> None:
    """Queue a delivery's event again for its endpoint (same webhook-id, new schedule)."""
    from invoicehub.webhooks.service import redeliver

    with transaction(load_settings()) as session:
        delivery = redeliver(session, None, delivery_id)
        new_id = delivery.public_id
    typer.echo(f"queued {new_id}")

"""Sandbox people: wallet owners and Telegram bots with their users."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from invoicehub.cli.main import emit, fail, load_settings, transaction
from invoicehub.kit.money import currency, format_amount

wallet_app = typer.Typer(
    help="Wallets (seed 001): people who bill each other by phone.", no_args_is_help=True
)
wallet_user_app = typer.Typer(help="Wallet owners.", no_args_is_help=True)
wallet_app.add_typer(wallet_user_app, name="user")
bots_app = typer.Typer(help="Telegram bots (seed 002) and their users.", no_args_is_help=True)
bots_bot_app = typer.Typer(help="Bots.", no_args_is_help=True)
bots_user_app = typer.Typer(help="A bot's users.", no_args_is_help=True)
bots_app.add_typer(bots_bot_app, name="bot")
bots_app.add_typer(bots_user_app, name="user")


def _amount(raw: str | None, option: str) -> Decimal | None:
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        fail(f"{option} must be a decimal amount, got {raw!r}")
    if not value.is_finite() or value < 0:
        fail(f"{option} must be a positive amount, got {raw!r}")
    return value


@wallet_user_app.command("create")
def wallet_user_create(
    phone: Annotated[str, typer.Option(help="Phone number, e.g. +12345675578.")],
    password: Annotated[str, typer.Option(help="At least 6 characters.")],
    balance: Annotated[str | None, typer.Option(help="Starting balance (sandbox top-up).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create a wallet owner (and their starting balance)."""
    from invoicehub.accounts.service import balance_of, create_wallet_account

    settings = load_settings()
    starting = _amount(balance, "--balance")
    with transaction(settings) as session:
        account = create_wallet_account(
            session, phone=phone, password=password, settings=settings, balance=starting
        )
        payload = {
            "id": account.public_id,
            "phone": account.phone,
            "balance": format_amount(balance_of(session, account), currency(account.currency)),
        }
    emit(
        payload,
        as_json=as_json,
        human=lambda: typer.echo(
            f"wallet {payload['id']} {payload['phone']} balance {payload['balance']}"
        ),
    )


@wallet_app.command("topup")
def wallet_topup(
    phone: Annotated[str, typer.Option(help="The wallet's phone number.")],
    amount: Annotated[str, typer.Option(help="Amount to add (sandbox money).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Add sandbox money to a wallet."""
    from invoicehub.accounts.service import topup, wallet_by_phone

    settings = load_settings()
    value = _amount(amount, "--amount")
    assert value is not None
    with transaction(settings) as session:
        account = wallet_by_phone(session, phone, region=settings.phone_default_region)
        new_balance = topup(session, account, value)
        payload = {
            "id": account.public_id,
            "phone": account.phone,
            "balance": format_amount(new_balance, currency(account.currency)),
        }
    emit(
        payload,
        as_json=as_json,
        human=lambda: typer.echo(f"{payload['phone']} balance {payload['balance']}"),
    )


@bots_bot_app.command("create")
def bots_bot_create(
    name: Annotated[str, typer.Option(help="The bot's name.")],
    username: Annotated[str, typer.Option(help="Its Telegram username (for t.me links).")],
    bot_id: Annotated[
        int | None, typer.Option("--id", help="Its numeric id (random when omitted).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Register a Telegram bot."""
    from invoicehub.accounts.service import create_bot

    with transaction(load_settings()) as session:
        bot = create_bot(session, name=name, username=username, number=bot_id)
        payload = {"bot_id": bot.number, "username": bot.username, "name": bot.name}
    emit(
        payload,
        as_json=as_json,
        human=lambda: typer.echo(f"bot {payload['bot_id']} @{payload['username']}"),
    )


@bots_user_app.command("create")
def bots_user_create(
    bot: Annotated[int, typer.Option("--bot", help="The bot's id.")],
    user_id: Annotated[int, typer.Option("--user-id", help="The user's Telegram id.")],
    pin: Annotated[str, typer.Option(help="4 to 12 digits.")],
    balance: Annotated[str | None, typer.Option(help="Starting balance (sandbox top-up).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Register a user of a bot, with a PIN (and a starting balance)."""
    from invoicehub.accounts.service import balance_of, create_bot_user

    settings = load_settings()
    starting = _amount(balance, "--balance")
    with transaction(settings) as session:
        account = create_bot_user(
            session,
            bot_number=bot,
            telegram_user_id=user_id,
            pin=pin,
            settings=settings,
            balance=starting,
        )
        payload = {
            "id": account.public_id,
            "bot_id": bot,
            "user_id": user_id,
            "balance": format_amount(balance_of(session, account), currency(account.currency)),
        }
    emit(
        payload,
        as_json=as_json,
        human=lambda: typer.echo(f"user {payload['user_id']} of bot {payload['bot_id']}"),
    )

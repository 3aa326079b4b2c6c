"""People who hold money here: wallet owners and Telegram bots' users, their balances (a
ledger), the invoices they send each other, and paying one from a balance.

Money moves only as a transfer: two ledger entries (-amount for the payer, +amount for the
payee) in the transaction that pays the invoice, written after the payer's account row is
locked and its balance (the sum of its entries) is checked. So a balance never goes
negative, the entries of all accounts sum to what was topped up, and an invoice is paid at
most once (the open -> processing move admits one payer).
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from invoicehub.accounts import repository
from invoicehub.config import Settings
from invoicehub.errors import Conflict, NotFound, RateLimited, Unauthenticated, ValidationFailed
from invoicehub.invoices import repository as invoices_repository
from invoicehub.invoices import service as invoices
from invoicehub.invoices.schemas import CustomerIn, InvoiceCreate, LineItemIn
from invoicehub.invoices.service import InvoiceView
from invoicehub.invoices.states import InvoiceStatus
from invoicehub.kit import clock
from invoicehub.kit.db import Database
from invoicehub.kit.ids import new_public_id
from invoicehub.kit.money import MoneyError, currency, to_minor
from invoicehub.kit.passwords import hash_password, password_matches
from invoicehub.kit.phones import PhoneError, to_e164
from invoicehub.models import Account, Bot, Invoice, LedgerEntry, Transfer
from invoicehub.orgs.service import create_organization

TRANSFER_ID_BASE = 1_400_000_000_000  # wallet payment ids are 13-digit numbers (001's examples)


# ------------------------------------------------------------------ accounts


def _normalize_phone(raw: str, region: str) -> str:
    try:
        return to_e164(raw, default_region=region)
    except PhoneError as exc:
        raise ValidationFailed(str(exc), param="phone", code="invalid_phone") from exc


def _new_account(session: Session, settings: Settings, *, name: str, **fields: object) -> Account:
    organization = create_organization(
        session, name=name, settings=settings, verified=True, default_currency=settings.p2p_currency
    )
    account = Account(
        public_id=new_public_id("acct"),
        organization_id=organization.id,
        currency=currency(settings.p2p_currency).code,
        failed_attempts=0,
        created_at=clock.utcnow(),
        **fields,
    )
    try:
        with session.begin_nested():
            repository.add(session, account)
    except IntegrityError as exc:
        raise Conflict("that account exists already", code="account_exists") from exc
    return account


def create_wallet_account(
    session: Session,
    *,
    phone: str,
    password: str,
    settings: Settings,
    balance: Decimal | None = None,
) -> Account:
    if len(password) < 6:
        raise ValidationFailed("the password needs at least 6 characters", param="password")
    e164 = _normalize_phone(phone, settings.phone_default_region)
    if repository.wallet_by_phone(session, e164) is not None:
        raise Conflict(f"{e164} already has a wallet", param="phone", code="account_exists")
    account = _new_account(
        session,
        settings,
        name=f"Wallet {e164}",
        kind="wallet",
        phone=e164,
        secret_hash=hash_password(password),
    )
    if balance:
        topup(session, account, balance)
    return account


def create_bot(session: Session, *, name: str, username: str, number: int | None = None) -> Bot:
    username = username.strip().lstrip("@")
    if not username or not all(ch.isalnum() or ch == "_" for ch in username):
        raise ValidationFailed(
            "a Telegram bot username has letters, digits and _ only", param="username"
        )
    if number is None:
        number = 1_000_000 + secrets.randbelow(9_000_000)
    if number <= 0:
        raise ValidationFailed("the bot id must be a positive number", param="id")
    if repository.bot_by_number(session, number) is not None:
        raise Conflict(f"bot {number} exists already", param="id", code="bot_exists")
    bot = Bot(
        number=number, name=name.strip() or username, username=username, created_at=clock.utcnow()
    )
    repository.add(session, bot)
    return bot


def require_bot(session: Session, number: int) -> Bot:
    bot = repository.bot_by_number(session, number)
    if bot is None:
        raise NotFound(f"no bot {number}", param="bot_id", code="bot_not_found")
    return bot


def create_bot_user(
    session: Session,
    *,
    bot_number: int,
    telegram_user_id: int,
    pin: str,
    settings: Settings,
    balance: Decimal | None = None,
) -> Account:
    bot = require_bot(session, bot_number)
    if not pin.isdigit() or not 4 <= len(pin) <= 12:
        raise ValidationFailed("the PIN must be 4 to 12 digits", param="pin")
    if telegram_user_id <= 0:
        raise ValidationFailed("the Telegram user id must be a positive number", param="user_id")
    if repository.bot_user(session, bot.id, str(telegram_user_id)) is not None:
        raise Conflict(
            f"user {telegram_user_id} of bot {bot_number} exists already", code="account_exists"
        )
    account = _new_account(
        session,
        settings,
        name=f"@{bot.username} user {telegram_user_id}",
        kind="bot_user",
        bot_id=bot.id,
        telegram_user_id=str(telegram_user_id),
        secret_hash=hash_password(pin),
    )
    if balance:
        topup(session, account, balance)
    return account


def topup(session: Session, account: Account, amount: Decimal) -> int:
    """Sandbox funding: money enters the ledger from outside. Returns the new balance."""
    try:
        minor = to_minor(amount, currency(account.currency))
    except MoneyError as exc:
        raise ValidationFailed(str(exc), param="amount", code="invalid_amount") from exc
    if minor <= 0:
        raise ValidationFailed(
            "amount must be greater than 0", param="amount", code="invalid_amount"
        )
    repository.lock_account(session, account.id)
    repository.add(
        session,
        LedgerEntry(
            account_id=account.id,
            transfer_id=None,
            amount_minor=minor,
            currency=account.currency,
            reason="topup",
            created_at=clock.utcnow(),
        ),
    )
    return repository.balance(session, account.id)


def wallet_by_phone(session: Session, phone: str, *, region: str) -> Account:
    account = repository.wallet_by_phone(session, _normalize_phone(phone, region))
    if account is None:
        raise NotFound(f"no wallet for {phone}", param="phone", code="account_not_found")
    return account


def balance_of(session: Session, account: Account) -> int:
    return repository.balance(session, account.id)


# ------------------------------------------------------------------ sign-in with a lock


class AccountLocked(RateLimited):
    default_code = "account_locked"


class Authenticator:
    """Checks a password or PIN and counts failures per account in a short transaction of its
    own, so a wrong guess is remembered even though the request itself fails. After
    ``login_max_failures`` wrong guesses the account is locked for ``login_lock_minutes``.
    The answers never say which part was wrong."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings

    def wallet(self, phone: str, password: str) -> int:
        try:
            e164: str | None = to_e164(phone, default_region=self.settings.phone_default_region)
        except PhoneError:
            e164 = None
        with self.database.session(write=False) as session:
            account = repository.wallet_by_phone(session, e164) if e164 else None
            found = (account.id, account.secret_hash, account.locked_until) if account else None
        return self._check(found, password)

    def bot_user(self, bot_number: int, telegram_user_id: int, pin: str) -> int:
        with self.database.session(write=False) as session:
            bot = repository.bot_by_number(session, bot_number)
            account = repository.bot_user(session, bot.id, str(telegram_user_id)) if bot else None
            found = (account.id, account.secret_hash, account.locked_until) if account else None
        return self._check(found, pin)

    def _check(self, found: tuple[int, str, dt.datetime | None] | None, secret: str) -> int:
        """The slow argon2 check runs with no transaction open (on SQLite a write transaction
        would hold the one write lock for its length); only the outcome is written."""
        now = clock.utcnow()
        if found is not None and found[2] is not None and found[2] > now:
            minutes = max(1, int((found[2] - now).total_seconds() // 60) + 1)
            raise AccountLocked(f"too many failed attempts; try again in {minutes} minute(s)")
        ok = password_matches(found[1] if found else None, secret)
        if found is None:
            raise Unauthenticated("invalid credentials", code="invalid_credentials")
        with self.database.session(write=True) as session:
            if ok:
                repository.clear_failures(session, found[0])
            else:
                repository.record_failure(
                    session,
                    found[0],
                    now=now,
                    max_failures=self.settings.login_max_failures,
                    lock_until=now + dt.timedelta(minutes=self.settings.login_lock_minutes),
                )
            session.commit()
        if not ok:
            raise Unauthenticated("invalid credentials", code="invalid_credentials")
        return found[0]


def get_account(session: Session, account_id: int) -> Account:
    account = repository.get(session, account_id)
    if account is None:
        raise Unauthenticated("invalid credentials", code="invalid_credentials")
    return account


# ------------------------------------------------------------------ person-to-person invoices


def create_p2p_invoice(
    session: Session,
    payee: Account,
    *,
    amount: Decimal | None,
    payer: Account | None,
    description: str | None,
    title: str | None = None,
    payload: str | None = None,
    short_code: str | None = None,
) -> InvoiceView:
    """An open invoice from ``payee`` to ``payer`` (None: whoever pays it, as a bot's link).
    Refusals carry the wallet's codes: missing_amount, invalid_payer (billing yourself)."""
    if amount is None:
        raise ValidationFailed("amount is required", param="amount", code="missing_amount")
    if payer is not None and payer.id == payee.id:
        raise ValidationFailed("you cannot bill yourself", param="payer", code="invalid_payer")
    if amount <= 0:
        raise ValidationFailed(
            "amount must be greater than 0", param="amount", code="invalid_amount"
        )
    customer = CustomerIn(
        phone=payer.phone if payer is not None else None,
        telegram_user_id=int(payer.telegram_user_id)
        if payer is not None and payer.telegram_user_id
        else None,
    )
    view = invoices.create_invoice(
        session,
        payee.organization_id,
        InvoiceCreate(
            currency=payee.currency,
            customer=customer,
            line_items=[
                LineItemIn(description=title or description or "Payment", unit_price=amount)
            ],
            title=title,
            description=description,
            metadata={"payload": payload} if payload else {},
            status="open",
        ),
    )
    linked = invoices_repository.transition(
        session,
        payee.organization_id,
        view.invoice.public_id,
        from_statuses=(InvoiceStatus.OPEN,),
        values={
            "payer_account_id": payer.id if payer is not None else None,
            "payee_account_id": payee.id,
            "short_code": short_code,
        },
        now=clock.utcnow(),
    )
    assert linked is not None
    return InvoiceView(linked, view.lines)


def duplicate_p2p_invoice(session: Session, payee: Account, invoice_public_id: str) -> InvoiceView:
    """The same payer, amount and message again, as a new open invoice."""
    original = _issued_by(session, payee, invoice_public_id)
    payer = (
        repository.get(session, original.payer_account_id) if original.payer_account_id else None
    )
    return create_p2p_invoice(
        session,
        payee,
        amount=Decimal(original.total_minor).scaleb(-currency(original.currency).exponent),
        payer=payer,
        description=original.description,
        title=original.title,
    )


def cancel_p2p_invoice(session: Session, payee: Account, invoice_public_id: str) -> InvoiceView:
    _issued_by(session, payee, invoice_public_id)
    return invoices.cancel_invoice(session, payee.organization_id, invoice_public_id)


def _issued_by(session: Session, payee: Account, invoice_public_id: str) -> Invoice:
    invoice = repository.invoice_by_public_id(session, invoice_public_id)
    if invoice is None or invoice.payee_account_id != payee.id:
        raise NotFound(f"no invoice {invoice_public_id}", param="id", code="invoice_not_found")
    return invoice


@dataclass(slots=True)
class PaidFromBalance:
    view: InvoiceView
    transfer: Transfer


def pay_from_balance(session: Session, payer: Account, invoice: Invoice) -> PaidFromBalance:
    """Pays a person-to-person invoice from the payer's balance, in this one transaction:
    open -> processing (only one payer gets past this), then either a transfer and paid, or
    declined (back to open, with the reason) when the balance is short."""
    if invoice.payee_account_id is None:
        raise NotFound(f"no invoice {invoice.public_id}", param="id", code="invoice_not_found")
    if invoice.payer_account_id is not None and invoice.payer_account_id != payer.id:
        raise NotFound(
            f"no invoice {invoice.public_id} for you to pay", param="id", code="invoice_not_found"
        )
    if invoice.payee_account_id == payer.id:
        raise Conflict("you cannot pay your own invoice", code="own_invoice")
    payee = repository.get(session, invoice.payee_account_id)
    assert payee is not None
    if payee.bot_id is not None and payee.bot_id != payer.bot_id:
        raise NotFound(
            f"no invoice {invoice.public_id} in this bot", param="id", code="invoice_not_found"
        )
    _, attempt = invoices.start_payment_attempt(
        session,
        invoice.organization_id,
        invoice.public_id,
        provider="balance",
        reference=payer.public_id,
    )
    repository.lock_account(session, payer.id)
    now = clock.utcnow()
    transfer = Transfer(
        public_id=new_public_id("tr"),
        client_payment_id=str(uuid.uuid4()),
        invoice_id=invoice.id,
        payer_account_id=payer.id,
        payee_account_id=payee.id,
        amount_minor=attempt.amount_minor,
        currency=attempt.currency,
        status="completed",
        created_at=now,
    )
    available = repository.balance(session, payer.id)
    if attempt.currency != payer.currency or available < attempt.amount_minor:
        transfer.status = "declined"
        transfer.failure_reason = (
            "insufficient_funds" if attempt.currency == payer.currency else "currency_mismatch"
        )
        repository.add(session, transfer)
        view = invoices.decline_payment_attempt(
            session,
            invoice.organization_id,
            attempt.public_id,
            reason=f"{transfer.failure_reason}: the balance cannot pay it",
        )
        return PaidFromBalance(view, transfer)
    repository.add(session, transfer)
    for account_id, signed in ((payer.id, -attempt.amount_minor), (payee.id, attempt.amount_minor)):
        repository.add(
            session,
            LedgerEntry(
                account_id=account_id,
                transfer_id=transfer.id,
                amount_minor=signed,
                currency=attempt.currency,
                reason="transfer",
                created_at=now,
            ),
        )
    view = invoices.complete_payment_attempt(session, invoice.organization_id, attempt.public_id)
    if invoice.payer_account_id is None:  # a bot's open link: whoever paid is the payer now
        updated = invoices_repository.transition(
            session,
            invoice.organization_id,
            invoice.public_id,
            from_statuses=(InvoiceStatus.PAID,),
            values={"payer_account_id": payer.id},
            now=now,
        )
        assert updated is not None
        view = InvoiceView(updated, view.lines)
    return PaidFromBalance(view, transfer)


def find_p2p_invoice(session: Session, invoice_public_id: str) -> Invoice:
    invoice = repository.invoice_by_public_id(session, invoice_public_id)
    if invoice is None or invoice.payee_account_id is None:
        raise NotFound(f"no invoice {invoice_public_id}", param="id", code="invoice_not_found")
    return invoice


def find_by_short_code(session: Session, code: str) -> Invoice:
    invoice = repository.invoice_by_short_code(session, code)
    if invoice is None:
        raise NotFound(f"no invoice {code}", param="invoiceId", code="invoice_not_found")
    return invoice


@dataclass(slots=True)
class P2PListing:
    invoices: list[Invoice]
    transfers: dict[int, Transfer]
    accounts: dict[int, Account]


def list_billed_to(session: Session, account: Account, *, limit: int = 100) -> P2PListing:
    return _listing(session, repository.invoices_billed_to(session, account.id, limit=limit))


def list_issued_by(session: Session, account: Account, *, limit: int = 100) -> P2PListing:
    return _listing(session, repository.invoices_issued_by(session, account.id, limit=limit))


def _listing(session: Session, rows: list[Invoice]) -> P2PListing:
    ids = {i.payer_account_id for i in rows if i.payer_account_id} | {
        i.payee_account_id for i in rows if i.payee_account_id
    }
    return P2PListing(
        rows,
        repository.transfers_of(session, [i.id for i in rows]),
        repository.accounts_by_ids(session, sorted(ids)),
    )


def ledger_total(session: Session) -> int:
    return repository.ledger_total(session)

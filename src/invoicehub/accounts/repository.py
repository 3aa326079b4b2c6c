from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from invoicehub.models import Account, Bot, Invoice, LedgerEntry, Transfer


def add(session: Session, row: object) -> None:
    session.add(row)
    session.flush()


def wallet_by_phone(session: Session, phone: str) -> Account | None:
    return session.scalar(select(Account).where(Account.kind == "wallet", Account.phone == phone))


def bot_by_number(session: Session, number: int) -> Bot | None:
    return session.scalar(select(Bot).where(Bot.number == number))


def bot_by_id(session: Session, bot_id: int) -> Bot | None:
    return session.get(Bot, bot_id)


def bot_user(session: Session, bot_id: int, telegram_user_id: str) -> Account | None:
    return session.scalar(
        select(Account).where(
            Account.bot_id == bot_id, Account.telegram_user_id == telegram_user_id
        )
    )


def get(session: Session, account_id: int) -> Account | None:
    return session.get(Account, account_id)


def lock_account(session: Session, account_id: int) -> None:
    """The payer's row lock: concurrent transfers out of one account queue here, so each sees
    the balance the one before left (PostgreSQL FOR UPDATE; SQLite's write lock already)."""
    # NO KEY UPDATE: a transfer's foreign keys take KEY SHARE locks on both accounts, and a
    # plain FOR UPDATE would deadlock two people paying each other at the same moment.
    session.execute(
        select(Account.id).where(Account.id == account_id).with_for_update(key_share=True)
    )


def balance(session: Session, account_id: int) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
                LedgerEntry.account_id == account_id
            )
        )
        or 0
    )


def record_failure(
    session: Session,
    account_id: int,
    *,
    now: dt.datetime,
    max_failures: int,
    lock_until: dt.datetime,
) -> None:
    account = session.get(Account, account_id, with_for_update=True)
    if account is None:
        return
    failures = account.failed_attempts + 1
    values: dict[str, object] = {"failed_attempts": failures}
    if failures >= max_failures:
        values.update(failed_attempts=0, locked_until=lock_until)
    session.execute(update(Account).where(Account.id == account_id).values(**values))


def clear_failures(session: Session, account_id: int) -> None:
    session.execute(
        update(Account)
        .where(Account.id == account_id, Account.failed_attempts > 0)
        .values(failed_attempts=0)
    )


def invoices_billed_to(session: Session, account_id: int, *, limit: int) -> list[Invoice]:
    return list(
        session.scalars(
            select(Invoice)
            .where(Invoice.payer_account_id == account_id)
            .order_by(Invoice.id.desc())
            .limit(limit)
        ).all()
    )


def invoices_issued_by(session: Session, account_id: int, *, limit: int) -> list[Invoice]:
    return list(
        session.scalars(
            select(Invoice)
            .where(Invoice.payee_account_id == account_id)
            .order_by(Invoice.id.desc())
            .limit(limit)
        ).all()
    )


def invoice_by_public_id(session: Session, public_id: str) -> Invoice | None:
    return session.scalar(select(Invoice).where(Invoice.public_id == public_id))


def invoice_by_short_code(session: Session, code: str) -> Invoice | None:
    return session.scalar(select(Invoice).where(Invoice.short_code == code))


def transfers_of(session: Session, invoice_ids: list[int]) -> dict[int, Transfer]:
    """The last transfer of each invoice."""
    if not invoice_ids:
        return {}
    found: dict[int, Transfer] = {}
    for transfer in session.scalars(
        select(Transfer).where(Transfer.invoice_id.in_(invoice_ids)).order_by(Transfer.id)
    ):
        found[transfer.invoice_id] = transfer
    return found


def accounts_by_ids(session: Session, ids: list[int]) -> dict[int, Account]:
    if not ids:
        return {}
    return {a.id: a for a in session.scalars(select(Account).where(Account.id.in_(ids)))}


def ledger_total(session: Session) -> int:
    """Every account's entries together: transfers net to zero, so this is all top-ups."""
    return int(session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0))) or 0)

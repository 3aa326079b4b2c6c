"""The customer's language: English and Russian. Numbers, dates and money go through babel
in the customer's locale; words come from the small catalog below."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

from invoicehub.kit.money import currency, from_minor

LANGUAGES = ("en", "ru")
# The babel locale each language formats with; Russian invoices in tenge read like ru_KZ.
_BABEL = {"en": "en_US", "ru": "ru_RU"}

CATALOG: dict[str, dict[str, str]] = {
    "en": {
        "invoice": "Invoice",
        "from": "From",
        "bill_to": "Bill to",
        "description": "Description",
        "qty": "Qty",
        "unit_price": "Unit price",
        "tax": "Tax",
        "amount": "Amount",
        "subtotal": "Subtotal",
        "discount": "Discount",
        "shipping": "Shipping",
        "total": "Total",
        "amount_paid": "Paid",
        "amount_due": "Amount due",
        "issued": "Issued",
        "due_date": "Due",
        "status": "Status",
        "pay": "Pay",
        "pay_now": "Pay {amount}",
        "card_number": "Card number",
        "expiry": "Expiry (MM/YY)",
        "cvc": "CVC",
        "name_on_card": "Name on card",
        "download_pdf": "Download PDF",
        "scan_to_pay": "Scan to open this page on your phone",
        "test_cards": "Sandbox: pay with 4242 4242 4242 4242, any future expiry and any CVC.",
        "status_open": "Awaiting payment",
        "status_overdue": "Overdue",
        "status_processing": "Payment in progress",
        "status_paid": "Paid",
        "status_partially_refunded": "Paid, partly refunded",
        "status_refunded": "Refunded",
        "status_cancelled": "Cancelled",
        "status_expired": "Expired",
        "status_draft": "Draft",
        "paid_message": "Thank you! This invoice was paid on {date}.",
        "cancelled_message": "This invoice was cancelled. No payment is needed.",
        "expired_message": "This invoice has expired and can no longer be paid.",
        "link_expired_message": "This payment link has expired. Ask the sender for a new one.",
        "refunded_message": "This invoice was paid and refunded.",
        "declined": "Payment failed: {reason}. You were not charged; you can try again.",
        "invalid_card": "Please check the {field}: {reason}.",
        "confirm_title": "Confirm your payment",
        "confirm_text": "Your bank asks you to confirm this payment of {amount}.",
        "confirm": "Confirm payment",
        "cancel_payment": "Cancel",
        "processing_message": "A payment is waiting for confirmation.",
        "continue_confirmation": "Continue to confirmation",
        "pay_with_stripe": "Pay with card (Stripe)",
        "not_found": "This payment link does not exist.",
        "language": "Language",
        "notes": "Notes",
        "paid_late_message": "This payment arrived after the invoice was closed.",
        "page": "Page",
        "expiry_placeholder": "MM/YY",
        "card_error_invalid_number": "card number is not valid",
        "card_error_invalid_expiry": "expiry must be MM/YY",
        "card_error_expiry_in_past": "the expiry date is in the past",
        "card_error_invalid_cvc": "CVC must be 3 or 4 digits",
    },
    "ru": {
        "invoice": "Счёт",
        "from": "От",
        "bill_to": "Плательщик",
        "description": "Описание",
        "qty": "Кол-во",
        "unit_price": "Цена",
        "tax": "Налог",
        "amount": "Сумма",
        "subtotal": "Подытог",
        "discount": "Скидка",
        "shipping": "Доставка",
        "total": "Итого",
        "amount_paid": "Оплачено",
        "amount_due": "К оплате",
        "issued": "Выставлен",
        "due_date": "Оплатить до",
        "status": "Статус",
        "pay": "Оплатить",
        "pay_now": "Оплатить {amount}",
        "card_number": "Номер карты",
        "expiry": "Срок действия (ММ/ГГ)",
        "cvc": "CVC",
        "name_on_card": "Имя на карте",
        "download_pdf": "Скачать PDF",
        "scan_to_pay": "Отсканируйте, чтобы открыть эту страницу на телефоне",
        "test_cards": "Песочница: оплатите картой 4242 4242 4242 4242, любой будущий срок и любой CVC.",
        "status_open": "Ожидает оплаты",
        "status_overdue": "Просрочен",
        "status_processing": "Идёт оплата",
        "status_paid": "Оплачен",
        "status_partially_refunded": "Оплачен, частично возвращён",
        "status_refunded": "Возвращён",
        "status_cancelled": "Отменён",
        "status_expired": "Истёк",
        "status_draft": "Черновик",
        "paid_message": "Спасибо! Счёт оплачен {date}",
        "cancelled_message": "Счёт отменён. Оплата не нужна.",
        "expired_message": "Срок оплаты счёта истёк.",
        "link_expired_message": "Срок действия ссылки истёк. Попросите отправителя прислать новую.",
        "refunded_message": "Счёт был оплачен, деньги возвращены.",
        "declined": "Платёж не прошёл: {reason}. Деньги не списаны, можно попробовать снова.",
        "invalid_card": "Проверьте поле «{field}»: {reason}.",
        "confirm_title": "Подтвердите платёж",
        "confirm_text": "Банк просит подтвердить платёж на {amount}.",
        "confirm": "Подтвердить платёж",
        "cancel_payment": "Отмена",
        "processing_message": "Платёж ожидает подтверждения.",
        "continue_confirmation": "Перейти к подтверждению",
        "pay_with_stripe": "Оплатить картой (Stripe)",
        "not_found": "Такой ссылки на оплату нет.",
        "language": "Язык",
        "notes": "Примечание",
        "paid_late_message": "Платёж поступил после закрытия счёта.",
        "page": "Страница",
        "expiry_placeholder": "ММ/ГГ",
        "card_error_invalid_number": "номер карты неверный",
        "card_error_invalid_expiry": "срок указывается как ММ/ГГ",
        "card_error_expiry_in_past": "срок действия уже прошёл",
        "card_error_invalid_cvc": "CVC — это 3 или 4 цифры",
    },
}

# Why a card was refused, in words a customer reads (the sandbox's codes).
REASONS = {
    "en": {
        "card_declined": "your card was declined",
        "expired_card": "your card has expired",
        "authentication_failed": "the payment was not confirmed",
    },
    "ru": {
        "card_declined": "банк отклонил карту",
        "expired_card": "срок действия карты истёк",
        "authentication_failed": "платёж не подтверждён",
    },
}


def choose_language(
    preferred: str | None, accept_language: str | None, *, requested: str | None = None
) -> str:
    """``?lang=`` when supported, else the customer's language when known, else the browser's
    most preferred supported language (by its q= weights), else English."""
    for choice in (requested, preferred):
        if choice and choice[:2].lower() in LANGUAGES:
            return choice[:2].lower()
    weighted = []
    for position, part in enumerate((accept_language or "").split(",")):
        code, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if code[:2].lower() in LANGUAGES and weight > 0:
            weighted.append((-weight, position, code[:2].lower()))
    return min(weighted)[2] if weighted else "en"


class Translator:
    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else "en"
        self.locale = _BABEL[self.language]

    def __call__(self, key: str, **values: object) -> str:
        text = CATALOG[self.language].get(key) or CATALOG["en"].get(key) or key
        return text.format(**values) if values else text

    def money(self, minor: int, code: str) -> str:
        locale = "ru_KZ" if self.language == "ru" and code == "KZT" else self.locale
        return format_currency(from_minor(minor, currency(code)), code, locale=locale)

    def number(self, value: Decimal) -> str:
        return format_decimal(value, locale=self.locale)

    def date(self, value: dt.date | dt.datetime) -> str:
        return format_date(value, format="long", locale=self.locale)

    def reason(self, code_and_text: str | None) -> str:
        """'card_declined: your card was declined' -> the customer's words for it."""
        if not code_and_text:
            return ""
        code = code_and_text.split(":", 1)[0].strip()
        return REASONS[self.language].get(code) or code_and_text.split(":", 1)[-1].strip()

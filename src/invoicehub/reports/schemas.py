"""The reports' shapes. Every amount is a decimal string in its own currency's minor units
("1234.50"; JPY "1234"); reports list each currency apart and never add currencies together.
Day counts are decimal strings with one decimal ("12.5"), rates with four ("0.8333").

Each report also knows its CSV table (``csv_table``): a header and one row per line of the
JSON, holding the same strings, so a spreadsheet and the API never disagree.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import ConfigDict, Field

from invoicehub.kit.schemas import ResponseModel

CsvTable = tuple[list[str], list[list[str]]]

# Spreadsheets run a cell that starts with one of these as a formula; customer names and
# emails are typed by whoever made the invoice, so they are defused in CSV (OWASP's advice).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: str | None) -> str:
    """A free-text cell: empty for null, a leading ' when it would be read as a formula."""
    if value is None:
        return ""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def csv_cell(value: str | int | dt.date | None) -> str:
    """A cell the report made itself (amounts, counts, dates): as in the JSON."""
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


class RangeModel(ResponseModel):
    """A report over a range of UTC days, both ends included (``from`` and ``to``)."""

    model_config = ConfigDict(populate_by_name=True)

    from_: dt.date = Field(
        alias="from", description="First day of the range (UTC).", examples=["2026-01-01"]
    )
    to: dt.date = Field(
        description="Last day of the range (UTC), included.", examples=["2026-03-31"]
    )


# Revenue ------------------------------------------------------------------------------------

Interval = Literal["day", "week", "month"]


class RevenuePeriod(ResponseModel):
    period: str = Field(
        description="The period: 2026-01-15 (day), 2026-W03 (ISO week, from Monday), 2026-01 (month).",
        examples=["2026-01"],
    )
    start: dt.date = Field(
        description="First day counted: the period's first day, or `from` when the range starts inside it.",
        examples=["2026-01-01"],
    )
    end: dt.date = Field(
        description="Last day counted: the period's last day, or `to` when the range ends inside it.",
        examples=["2026-01-31"],
    )
    payments: str = Field(
        description="Succeeded payments made on these days.", examples=["6000.00"]
    )
    refunds: str = Field(description="Refunds made on these days.", examples=["100.00"])
    collected: str = Field(
        description="payments - refunds; negative when more was refunded than paid.",
        examples=["5900.00"],
    )
    invoices_paid: int = Field(
        description="Invoices that became paid in full on these days.", examples=[1]
    )


class RevenueTotals(ResponseModel):
    payments: str = Field(examples=["6000.00"])
    refunds: str = Field(examples=["100.00"])
    collected: str = Field(examples=["5900.00"])
    invoices_paid: int = Field(examples=[1])


class CurrencyRevenue(ResponseModel):
    currency: str = Field(description="ISO 4217 code of every amount below.", examples=["USD"])
    totals: RevenueTotals = Field(description="The whole range.")
    periods: list[RevenuePeriod] = Field(
        description="Every period of the range in order, zero where nothing happened."
    )


class RevenueReport(RangeModel):
    object: Literal["revenue_report"] = "revenue_report"
    interval: Interval = Field(description="day, week (ISO, from Monday) or month.")
    currencies: list[CurrencyRevenue] = Field(
        description="One entry per currency that saw money or a paid invoice in the range."
    )

    def csv_table(self) -> CsvTable:
        header = [
            "currency",
            "period",
            "start",
            "end",
            "payments",
            "refunds",
            "collected",
            "invoices_paid",
        ]
        rows = [
            [
                entry.currency,
                p.period,
                csv_cell(p.start),
                csv_cell(p.end),
                p.payments,
                p.refunds,
                p.collected,
                csv_cell(p.invoices_paid),
            ]
            for entry in self.currencies
            for p in entry.periods
        ]
        return header, rows


# Aging --------------------------------------------------------------------------------------

AgingBucketName = Literal["current", "1_30", "31_60", "61_90", "over_90"]


class AgingBucket(ResponseModel):
    bucket: AgingBucketName = Field(
        description="current (not yet past due), 1_30, 31_60, 61_90 or over_90 days past due.",
        examples=["1_30"],
    )
    days_past_due_from: int | None = Field(
        description="Fewest days past due in this bucket; null for current.", examples=[1]
    )
    days_past_due_to: int | None = Field(
        description="Most days past due in this bucket; null for over_90.", examples=[30]
    )
    amount_due: str = Field(
        description="Sum of total - amount_paid of the invoices in it.", examples=["6000.00"]
    )
    invoice_count: int = Field(examples=[1])


class AgingTotals(ResponseModel):
    amount_due: str = Field(examples=["6000.00"])
    invoice_count: int = Field(examples=[1])


class CurrencyAging(ResponseModel):
    currency: str = Field(examples=["USD"])
    totals: AgingTotals
    buckets: list[AgingBucket] = Field(description="All five buckets, in order, zero when empty.")


class AgingReport(ResponseModel):
    object: Literal["aging_report"] = "aging_report"
    as_of: dt.date = Field(
        description="The day ages are counted to (UTC); today by default.", examples=["2026-05-01"]
    )
    currencies: list[CurrencyAging] = Field(
        description="One entry per currency with open or processing invoices."
    )

    def csv_table(self) -> CsvTable:
        header = [
            "currency",
            "bucket",
            "days_past_due_from",
            "days_past_due_to",
            "amount_due",
            "invoice_count",
        ]
        rows = [
            [
                entry.currency,
                b.bucket,
                csv_cell(b.days_past_due_from),
                csv_cell(b.days_past_due_to),
                b.amount_due,
                csv_cell(b.invoice_count),
            ]
            for entry in self.currencies
            for b in entry.buckets
        ]
        return header, rows


# Days to pay and collection rate ------------------------------------------------------------


class PaymentSpeed(ResponseModel):
    paid_count: int = Field(
        description="Invoices paid in full within the range: the base of the two day figures.",
        examples=[6],
    )
    average_days_to_pay: str | None = Field(
        description="Mean of (UTC day paid in full - issue_date), one decimal; null when none.",
        examples=["12.3"],
    )
    median_days_to_pay: str | None = Field(
        description="Median of the same days (mean of the middle two for an even count).",
        examples=["10.5"],
    )
    issued_count: int = Field(
        description="Invoices with an issue_date in the range that were finalized (drafts never count).",
        examples=[6],
    )
    issued_paid_count: int = Field(
        description="Of those, how many have been paid in full so far.", examples=[5]
    )
    collection_rate: str | None = Field(
        description="issued_paid_count / issued_count, four decimals; null when nothing was issued.",
        examples=["0.8333"],
    )


class CurrencyPaymentSpeed(PaymentSpeed):
    currency: str = Field(examples=["USD"])


class DaysToPayReport(RangeModel):
    object: Literal["days_to_pay_report"] = "days_to_pay_report"
    measured_from: Literal["issue_date"] = Field(
        default="issue_date", description="Days are counted from the invoice's issue_date."
    )
    overall: PaymentSpeed = Field(
        description="All currencies together: only counts and days, never money."
    )
    currencies: list[CurrencyPaymentSpeed] = Field(
        description="One entry per currency with an invoice paid or issued in the range."
    )

    def csv_table(self) -> CsvTable:
        header = [
            "scope",
            "currency",
            "paid_count",
            "average_days_to_pay",
            "median_days_to_pay",
            "issued_count",
            "issued_paid_count",
            "collection_rate",
        ]

        def row(scope: str, code: str, speed: PaymentSpeed) -> list[str]:
            return [
                scope,
                code,
                csv_cell(speed.paid_count),
                csv_cell(speed.average_days_to_pay),
                csv_cell(speed.median_days_to_pay),
                csv_cell(speed.issued_count),
                csv_cell(speed.issued_paid_count),
                csv_cell(speed.collection_rate),
            ]

        rows = [row("overall", "", self.overall)]
        rows.extend(row("currency", entry.currency, entry) for entry in self.currencies)
        return header, rows


# Top customers ------------------------------------------------------------------------------


class TopCustomer(ResponseModel):
    rank: int = Field(description="1 for the customer who paid the most.", examples=[1])
    email: str | None = Field(
        description="The customer's email, lower-cased; customers are told apart by it.",
        examples=["client@example.com"],
    )
    name: str | None = Field(
        description="The customer's name (for a customer without email, the name is the key).",
        examples=["Aigerim Bekova"],
    )
    amount_paid: str = Field(
        description="Payments - refunds made in the range on this customer's invoices.",
        examples=["6000.00"],
    )
    invoices_paid: int = Field(
        description="Invoices that received a payment in the range.", examples=[1]
    )
    outstanding: str = Field(
        description="What the customer owes now: total - amount_paid of their open and processing invoices.",
        examples=["1500.00"],
    )
    open_invoices: int = Field(
        description="How many open or processing invoices that is.", examples=[1]
    )


class CurrencyCustomers(ResponseModel):
    currency: str = Field(examples=["USD"])
    customers: list[TopCustomer] = Field(description="Best first, at most `limit`.")


class CustomersReport(RangeModel):
    object: Literal["customers_report"] = "customers_report"
    limit: int = Field(description="Most customers listed per currency.", examples=[10])
    currencies: list[CurrencyCustomers] = Field(
        description="One entry per currency in which a customer paid in the range."
    )

    def csv_table(self) -> CsvTable:
        header = [
            "currency",
            "rank",
            "email",
            "name",
            "amount_paid",
            "invoices_paid",
            "outstanding",
            "open_invoices",
        ]
        rows = [
            [
                entry.currency,
                csv_cell(c.rank),
                csv_text(c.email),
                csv_text(c.name),
                c.amount_paid,
                csv_cell(c.invoices_paid),
                c.outstanding,
                csv_cell(c.open_invoices),
            ]
            for entry in self.currencies
            for c in entry.customers
        ]
        return header, rows

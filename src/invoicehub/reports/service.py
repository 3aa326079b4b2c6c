"""The merchant's reports: revenue over time, receivables aging, days to pay with collection
rate, and top customers. The rules live here; the SQL (aggregates only) in repository.py.

Every day is a UTC day. Amounts stay integers of minor units per currency until they are
formatted; no figure ever adds one currency to another. See docs/reports.md.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.orm import Session

from invoicehub.errors import ValidationFailed
from invoicehub.kit import clock
from invoicehub.kit.money import currency, format_amount, to_minor
from invoicehub.reports import repository
from invoicehub.reports.schemas import (
    AgingBucket,
    AgingBucketName,
    AgingReport,
    AgingTotals,
    CurrencyAging,
    CurrencyCustomers,
    CurrencyPaymentSpeed,
    CurrencyRevenue,
    CustomersReport,
    DaysToPayReport,
    Interval,
    PaymentSpeed,
    RevenuePeriod,
    RevenueReport,
    RevenueTotals,
    TopCustomer,
)

INTERVALS: tuple[Interval, ...] = ("day", "week", "month")
# Most periods one revenue report lists: a year of days, five years of weeks, ten years of
# months. The SQL groups by day whatever the interval, so this also bounds its rows.
MAX_PERIODS: Mapping[Interval, int] = {"day": 366, "week": 260, "month": 120}
# Dates outside this window are typing mistakes, and keeping to it means no date arithmetic
# below (a day after ``to``, 90 days before ``as_of``) can leave Python's date range.
EARLIEST_DATE = dt.date(1900, 1, 1)
LATEST_DATE = dt.date(2999, 12, 31)
DEFAULT_RANGE_DAYS = 30

_ONE_DECIMAL = Decimal("0.1")
_FOUR_DECIMALS = Decimal("0.0001")


def check_date(value: dt.date, param: str) -> dt.date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValidationFailed(
            f"{param} must be between {EARLIEST_DATE} and {LATEST_DATE}; got {value}",
            param=param,
            code="invalid_date",
        )
    return value


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class DateRange:
    first: dt.date
    last: dt.date

    @property
    def start(self) -> dt.datetime:
        """The first instant of the range (UTC)."""
        return _day_start(self.first)

    @property
    def end(self) -> dt.datetime:
        """The instant after the range: the start of the day after ``last``."""
        return _day_start(self.last + dt.timedelta(days=1))


def _range(date_from: dt.date | None, date_to: dt.date | None, default_from: dt.date) -> DateRange:
    last = check_date(date_to, "to") if date_to is not None else clock.today()
    first = check_date(date_from, "from") if date_from is not None else default_from
    if last < first:
        if date_to is None:
            raise ValidationFailed(
                f"from ({first}) is after today ({last}); pass a to date after it",
                param="from",
                code="invalid_range",
            )
        raise ValidationFailed(
            f"to ({last}) must not be before from ({first})", param="to", code="invalid_range"
        )
    return DateRange(first, last)


def _days_back(date_to: dt.date | None, days: int) -> dt.date:
    last = check_date(date_to, "to") if date_to is not None else clock.today()
    return max(EARLIEST_DATE, last - dt.timedelta(days=days - 1))


# Revenue ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    label: str
    first: dt.date  # clipped to the range
    last: dt.date


def _period_start(day: dt.date, interval: Interval) -> dt.date:
    if interval == "week":
        return day - dt.timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def _next_period_start(start: dt.date, interval: Interval) -> dt.date:
    if interval == "week":
        return start + dt.timedelta(days=7)
    if interval == "month":
        return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return start + dt.timedelta(days=1)


def _label(start: dt.date, interval: Interval) -> str:
    if interval == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if interval == "month":
        return f"{start.year:04d}-{start.month:02d}"
    return start.isoformat()


def _periods(days: DateRange, interval: Interval) -> Iterator[Period]:
    start = _period_start(days.first, interval)
    while start <= days.last:
        following = _next_period_start(start, interval)
        yield Period(
            _label(start, interval),
            max(start, days.first),
            min(following - dt.timedelta(days=1), days.last),
        )
        start = following


def _count_periods(days: DateRange, interval: Interval) -> int:
    if interval == "day":
        return (days.last - days.first).days + 1
    if interval == "week":
        return (_period_start(days.last, "week") - _period_start(days.first, "week")).days // 7 + 1
    return (days.last.year - days.first.year) * 12 + days.last.month - days.first.month + 1


def _default_revenue_from(date_to: dt.date | None, interval: Interval) -> dt.date:
    """The last 30 days, or the last 12 weeks or months counting the one ``to`` is in."""
    if interval == "day":
        return _days_back(date_to, DEFAULT_RANGE_DAYS)
    last = check_date(date_to, "to") if date_to is not None else clock.today()
    start = _period_start(last, interval)
    for _ in range(11):
        previous = _period_start(start - dt.timedelta(days=1), interval)
        if previous < EARLIEST_DATE:
            break
        start = previous
    return start


def revenue_report(
    session: Session,
    organization_id: int,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    interval: Interval = "month",
) -> RevenueReport:
    """Money collected per currency and period: succeeded payments minus refunds, each on the
    UTC day its payment row was made, and how many invoices became paid in full then.
    Every period of the range is listed, with zeros where nothing happened."""
    days = _range(date_from, date_to, _default_revenue_from(date_to, interval))
    periods_wanted = _count_periods(days, interval)
    if periods_wanted > MAX_PERIODS[interval]:
        raise ValidationFailed(
            f"interval={interval} covers at most {MAX_PERIODS[interval]} {interval}s; "
            f"{days.first} to {days.last} spans {periods_wanted}. "
            "Shorten the range or choose a longer interval.",
            param="to",
            code="range_too_long",
        )
    money: dict[str, dict[dt.date, repository.DayMoney]] = defaultdict(dict)
    for row in repository.money_by_day(session, organization_id, start=days.start, end=days.end):
        money[row.currency][row.day] = row
    paid: dict[str, dict[dt.date, int]] = defaultdict(dict)
    for count in repository.invoices_paid_by_day(
        session, organization_id, start=days.start, end=days.end
    ):
        paid[count.currency][count.day] = count.count

    periods = list(_periods(days, interval))
    currencies = []
    for code in sorted(money.keys() | paid.keys()):
        cur = currency(code)
        by_period = {p.label: [0, 0, 0] for p in periods}  # payments, refunds, invoices paid
        for row in money[code].values():
            totals = by_period[_label(_period_start(row.day, interval), interval)]
            totals[0] += row.payments_minor
            totals[1] += row.refunds_minor
        for day, invoices in paid[code].items():
            by_period[_label(_period_start(day, interval), interval)][2] += invoices
        lines = [
            RevenuePeriod(
                period=p.label,
                start=p.first,
                end=p.last,
                payments=format_amount(by_period[p.label][0], cur),
                refunds=format_amount(by_period[p.label][1], cur),
                collected=format_amount(by_period[p.label][0] - by_period[p.label][1], cur),
                invoices_paid=by_period[p.label][2],
            )
            for p in periods
        ]
        payments = sum(v[0] for v in by_period.values())
        refunds = sum(v[1] for v in by_period.values())
        currencies.append(
            CurrencyRevenue(
                currency=code,
                totals=RevenueTotals(
                    payments=format_amount(payments, cur),
                    refunds=format_amount(refunds, cur),
                    collected=format_amount(payments - refunds, cur),
                    invoices_paid=sum(v[2] for v in by_period.values()),
                ),
                periods=lines,
            )
        )
    return RevenueReport(from_=days.first, to=days.last, interval=interval, currencies=currencies)


# Aging --------------------------------------------------------------------------------------

# (bucket, fewest days past due, most days past due); None is open-ended.
AGING_BUCKETS: tuple[tuple[AgingBucketName, int | None, int | None], ...] = (
    ("current", None, 0),
    ("1_30", 1, 30),
    ("31_60", 31, 60),
    ("61_90", 61, 90),
    ("over_90", 91, None),
)


def aging_report(
    session: Session, organization_id: int, *, as_of: dt.date | None = None
) -> AgingReport:
    """What is still due on open and processing invoices, per currency, by days past due on
    ``as_of`` (as_of - due_date): current when not yet past due (due today counts as
    current), then 1-30, 31-60, 61-90 and over 90. It ages today's receivables to as_of;
    it does not rebuild what was open on a past day."""
    day = check_date(as_of, "as_of") if as_of is not None else clock.today()
    # A bucket holds due dates from (day - its most days past due) on; the oldest catches all.
    bounds = [
        (name, day - dt.timedelta(days=most))
        for name, _fewest, most in AGING_BUCKETS
        if most is not None
    ]
    found: dict[str, dict[str, repository.BucketTotal]] = defaultdict(dict)
    for row in repository.receivables_by_age(
        session, organization_id, bounds=bounds, last=AGING_BUCKETS[-1][0]
    ):
        found[row.currency][row.bucket] = row
    currencies = []
    for code in sorted(found):
        cur = currency(code)
        buckets = []
        for name, fewest, most in AGING_BUCKETS:
            in_bucket = found[code].get(name)
            buckets.append(
                AgingBucket(
                    bucket=name,
                    days_past_due_from=fewest,
                    days_past_due_to=most,
                    amount_due=format_amount(in_bucket.amount_due_minor if in_bucket else 0, cur),
                    invoice_count=in_bucket.count if in_bucket else 0,
                )
            )
        currencies.append(
            CurrencyAging(
                currency=code,
                totals=AgingTotals(
                    amount_due=format_amount(
                        sum(t.amount_due_minor for t in found[code].values()), cur
                    ),
                    invoice_count=sum(t.count for t in found[code].values()),
                ),
                buckets=buckets,
            )
        )
    return AgingReport(as_of=day, currencies=currencies)


# Days to pay and collection rate ------------------------------------------------------------


def _one_decimal(value: Decimal) -> str:
    return str(value.quantize(_ONE_DECIMAL, rounding=ROUND_HALF_UP))


def _average_and_median(histogram: Mapping[int, int]) -> tuple[str | None, str | None]:
    """Mean and median of a histogram {days: how many}; one decimal, half-up."""
    count = sum(histogram.values())
    if count == 0:
        return None, None
    average = Decimal(sum(days * n for days, n in histogram.items())) / count
    # The middle one (odd count) or the mean of the middle two (even count), by walking the
    # sorted histogram to positions (count - 1) // 2 and count // 2, counted from 0.
    wanted = [(count - 1) // 2, count // 2]
    middle: list[int] = []
    seen = 0
    for days in sorted(histogram):
        seen += histogram[days]
        while wanted and wanted[0] < seen:
            middle.append(days)
            wanted.pop(0)
    median = Decimal(middle[0] + middle[1]) / 2
    return _one_decimal(average), _one_decimal(median)


def _rate(part: int, whole: int) -> str | None:
    if whole == 0:
        return None
    return str((Decimal(part) / whole).quantize(_FOUR_DECIMALS, rounding=ROUND_HALF_UP))


def _speed(histogram: Mapping[int, int], issued: int, issued_paid: int) -> PaymentSpeed:
    average, median = _average_and_median(histogram)
    return PaymentSpeed(
        paid_count=sum(histogram.values()),
        average_days_to_pay=average,
        median_days_to_pay=median,
        issued_count=issued,
        issued_paid_count=issued_paid,
        collection_rate=_rate(issued_paid, issued),
    )


def days_to_pay_report(
    session: Session,
    organization_id: int,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> DaysToPayReport:
    """How fast invoices get paid, per currency and overall.

    Days to pay: for invoices paid in full within the range (paid_at's UTC day), the days
    from issue_date to that day; a payment dated before its issue_date counts as 0 days.
    Collection rate: of the invoices issued in the range (issue_date in it, and finalized:
    drafts and drafts cancelled unsent never count), the share paid in full by now
    (refunded later or not). Only counts and days are combined across currencies.
    """
    days = _range(date_from, date_to, _days_back(date_to, DEFAULT_RANGE_DAYS))
    histograms: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    overall_histogram: dict[int, int] = defaultdict(int)
    for row in repository.days_to_pay_histogram(
        session, organization_id, start=days.start, end=days.end
    ):
        took = max(0, row.days)
        histograms[row.currency][took] += row.count
        overall_histogram[took] += row.count
    issued = {
        row.currency: row
        for row in repository.issued_invoice_counts(
            session, organization_id, first_day=days.first, last_day=days.last
        )
    }
    currencies = []
    for code in sorted(histograms.keys() | issued.keys()):
        counts = issued.get(code)
        speed = _speed(
            histograms.get(code, {}), counts.issued if counts else 0, counts.paid if counts else 0
        )
        currencies.append(CurrencyPaymentSpeed(currency=code, **speed.model_dump()))
    overall = _speed(
        overall_histogram,
        sum(c.issued for c in issued.values()),
        sum(c.paid for c in issued.values()),
    )
    return DaysToPayReport(from_=days.first, to=days.last, overall=overall, currencies=currencies)


# Top customers ------------------------------------------------------------------------------


def customers_report(
    session: Session,
    organization_id: int,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    limit: int = 10,
) -> CustomersReport:
    """Per currency, the customers who paid the most in the range (payments - refunds made
    in it, by the payment's UTC day), best first, with how many of their invoices took a
    payment then and what they owe now on open and processing invoices."""
    if not 1 <= limit <= 100:
        raise ValidationFailed("limit must be between 1 and 100", param="limit")
    days = _range(date_from, date_to, _days_back(date_to, DEFAULT_RANGE_DAYS))
    payers = repository.top_payers(
        session, organization_id, start=days.start, end=days.end, limit=limit
    )
    owed = repository.outstanding_of(session, organization_id, [p.key for p in payers])
    by_currency: dict[str, list[TopCustomer]] = defaultdict(list)
    for payer in payers:
        cur = currency(payer.key.currency)
        due = owed.get(payer.key, repository.Outstanding(0, 0))
        by_currency[payer.key.currency].append(
            TopCustomer(
                rank=payer.rank,
                email=payer.key.email,
                name=payer.display_name,
                amount_paid=format_amount(payer.net_paid_minor, cur),
                invoices_paid=payer.invoices_paid,
                outstanding=format_amount(due.amount_due_minor, cur),
                open_invoices=due.count,
            )
        )
    return CustomersReport(
        from_=days.first,
        to=days.last,
        limit=limit,
        currencies=[
            CurrencyCustomers(currency=code, customers=customers)
            for code, customers in sorted(by_currency.items())
        ],
    )


# The dashboard's overview --------------------------------------------------------------------

OVERVIEW_WEEKS = 13  # "the last three months", as whole ISO weeks ending with this one


@dataclass(frozen=True, slots=True)
class WeekPaid:
    label: str  # 2026-W03
    start: dt.date
    collected_minor: int


@dataclass(frozen=True, slots=True)
class CurrencyOverview:
    """One currency's figures; currencies are never added together."""

    currency: str
    outstanding_minor: int
    outstanding_count: int
    overdue_minor: int
    overdue_count: int
    paid_this_month_minor: int
    weeks: list[WeekPaid]


def overview(session: Session, organization_id: int) -> list[CurrencyOverview]:
    """Outstanding and overdue now (the aging report: overdue is every bucket past due),
    collected this month so far, and collected per week over the last 13 weeks — the same
    figures the reports API gives, per currency."""
    today = clock.today()
    aging = aging_report(session, organization_id, as_of=today)
    month = revenue_report(
        session, organization_id, date_from=today.replace(day=1), date_to=today, interval="month"
    )
    first_week = _period_start(today, "week") - dt.timedelta(weeks=OVERVIEW_WEEKS - 1)
    weekly = revenue_report(
        session, organization_id, date_from=first_week, date_to=today, interval="week"
    )

    def minor(amount: str, code: str) -> int:
        return to_minor(Decimal(amount), currency(code), allow_negative=True)

    codes = sorted(
        {a.currency for a in aging.currencies}
        | {m.currency for m in month.currencies}
        | {w.currency for w in weekly.currencies}
    )
    result = []
    for code in codes:
        aged = next((a for a in aging.currencies if a.currency == code), None)
        paid = next((m for m in month.currencies if m.currency == code), None)
        weeks = next((w for w in weekly.currencies if w.currency == code), None)
        overdue = [b for b in aged.buckets if b.bucket != "current"] if aged else []
        result.append(
            CurrencyOverview(
                currency=code,
                outstanding_minor=minor(aged.totals.amount_due, code) if aged else 0,
                outstanding_count=aged.totals.invoice_count if aged else 0,
                overdue_minor=sum(minor(b.amount_due, code) for b in overdue),
                overdue_count=sum(b.invoice_count for b in overdue),
                paid_this_month_minor=minor(paid.totals.collected, code) if paid else 0,
                weeks=[WeekPaid(p.period, p.start, minor(p.collected, code)) for p in weeks.periods]
                if weeks
                else [
                    WeekPaid(_label(start, "week"), start, 0)
                    for start in (first_week + dt.timedelta(weeks=n) for n in range(OVERVIEW_WEEKS))
                ],
            )
        )
    return result

"""What a person's transactions say: monthly spend, spend by category, recurring payments, trends."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

# A payment recurs when the same merchant charges a near-identical amount in at least this many
# distinct months; 5% absorbs currency rounding and small price changes.
RECURRING_MIN_MONTHS = 3
RECURRING_AMOUNT_TOLERANCE = 0.05
# Income arrives once a month, so a short window would over- or under-state it; it is measured
# over a fixed trailing window instead.
INCOME_WINDOW_DAYS = 90


@dataclass(frozen=True)
class Recurring:
    merchant: str
    category: str
    monthly_amount: float


@dataclass(frozen=True)
class Summary:
    user_id: str
    currency: str
    as_of: date
    period_days: int
    monthly_income: float
    spend: float
    monthly_spend: dict[str, float]
    by_category: dict[str, float]
    recurring: list[Recurring] = field(default_factory=list)
    trends: dict[str, float] = field(default_factory=dict)  # fractional change vs the previous period

    @property
    def months_equivalent(self) -> float:
        return self.period_days / 30.0

    def per_month(self, amount: float) -> float:
        return amount / self.months_equivalent

    def top_categories(self, n: int = 3) -> list[tuple[str, float]]:
        return sorted(self.by_category.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def _window(frame: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    return frame[(frame["date"] > start) & (frame["date"] <= end)]


def recurring_payments(debits: pd.DataFrame) -> list[Recurring]:
    found = []
    for (merchant, category), group in debits.groupby(["merchant", "category"], sort=True):
        months = pd.Series([d.strftime("%Y-%m") for d in group["date"]], index=group.index)
        if months.nunique() < RECURRING_MIN_MONTHS:
            continue
        median = float(group["amount"].median())
        steady = group[(group["amount"] - median).abs() <= RECURRING_AMOUNT_TOLERANCE * median]
        if months[steady.index].nunique() >= RECURRING_MIN_MONTHS and len(steady) >= 0.8 * len(group):
            found.append(Recurring(str(merchant), str(category), round(median, 2)))
    return found


def summarize(transactions: pd.DataFrame, user_id: str, as_of: date, period_days: int) -> Summary:
    """Summarise one user's last ``period_days`` days up to and including ``as_of``.

    ``transactions`` may hold every user or just this one (faster when summarising many windows).
    """
    user = transactions if transactions["user_id"].nunique() == 1 else transactions[transactions["user_id"] == user_id]
    if user.empty:
        raise ValueError(f"no transactions for user {user_id}")
    start = as_of - timedelta(days=period_days)
    window = _window(user, start, as_of)
    previous = _window(user, start - timedelta(days=period_days), start)
    debits = window[window["direction"] == "debit"]
    recent = _window(user, as_of - timedelta(days=INCOME_WINDOW_DAYS), as_of)
    credits = recent[recent["direction"] == "credit"]
    by_category = debits.groupby("category")["amount"].sum().round(2).to_dict()
    previous_by_category = previous[previous["direction"] == "debit"].groupby("category")["amount"].sum()
    trends = {
        str(cat): round((by_category.get(cat, 0.0) - float(prev)) / float(prev), 3)
        for cat, prev in previous_by_category.items()
        if prev > 0
    }
    monthly = debits.groupby(debits["date"].map(lambda d: d.strftime("%Y-%m")))["amount"].sum().round(2).to_dict()
    # Recurring payments need months of history, whatever the period asked about.
    history = user[(user["date"] <= as_of) & (user["date"] > as_of - timedelta(days=max(period_days, 120)))]
    return Summary(
        user_id=user_id,
        currency=str(user["currency"].iloc[0]),
        as_of=as_of,
        period_days=period_days,
        monthly_income=round(float(credits["amount"].sum()) / (INCOME_WINDOW_DAYS / 30.0), 2),
        spend=round(float(debits["amount"].sum()), 2),
        monthly_spend={str(k): float(v) for k, v in monthly.items()},
        by_category={str(k): float(v) for k, v in by_category.items()},
        recurring=recurring_payments(history[history["direction"] == "debit"]),
        trends=trends,
    )

"""From a transaction summary to the spending profile the prompt carries; the rules themselves
live in ``shared.budgeting`` so the fallback Lambda applies exactly the same ones."""

from __future__ import annotations

from shared.budgeting import RecurringPayment, SpendingProfile
from training_jobs.data.summaries import Summary

TOP_CATEGORIES = 5


def profile_from_summary(summary: Summary, period: str) -> SpendingProfile:
    top = [(category, round(summary.per_month(amount))) for category, amount in summary.top_categories(TOP_CATEGORIES)]
    listed = {category for category, _ in top}
    return SpendingProfile(
        currency=summary.currency,
        period=period,
        period_days=summary.period_days,
        as_of=summary.as_of.isoformat(),
        monthly_income=round(summary.monthly_income),
        monthly_spend=round(summary.per_month(summary.spend)),
        top_categories=tuple(top),
        recurring=tuple(RecurringPayment(r.merchant, r.category, round(r.monthly_amount)) for r in summary.recurring),
        trends=tuple((c, round(change * 100)) for c, change in sorted(summary.trends.items()) if c in listed),
    )

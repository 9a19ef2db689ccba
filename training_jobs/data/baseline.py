"""Rule-based budgeting suggestions: the advisor's training target and its deterministic fallback.

Each rule looks at a summary and, when it applies, proposes one action with an estimated monthly
saving. The two or three largest savings become the advice.
"""

from __future__ import annotations

from dataclasses import dataclass

from training_jobs.data.summaries import Summary

DISCRETIONARY = ("Dining", "Shopping", "Entertainment")
DISCRETIONARY_CUT = 0.15
TREND_ALERT = 0.20
TARGET_SAVINGS_RATE = 0.10
MAX_STEPS = 3
MIN_STEPS = 2
EMERGENCY_FUND_SHARE = 0.05


@dataclass(frozen=True)
class Suggestion:
    action: str
    monthly_savings: float
    rule: str


def _discretionary(summary: Summary) -> list[Suggestion]:
    found = []
    for category in DISCRETIONARY:
        monthly = summary.per_month(summary.by_category.get(category, 0.0))
        if monthly <= 0:
            continue
        saving = round(monthly * DISCRETIONARY_CUT, 2)
        found.append(
            Suggestion(
                f"Cut {category.lower()} spending by {DISCRETIONARY_CUT:.0%}, from about "
                f"{summary.currency} {monthly:,.0f} to {summary.currency} {monthly - saving:,.0f} a month",
                saving,
                "discretionary_cut",
            )
        )
    return found


def _subscriptions(summary: Summary) -> list[Suggestion]:
    subs = sorted((r for r in summary.recurring if r.category == "Entertainment"), key=lambda r: r.monthly_amount)
    if len(subs) < 2:
        return []
    cancel = subs[:2]
    saving = round(sum(r.monthly_amount for r in cancel), 2)
    names = " and ".join(r.merchant for r in cancel)
    return [
        Suggestion(
            f"Review your {len(subs)} subscriptions and cancel the least used, such as {names}", saving, "subscriptions"
        )
    ]


def _trends(summary: Summary) -> list[Suggestion]:
    found = []
    for category, change in sorted(summary.trends.items()):
        if change < TREND_ALERT or category in ("Rent", "Income"):
            continue
        current = summary.per_month(summary.by_category.get(category, 0.0))
        previous = current / (1 + change)
        saving = round(current - previous, 2)
        if saving > 0:
            found.append(
                Suggestion(
                    f"{category} rose {change:.0%} on the previous period; bring it back to about "
                    f"{summary.currency} {previous:,.0f} a month",
                    saving,
                    "trend",
                )
            )
    return found


def _pay_yourself_first(summary: Summary) -> list[Suggestion]:
    if summary.savings_rate >= TARGET_SAVINGS_RATE or summary.monthly_income <= 0:
        return []
    amount = round(summary.monthly_income * TARGET_SAVINGS_RATE, 2)
    return [
        Suggestion(
            f"Set up an automatic transfer of {summary.currency} {amount:,.0f} to savings on payday",
            amount,
            "pay_yourself_first",
        )
    ]


def _emergency_fund(summary: Summary) -> Suggestion:
    """Always applicable; used only when the data supports fewer than two other steps."""
    base = summary.monthly_income or summary.per_month(summary.spend)
    amount = round(max(base * EMERGENCY_FUND_SHARE, 1.0), 2)
    return Suggestion(
        f"Move {summary.currency} {amount:,.0f} a month into an emergency fund until it covers three months "
        "of spending",
        amount,
        "emergency_fund",
    )


def suggest(summary: Summary) -> list[Suggestion]:
    """Two or three actions, largest estimated saving first (ties broken by rule name)."""
    candidates = [*_trends(summary), *_subscriptions(summary), *_pay_yourself_first(summary), *_discretionary(summary)]
    chosen: list[Suggestion] = []
    seen_rules: set[str] = set()
    for suggestion in sorted(candidates, key=lambda s: (-s.monthly_savings, s.rule, s.action)):
        # Variety first: one suggestion per rule until the minimum is met.
        if suggestion.rule in seen_rules and len(chosen) < MIN_STEPS:
            continue
        chosen.append(suggestion)
        seen_rules.add(suggestion.rule)
        if len(chosen) == MAX_STEPS:
            break
    if len(chosen) < MIN_STEPS:
        chosen.extend(s for s in candidates if s not in chosen)
    if len(chosen) < MIN_STEPS:
        chosen.append(_emergency_fund(summary))
    return sorted(chosen[:MAX_STEPS], key=lambda s: (-s.monthly_savings, s.rule, s.action))


def render(summary: Summary, suggestions: list[Suggestion]) -> str:
    lines = [
        f"{i}. {s.action} (saves about {summary.currency} {s.monthly_savings:,.0f} a month)."
        for i, s in enumerate(suggestions, start=1)
    ]
    total = sum(s.monthly_savings for s in suggestions)
    lines.append(f"Together these could save about {summary.currency} {total:,.0f} a month.")
    return "\n".join(lines)

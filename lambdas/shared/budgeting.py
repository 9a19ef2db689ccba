"""Rule-based budgeting advice from a spending profile: the advisor's training target, and the
deterministic fallback for the ``budgeting_advice`` use case.

Pure Python on purpose: it runs in the fallback Lambda (no pandas there) and in the training
data pipeline. The profile travels as text in a fixed prompt format; :func:`parse_prompt` reads
it back exactly, so a target is always a function of its prompt alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

DISCRETIONARY = ("Dining", "Shopping", "Entertainment")
DISCRETIONARY_CUT = 0.15
TREND_ALERT = 0.20
TARGET_SAVINGS_RATE = 0.10
EMERGENCY_FUND_SHARE = 0.05
MIN_STEPS, MAX_STEPS = 2, 3
INSTRUCTION = "Give 2-3 actionable budgeting steps with estimated monthly savings."


@dataclass(frozen=True)
class RecurringPayment:
    merchant: str
    category: str
    monthly_amount: int


@dataclass(frozen=True)
class SpendingProfile:
    """Whole currency units per month, the precision a person reads and the prompt carries."""

    currency: str
    period: str
    period_days: int
    as_of: str
    monthly_income: int
    monthly_spend: int
    top_categories: tuple[tuple[str, int], ...]
    recurring: tuple[RecurringPayment, ...] = ()
    trends: tuple[tuple[str, int], ...] = field(default=())  # whole-percent change vs the previous period

    @property
    def savings_rate(self) -> float:
        return 0.0 if self.monthly_income <= 0 else (self.monthly_income - self.monthly_spend) / self.monthly_income


@dataclass(frozen=True)
class Suggestion:
    action: str
    monthly_savings: float
    rule: str


def _money(currency: str, amount: float) -> str:
    return f"{currency} {amount:,.0f}"


def format_prompt(p: SpendingProfile) -> str:
    top = ", ".join(f"{c} {_money(p.currency, v)}" for c, v in p.top_categories) or "none"
    recurring = ", ".join(f"{r.merchant} ({r.category}) {_money(p.currency, r.monthly_amount)}" for r in p.recurring)
    trends = ", ".join(f"{c} {v:+d}%" for c, v in p.trends)
    return (
        f"{INSTRUCTION}\n"
        f"Period: last {p.period} ({p.period_days} days) to {p.as_of}.\n"
        f"Monthly income: {_money(p.currency, p.monthly_income)}. "
        f"Monthly spending: {_money(p.currency, p.monthly_spend)}. Savings rate: {p.savings_rate:.0%}.\n"
        f"Top categories per month: {top}.\n"
        f"Recurring payments: {recurring or 'none'}.\n"
        f"Change vs previous period: {trends or 'none'}."
    )


_MONEY = r"([A-Z]{3}) ([\d,]+)"
_LINES = {
    "period": re.compile(r"^Period: last (\S+) \((\d+) days\) to (\d{4}-\d{2}-\d{2})\.$", re.M),
    "totals": re.compile(rf"^Monthly income: {_MONEY}\. Monthly spending: {_MONEY}\.", re.M),
    "top": re.compile(r"^Top categories per month: (.*)\.$", re.M),
    "recurring": re.compile(r"^Recurring payments: (.*)\.$", re.M),
    "trends": re.compile(r"^Change vs previous period: (.*)\.$", re.M),
}


def _amount(text: str) -> int:
    return int(text.replace(",", ""))


def parse_prompt(prompt: str) -> SpendingProfile | None:
    """The profile in a prompt written by :func:`format_prompt`, or None for free text."""
    found = {name: pattern.search(prompt) for name, pattern in _LINES.items()}
    if any(match is None for match in found.values()):
        return None
    period, totals = found["period"], found["totals"]
    if period is None or totals is None:  # already excluded above; this narrows the types
        return None
    currency = totals.group(1)

    def items(name: str, pattern: str) -> list[re.Match[str]]:
        match = found[name]
        body = match.group(1) if match else "none"
        return [] if body == "none" else [m for m in re.finditer(pattern, body)]

    return SpendingProfile(
        currency=currency,
        period=period.group(1),
        period_days=int(period.group(2)),
        as_of=period.group(3),
        monthly_income=_amount(totals.group(2)),
        monthly_spend=_amount(totals.group(4)),
        top_categories=tuple((m.group(1), _amount(m.group(3))) for m in items("top", rf"([A-Za-z]+) {_MONEY}")),
        recurring=tuple(
            RecurringPayment(m.group(1).strip(), m.group(2), _amount(m.group(4)))
            for m in items("recurring", rf"([^,(]+?) \(([A-Za-z]+)\) {_MONEY}")
        ),
        trends=tuple((m.group(1), int(m.group(2))) for m in items("trends", r"([A-Za-z]+) ([+-]\d+)%")),
    )


def _discretionary(p: SpendingProfile) -> list[Suggestion]:
    found = []
    for category, monthly in p.top_categories:
        if category not in DISCRETIONARY or monthly <= 0:
            continue
        saving = round(monthly * DISCRETIONARY_CUT, 2)
        found.append(
            Suggestion(
                f"Cut {category.lower()} spending by {DISCRETIONARY_CUT:.0%}, from about {_money(p.currency, monthly)} "
                f"to {_money(p.currency, monthly - saving)} a month",
                saving,
                "discretionary_cut",
            )
        )
    return found


def _subscriptions(p: SpendingProfile) -> list[Suggestion]:
    subs = sorted(
        (r for r in p.recurring if r.category == "Entertainment" and r.monthly_amount > 0),
        key=lambda r: (r.monthly_amount, r.merchant),
    )
    if len(subs) < 2:
        return []
    cancel = subs[:2]
    names = " and ".join(r.merchant for r in cancel)
    return [
        Suggestion(
            f"Review your {len(subs)} subscriptions and cancel the least used, such as {names}",
            float(sum(r.monthly_amount for r in cancel)),
            "subscriptions",
        )
    ]


def _trends(p: SpendingProfile) -> list[Suggestion]:
    current = dict(p.top_categories)
    found = []
    for category, change in p.trends:
        if change < TREND_ALERT * 100 or category not in current:
            continue
        previous = current[category] / (1 + change / 100)
        saving = round(current[category] - previous, 2)
        if saving > 0:
            found.append(
                Suggestion(
                    f"{category} rose {change}% on the previous period; bring it back to about "
                    f"{_money(p.currency, previous)} a month",
                    saving,
                    "trend",
                )
            )
    return found


def _pay_yourself_first(p: SpendingProfile) -> list[Suggestion]:
    if p.savings_rate >= TARGET_SAVINGS_RATE or p.monthly_income <= 0:
        return []
    amount = round(p.monthly_income * TARGET_SAVINGS_RATE, 2)
    return [
        Suggestion(
            f"Set up an automatic transfer of {_money(p.currency, amount)} to savings on payday",
            amount,
            "pay_yourself_first",
        )
    ]


def _generic(p: SpendingProfile) -> list[Suggestion]:
    """Always applicable; used only when the profile supports fewer than two specific steps."""
    fund = round(max((p.monthly_income or p.monthly_spend) * EMERGENCY_FUND_SHARE, 1.0), 2)
    steps = [
        Suggestion(
            f"Move {_money(p.currency, fund)} a month into an emergency fund until it covers three months of spending",
            fund,
            "emergency_fund",
        )
    ]
    if p.monthly_spend > 0:
        cap = round(max(p.monthly_spend * EMERGENCY_FUND_SHARE, 1.0), 2)
        steps.append(
            Suggestion(
                f"Set a monthly spending cap of {_money(p.currency, p.monthly_spend - cap)}, "
                "5% below what you spend now",
                cap,
                "spending_cap",
            )
        )
    else:
        amount = round(max(p.monthly_income * TARGET_SAVINGS_RATE, 1.0), 2)
        steps.append(
            Suggestion(
                f"Automate a transfer of {_money(p.currency, amount)} to savings on payday", amount, "automate_savings"
            )
        )
    return steps


def candidates(p: SpendingProfile) -> list[Suggestion]:
    """Every step the rules could propose for this profile, the generic ones included."""
    return [*_trends(p), *_subscriptions(p), *_pay_yourself_first(p), *_discretionary(p), *_generic(p)]


def suggest(p: SpendingProfile) -> list[Suggestion]:
    """Two or three actions, largest estimated saving first; one per rule while variety allows."""
    if p.monthly_income <= 0 and p.monthly_spend <= 0:
        raise ValueError("the profile shows no income and no spending: there is nothing to advise on")
    # A step that saves nothing is not advice (e.g. free subscriptions, or amounts that round to 0).
    rules_found = [*_trends(p), *_subscriptions(p), *_pay_yourself_first(p), *_discretionary(p)]
    candidates = [s for s in rules_found if s.monthly_savings > 0]
    chosen: list[Suggestion] = []
    rules: set[str] = set()
    for suggestion in sorted(candidates, key=lambda s: (-s.monthly_savings, s.rule, s.action)):
        if suggestion.rule in rules and len(chosen) < MIN_STEPS:
            continue
        chosen.append(suggestion)
        rules.add(suggestion.rule)
        if len(chosen) == MAX_STEPS:
            break
    for extra in [*candidates, *_generic(p)]:
        if len(chosen) >= MIN_STEPS:
            break
        if extra not in chosen:
            chosen.append(extra)
    return sorted(chosen, key=lambda s: (-s.monthly_savings, s.rule, s.action))


def render_step(p: SpendingProfile, number: int, s: Suggestion) -> str:
    return f"{number}. {s.action} (saves about {_money(p.currency, s.monthly_savings)} a month)."


def render_total(p: SpendingProfile, suggestions: list[Suggestion]) -> str:
    return f"Together these could save about {_money(p.currency, sum(s.monthly_savings for s in suggestions))} a month."


def render(p: SpendingProfile, suggestions: list[Suggestion]) -> str:
    lines = [render_step(p, i, s) for i, s in enumerate(suggestions, start=1)]
    return "\n".join([*lines, render_total(p, suggestions)])


def advise(prompt: str) -> str | None:
    """Rule-based advice for a profile prompt; None when the prompt carries no profile."""
    profile = parse_prompt(prompt)
    if profile is None or (profile.monthly_income <= 0 and profile.monthly_spend <= 0):
        return None
    return render(profile, suggest(profile))


# How a profile is made smaller to fit a model's window, least loss first: the fewest recurring
# payments, then the smallest categories (and their trends) go. The period and totals stay: the
# profile always describes the most recent period, and the income and spending it summarises.
COMPACTION = ((5, 5), (5, 3), (4, 2), (3, 1), (3, 0), (2, 0))


def compact(p: SpendingProfile, categories: int, recurring: int) -> SpendingProfile:
    """The profile with its ``categories`` largest categories and ``recurring`` largest payments."""
    top = tuple(sorted(p.top_categories, key=lambda c: (-c[1], c[0]))[:categories])
    kept = {c for c, _ in top}
    payments = tuple(sorted(p.recurring, key=lambda r: (-r.monthly_amount, r.merchant))[:recurring])
    return SpendingProfile(
        currency=p.currency,
        period=p.period,
        period_days=p.period_days,
        as_of=p.as_of,
        monthly_income=p.monthly_income,
        monthly_spend=p.monthly_spend,
        top_categories=top,
        recurring=tuple(sorted(payments, key=lambda r: r.merchant)),
        trends=tuple((c, v) for c, v in p.trends if c in kept),
    )


def fit_prompt(prompt: str, fits: Callable[[str], bool]) -> str | None:
    """``prompt`` itself if it fits; a profile prompt compacted (``COMPACTION``) until it does;
    None when nothing fits (free text over the window, or a profile too large even compacted)."""
    if fits(prompt):
        return prompt
    profile = parse_prompt(prompt)
    if profile is None or format_prompt(profile) != prompt.strip():
        return None  # not exactly a profile: compacting would drop what else it says
    for categories, recurring in COMPACTION:
        smaller = format_prompt(compact(profile, categories, recurring))
        if fits(smaller):
            return smaller
    return None


# The advisor's structured answer: it chooses the steps, code renders the amounts. A plan is two
# or three items separated by "; ", each naming a rule and, where the rule needs one, a category
# and a percentage: "trend Dining; cut Shopping 15%; subscriptions". Every amount in the rendered
# advice is then computed from the profile, never written by the model.
PLAN_SEPARATOR = "; "
PLAN_PERCENTS = (5, 10, 15, 20, 25, 30)
_PLAN_ITEM = re.compile(r"^(cut|trend|save|subscriptions|fund|cap|automate)(?: ([A-Za-z]+))?(?: (\d{1,3})%)?$")


class PlanError(ValueError):
    """A plan the profile does not support (an unknown rule, a category it lacks, a step that saves nothing)."""


def plan_item(s: Suggestion, p: SpendingProfile) -> str:
    """The plan item that renders ``s`` (the inverse of :func:`plan_step`)."""
    if s.rule == "discretionary_cut":
        category = next(c for c, _ in p.top_categories if s.action.startswith(f"Cut {c.lower()} "))
        return f"cut {category} {round(DISCRETIONARY_CUT * 100)}%"
    if s.rule == "trend":
        return f"trend {s.action.split(' ', 1)[0]}"
    if s.rule == "pay_yourself_first":
        return f"save {round(TARGET_SAVINGS_RATE * 100)}%"
    return {"subscriptions": "subscriptions", "emergency_fund": "fund", "spending_cap": "cap"}.get(s.rule, "automate")


def plan_of(p: SpendingProfile, suggestions: list[Suggestion]) -> str:
    return PLAN_SEPARATOR.join(plan_item(s, p) for s in suggestions)


def plan_step(p: SpendingProfile, item: str) -> Suggestion:
    """The costed step one plan item names, computed from the profile (PlanError if it cannot be)."""
    match = _PLAN_ITEM.match(item.strip())
    if match is None:
        raise PlanError(f"{item.strip()[:60]!r} is not a plan item")
    rule, category, percent = match.group(1), match.group(2), match.group(3)
    levels = dict(p.top_categories)
    if rule == "cut":
        if category not in levels or percent is None or int(percent) not in PLAN_PERCENTS:
            raise PlanError(f"{item.strip()!r}: cut needs a listed category and one of {PLAN_PERCENTS}%")
        share = int(percent) / 100
        saving = round(levels[category] * share, 2)
        step = Suggestion(
            f"Cut {category.lower()} spending by {share:.0%}, from about {_money(p.currency, levels[category])} "
            f"to {_money(p.currency, levels[category] - saving)} a month",
            saving,
            "discretionary_cut",
        )
    elif rule == "save":
        if percent is None or int(percent) not in PLAN_PERCENTS or p.monthly_income <= 0:
            raise PlanError(f"{item.strip()!r}: save needs an income and one of {PLAN_PERCENTS}%")
        amount = round(p.monthly_income * int(percent) / 100, 2)
        step = Suggestion(
            f"Set up an automatic transfer of {_money(p.currency, amount)} to savings on payday",
            amount,
            "pay_yourself_first",
        )
    else:
        wanted = {"trend": "trend", "subscriptions": "subscriptions", "fund": "emergency_fund"}
        wanted |= {"cap": "spending_cap", "automate": "automate_savings"}
        found = [s for s in candidates(p) if s.rule == wanted[rule]]
        if rule == "trend":
            found = [s for s in found if s.action.startswith(f"{category} rose ")]
        if not found:
            raise PlanError(f"{item.strip()!r}: the profile does not support this step")
        step = found[0]
    if step.monthly_savings <= 0:
        raise PlanError(f"{item.strip()!r} saves nothing for this profile")
    return step


def plan_steps(p: SpendingProfile, plan: str) -> list[Suggestion]:
    """The plan's steps; two or three distinct ones, or PlanError."""
    items = [i for i in plan.strip().rstrip(";.").split(";") if i.strip()]
    if not MIN_STEPS <= len(items) <= MAX_STEPS:
        raise PlanError(f"a plan has {MIN_STEPS} to {MAX_STEPS} steps; this one has {len(items)}")
    steps = [plan_step(p, item) for item in items]
    if len({s.action for s in steps}) != len(steps):
        raise PlanError("a plan names the same step twice")
    return steps


def render_plan(prompt: str, plan: str) -> str:
    """The advice a plan gives for the profile in ``prompt``, every amount computed here."""
    profile = parse_prompt(prompt)
    if profile is None:
        raise PlanError("the prompt carries no spending profile to render a plan with")
    return render(profile, plan_steps(profile, plan))


class PlanGrammar:
    """The plans a profile supports, for constrained decoding: the model still chooses the steps,
    but only among the ones this profile can render, so every plan it finishes is well-formed."""

    def __init__(self, p: SpendingProfile) -> None:
        names = [f"cut {c} {pct}%" for c, _ in p.top_categories for pct in PLAN_PERCENTS]
        names += [f"trend {c}" for c, _ in p.top_categories] + [f"save {pct}%" for pct in PLAN_PERCENTS]
        names += ["subscriptions", "fund", "cap", "automate"]
        self.items = []
        for name in names:
            try:
                plan_step(p, name)
            except PlanError:
                continue
            self.items.append(name)

    def accepts(self, text: str, final: bool) -> bool:
        """Whether ``text`` can still become a supported plan (``final``: whether it is one)."""
        *done, partial = text.split(";")
        done = [d.strip() for d in done]
        if len(done) > MAX_STEPS or len(set(done)) != len(done) or any(d not in self.items for d in done):
            return False
        if final:
            complete = [*done, partial.strip()] if partial.strip() else done
            return (
                MIN_STEPS <= len(complete) <= MAX_STEPS
                and all(c in self.items for c in complete)
                and (len(set(complete)) == len(complete))
            )
        # No step after the last one, and one space at most after a separator.
        if len(done) >= MAX_STEPS or (done and partial.startswith("  ")):
            return False
        partial = partial.lstrip()
        return any(item.startswith(partial) and item not in done for item in self.items)

"""The numeric grounding guard for budgeting advice: an answer a bank can stand behind.

Every amount, percentage and period in an answer must be traceable to the figures computed from
the person's transactions (the profile in the prompt, read by :func:`shared.budgeting.parse_prompt`,
the same code that writes the profile and the rule-based baseline), within stated rounding. An
answer also must not loop on a phrase, nor stop mid-sentence. Whichever tier wrote it (a Bedrock
model, the fine-tuned advisor, the fallback), an answer that fails is a task failure: the next
tier answers, and the client is told which check failed.

What counts as traceable (``Figures``):

- the profile's own figures: income, spending, what is left, each category, each recurring
  payment, the trends and the savings rate;
- what the rules derive from them: a cut of a recommendation percentage (``POLICY_PERCENTS``),
  the amount left after it, the pre-trend level and the rise, the subscriptions' sums, the
  emergency-fund and spending-cap steps;
- sums of two or three of those savings (a total), and any of them over a year or over the
  three months of an emergency fund.

Rounding: an amount is grounded within 1 currency unit or 1 %, whichever is larger (the prompt
carries whole units); a percentage within 1 point. Without a profile (a free-text question),
the figures are the numbers the person wrote, and what the same derivations give from them.

All checks are linear in the answer's length: regular expressions without nested repetition and
a fixed-window scan for loops.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import combinations

from shared.budgeting import (
    DISCRETIONARY_CUT,
    EMERGENCY_FUND_SHARE,
    TARGET_SAVINGS_RATE,
    TREND_ALERT,
    SpendingProfile,
    candidates,
    parse_prompt,
)

# Recommendation percentages an answer may propose (cut dining by 20%): the rules' own and the
# round steps an adviser uses. A percentage outside these must come from the person's figures.
POLICY_PERCENTS = frozenset({5, 10, 15, 20, 25, 30, 50, 100}) | {
    round(x * 100) for x in (DISCRETIONARY_CUT, EMERGENCY_FUND_SHARE, TARGET_SAVINGS_RATE, TREND_ALERT)
}
# The percentages the rules themselves apply (their cuts are always among the figures).
RULE_PERCENTS = frozenset(round(x * 100) for x in (DISCRETIONARY_CUT, EMERGENCY_FUND_SHARE, TARGET_SAVINGS_RATE))
# Periods the rules speak of besides the profile's own: a month, a year, an emergency fund's three months.
POLICY_MONTHS = frozenset({1, 3, 12})
EMERGENCY_MONTHS = 3
RECENT = 12  # amounts a total may add up (keeps the check linear: at most 12C3 sums per amount)
MAX_COUNT = 12  # a bare integer up to this is a count ("your 3 subscriptions", "2-3 steps")
LOOP_REPEATS = 3  # the same phrase this many times in a row is a loop
LOOP_MAX_WORDS = 8
MAX_ANSWER_CHARS = 20_000  # longer than any answer the tiers' token limits allow; checked as cut


class Check(StrEnum):
    UNGROUNDED_AMOUNT = "ungrounded_amount"
    UNGROUNDED_PERCENT = "ungrounded_percent"
    UNGROUNDED_PERIOD = "ungrounded_period"
    REPEATED_PHRASE = "repeated_phrase"
    CUT_OFF = "cut_off"


# The failure code each check raises (shared.failures classifies them as task failures).
CODES = {
    Check.UNGROUNDED_AMOUNT: "UngroundedAmount",
    Check.UNGROUNDED_PERCENT: "UngroundedPercent",
    Check.UNGROUNDED_PERIOD: "UngroundedPeriod",
    Check.REPEATED_PHRASE: "RepeatedPhrase",
    Check.CUT_OFF: "CutOffAnswer",
}


@dataclass(frozen=True)
class Verdict:
    check: Check | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.check is None

    @property
    def code(self) -> str:
        return CODES[self.check] if self.check is not None else ""


@dataclass
class Figures:
    amounts: set[float] = field(default_factory=set)
    percents: set[float] = field(default_factory=set)
    months: set[float] = field(default_factory=set)
    currency: str | None = None  # the profile's; an amount in another currency is not its figure
    # Amounts an answer may cut by a percentage it names (a category, income, spending).
    levels: list[float] = field(default_factory=list)

    def cut_by(self, percents: Iterable[float]) -> Figures:
        """These figures and the cuts by ``percents`` (grounded ones) of every level, monthly and yearly."""
        cuts, after = _cuts(self.levels, percents)
        amounts = self.amounts | cuts | after
        return Figures(amounts, self.percents, self.months, self.currency, self.levels)

    def has_amount(self, value: float) -> bool:
        tolerance = max(1.0, abs(value) * 0.01)
        return any(abs(value - g) <= tolerance for g in self.amounts)

    def has_percent(self, value: float) -> bool:
        return any(abs(value - g) <= 1.0 for g in self.percents)

    def has_months(self, value: float) -> bool:
        return any(abs(value - g) <= 0.5 for g in self.months)


_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_CURRENCY = r"[$£€]|\b(?:USD|GBP|EUR|CAD|AUD|CHF|JPY|INR|SGD|HKD)\b"
_AMOUNT = re.compile(
    rf"(?:{_CURRENCY})\s?({_NUMBER})|({_NUMBER})\s?(?:USD|GBP|EUR|dollars|pounds|euros)\b", re.IGNORECASE
)
_PERCENT = re.compile(rf"({_NUMBER})\s?(?:%|per ?cent\b)", re.IGNORECASE)
_PERIOD = re.compile(rf"\b({_NUMBER}|{'|'.join(_WORDS)})[\s-]+(day|week|month|year)s?\b", re.IGNORECASE)
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_LIST_MARKER = re.compile(r"^\s*\d{1,2}[.)]\s", re.MULTILINE)
# A bare number, not part of an identifier or a range ("claude-haiku-4-5", "v1:0", "2-3 steps").
_BARE = re.compile(rf"(?<![\w.,:-])({_NUMBER})(?![\w%:-])")
_TOKEN = re.compile(r"[\w%$£€.,'-]+")
_ENDING = re.compile(r"[.!?][\"')\]]*\s*$")
_DAYS_PER_UNIT = {"day": 1 / 30, "week": 7 / 30, "month": 1.0, "year": 12.0}


_CODES = frozenset({"USD", "GBP", "EUR", "CAD", "AUD", "CHF", "JPY", "INR", "SGD", "HKD"})
_SYMBOLS = {"$": "$", "dollars": "$", "£": "GBP", "pounds": "GBP", "€": "EUR", "euros": "EUR"}
_DOLLARS = frozenset({"USD", "CAD", "AUD", "SGD", "HKD"})


def _unit(match: str) -> str | None:
    """The currency an amount names: an ISO code, "$" for any dollar, or None."""
    for token in re.findall(r"[A-Za-z]+|[$£€]", match):
        if token.upper() in _CODES:
            return token.upper()
        if token.lower() in _SYMBOLS:
            return _SYMBOLS[token.lower()]
    return None


def _same_currency(unit: str, currency: str) -> bool:
    return unit == currency or (unit == "$" and currency in _DOLLARS)


def _cuts(levels: Iterable[float], percents: Iterable[float]) -> tuple[set[float], set[float]]:
    """Each level cut by each percentage: what the cut saves, and what is left."""
    pairs = [(v, round(v * pct / 100, 2)) for v in levels for pct in percents]
    return {cut for _, cut in pairs}, {v - cut for v, cut in pairs}


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _spans_free(text: str, pattern: re.Pattern[str]) -> str:
    """``text`` with the matches of ``pattern`` blanked, so that later patterns skip them."""
    return pattern.sub(lambda m: " " * len(m.group(0)), text)


def profile_figures(p: SpendingProfile) -> Figures:
    """What an answer may say about this profile (see the module's docstring)."""
    levels = [float(v) for _, v in p.top_categories] + [float(p.monthly_income), float(p.monthly_spend)]
    base = [*levels, float(p.monthly_income - p.monthly_spend), *(float(r.monthly_amount) for r in p.recurring)]
    cuts, after_cut = _cuts(levels, RULE_PERCENTS)
    current = dict(p.top_categories)
    before = {c: current[c] / (1 + t / 100) for c, t in p.trends if c in current and t > -100}
    trend_levels = set(before.values()) | {current[c] - level for c, level in before.items()}
    # A list, not a set: two steps may save the same amount, and a total adds both.
    steps = sorted(s.monthly_savings for s in candidates(p) if s.monthly_savings > 0)
    entertainment = sorted(r.monthly_amount for r in p.recurring if r.category == "Entertainment")
    subscriptions = {float(sum(entertainment[:n])) for n in range(2, len(entertainment) + 1)}
    # Any two: a profile compacted to fit a model's window keeps the largest payments only.
    subscriptions |= {float(a + b) for a, b in combinations(entertainment, 2)}
    monthly = set(base) | cuts | after_cut | trend_levels | set(steps) | subscriptions
    # Over an emergency fund's months: the spending. Totals and yearly figures of what the answer
    # itself says are checked against its own amounts (check_numbers).
    amounts = monthly | {float(p.monthly_spend) * EMERGENCY_MONTHS}
    percents = {float(p.savings_rate * 100), *(float(v) for _, v in p.trends), *map(float, POLICY_PERCENTS)}
    if p.monthly_spend > 0:
        percents |= {100 * v / p.monthly_spend for _, v in p.top_categories}
    if p.monthly_income > 0:
        percents |= {100 * v / p.monthly_income for _, v in p.top_categories}
    months = set(map(float, POLICY_MONTHS)) | {p.period_days / 30.0}
    return Figures(amounts, percents, months, p.currency, levels)


def text_figures(prompt: str) -> Figures:
    """A free-text question's own numbers, and what the rules' derivations give from them."""
    clean = _spans_free(prompt, _DATE)
    percents = {_num(m.group(1)) for m in _PERCENT.finditer(clean)} | set(map(float, POLICY_PERCENTS))
    numbers = [_num(m.group(1) or m.group(2)) for m in _AMOUNT.finditer(clean)]
    numbers += [_num(m.group(1)) for m in _BARE.finditer(_spans_free(clean, _PERCENT))]
    amounts: set[float] = set(numbers) | {a * 12 for a in numbers} | {a / 12 for a in numbers}
    cuts, after = _cuts(numbers, RULE_PERCENTS)
    amounts |= cuts | after
    months = set(map(float, POLICY_MONTHS))
    for m in _PERIOD.finditer(clean):
        months.add(_months(m.group(1), m.group(2)))
    return Figures(amounts, percents, months, None, numbers)


def figures_for(prompt: str) -> Figures:
    profile = parse_prompt(prompt)
    return profile_figures(profile) if profile is not None else text_figures(prompt)


def _months(count: str, unit: str) -> float:
    value = _WORDS.get(count.lower()) or _num(count)
    return value * _DAYS_PER_UNIT[unit.lower()]


def repeated_phrase(text: str) -> str | None:
    """The first phrase of up to ``LOOP_MAX_WORDS`` words said ``LOOP_REPEATS`` times in a row."""
    words = [w.strip(".,;:!?\"'()").lower() for w in _TOKEN.findall(text)]
    words = [w for w in words if w]
    # For each phrase length, each alignment: consecutive blocks compared once (O(words x 36)).
    for size in range(1, LOOP_MAX_WORDS + 1):
        for start in range(size):
            run = 1
            for i in range(start + size, len(words) - size + 1, size):
                if words[i : i + size] == words[i - size : i]:
                    run += 1
                    if run >= LOOP_REPEATS:
                        return " ".join(words[i : i + size])
                else:
                    run = 1
    return None


def check(answer: str, prompt: str, figures: Figures | None = None) -> Verdict:
    """The first check ``answer`` fails against the figures of ``prompt``, or an OK verdict."""
    text = answer.strip()
    if not text:
        return Verdict(Check.CUT_OFF, "the answer is empty")
    if len(text) > MAX_ANSWER_CHARS:
        return Verdict(Check.CUT_OFF, f"the answer is {len(text)} characters long")
    looped = _loop_verdict(text)
    if looped is not None:
        return looped
    if not _ENDING.search(text):
        return Verdict(Check.CUT_OFF, f"the answer stops mid-sentence: ...{text[-40:]!r}")
    return check_numbers(text, figures if figures is not None else figures_for(prompt))


def check_numbers(text: str, figures: Figures) -> Verdict:
    """Every percentage, period and amount in ``text`` against ``figures``; nothing else."""
    clean = _spans_free(_spans_free(text, _DATE), _LIST_MARKER)
    named: list[float] = []
    for m in _PERCENT.finditer(clean):
        value = _num(m.group(1))
        if not figures.has_percent(value):
            return Verdict(Check.UNGROUNDED_PERCENT, f"{m.group(0).strip()} is not among the person's figures")
        named.append(value)
    clean = _spans_free(clean, _PERCENT)
    for m in _PERIOD.finditer(clean):
        if not figures.has_months(_months(m.group(1), m.group(2))):
            return Verdict(Check.UNGROUNDED_PERIOD, f"{m.group(0).strip()!r} is not a period the figures speak of")
    return _check_amounts(_spans_free(clean, _PERIOD), figures.cut_by(named))


def _check_amounts(clean: str, figures: Figures) -> Verdict:
    """Amounts with a currency, then bare numbers (a count up to ``MAX_COUNT`` excepted), in order:
    a total or a yearly figure may build on the amounts said before it."""
    said: list[float] = []
    for m in _AMOUNT.finditer(clean):
        value = _num(m.group(1) or m.group(2))
        unit = _unit(m.group(0))
        if figures.currency and unit and not _same_currency(unit, figures.currency):
            return Verdict(
                Check.UNGROUNDED_AMOUNT, f"{m.group(0).strip()} is not in {figures.currency}, the person's currency"
            )
        if not (figures.has_amount(value) or _follows(value, said)):
            return Verdict(Check.UNGROUNDED_AMOUNT, f"{m.group(0).strip()} cannot be traced to the person's figures")
        said.append(value)
    for m in _BARE.finditer(_spans_free(clean, _AMOUNT)):
        value = _num(m.group(1))
        if value <= MAX_COUNT and value == int(value):
            continue
        if not (figures.has_amount(value) or _follows(value, said)):
            return Verdict(Check.UNGROUNDED_AMOUNT, f"{m.group(1)} cannot be traced to the person's figures")
    return Verdict()


def _follows(value: float, said: list[float]) -> bool:
    """Whether ``value`` is a total of two or three amounts the answer already gave, or one of
    them over a year or over an emergency fund's months (the last ``RECENT`` amounts only)."""
    recent = said[-RECENT:]
    derived = [a * 12 for a in recent] + [a * EMERGENCY_MONTHS for a in recent]
    derived += [a + b for a, b in combinations(recent, 2)] + [a + b + c for a, b, c in combinations(recent, 3)]
    tolerance = max(1.0, abs(value) * 0.01)
    return any(abs(value - d) <= tolerance for d in derived)


def check_so_far(text: str, figures: Figures) -> Verdict:
    """The checks that hold for the start of an answer (its figures, no loop); the cut-off check
    waits for the end."""
    return _loop_verdict(text) or check_numbers(text, figures)


def _loop_verdict(text: str) -> Verdict | None:
    loop = repeated_phrase(text)
    if loop is None:
        return None
    return Verdict(Check.REPEATED_PHRASE, f"{loop!r} repeated {LOOP_REPEATS} or more times in a row")

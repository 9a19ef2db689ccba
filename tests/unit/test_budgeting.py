"""The budgeting rules: the prompt format round-trips, and advice is costed and well-formed."""

from hypothesis import given
from hypothesis import strategies as st

from shared.budgeting import (
    MAX_STEPS,
    MIN_STEPS,
    RecurringPayment,
    SpendingProfile,
    advise,
    format_prompt,
    parse_prompt,
    suggest,
)

CATEGORIES = ["Groceries", "Dining", "Transport", "Utilities", "Shopping", "Entertainment", "Health", "Other"]
amounts = st.integers(min_value=0, max_value=2_000_000)
profiles = st.builds(
    SpendingProfile,
    currency=st.sampled_from(["HKD", "USD", "SGD"]),
    period=st.sampled_from(["week", "month", "year", "45d", "90d", "180d"]),
    period_days=st.integers(min_value=1, max_value=730),
    as_of=st.dates().map(lambda d: d.strftime("%Y-%m-%d")).filter(lambda d: len(d) == 10),
    monthly_income=amounts,
    monthly_spend=amounts,
    top_categories=st.lists(st.tuples(st.sampled_from(CATEGORIES), amounts), max_size=5, unique_by=lambda t: t[0]).map(
        tuple
    ),
    recurring=st.lists(
        st.builds(
            RecurringPayment,
            merchant=st.sampled_from(["StreamFlix", "TuneBox", "Harbour Property Mgmt", "FitLife Gym"]),
            category=st.sampled_from(["Entertainment", "Rent"]),
            monthly_amount=amounts,
        ),
        max_size=4,
        unique_by=lambda r: r.merchant,
    ).map(tuple),
    trends=st.lists(
        st.tuples(st.sampled_from(CATEGORIES), st.integers(-100, 500)), max_size=4, unique_by=lambda t: t[0]
    ).map(tuple),
)


@given(profiles)
def test_prompt_format_round_trips(profile):
    assert parse_prompt(format_prompt(profile)) == profile


@given(profiles.filter(lambda p: p.monthly_income > 0 or p.monthly_spend > 0))
def test_advice_always_has_two_or_three_costed_steps(profile):
    steps = suggest(profile)
    assert MIN_STEPS <= len(steps) <= MAX_STEPS
    assert all(s.monthly_savings > 0 for s in steps)
    assert [s.monthly_savings for s in steps] == sorted((s.monthly_savings for s in steps), reverse=True)


def test_a_profile_without_income_or_spending_gets_no_advice():
    empty = SpendingProfile(
        currency="USD",
        period="week",
        period_days=7,
        as_of="2025-01-07",
        monthly_income=0,
        monthly_spend=0,
        top_categories=(),
    )
    assert advise(format_prompt(empty)) is None


def test_free_text_has_no_profile():
    assert parse_prompt("How can I save money?") is None
    assert advise("How can I save money?") is None


def test_trend_and_subscription_rules_fire_on_a_concrete_profile():
    profile = SpendingProfile(
        currency="USD",
        period="month",
        period_days=30,
        as_of="2025-12-31",
        monthly_income=5000,
        monthly_spend=4800,
        top_categories=(("Dining", 600), ("Shopping", 300)),
        recurring=(
            RecurringPayment("StreamFlix", "Entertainment", 16),
            RecurringPayment("TuneBox", "Entertainment", 11),
        ),
        trends=(("Dining", 50),),
    )
    text = advise(format_prompt(profile))
    assert text is not None
    assert text.startswith("1. Set up an automatic transfer of USD 500 to savings on payday")
    assert "Dining rose 50% on the previous period; bring it back to about USD 400 a month" in text


def test_free_subscriptions_are_never_suggested_as_savings():
    """Found by hypothesis on a fresh clone: two zero-cost subscriptions gave a 0-saving step."""
    from shared.budgeting import RecurringPayment, SpendingProfile

    profile = SpendingProfile(
        currency="HKD",
        period="week",
        period_days=1,
        as_of="2000-01-01",
        monthly_income=0,
        monthly_spend=1,
        top_categories=(),
        recurring=(
            RecurringPayment(merchant="GameVault", category="Entertainment", monthly_amount=0),
            RecurringPayment(merchant="TuneBox", category="Entertainment", monthly_amount=0),
        ),
        trends=(),
    )
    steps = suggest(profile)
    assert MIN_STEPS <= len(steps) <= MAX_STEPS
    assert all(s.monthly_savings > 0 for s in steps)
    assert all(s.rule != "subscriptions" for s in steps)


# Income, spending and two categories: no trends, no recurring payments.
PLAIN_PROFILE = SpendingProfile(
    currency="USD",
    period="month",
    period_days=30,
    as_of="2026-06-30",
    monthly_income=4_000,
    monthly_spend=3_000,
    top_categories=(("Dining", 400), ("Rent", 1_500)),
)


@given(profiles.filter(lambda p: p.monthly_income > 0 or p.monthly_spend > 0))
def test_the_rules_advice_is_its_plan_rendered(profile):
    from shared.budgeting import plan_of, render, render_plan

    steps = suggest(profile)
    prompt = format_prompt(profile)
    assert render_plan(prompt, plan_of(profile, steps)) == render(profile, steps)


def test_a_plan_the_profile_does_not_support_is_refused_with_the_reason():
    import pytest

    from shared.budgeting import PlanError, render_plan

    profile = PLAIN_PROFILE
    prompt = format_prompt(profile)
    assert render_plan(prompt, "cut Dining 20%; save 10%").startswith(
        "1. Cut dining spending by 20%, from about USD 400 to USD 320 a month (saves about USD 80 a month)."
    )
    for plan, reason in [
        ("cut Dining 20%", "2 to 3 steps"),
        ("cut Travel 20%; fund", "listed category"),
        ("cut Dining 17%; fund", "one of"),
        ("trend Dining; fund", "does not support"),
        ("subscriptions; fund", "does not support"),
        ("fund; fund", "same step twice"),
        ("buy bitcoin; fund", "not a plan item"),
    ]:
        with pytest.raises(PlanError, match=reason):
            render_plan(prompt, plan)
    with pytest.raises(PlanError, match="no spending profile"):
        render_plan("How do I save?", "fund; cap")


def test_the_plan_grammar_accepts_only_what_the_profile_supports():
    from shared.budgeting import PlanGrammar

    profile = PLAIN_PROFILE
    grammar = PlanGrammar(profile)
    assert "cut Dining 15%" in grammar.items and "trend Dining" not in grammar.items  # no trend in the profile
    assert grammar.accepts("cut Din", False) and grammar.accepts("cut Dining 15%; fu", False)
    assert not grammar.accepts("cut Travel", False) and not grammar.accepts("trend D", False)
    assert not grammar.accepts("fund; fund", False)  # the same step twice
    assert not grammar.accepts("fund; cap; save 10%; c", False)  # a fourth step
    assert not grammar.accepts("fund;   c", False)  # spaces without end
    assert grammar.accepts("fund; cap", True) and not grammar.accepts("fund", True)  # two steps at least
    assert not grammar.accepts("fund; ca", True)

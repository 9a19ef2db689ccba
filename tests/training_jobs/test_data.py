"""Synthetic data: deterministic, schema-checked, and split without leaking users."""

import json
import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml

from shared.budgeting import (
    MAX_STEPS,
    MIN_STEPS,
    format_prompt,
    parse_prompt,
    plan_of,
    render,
    render_plan,
    suggest,
)
from training_jobs.data.advisor_pairs import split_users, write_pairs
from training_jobs.data.baseline import profile_from_summary
from training_jobs.data.config import Category, ConfigError, load_config
from training_jobs.data.generate import main
from training_jobs.data.summaries import recurring_payments, summarize
from training_jobs.data.transactions import COLUMNS, generate, read, write

CONFIG = Path("training_jobs/configs/synthetic.yaml")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    raw = yaml.safe_load(CONFIG.read_text())
    raw.update(users=6, months=5)
    raw["advisor"].update(as_of_windows=2)
    path = tmp_path_factory.mktemp("cfg") / "small.yaml"
    path.write_text(yaml.safe_dump(raw))
    config = load_config(path)
    frame, users = generate(config)
    return path, config, frame, users


def test_schema_and_values(small):
    _, config, frame, _ = small
    assert list(frame.columns) == COLUMNS
    assert frame["transaction_id"].is_unique
    assert set(frame["category"]) <= {c.value for c in Category} | {"Income"}
    assert set(frame["category"]) >= {c.value for c in Category} - {"Other", "Health"}
    assert set(frame["currency"]) <= set(config.currencies)
    assert set(frame["direction"]) == {"debit", "credit"}
    assert (frame["amount"] > 0).all()
    assert frame.groupby("user_id")["currency"].nunique().max() == 1
    assert min(frame["date"]) >= config.start_date
    assert max(frame["date"]) < date(2025, 6, 1)
    income = frame[frame["category"] == "Income"].groupby("user_id")["amount"]
    assert (income.count() == config.months).all()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_seed_gives_the_same_bytes(small, tmp_path, fmt):
    _, config, frame, _ = small
    again, _ = generate(config)
    first = write(frame, tmp_path / "a", fmt)
    second = write(again, tmp_path / "b", fmt)
    assert first.read_bytes() == second.read_bytes()
    pd.testing.assert_frame_equal(read(first), frame, check_dtype=False)


def test_another_seed_gives_other_data(small):
    _, config, frame, _ = small
    other, _ = generate(config.model_copy(update={"seed": config.seed + 1}))
    assert not frame["amount"].equals(other["amount"])


def test_adding_users_keeps_existing_users_transactions(small):
    _, config, frame, _ = small
    more, _ = generate(config.model_copy(update={"users": config.users + 3}))
    first = more[more["user_id"].isin(frame["user_id"].unique())].drop(columns="transaction_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(first, frame.drop(columns="transaction_id").reset_index(drop=True))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"users": 0}, "users"),
        ({"currencies": ["EUR"]}, "currencies"),
        ({"income_range": [5000, 100]}, "low <= high"),
        ({"merchants": {"Rent": ["X"]}}, "missing"),
        ({"unknown_key": 1}, "unknown_key"),
    ],
)
def test_bad_config_is_rejected_before_generation(tmp_path, change, message):
    raw = yaml.safe_load(CONFIG.read_text())
    raw.update(change)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_config_file_is_a_clear_error(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_summary_on_hand_made_transactions():
    rows = []
    for month in range(1, 5):
        rows += [
            ("u1", date(2025, month, 25), "Payroll", "Income", 5000.0, "USD", "credit"),
            ("u1", date(2025, month, 3), "StreamFlix", "Entertainment", 15.99, "USD", "debit"),
            ("u1", date(2025, month, 10), "Noodle House", "Dining", 100.0 * month, "USD", "debit"),
        ]
    frame = pd.DataFrame(rows, columns=COLUMNS[1:])
    summary = summarize(frame, "u1", date(2025, 4, 30), 30)
    assert summary.by_category == {"Dining": 400.0, "Entertainment": 15.99}
    assert summary.monthly_income == 5000.0
    assert summary.trends["Dining"] == pytest.approx(1 / 3, abs=1e-3)
    assert [r.merchant for r in summary.recurring] == ["StreamFlix"]
    assert recurring_payments(frame[frame["merchant"] == "Noodle House"]) == []


def test_baseline_gives_two_or_three_costed_steps_in_order(small):
    _, _, frame, users = small
    for user in users:
        for days in (7, 30, 90):
            steps = suggest(profile_from_summary(summarize(frame, user.user_id, date(2025, 5, 31), days), "x"))
            assert MIN_STEPS <= len(steps) <= MAX_STEPS
            savings = [s.monthly_savings for s in steps]
            assert all(v > 0 for v in savings)
            assert savings == sorted(savings, reverse=True)


def test_split_is_stable_and_disjoint():
    users = [f"u{i:03d}" for i in range(100)]
    train, evaluation = split_users(users, 0.2, seed=1)
    assert set(train).isdisjoint(evaluation)
    assert sorted(train + evaluation) == users
    assert len(evaluation) == 20
    assert split_users(users, 0.2, seed=1) == (train, evaluation)


def test_pairs_leak_no_user_and_cover_windows_and_periods(small, tmp_path):
    _, config, frame, _ = small
    counts = write_pairs(frame, config.advisor, config.seed, tmp_path)
    train = [json.loads(line) for line in (tmp_path / "train.jsonl").open()]
    evaluation = [json.loads(line) for line in (tmp_path / "eval.jsonl").open()]
    assert counts == {"train": len(train), "eval": len(evaluation)}
    assert {p["user_id"] for p in train}.isdisjoint({p["user_id"] for p in evaluation})
    assert {p["period"] for p in train} == {"week", "month", "year", "45d", "90d", "180d"}
    assert len({p["as_of"] for p in train}) == config.advisor.as_of_windows
    for pair in train:
        assert pair["prompt"].startswith("Give 2-3 actionable budgeting steps")
        assert "Monthly income" in pair["prompt"]
        assert pair["advice"].startswith("1. ") and "a month" in pair["advice"]
        # The target is the plan: which steps, never an amount (code renders those).
        assert not re.search(r"\d", re.sub(r"\d+%", "", pair["target"]))  # percentages only
        assert render_plan(pair["prompt"], pair["target"]) == pair["advice"]


def test_targets_are_a_function_of_the_prompt_alone(small, tmp_path):
    _, config, frame, _ = small
    write_pairs(frame, config.advisor, config.seed, tmp_path)
    for line in (tmp_path / "train.jsonl").open():
        pair = json.loads(line)
        profile = parse_prompt(pair["prompt"])
        assert profile is not None
        assert format_prompt(profile) == pair["prompt"]
        assert render(profile, suggest(profile)) == pair["advice"]
        assert plan_of(profile, suggest(profile)) == pair["target"]


def test_render_totals_the_savings(small):
    _, _, frame, users = small
    summary = profile_from_summary(summarize(frame, users[0].user_id, date(2025, 5, 31), 90), "90d")
    steps = suggest(summary)
    text = render(summary, steps)
    assert text.count("\n") == len(steps)
    assert f"{sum(s.monthly_savings for s in steps):,.0f} a month" in text.splitlines()[-1]

"""Seeded synthetic bank transactions: income, rent, subscriptions and variable spending.

The same config and seed always give the same rows and, for a given pandas/pyarrow version, the
same file bytes.
"""

from __future__ import annotations

import calendar
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from faker import Faker

from training_jobs.data.config import VARIABLE_CATEGORIES, Category, DataConfig

COLUMNS = ["transaction_id", "user_id", "date", "merchant", "category", "amount", "currency", "direction"]
INCOME_CATEGORY = "Income"


@dataclass(frozen=True)
class UserProfile:
    user_id: str
    name: str
    city: str
    currency: str
    monthly_income: float
    rent: float


def _month_starts(start: date, months: int) -> list[date]:
    starts = []
    year, month = start.year, start.month
    for _ in range(months):
        starts.append(date(year, month, 1))
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return starts


def _day(month_start: date, day: int) -> date:
    last = calendar.monthrange(month_start.year, month_start.month)[1]
    return month_start + timedelta(days=min(day, last) - 1)


def profiles(config: DataConfig) -> list[UserProfile]:
    fake = Faker()
    fake.seed_instance(config.seed)
    rng = np.random.default_rng(config.seed)
    result = []
    for i in range(config.users):
        result.append(
            UserProfile(
                user_id=f"u{i + 1:05d}",
                name=fake.name(),
                city=fake.city(),
                currency=str(rng.choice(config.currencies)),
                monthly_income=round(float(rng.uniform(*config.income_range)), -1),
                rent=round(float(rng.uniform(*config.rent_range)), -1),
            )
        )
    return result


def _user_rows(config: DataConfig, user: UserProfile, rng: np.random.Generator) -> list[tuple]:
    rows: list[tuple] = []
    months = _month_starts(config.start_date, config.months)
    rent_merchant = str(rng.choice(config.merchants[Category.RENT]))
    n_subs = int(rng.integers(config.subscriptions.count[0], config.subscriptions.count[1] + 1))
    subs = rng.choice(config.subscription_merchants, size=n_subs, replace=False)
    sub_amounts = np.round(rng.uniform(*config.subscriptions.amount, size=n_subs), 2)
    sub_days = rng.integers(1, 29, size=n_subs)
    # Each user has a personal level per category, so users differ in where their money goes.
    levels = {c: rng.uniform(*config.variable_spend_per_month[c]) for c in VARIABLE_CATEGORIES}
    for month in months:
        rows.append((user.user_id, _day(month, 25), "Payroll", INCOME_CATEGORY, user.monthly_income, "credit"))
        rows.append((user.user_id, _day(month, 1), rent_merchant, Category.RENT.value, user.rent, "debit"))
        for merchant, amount, day in zip(subs, sub_amounts, sub_days, strict=True):
            rows.append(
                (
                    user.user_id,
                    _day(month, int(day)),
                    str(merchant),
                    Category.ENTERTAINMENT.value,
                    float(amount),
                    "debit",
                )
            )
        days_in_month = calendar.monthrange(month.year, month.month)[1]
        for category in VARIABLE_CATEGORIES:
            budget = levels[category] * rng.uniform(0.8, 1.2)
            count = int(rng.poisson(6 if category in (Category.GROCERIES, Category.DINING) else 3))
            if budget < 1 or count == 0:
                continue
            shares = rng.dirichlet(np.ones(count))
            days = rng.integers(1, days_in_month + 1, size=count)
            for share, day in zip(shares, days, strict=True):
                amount = round(float(budget * share), 2)
                if amount >= 0.5:
                    merchant = str(rng.choice(config.merchants[category]))
                    rows.append((user.user_id, _day(month, int(day)), merchant, category.value, amount, "debit"))
    return rows


def generate(config: DataConfig, progress: bool = False) -> tuple[pd.DataFrame, list[UserProfile]]:
    """All users' transactions, sorted by user and date, with stable ids."""
    users = profiles(config)
    rows: list[tuple] = []
    for i, user in enumerate(users):
        # One stream per user: adding users never changes the existing users' transactions.
        rng = np.random.default_rng([config.seed, i])
        rows.extend(_user_rows(config, user, rng))
        if progress and ((i + 1) % max(1, len(users) // 10) == 0 or i + 1 == len(users)):
            print(f"generated transactions for {i + 1}/{len(users)} users", file=sys.stderr, flush=True)
    frame = pd.DataFrame(rows, columns=["user_id", "date", "merchant", "category", "amount", "direction"])
    frame["currency"] = frame["user_id"].map({u.user_id: u.currency for u in users})
    frame = frame.sort_values(["user_id", "date", "direction", "merchant", "amount"], kind="mergesort")
    frame = frame.reset_index(drop=True)
    frame.insert(0, "transaction_id", [f"t{i + 1:08d}" for i in range(len(frame))])
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    return frame[COLUMNS], users


def write(frame: pd.DataFrame, out_dir: Path, output_format: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    if output_format == "csv":
        path = out_dir / "transactions.csv"
        frame.to_csv(path, index=False, float_format="%.2f", lineterminator="\n")
    else:
        path = out_dir / "transactions.parquet"
        frame.to_parquet(path, index=False, engine="pyarrow", compression="zstd")
    return path


def read(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    return frame

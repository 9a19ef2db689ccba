"""The data generator's configuration: one YAML file, validated before anything is generated."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class Category(StrEnum):
    RENT = "Rent"
    GROCERIES = "Groceries"
    DINING = "Dining"
    TRANSPORT = "Transport"
    UTILITIES = "Utilities"
    SHOPPING = "Shopping"
    ENTERTAINMENT = "Entertainment"
    HEALTH = "Health"
    OTHER = "Other"


VARIABLE_CATEGORIES = tuple(c for c in Category if c is not Category.RENT)
PERIOD_DAYS = {"week": 7, "month": 30, "year": 365}


class ConfigError(ValueError):
    """The data configuration is unusable; the message says which field and why."""


Range = tuple[float, float]


def _ordered(value: Range) -> Range:
    low, high = value
    if low < 0 or high < low:
        raise ValueError(f"range {list(value)} must be non-negative and [low, high] with low <= high")
    return value


class Subscriptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    count: tuple[int, int]
    amount: Range

    @field_validator("count", "amount")
    @classmethod
    def _check(cls, value: Range) -> Range:
        return _ordered(value)


class AdvisorPairs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    as_of_windows: int = Field(ge=1, le=24)
    window_spacing_days: int = Field(ge=1, le=365)
    periods: tuple[Literal["week", "month", "year"] | int, ...] = Field(min_length=1)
    eval_fraction: float = Field(gt=0, lt=1)

    @field_validator("periods")
    @classmethod
    def _positive(cls, value: tuple[str | int, ...]) -> tuple[str | int, ...]:
        for period in value:
            if isinstance(period, int) and not 1 <= period <= 730:
                raise ValueError(f"custom period {period} must be 1 to 730 days")
        return value

    def period_days(self) -> list[tuple[str, int]]:
        return [(p, PERIOD_DAYS[p]) if isinstance(p, str) else (f"{p}d", p) for p in self.periods]


class DataConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int
    users: int = Field(ge=1, le=100_000)
    months: int = Field(ge=1, le=60)
    start_date: date
    currencies: tuple[Literal["HKD", "USD", "SGD"], ...] = Field(min_length=1)
    income_range: Range
    rent_range: Range
    subscriptions: Subscriptions
    variable_spend_per_month: dict[Category, Range]
    merchants: dict[Category, tuple[str, ...]]
    subscription_merchants: tuple[str, ...] = Field(min_length=1)
    output_format: Literal["csv", "parquet"] = "parquet"
    advisor: AdvisorPairs

    @field_validator("income_range", "rent_range")
    @classmethod
    def _ranges(cls, value: Range) -> Range:
        return _ordered(value)

    @model_validator(mode="after")
    def _complete(self) -> DataConfig:
        missing = [c.value for c in Category if not self.merchants.get(c)]
        if missing:
            raise ValueError(f"merchants needs at least one merchant for each category; missing {missing}")
        missing = [c.value for c in VARIABLE_CATEGORIES if c not in self.variable_spend_per_month]
        if missing:
            raise ValueError(f"variable_spend_per_month is missing {missing}")
        for category, value in self.variable_spend_per_month.items():
            _ordered(value)
            if category is Category.RENT:
                raise ValueError("Rent is set by rent_range, not variable_spend_per_month")
        if self.subscriptions.count[1] > len(self.subscription_merchants):
            raise ValueError("subscriptions.count allows more subscriptions than subscription_merchants lists")
        return self


def load_config(path: str | Path) -> DataConfig:
    """Read and validate a YAML config; every problem is reported before generation starts."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"data config {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"data config {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"data config {path} must be a mapping of settings")
    try:
        return DataConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"data config {path} is invalid: {problems}") from exc

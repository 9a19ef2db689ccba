"""Budgets per client that cannot be overspent: reserve the worst case, then settle.

Before the state machine runs, the front reserves the request's worst case (input counted
conservatively for every tier that may be called, plus each tier's output limit, priced at the
dearest model that tier may call) on every counter of the client (per period and unit) in one
transaction, conditional on each counter staying within its limit. After the answer it settles to
the usage the model reported, in one more transaction. So a request costs two DynamoDB calls, and
no interleaving of concurrent requests can commit more than a limit: DynamoDB checks each
condition and applies each transaction atomically.

A reservation that is never settled (the front timed out, the process died) stays on its own item
with a deadline; the sweeper releases it after the deadline, so budgets never leak. A settle that
arrives after the sweeper released its reservation adds the actual usage on its own.

Regions: each region's table holds the counters that region commits; the sweeper copies every
other region's committed amounts onto the local counters (``others``) each minute, so a request
is checked against the client's spend everywhere, and a failover starts from the other region's
spend instead of from zero. DynamoDB condition expressions cannot add, so each counter keeps
``total`` (its own committed amount plus ``others``) and the condition is
``total <= limit - worst_case``, computed here.

Amounts are integers: tokens, or millionths of the price table's currency (``cost``), so sums
are exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, model_validator

# A byte-level tokenizer never makes more tokens than the text has UTF-8 bytes; other tokenizers
# make fewer. So the byte count is a safe upper bound for input tokens, plus the system prompt.
SYSTEM_PROMPT_ALLOWANCE = 1024
MICROS = 1_000_000
# Longer than API Gateway's 29 s, so only a request that can no longer be answered is released.
RESERVATION_HOLD_S = 60
# DynamoDB cancels a transaction that overlaps another on the same item (TransactionConflict), which
# concurrent requests of one client do on its counters; moto never does. Reserve and settle try
# again, at most this many calls each (tests/infrastructure/test_timeout_budget.py counts them).
RESERVE_ATTEMPTS = 2
SETTLE_ATTEMPTS = 2
# The fallback tier's output limits (lambdas/fallback reads them from here).
FALLBACK_MAX_TOKENS = 300
FALLBACK_SENTIMENT_MAX_TOKENS = 10

Unit = Literal["tokens", "input_tokens", "output_tokens", "cost"]
PeriodName = Literal["day", "month"]


@dataclass(frozen=True)
class Usage:
    """Tokens and cost (in millionths of the currency) of one call, or of a worst case."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_micros: int = 0

    def amount(self, unit: Unit) -> int:
        if unit == "tokens":
            return self.input_tokens + self.output_tokens
        if unit == "input_tokens":
            return self.input_tokens
        if unit == "output_tokens":
            return self.output_tokens
        return self.cost_micros

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cost_micros + other.cost_micros,
        )

    @property
    def cost(self) -> float:
        return self.cost_micros / MICROS


class LimitSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    period: PeriodName
    unit: Unit
    limit: float = Field(gt=0, le=1e12, description="Tokens, or an amount in the price table's currency.")


@dataclass(frozen=True)
class Limit:
    period: PeriodName
    unit: Unit
    amount: int  # tokens, or millionths of the currency


@dataclass(frozen=True)
class TierBound:
    """What one tier of the request path may use: its output limit, and the models it may call."""

    output_tokens: int
    models: tuple[str, ...]
    free: bool = False  # served by the platform's own adapters: tokens count, cost does not


class BudgetPolicy(BaseModel):
    """The ``budgets`` section of the strategy document (served by AppConfig, so changes need no deploy)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    alert_share: float = Field(ge=0.01, le=1)
    prices: dict[str, tuple[float, float]]
    default: tuple[LimitSpec, ...]
    clients: dict[str, tuple[LimitSpec, ...]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_limit_per_counter(self) -> BudgetPolicy:
        for who, specs in [("default", self.default), *self.clients.items()]:
            pairs = [(s.period, s.unit) for s in specs]
            if len(set(pairs)) != len(pairs):
                # One counter per period and unit: DynamoDB refuses a transaction naming an item twice.
                raise ValueError(f"budgets for {who!r} limit the same period and unit twice")
        return self

    def limits_for(self, client: str) -> tuple[Limit, ...]:
        specs = self.clients.get(client, self.default)
        return tuple(Limit(s.period, s.unit, self._amount(s)) for s in specs)

    @staticmethod
    def _amount(spec: LimitSpec) -> int:
        return int(Decimal(str(spec.limit)) * MICROS) if spec.unit == "cost" else int(spec.limit)

    def price(self, model_id: str) -> tuple[Decimal, Decimal]:
        """Per 1,000 input and output tokens; a model missing from the table costs as much as the dearest."""
        known = self.prices.get(model_id)
        if known is None:
            known = (
                max((p[0] for p in self.prices.values()), default=0),
                max((p[1] for p in self.prices.values()), default=0),
            )
        return Decimal(str(known[0])), Decimal(str(known[1]))

    def priced(self, model_id: str) -> bool:
        return model_id in self.prices

    def usage(self, model_id: str, input_tokens: int, output_tokens: int) -> Usage:
        if input_tokens == 0 and output_tokens == 0:
            return Usage()
        price_in, price_out = self.price(model_id)
        # Prices are per 1,000 tokens; micros are millionths: tokens * price * 1000, rounded up.
        cost = (price_in * input_tokens + price_out * output_tokens) * 1000
        return Usage(input_tokens, output_tokens, int(cost.to_integral_value(rounding=ROUND_CEILING)))

    def worst_case(self, prompt: str, tiers: Sequence[TierBound]) -> Usage:
        """The most a request can use: its input once per tier, plus each tier's output limit, at the dearest price."""
        input_bound = len(prompt.encode("utf-8", errors="surrogatepass")) + SYSTEM_PROMPT_ALLOWANCE
        total = Usage()
        for tier in tiers:
            if tier.free:
                total = total + Usage(input_bound, tier.output_tokens, 0)
                continue
            dearest = max(
                (self.usage(m, input_bound, tier.output_tokens) for m in tier.models),
                key=lambda u: u.cost_micros,
                default=None,
            )
            total = total + (dearest or self.usage("", input_bound, tier.output_tokens))
        return total


def in_unit(unit: Unit | str, amount: int) -> float:
    """An amount as clients read it: tokens as they are, cost in the currency (stored in millionths)."""
    return amount / MICROS if unit == "cost" else amount


def shown(unit: Unit | str, amount: int, currency: str) -> str:
    if unit == "cost":
        return f"{amount / MICROS:.6f} {currency}"
    return f"{amount} {unit.replace('_', ' ')}"


@dataclass(frozen=True)
class Period:
    name: PeriodName
    key: str  # 2026-12-02 or 2026-12
    resets_at: datetime


def periods(now: datetime) -> dict[str, Period]:
    now = now.astimezone(UTC)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_start.replace(day=1)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    return {
        "day": Period("day", day_start.strftime("%Y-%m-%d"), day_start + timedelta(days=1)),
        "month": Period("month", month_start.strftime("%Y-%m"), next_month),
    }


def counter_key(client: str, period: Period, unit: Unit) -> str:
    return f"budget#{client}#{period.name}#{period.key}#{unit}"


def reservation_key(request_id: str) -> str:
    return f"reservation#{request_id}"


@dataclass(frozen=True)
class Reservation:
    client: str
    request_id: str
    worst: Usage
    amounts: dict[str, int]  # counter key -> reserved amount
    units: dict[str, Unit]  # counter key -> unit
    deadline: datetime


@dataclass
class BudgetExceeded(Exception):  # a decision, not an error
    client: str
    period: Period
    unit: Unit
    limit: int
    remaining: int
    requested: int
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    currency: str = "USD"

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil((self.period.resets_at - self.now).total_seconds()))

    def _show(self, amount: int) -> str:
        return shown(self.unit, amount, self.currency)

    def message(self) -> str:
        return (
            f"the {self.period.name}ly {self.unit.replace('_', ' ')} budget of client {self.client!r} "
            f"({self._show(self.limit)}) has {self._show(self.remaining)} left; this request may use up to "
            f"{self._show(self.requested)}; it resets at {self.period.resets_at.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        )

    def details(self) -> dict[str, Any]:
        return {
            "period": self.period.name,
            "unit": self.unit,
            "limit": in_unit(self.unit, self.limit),
            "remaining": in_unit(self.unit, self.remaining),
            "requested": in_unit(self.unit, self.requested),
            "resets_at": self.period.resets_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "currency": self.currency if self.unit == "cost" else None,
        }


@dataclass(frozen=True)
class CounterStatus:
    client: str
    period: Period
    unit: Unit
    limit: int
    committed: int  # settled plus open reservations, in this region
    used: int  # settled, in this region
    others: int  # committed in the other regions, as of the last sync

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.committed - self.others)

    @property
    def share(self) -> float:
        return (self.committed + self.others) / self.limit if self.limit else 0.0


# DynamoDB reserves many plain words; every attribute goes through a placeholder.
NAMES = {
    "#committed": "committed",
    "#used": "used",
    "#total": "total",
    "#others": "others",
    "#limit": "budget_limit",
    "#client": "client",
    "#unit": "budget_unit",
    "#period": "budget_period",
    "#expires": "expires_at",
}


def _cancellation_reasons(exc: ClientError) -> list[dict[str, Any]]:
    """Why DynamoDB cancelled a transaction, item by item; re-raises any other error."""
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        raise exc
    return list(exc.response.get("CancellationReasons") or [])


def _conflicted(reasons: list[dict[str, Any]]) -> bool:
    return any(r.get("Code") == "TransactionConflict" for r in reasons)


class BudgetStore:
    """The region's budget table: one counter item per client, period and unit; one item per open reservation."""

    def __init__(self, table: str, client: Any, currency: str = "USD") -> None:
        self._table = table
        self._client = client
        self._currency = currency

    def reserve(
        self,
        client: str,
        request_id: str,
        worst: Usage,
        limits: Sequence[Limit],
        now: datetime,
        hold_s: int = RESERVATION_HOLD_S,
    ) -> Reservation:
        """One TransactWriteItems: every counter within its limit, and the reservation item."""
        current = periods(now)
        chosen = [(limit, current[limit.period]) for limit in limits]
        for limit, period in chosen:
            if worst.amount(limit.unit) > limit.amount:  # more than the whole budget: no need to ask
                counter = self.status(client, [limit], now)[0]
                raise self._exceeded(client, period, limit, counter.remaining, worst, now)
        deadline = now + timedelta(seconds=hold_s)
        amounts = {counter_key(client, p, lim.unit): worst.amount(lim.unit) for lim, p in chosen}
        units = {counter_key(client, p, lim.unit): lim.unit for lim, p in chosen}
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": counter_key(client, period, limit.unit)}},
                    "UpdateExpression": "ADD #committed :t, #total :t SET #limit = :limit, #client = :client, "
                    "#unit = :unit, #period = :period, #expires = :expires",
                    "ConditionExpression": "attribute_not_exists(#total) OR #total <= :max_before",
                    "ExpressionAttributeNames": {k: v for k, v in NAMES.items() if k not in ("#used", "#others")},
                    "ExpressionAttributeValues": {
                        ":t": {"N": str(worst.amount(limit.unit))},
                        ":limit": {"N": str(limit.amount)},
                        ":max_before": {"N": str(limit.amount - worst.amount(limit.unit))},
                        ":client": {"S": client},
                        ":unit": {"S": limit.unit},
                        ":period": {"S": f"{period.name}#{period.key}"},
                        # Kept for a year after its period (chargeback and audit), then expired by TTL.
                        ":expires": {"N": str(int((period.resets_at + timedelta(days=366)).timestamp()))},
                    },
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
            for limit, period in chosen
        ]
        items.append(
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        "pk": {"S": reservation_key(request_id)},
                        "client": {"S": client},
                        "amounts": {"M": {k: {"N": str(v)} for k, v in amounts.items()}},
                        "deadline": {"N": str(int(deadline.timestamp()))},
                        # The sweeper releases it; TTL only tidies up what the sweeper missed.
                        "expires_at": {"N": str(int(deadline.timestamp()) + 86_400)},
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        )
        for attempt in range(1, RESERVE_ATTEMPTS + 1):
            try:
                self._client.transact_write_items(TransactItems=items)
                break
            except ClientError as exc:
                reasons = _cancellation_reasons(exc)
                for index, (limit, period) in enumerate(chosen):
                    if index < len(reasons) and reasons[index].get("Code") == "ConditionalCheckFailed":
                        item = reasons[index].get("Item")
                        if item is None:
                            remaining = self.status(client, [limit], now)[0].remaining
                        else:
                            remaining = max(0, limit.amount - int(item.get("total", {}).get("N", "0")))
                        raise self._exceeded(client, period, limit, remaining, worst, now) from None
                if not _conflicted(reasons) or attempt == RESERVE_ATTEMPTS:
                    raise
        return Reservation(client, request_id, worst, amounts, units, deadline)

    def _exceeded(
        self, client: str, period: Period, limit: Limit, remaining: int, worst: Usage, now: datetime
    ) -> BudgetExceeded:
        return BudgetExceeded(
            client, period, limit.unit, limit.amount, remaining, worst.amount(limit.unit), now, self._currency
        )

    def settle(self, reservation: Reservation, used: Usage) -> None:
        """One TransactWriteItems: close the reservation, move its counters to the actual usage."""
        items: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": reservation_key(reservation.request_id)}},
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            *(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"pk": {"S": counter}},
                        "UpdateExpression": "ADD #committed :delta, #total :delta, #used :used",
                        "ExpressionAttributeNames": {k: NAMES[k] for k in ("#committed", "#total", "#used")},
                        "ExpressionAttributeValues": {
                            ":delta": {"N": str(used.amount(reservation.units[counter]) - reserved)},
                            ":used": {"N": str(used.amount(reservation.units[counter]))},
                        },
                    }
                }
                for counter, reserved in reservation.amounts.items()
            ),
        ]
        for attempt in range(1, SETTLE_ATTEMPTS + 1):
            try:
                self._client.transact_write_items(TransactItems=items)
                return
            except ClientError as exc:
                reasons = _cancellation_reasons(exc)
                if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                    # The sweeper released this reservation already (its amount is off the
                    # counters): add what was actually used, so the spend is still counted.
                    for counter, unit in reservation.units.items():
                        self._add(counter, used.amount(unit))
                    return
                if not _conflicted(reasons) or attempt == SETTLE_ATTEMPTS:
                    raise

    def release_expired(self, now: datetime) -> int:
        """Release every reservation past its deadline (the sweeper); returns how many."""
        released = 0
        for item in self._scan("reservation#", "deadline < :now", {":now": {"N": str(int(now.timestamp()))}}):
            try:
                self._client.transact_write_items(
                    TransactItems=[
                        {
                            "Delete": {
                                "TableName": self._table,
                                "Key": {"pk": item["pk"]},
                                "ConditionExpression": "attribute_exists(pk)",
                            }
                        },
                        *(
                            {
                                "Update": {
                                    "TableName": self._table,
                                    "Key": {"pk": {"S": counter}},
                                    "UpdateExpression": "ADD #committed :release, #total :release",
                                    "ExpressionAttributeNames": {k: NAMES[k] for k in ("#committed", "#total")},
                                    "ExpressionAttributeValues": {":release": {"N": str(-int(amount["N"]))}},
                                }
                            }
                            for counter, amount in item["amounts"]["M"].items()
                        ),
                    ]
                )
                released += 1
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise  # settled meanwhile: nothing to release
        return released

    def counters(self, now: datetime) -> dict[str, dict[str, Any]]:
        """Every counter of the current day and month in this region, by key."""
        current = {f"{p.name}#{p.key}" for p in periods(now).values()}
        found: dict[str, dict[str, Any]] = {}
        for item in self._scan("budget#", None, {}):
            if item.get("budget_period", {}).get("S") not in current:
                continue
            found[item["pk"]["S"]] = {
                "client": item.get("client", {}).get("S", ""),
                "unit": item.get("budget_unit", {}).get("S", "tokens"),
                "period": item.get("budget_period", {}).get("S", ""),
                "limit": int(item.get("budget_limit", {}).get("N", "0")),
                "committed": int(item.get("committed", {}).get("N", "0")),
                "used": int(item.get("used", {}).get("N", "0")),
                # None until the sweeper first mirrors the other regions onto this counter.
                "others": int(item["others"]["N"]) if "others" in item else None,
            }
        return found

    def mirror(self, counter: str, template: dict[str, Any], old: int | None, new: int) -> bool:
        """Set what the other regions committed on this region's counter (the sweeper's sync).

        Conditional on the value this sync read, so two overlapping syncs cannot add the same
        change twice; the reserve path's ADD on ``total`` commutes with this one.
        """
        condition = "attribute_not_exists(#others)" if old is None else "#others = :old"
        values: dict[str, Any] = {
            ":new": {"N": str(new)},
            ":delta": {"N": str(new - (old or 0))},
            ":limit": {"N": str(template["limit"])},
            ":client": {"S": template["client"]},
            ":unit": {"S": template["unit"]},
            ":period": {"S": template["period"]},
        }
        if old is not None:
            values[":old"] = {"N": str(old)}
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": counter}},
                # The limit is the other region's until this region reserves with its own.
                UpdateExpression="SET #others = :new, #limit = if_not_exists(#limit, :limit), "
                "#client = :client, #unit = :unit, #period = :period ADD #total :delta",
                ConditionExpression=condition,
                ExpressionAttributeNames={
                    k: NAMES[k] for k in ("#others", "#total", "#limit", "#client", "#unit", "#period")
                },
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def status(self, client: str, limits: Sequence[Limit], now: datetime) -> list[CounterStatus]:
        """Each limit's counter (one BatchGetItem), for the 429's remaining and the budget route."""
        current = periods(now)
        keys = {counter_key(client, current[lim.period], lim.unit): lim for lim in limits}
        items: dict[str, dict[str, Any]] = {}
        if keys:
            request: dict[str, Any] = {self._table: {"Keys": [{"pk": {"S": k}} for k in keys], "ConsistentRead": True}}
            while request:
                answer = self._client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self._table, []):
                    items[item["pk"]["S"]] = item
                request = answer.get("UnprocessedKeys") or {}
        found = []
        for key, limit in keys.items():
            item = items.get(key, {})
            found.append(
                CounterStatus(
                    client,
                    current[limit.period],
                    limit.unit,
                    limit.amount,
                    int(item.get("committed", {}).get("N", "0")),
                    int(item.get("used", {}).get("N", "0")),
                    int(item.get("others", {}).get("N", "0")),
                )
            )
        return found

    def _scan(self, prefix: str, extra: str | None, values: dict[str, Any]) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "begins_with(pk, :prefix)" + (f" AND {extra}" if extra else ""),
            "ExpressionAttributeValues": {":prefix": {"S": prefix}, **values},
            "ConsistentRead": True,
        }
        found: list[dict[str, Any]] = []
        while True:
            page = self._client.scan(**kwargs)
            found.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _add(self, counter: str, amount: int) -> None:
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": counter}},
            UpdateExpression="ADD #committed :t, #total :t, #used :t",
            ExpressionAttributeNames={k: NAMES[k] for k in ("#committed", "#total", "#used")},
            ExpressionAttributeValues={":t": {"N": str(amount)}},
        )

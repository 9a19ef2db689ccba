"""Token budgets per client that cannot be overspent: reserve the worst case, then settle.

Before the state machine runs, the front reserves the request's worst case (input tokens counted
conservatively, for every tier that may be called, plus each tier's output limit) on every period
counter of the client (a day, a month) in one transaction, conditional on the counter staying
within its limit. After the answer it settles to the usage the model reported, in one more
transaction. So a request costs two DynamoDB calls, and no interleaving of concurrent requests can
commit more than the limit: DynamoDB checks each condition and applies each update atomically.

A reservation that is never settled (the front timed out, the process died) stays on its own item
with a deadline; the sweeper releases it after the deadline, so budgets never leak. A settle that
arrives after the sweeper released its reservation adds the actual usage on its own.

DynamoDB condition expressions cannot add, so each counter keeps ``committed`` (settled usage plus
open reservations) and the condition is ``committed <= limit - worst_case``, computed here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

# A byte-level tokenizer never makes more tokens than the text has UTF-8 bytes; other tokenizers
# make fewer. So the byte count is a safe upper bound for input tokens, plus a system prompt.
SYSTEM_PROMPT_ALLOWANCE = 512


@dataclass(frozen=True)
class BudgetLimits:
    """Tokens (input plus output) a client may use per period; None means no limit for that period."""

    daily_tokens: int | None = None
    monthly_tokens: int | None = None

    def by_period(self) -> dict[str, int]:
        found = {"day": self.daily_tokens, "month": self.monthly_tokens}
        return {name: limit for name, limit in found.items() if limit is not None}


@dataclass(frozen=True)
class Period:
    name: str  # day or month
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


def worst_case_tokens(prompt: str, output_limits: tuple[int, ...]) -> int:
    """The most a request can use: its input once per tier that may be called, plus each tier's output limit."""
    input_bound = len(prompt.encode("utf-8", errors="surrogatepass")) + SYSTEM_PROMPT_ALLOWANCE
    return input_bound * len(output_limits) + sum(output_limits)


def counter_key(client: str, period: Period) -> str:
    return f"budget#{client}#{period.name}#{period.key}"


def reservation_key(request_id: str) -> str:
    return f"reservation#{request_id}"


@dataclass(frozen=True)
class Reservation:
    client: str
    request_id: str
    tokens: int
    counters: tuple[str, ...]
    deadline: datetime


@dataclass
class BudgetExceeded(Exception):  # a decision, not an error
    client: str
    period: Period
    limit: int
    remaining: int
    requested: int
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil((self.period.resets_at - self.now).total_seconds()))

    def message(self) -> str:
        return (
            f"the {self.period.name}ly token budget of client {self.client!r} ({self.limit} tokens) has "
            f"{self.remaining} left; this request may use up to {self.requested}; it resets at "
            f"{self.period.resets_at.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        )


class BudgetStore:
    """The budget table: one counter item per client and period, one item per open reservation."""

    def __init__(self, table: str, client: Any) -> None:
        self._table = table
        self._client = client

    def reserve(
        self, client: str, request_id: str, tokens: int, limits: BudgetLimits, now: datetime, hold_s: int
    ) -> Reservation:
        """One TransactWriteItems: every period counter within its limit, and the reservation item."""
        current = periods(now)
        chosen = {name: current[name] for name in limits.by_period()}
        for name, period in chosen.items():
            limit = limits.by_period()[name]
            if tokens > limit:
                raise BudgetExceeded(client, period, limit, self._remaining(client, period, limit), tokens, now)
        deadline = now + timedelta(seconds=hold_s)
        counters = tuple(counter_key(client, p) for p in chosen.values())
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": counter_key(client, period)}},
                    "UpdateExpression": "ADD committed :t SET budget_limit = :limit, expires_at = :expires",
                    "ConditionExpression": "attribute_not_exists(committed) OR committed <= :max_before",
                    "ExpressionAttributeValues": {
                        ":t": {"N": str(tokens)},
                        ":limit": {"N": str(limits.by_period()[name])},
                        ":max_before": {"N": str(limits.by_period()[name] - tokens)},
                        # Kept for a year after its period (chargeback and audit), then expired by TTL.
                        ":expires": {"N": str(int((period.resets_at + timedelta(days=366)).timestamp()))},
                    },
                }
            }
            for name, period in chosen.items()
        ]
        items.append(
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        "pk": {"S": reservation_key(request_id)},
                        "client": {"S": client},
                        "tokens": {"N": str(tokens)},
                        "counters": {"L": [{"S": c} for c in counters]},
                        "deadline": {"N": str(int(deadline.timestamp()))},
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        )
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons") or []
            for index, (name, period) in enumerate(chosen.items()):
                if index < len(reasons) and reasons[index].get("Code") == "ConditionalCheckFailed":
                    limit = limits.by_period()[name]
                    raise BudgetExceeded(
                        client, period, limit, self._remaining(client, period, limit), tokens, now
                    ) from None
            raise
        return Reservation(client, request_id, tokens, counters, deadline)

    def settle(self, reservation: Reservation, used_tokens: int) -> None:
        """One TransactWriteItems: close the reservation, move its counters to the actual usage."""
        delta = used_tokens - reservation.tokens
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
                        "UpdateExpression": "ADD committed :delta, used :used",
                        "ExpressionAttributeValues": {":delta": {"N": str(delta)}, ":used": {"N": str(used_tokens)}},
                    }
                }
                for counter in reservation.counters
            ),
        ]
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            # The sweeper released this reservation already (its amount is off the counters):
            # add what was actually used, so the spend is still counted.
            for counter in reservation.counters:
                self._add(counter, used_tokens)

    def release_expired(self, now: datetime) -> int:
        """Release every reservation past its deadline (the sweeper); returns how many."""
        released = 0
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "begins_with(pk, :r) AND deadline < :now",
            "ExpressionAttributeValues": {":r": {"S": "reservation#"}, ":now": {"N": str(int(now.timestamp()))}},
        }
        while True:
            page = self._client.scan(**kwargs)
            for item in page.get("Items", []):
                tokens = int(item["tokens"]["N"])
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
                                        "Key": {"pk": counter},
                                        "UpdateExpression": "ADD committed :release",
                                        "ExpressionAttributeValues": {":release": {"N": str(-tokens)}},
                                    }
                                }
                                for counter in item["counters"]["L"]
                            ),
                        ]
                    )
                    released += 1
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                        raise  # settled meanwhile: nothing to release
            if "LastEvaluatedKey" not in page:
                return released
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def spent(self, client: str, now: datetime) -> dict[str, dict[str, int]]:
        """Settled and committed tokens per period, for the answer's usage and the console."""
        found: dict[str, dict[str, int]] = {}
        for name, period in periods(now).items():
            item = self._client.get_item(
                TableName=self._table, Key={"pk": {"S": counter_key(client, period)}}, ConsistentRead=True
            ).get("Item", {})
            found[name] = {
                "used": int(item.get("used", {}).get("N", "0")),
                "committed": int(item.get("committed", {}).get("N", "0")),
            }
        return found

    def _remaining(self, client: str, period: Period, limit: int) -> int:
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": counter_key(client, period)}}, ConsistentRead=True
        ).get("Item", {})
        return max(0, limit - int(item.get("committed", {}).get("N", "0")))

    def _add(self, counter: str, tokens: int) -> None:
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": counter}},
            UpdateExpression="ADD committed :t, used :t",
            ExpressionAttributeValues={":t": {"N": str(tokens)}},
        )

"""Token budgets: reserve the worst case, settle to the actual, never overspend, never leak."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from local.request_path import create_table
from shared.budgets import BudgetExceeded, BudgetLimits, BudgetStore, periods, worst_case_tokens

TABLE = "finai-budgets"
NOW = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)


@contextmanager
def atomic_moto() -> Iterator[None]:
    """DynamoDB applies each write and each transaction atomically; moto's in-memory backend does
    not lock, so concurrent threads could interleave inside one call. One lock around the
    backend's write and read calls gives moto DynamoDB's guarantee, no more."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    names = ("transact_write_items", "update_item", "put_item", "delete_item", "get_item", "scan")
    originals = {name: getattr(DynamoDBBackend, name) for name in names}

    def locked(original: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return call

    with mock.patch.multiple(DynamoDBBackend, **{n: locked(f) for n, f in originals.items()}):
        yield


@pytest.fixture
def store() -> Iterator[BudgetStore]:
    with mock_aws(), atomic_moto():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE, [{"AttributeName": "pk", "KeyType": "HASH"}])
        yield BudgetStore(TABLE, client)


def test_periods_reset_at_midnight_and_the_first_of_the_month():
    found = periods(datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert found["day"].key == "2026-12-31" and found["day"].resets_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert found["month"].key == "2026-12" and found["month"].resets_at == datetime(2027, 1, 1, tzinfo=UTC)


def test_the_worst_case_counts_every_tier():
    assert worst_case_tokens("héllo", (1000, 300)) == 2 * (6 + 512) + 1300


def test_reserve_then_settle_counts_the_actual_usage(store):
    limits = BudgetLimits(daily_tokens=10_000, monthly_tokens=50_000)
    reservation = store.reserve("bank-a", "r1", 4_000, limits, NOW, hold_s=60)
    assert store.spent("bank-a", NOW)["day"] == {"used": 0, "committed": 4_000}
    store.settle(reservation, 1_234)
    assert store.spent("bank-a", NOW) == {
        "day": {"used": 1_234, "committed": 1_234},
        "month": {"used": 1_234, "committed": 1_234},
    }


def test_a_request_over_the_budget_is_refused_with_what_is_left_and_when_it_resets(store):
    limits = BudgetLimits(daily_tokens=5_000)
    store.settle(store.reserve("bank-a", "r1", 4_000, limits, NOW, hold_s=60), 4_000)
    with pytest.raises(BudgetExceeded) as refused:
        store.reserve("bank-a", "r2", 1_500, limits, NOW, hold_s=60)
    assert (refused.value.remaining, refused.value.limit, refused.value.period.name) == (1_000, 5_000, "day")
    assert refused.value.retry_after_s == int((datetime(2026, 12, 3, tzinfo=UTC) - NOW).total_seconds())
    assert "1000 left" in refused.value.message()
    store.reserve("bank-b", "r3", 1_500, limits, NOW, hold_s=60)  # another client's budget is its own


def test_an_unsettled_reservation_is_released_after_its_deadline(store):
    limits = BudgetLimits(daily_tokens=5_000)
    store.reserve("bank-a", "lost", 5_000, limits, NOW, hold_s=30)
    with pytest.raises(BudgetExceeded):
        store.reserve("bank-a", "next", 10, limits, NOW, hold_s=30)
    assert store.release_expired(NOW + timedelta(seconds=10)) == 0  # not yet
    assert store.release_expired(NOW + timedelta(seconds=31)) == 1
    store.reserve("bank-a", "next", 10, limits, NOW + timedelta(seconds=31), hold_s=30)


def test_a_settle_after_the_release_still_counts_what_was_used(store):
    limits = BudgetLimits(daily_tokens=5_000)
    late = store.reserve("bank-a", "late", 3_000, limits, NOW, hold_s=30)
    store.release_expired(NOW + timedelta(seconds=31))
    store.settle(late, 700)
    assert store.spent("bank-a", NOW)["day"] == {"used": 700, "committed": 700}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    limit=st.integers(min_value=2_000, max_value=20_000),
    requests=st.lists(
        st.tuples(st.integers(min_value=100, max_value=3_000), st.sampled_from(["settle", "fail", "vanish"])),
        min_size=5,
        max_size=30,
    ),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_concurrent_requests_never_overspend_and_never_leak(store, limit, requests, seed):
    """Many requests at once against a nearly exhausted budget: the settled sum never exceeds the
    limit, and once the sweeper has run no reservation is left holding budget."""
    client = f"c{seed}-{limit}-{len(requests)}"
    limits = BudgetLimits(daily_tokens=limit)
    store.settle(store.reserve(client, f"{client}-warm", limit // 2, limits, NOW, hold_s=60), limit // 2)
    rng = random.Random(seed)
    settled: list[int] = []
    lock = threading.Lock()

    def one(index: int, worst: int, fate: str) -> None:
        try:
            reservation = store.reserve(client, f"{client}-{index}", worst, limits, NOW, hold_s=60)
        except BudgetExceeded:
            return
        if fate == "vanish":
            return  # the front died: only the sweeper can release it
        used = rng.randint(0, worst) if fate == "settle" else 0  # a failed call reports nothing used
        store.settle(reservation, used)
        with lock:
            settled.append(used)

    threads = [threading.Thread(target=one, args=(i, w, f)) for i, (w, f) in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.release_expired(NOW + timedelta(seconds=61))
    spent = store.spent(client, NOW)["day"]
    assert spent["used"] == limit // 2 + sum(settled) <= limit
    assert spent["committed"] == spent["used"], "a reservation leaked"

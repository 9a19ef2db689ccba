"""The budget sweeper's work: release expired reservations, mirror the other region, raise alerts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.budgets import BudgetPolicy, BudgetStore


@dataclass
class SweepResult:
    released: int = 0
    mirrored: int = 0
    peer_reachable: bool | None = None  # None: no peer region configured
    shares: dict[str, float] = field(default_factory=dict)  # client -> highest share of any limit
    alerts: list[str] = field(default_factory=list)


def mirror_peer(store: BudgetStore, ours: dict[str, dict[str, Any]], theirs: dict[str, dict[str, Any]]) -> int:
    """Copy what the other region committed onto this region's counters (``others``)."""
    changed = 0
    for key, counter in theirs.items():
        old = ours.get(key, {}).get("others")
        if old != counter["committed"] and store.mirror(key, counter, old, counter["committed"]):
            changed += 1
    for key, counter in ours.items():
        # A counter the other region no longer has (its table was rebuilt): nothing is mirrored.
        if key not in theirs and counter.get("others"):
            changed += int(store.mirror(key, counter, counter["others"], 0))
    return changed


def shares(counters: dict[str, dict[str, Any]]) -> dict[str, float]:
    found: dict[str, float] = {}
    for counter in counters.values():
        if counter["limit"] <= 0:
            continue
        share = (counter["committed"] + (counter["others"] or 0)) / counter["limit"]
        found[counter["client"]] = max(found.get(counter["client"], 0.0), share)
    return found


def sweep(store: BudgetStore, peer: BudgetStore | None, policy: BudgetPolicy | None, now: datetime) -> SweepResult:
    result = SweepResult(released=store.release_expired(now))
    if peer is not None:
        try:
            theirs = peer.counters(now)
            result.peer_reachable = True
        except Exception:  # the other region down is exactly when this region must keep serving
            theirs = None
            result.peer_reachable = False
        if theirs is not None:
            result.mirrored = mirror_peer(store, store.counters(now), theirs)
    result.shares = shares(store.counters(now))
    if policy is not None:
        result.alerts = sorted(c for c, s in result.shares.items() if s >= policy.alert_share)
    return result

"""Appending a batch of audit records to their chain, exactly once and in order."""

from __future__ import annotations

from typing import Any, Protocol

from shared.ledger import extend

# A retried batch comes back within minutes; its records are at the chain's tail. Looking back
# this far finds them without reading the whole day.
TAIL_WINDOW = 100


class ChainStore(Protocol):
    def tail(self, chain: str, limit: int) -> list[dict[str, Any]]: ...

    def put(self, entries: list[dict[str, Any]]) -> None: ...


def identity(record: dict[str, Any]) -> tuple[str, str]:
    return (str(record.get("request_id")), str(record.get("route")))


def append(store: ChainStore, chain: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chain the records after the chain's last entry; returns every entry for these records.

    Records already in the chain (a batch retried after its entries were written) are returned
    as they were chained, not chained twice, so the export that follows can be repeated safely.
    The store's conditional write refuses a second writer for the same position, so two
    overlapping invocations cannot fork the chain: the loser fails and its batch is retried.
    """
    tail = store.tail(chain, TAIL_WINDOW)
    chained = {identity(e): e for e in tail}
    fresh: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for record in records:
        key = identity(record)
        if key in chained or key in seen:
            continue
        seen.add(key)
        fresh.append(record)
    last = max(tail, key=lambda e: int(e["seq"]), default=None)
    entries = list(extend(fresh, chain, int(last["seq"]) if last else 0, last["hash"] if last else None))
    if entries:
        store.put(entries)
    again = [chained[identity(r)] for r in records if identity(r) in chained]
    return sorted(again + entries, key=lambda e: int(e["seq"]))

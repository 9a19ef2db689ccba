"""The audit ledger's hash chain: one chain per region and UTC day.

Each entry holds its position (``seq``, from 1), the hash of the entry before it (``prev_hash``;
the first entry links to the chain's genesis hash) and its own hash over both and the record. So
altering a record changes its hash and breaks the next link; deleting one leaves a gap in ``seq``
and a link to a hash nobody has; both are found by walking the chain (:func:`verify`).

The hash is SHA-256 over a canonical JSON form (sorted keys, no spaces, ASCII), which any
language can reproduce: a regulator's tool does not need this code to check the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# Fields the chain adds to a record; everything else is the record.
CHAIN_FIELDS = ("chain", "seq", "prev_hash", "hash")


def chain_id(region: str, day: str) -> str:
    return f"{region}#{day}"


def genesis_hash(chain: str) -> str:
    return hashlib.sha256(f"finai-ledger-genesis|{chain}".encode()).hexdigest()


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def entry_hash(entry: dict[str, Any]) -> str:
    """The hash of an entry: everything in it except the hash itself."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(canonical(body).encode()).hexdigest()


def link(record: dict[str, Any], chain: str, seq: int, prev_hash: str) -> dict[str, Any]:
    """The record as the chain's entry number ``seq``, after the entry whose hash is ``prev_hash``."""
    clashing = set(record) & set(CHAIN_FIELDS)
    if clashing:
        raise ValueError(f"a record may not set the chain's own fields {sorted(clashing)}")
    entry = {**record, "chain": chain, "seq": seq, "prev_hash": prev_hash}
    entry["hash"] = entry_hash(entry)
    return entry


def extend(
    records: Iterable[dict[str, Any]], chain: str, last_seq: int, last_hash: str | None
) -> Iterator[dict[str, Any]]:
    """Chain records after the entry (``last_seq``, ``last_hash``); None starts a new chain."""
    prev = last_hash or genesis_hash(chain)
    seq = last_seq
    for record in records:
        seq += 1
        entry = link(record, chain, seq, prev)
        prev = entry["hash"]
        yield entry


@dataclass(frozen=True)
class Break:
    seq: int
    reason: str


@dataclass(frozen=True)
class Verdict:
    chain: str
    entries: int
    last_seq: int
    last_hash: str | None
    first_break: Break | None

    @property
    def ok(self) -> bool:
        return self.first_break is None

    def report(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "ok": self.ok,
            "entries": self.entries,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "first_break": None
            if self.first_break is None
            else {"seq": self.first_break.seq, "reason": self.first_break.reason},
        }


def verify(chain: str, entries: Iterable[dict[str, Any]]) -> Verdict:
    """Walk one chain in ``seq`` order and report its first break.

    ``entries`` may repeat an entry (an export written twice after a retry); a repeat must be
    identical, or it is a break too. The walk stops at the first break: after it, nothing the
    chain says can be trusted.
    """
    by_seq: dict[int, dict[str, Any]] = {}
    for entry in entries:
        seq = entry.get("seq")
        if not isinstance(seq, int):
            return Verdict(chain, 0, 0, None, Break(0, f"an entry has no integer seq: {str(seq)[:40]}"))
        if seq in by_seq and canonical(by_seq[seq]) != canonical(entry):
            return Verdict(chain, 0, 0, None, Break(seq, "two different entries claim this seq"))
        by_seq[seq] = entry
    prev = genesis_hash(chain)
    walked = 0
    for seq in sorted(by_seq):
        problem = _link_problem(chain, by_seq[seq], walked + 1, prev)
        if problem is not None:
            return Verdict(chain, walked, walked, prev if walked else None, problem)
        prev = by_seq[seq]["hash"]
        walked += 1
    return Verdict(chain, walked, walked, prev if walked else None, None)


def _link_problem(chain: str, entry: dict[str, Any], expected: int, prev: str) -> Break | None:
    seq = int(entry["seq"])
    if seq != expected:
        return Break(expected, f"entries {expected}..{seq - 1} are missing")
    if entry.get("chain") != chain:
        return Break(seq, f"the entry belongs to chain {entry.get('chain')!r}")
    if entry.get("prev_hash") != prev:
        return Break(seq, "prev_hash does not match the entry before it")
    if entry.get("hash") != entry_hash(entry):
        return Break(seq, "the entry was altered: its hash does not match its content")
    return None

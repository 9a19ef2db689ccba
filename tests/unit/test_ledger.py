"""The audit ledger: a hash chain per region and day that finds any altered, removed or forged entry."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger.dal import Archive, LedgerTable
from ledger.logic import append
from ledger.verify import main as verify_main
from moto import mock_aws

from local.request_path import LEDGER_BUCKET, LEDGER_TABLE, create_ledger_store
from shared.ledger import canonical, chain_id, entry_hash, extend, genesis_hash, verify

CHAIN = chain_id("us-east-1", "2026-12-02")


def record(i: int) -> dict[str, Any]:
    return {
        "request_id": f"r{i}",
        "route": "/v1/generate",
        "status": 200,
        "recorded_at": f"2026-12-02T10:00:{i % 60:02d}.000Z",
        "client": "bank-a",
        "input_tokens": 10 * i,
        "output_tokens": i,
        "cost_micros": 7 * i,
    }


def chain_of(n: int) -> list[dict[str, Any]]:
    return list(extend((record(i) for i in range(n)), CHAIN, 0, None))


def test_a_whole_chain_verifies_and_links_to_its_genesis():
    entries = chain_of(5)
    assert entries[0]["prev_hash"] == genesis_hash(CHAIN)
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    verdict = verify(CHAIN, entries)
    assert verdict.ok and verdict.entries == 5 and verdict.last_hash == entries[-1]["hash"]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=30),
    target=st.integers(min_value=0, max_value=29),
    field=st.sampled_from(["status", "input_tokens", "cost_micros", "client", "recorded_at"]),
)
def test_altering_any_field_of_any_entry_is_found_at_that_entry(n, target, field):
    entries = chain_of(n)
    victim = entries[target % n]
    original = victim[field]
    victim[field] = original + 1 if isinstance(original, int) else f"{original}x"
    verdict = verify(CHAIN, entries)
    assert not verdict.ok and verdict.first_break is not None
    assert verdict.first_break.seq == victim["seq"] and "altered" in verdict.first_break.reason


def test_rehashing_an_altered_entry_breaks_the_next_link():
    entries = chain_of(4)
    forged = {k: v for k, v in entries[1].items() if k != "hash"}
    forged["cost_micros"] = 0
    entries[1] = {**forged, "hash": entry_hash(forged)}
    verdict = verify(CHAIN, entries)
    assert verdict.first_break is not None and verdict.first_break.seq == 3
    assert "prev_hash" in verdict.first_break.reason


def test_a_removed_entry_is_reported_as_a_gap():
    entries = chain_of(6)
    del entries[2]
    verdict = verify(CHAIN, entries)
    assert verdict.first_break is not None and verdict.first_break.seq == 3
    assert verdict.first_break.reason == "entries 3..3 are missing"


def test_an_entry_from_another_chain_is_not_accepted():
    other = list(extend([record(1)], chain_id("us-west-2", "2026-12-02"), 0, None))
    verdict = verify(CHAIN, other)
    assert verdict.first_break is not None and verdict.first_break.seq == 1


def test_a_repeated_entry_must_be_identical():
    entries = chain_of(3)
    assert verify(CHAIN, [*entries, dict(entries[1])]).ok, "an export written twice is not a break"
    changed = {**entries[1], "status": 500}
    verdict = verify(CHAIN, [*entries, changed])
    assert verdict.first_break is not None and verdict.first_break.seq == 2


class MemoryChain:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def tail(self, chain: str, limit: int) -> list[dict[str, Any]]:
        return sorted(self.entries, key=lambda e: -e["seq"])[:limit]

    def put(self, entries: list[dict[str, Any]]) -> None:
        taken = {e["seq"] for e in self.entries}
        if any(e["seq"] in taken for e in entries):
            raise RuntimeError("position taken")
        self.entries.extend(entries)


def test_a_retried_batch_is_not_chained_twice_and_is_returned_for_export_again():
    store = MemoryChain()
    first = append(store, CHAIN, [record(1), record(2)])
    again = append(store, CHAIN, [record(1), record(2), record(3)])
    assert [e["seq"] for e in first] == [1, 2]
    assert [e["seq"] for e in again] == [1, 2, 3] and again[:2] == first
    assert len(store.entries) == 3 and verify(CHAIN, store.entries).ok
    assert [e["seq"] for e in append(store, CHAIN, [record(4), record(4)])] == [4], "a duplicate in one batch"


@pytest.fixture
def aws():
    with mock_aws():
        clients = {name: boto3.client(name, region_name="us-east-1") for name in ("dynamodb", "s3", "sqs")}
        create_ledger_store(clients["dynamodb"], clients["s3"], clients["sqs"], "us-east-1")
        yield clients


def test_two_writers_for_one_position_cannot_fork_the_chain(aws):
    table = LedgerTable(LEDGER_TABLE, aws["dynamodb"])
    append(table, CHAIN, [record(1)])
    stale = list(extend([record(9)], CHAIN, 0, None))  # a writer that read an empty chain
    with pytest.raises(aws["dynamodb"].exceptions.TransactionCanceledException):
        table.put(stale)
    assert verify(CHAIN, table.entries(CHAIN)).ok


def test_the_verifier_finds_an_archived_entry_overwritten_by_a_later_version(aws, capsys):
    table = LedgerTable(LEDGER_TABLE, aws["dynamodb"])
    archive = Archive(LEDGER_BUCKET, aws["s3"])
    for batch in ([record(1), record(2)], [record(3), record(4), record(5)]):
        archive.export(CHAIN, append(table, CHAIN, batch))
    args = ["--region", "us-east-1", "--day", "2026-12-02", "--bucket", LEDGER_BUCKET, "--table", LEDGER_TABLE]
    assert verify_main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["archive"]["entries"] == report["table"]["entries"] == 5

    # Object Lock keeps the original version; an insider can still PUT a newer one over it.
    key = "ledger/us-east-1/2026-12-02/0000000003-0000000005.jsonl"
    lines = aws["s3"].get_object(Bucket=LEDGER_BUCKET, Key=key)["Body"].read().decode().splitlines()
    forged = json.loads(lines[1])
    forged["cost_micros"] = 0
    lines[1] = canonical(forged)
    aws["s3"].put_object(Bucket=LEDGER_BUCKET, Key=key, Body="\n".join(lines).encode(), ChecksumAlgorithm="SHA256")
    assert verify_main(args[:-2]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["archive"]["first_break"] == {"seq": 3, "reason": f"{key} was overwritten by a later version"}


def test_the_verifier_finds_an_entry_altered_or_removed_in_the_table(aws, capsys):
    table = LedgerTable(LEDGER_TABLE, aws["dynamodb"])
    append(table, CHAIN, [record(i) for i in range(1, 7)])
    args = ["--region", "us-east-1", "--day", "2026-12-02", "--table", LEDGER_TABLE]
    item = aws["dynamodb"].get_item(TableName=LEDGER_TABLE, Key={"chain": {"S": CHAIN}, "seq": {"N": "4"}})["Item"]
    entry = json.loads(item["document"]["S"])
    entry["output_tokens"] = 1
    item["document"] = {"S": canonical(entry)}
    aws["dynamodb"].put_item(TableName=LEDGER_TABLE, Item=item)
    assert verify_main(args) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["table"]["first_break"]["seq"] == 4 and report["table"]["entries"] == 3

    aws["dynamodb"].delete_item(TableName=LEDGER_TABLE, Key={"chain": {"S": CHAIN}, "seq": {"N": "4"}})
    assert verify_main(args) == 1
    assert json.loads(capsys.readouterr().out)["table"]["first_break"]["reason"] == "entries 4..4 are missing"


def test_a_copy_cut_short_at_its_end_is_found_by_the_other_copy(aws, capsys):
    table = LedgerTable(LEDGER_TABLE, aws["dynamodb"])
    archive = Archive(LEDGER_BUCKET, aws["s3"])
    archive.export(CHAIN, append(table, CHAIN, [record(1), record(2), record(3)]))
    aws["dynamodb"].delete_item(TableName=LEDGER_TABLE, Key={"chain": {"S": CHAIN}, "seq": {"N": "3"}})
    args = ["--region", "us-east-1", "--day", "2026-12-02", "--bucket", LEDGER_BUCKET, "--table", LEDGER_TABLE]
    assert verify_main(args) == 1
    assert "the table at 2" in json.loads(capsys.readouterr().out)["mismatch"]


def test_every_archive_write_carries_the_checksum_object_lock_requires():
    """S3 refuses a PUT to an Object Lock bucket without Content-MD5 or a checksum; moto does not."""

    class Capture:
        def __init__(self) -> None:
            self.puts: list[dict[str, Any]] = []

        def put_object(self, **kwargs: Any) -> dict[str, Any]:
            self.puts.append(kwargs)
            return {}

    s3 = Capture()
    key = Archive(LEDGER_BUCKET, s3).export(CHAIN, chain_of(3))
    [put] = s3.puts
    assert put["ChecksumAlgorithm"] in ("CRC32", "CRC32C", "SHA1", "SHA256") or "ContentMD5" in put
    assert key == put["Key"] == "ledger/us-east-1/2026-12-02/0000000001-0000000003.jsonl"
    assert [json.loads(line)["seq"] for line in put["Body"].decode().splitlines()] == [1, 2, 3]

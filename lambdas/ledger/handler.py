"""Ledger function: chains the audit records from the FIFO audit queue and archives them.

SQS delivers each message group (one chain: a region's day) in order, one batch at a time. Each
batch is appended to its chain in one conditional transaction, then written to the Object Lock
bucket as one object. Any failure fails the whole batch, which SQS delivers again; a record that
keeps failing goes to the dead-letter queue, which is alarmed.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from ledger.dal import Archive, LedgerTable
from ledger.logic import append
from shared.ledger import chain_id
from shared.observability import emit, logger, metrics, tracer


@cache
def table() -> LedgerTable:
    return LedgerTable(os.environ["LEDGER_TABLE"], boto3.client("dynamodb"))


@cache
def archive() -> Archive:
    return Archive(os.environ["LEDGER_BUCKET"], boto3.client("s3"))


def chains_of(event: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The batch's records by chain, in delivery order (a batch may hold several message groups)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for message in event.get("Records", []):
        record = json.loads(message["body"])
        group = (message.get("attributes") or {}).get("MessageGroupId")
        chain = group or chain_id(str(record.get("region")), str(record.get("recorded_at", ""))[:10])
        found.setdefault(chain, []).append(record)
    return found


def process(event: dict[str, Any], store: LedgerTable, bucket: Archive) -> dict[str, int]:
    written: dict[str, int] = {}
    for chain, records in chains_of(event).items():
        entries = append(store, chain, records)
        if entries:
            bucket.export(chain, entries)
        written[chain] = len(entries)
        emit("LedgerEntries", len(entries))
    return written


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    written = process(event, table(), archive())
    logger.info("audit records chained", extra={"chains": written})
    return {"chains": written}

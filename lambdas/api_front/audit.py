"""The audit trail: one record per API request, written whatever the outcome.

A record holds identifiers, outcome and counts only: never the prompt, the answer or any other
text a customer wrote.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import boto3
from botocore.config import Config

RETENTION_DAYS = 400  # a little over a year, for annual reviews


@dataclass
class AuditRecord:
    request_id: str
    route: str
    status: int
    use_case: str | None = None
    model_used: str | None = None
    tier: str | None = None
    latency_ms: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    redactions: dict[str, int] = field(default_factory=dict)

    def item(self, now: float) -> dict[str, Any]:
        item: dict[str, Any] = {
            "request_id": {"S": self.request_id},
            "recorded_at": {"S": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")},
            "route": {"S": self.route},
            "status": {"N": str(self.status)},
            "latency_ms": {"N": str(self.latency_ms)},
            "input_tokens": {"N": str(self.input_tokens)},
            "output_tokens": {"N": str(self.output_tokens)},
            "redactions": {"M": {k: {"N": str(v)} for k, v in sorted(self.redactions.items())}},
            "expires_at": {"N": str(int(now) + RETENTION_DAYS * 86_400)},
        }
        for name in ("use_case", "model_used", "tier"):
            value = getattr(self, name)
            if value:
                item[name] = {"S": value}
        return item


class AuditWriter(Protocol):
    def write(self, record: AuditRecord) -> None: ...


# The audit write happens after the answer is known, inside API Gateway's 29 s: bounded, one attempt.
AUDIT_CLIENT_CONFIG = Config(
    connect_timeout=0.5, read_timeout=1.0, retries={"total_max_attempts": 1, "mode": "standard"}
)


class DynamoAuditWriter:
    def __init__(self, table: str, client: Any | None = None) -> None:
        self._table = table
        self._client = client or boto3.client("dynamodb", config=AUDIT_CLIENT_CONFIG)

    def write(self, record: AuditRecord) -> None:
        self._client.put_item(TableName=self._table, Item=record.item(time.time()))

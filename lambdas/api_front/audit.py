"""The audit trail: one record per API request, written whatever the outcome.

A record holds identifiers, decisions, counts and a hash of the redacted prompt: never the
prompt, the answer or any other text a customer wrote. The front sends it to the region's FIFO
audit queue (one call); the ledger function chains the records of each region and day in order
(shared.ledger) and exports them to the Object Lock bucket.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import boto3

from api_front.dal import bounded_config
from shared.ledger import chain_id

RECORD_VERSION = 1


@dataclass
class AuditRecord:
    request_id: str
    route: str
    status: int
    recorded_at: str = ""  # ISO 8601, UTC, milliseconds
    region: str = "unknown"
    client: str | None = None
    use_case: str | None = None
    variant: str | None = None
    model_used: str | None = None  # the model id, or the serving adapter's artifact version
    tier: str | None = None
    attempt: int | None = None
    breaker: str | None = None  # allowed, diverted (circuit open or primary failed), not_reached
    guardrail: str | None = None  # intervened, passed, or None when no model answered
    failure_class: str | None = None  # request, budget, timeout, execution_failed, ...
    degraded_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micros: int = 0
    currency: str | None = None
    latency_ms: int = 0
    first_token_ms: int | None = None  # the stream route: time to the first text sent
    stream_end: str | None = None  # the stream route: done, error, or disconnected (the client hung up)
    prompt_sha256: str | None = None
    redactions: dict[str, int] = field(default_factory=dict)
    version: int = RECORD_VERSION

    def document(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @property
    def day(self) -> str:
        return self.recorded_at[:10]


def prompt_digest(redacted_prompt: str) -> str:
    """A hash of the prompt as the models saw it (redacted): it proves which text was sent without holding it."""
    return hashlib.sha256(redacted_prompt.encode("utf-8", errors="surrogatepass")).hexdigest()


def now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditWriter(Protocol):
    def write(self, record: AuditRecord) -> None: ...


# The audit send happens after the answer is known, inside API Gateway's 29 s: one bounded attempt
# (an in-region SendMessage takes milliseconds; tests/infrastructure/test_timeout_budget.py counts it).
AUDIT_CLIENT_CONFIG = bounded_config(0.1, 0.3)


class QueueAuditWriter:
    """SendMessage to the FIFO audit queue, grouped by chain (region and day) so the ledger
    function receives each chain's records one batch at a time, in order."""

    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self._url = queue_url
        self._client = client or boto3.client("sqs", config=AUDIT_CLIENT_CONFIG)

    def write(self, record: AuditRecord) -> None:
        self._client.send_message(
            QueueUrl=self._url,
            MessageBody=json.dumps(record.document(), sort_keys=True),
            MessageGroupId=chain_id(record.region, record.day),
            # A retried send within SQS's five-minute window is dropped, not chained twice.
            MessageDeduplicationId=hashlib.sha256(f"{record.request_id}|{record.route}".encode()).hexdigest(),
        )

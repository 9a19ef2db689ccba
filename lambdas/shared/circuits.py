"""Reading the circuit-breaker table: one small item per model, written by the state machine.

Used by the health route (which Route 53 calls) and by the circuit monitor (which runs every
minute whether or not anything calls health), so both read the circuits the same way.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

# The breaker's timestamps (the router stamps them, the state machine and health compare them):
# RFC 3339 in whole seconds with a literal Z, as Step Functions' timestamp comparisons take, and
# fixed-width, so they also compare correctly as strings.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

HEALTH_CLIENT_CONFIG = Config(
    connect_timeout=0.5, read_timeout=1.0, retries={"total_max_attempts": 1, "mode": "standard"}
)


class CircuitReader:
    """Reads every model's circuit item (one small item per model, so a scan is cheap)."""

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self._table = table_name
        # Route 53 gives the health route 2 s to answer: a slow table must make health say
        # "unreachable" in time rather than make the check time out.
        self._client = client or boto3.client("dynamodb", config=HEALTH_CLIENT_CONFIG)

    def circuits(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        while True:
            page = self._client.scan(**kwargs)
            for item in page.get("Items", []):
                found[item["model_id"]["S"]] = {
                    "state": item.get("circuit_state", {}).get("S", "CLOSED"),
                    "failures": int(item.get("failures", {}).get("N", "0")),
                    "opened_at": item.get("opened_at", {}).get("S"),
                    "probe_after": item.get("probe_after", {}).get("S"),
                    "version": int(item.get("version", {}).get("N", "0")),
                }
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def model_path_healthy(states: list[str]) -> bool:
    """A region can serve while at least one circuit is not open (or none has ever failed)."""
    return not states or any(state != "OPEN" for state in states)


def phase(state: str, probe_after: str | None, now: str) -> str:
    """closed, open (cooling down), awaiting_probe (cooled down, no live probe) or probing.

    ``now`` and ``probe_after`` are the breaker's whole-second timestamps (same format, so they
    compare as strings). A half-open circuit whose probe outlived the cooldown awaits a new one,
    as the state machine reclaims it then.
    """
    if state == "CLOSED":
        return "closed"
    due = probe_after is not None and probe_after <= now
    if state == "HALF_OPEN":
        return "awaiting_probe" if due else "probing"
    return "awaiting_probe" if due else "open"

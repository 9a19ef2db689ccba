"""The circuit breaker for paths that cannot run inside the state machine (the stream route).

It reads and writes the same circuit items, with the same conditional writes
(``shared.circuit_transitions``), the same AppConfig threshold and cooldown and the same clock (the
router's selection), and it takes the same decisions as the state machine's Choice states:

- ``RouteByCircuit``: no item or CLOSED -> primary; cooled down (``opened_at`` at or before the
  cutoff) -> claim the probe; anything else -> the next tier;
- ``NeedsReset``: a success on a circuit with failures counted resets them;
- ``RecordFailure`` then ``ThresholdReached``/``OpenCircuit`` for a failure of class ``model``;
  ``request`` and ``task`` failures are not counted;
- a probe's success closes the circuit, a ``model`` failure reopens it, any other failure releases
  the claim with the old ``opened_at``.

Every write's own failure (a lost condition, an unreachable table) is swallowed exactly where the
state machine's Catch swallows it: the request goes on to its answer.
tests/statemachine/test_breaker_conformance.py runs one scenario table through both paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from shared.circuit_transitions import CLOSED, CONSTANTS, TRANSITIONS
from shared.failures import FailureClass
from shared.observability import logger

Admission = Literal["primary", "probe", "open"]


@dataclass(frozen=True)
class CircuitItem:
    state: str
    failures: int
    version: int
    opened_at: str | None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> CircuitItem:
        return cls(
            state=item.get("circuit_state", {}).get("S", CLOSED),
            failures=int(item.get("failures", {}).get("N", "0")),
            version=int(item.get("version", {}).get("N", "0")),
            opened_at=item.get("opened_at", {}).get("S"),
        )


def route(item: CircuitItem | None, cooldown_cutoff: str) -> Literal["primary", "probe", "open"]:
    """The state machine's RouteByCircuit, for a user's request."""
    if item is None or item.state == CLOSED:
        return "primary"
    if item.opened_at is not None and item.opened_at <= cooldown_cutoff:
        return "probe"
    return "open"


class CircuitStore:
    """One model's circuit item: a consistent read and the shared conditional writes."""

    def __init__(self, table: str, client: Any) -> None:
        self._table = table
        self._client = client

    def read(self, model_id: str) -> CircuitItem | None:
        answer = self._client.get_item(TableName=self._table, Key={"model_id": {"S": model_id}}, ConsistentRead=True)
        return CircuitItem.from_item(answer["Item"]) if "Item" in answer else None

    def apply(self, name: str, model_id: str, values: dict[str, dict[str, str]]) -> dict[str, Any]:
        """Perform transition ``name``; raises ClientError (ConditionalCheckFailedException) when
        its condition does not hold. Returns the item's new attributes."""
        transition = TRANSITIONS[name]
        missing = transition.values() - set(values)
        if missing:
            raise ValueError(f"{name} needs {sorted(missing)}")
        used = transition.names()
        answer = self._client.update_item(
            TableName=self._table,
            Key={"model_id": {"S": model_id}},
            UpdateExpression=transition.update,
            ConditionExpression=transition.condition,
            ExpressionAttributeValues={k: v for k, v in {**CONSTANTS, **values}.items() if k in used},
            ReturnValues="ALL_NEW",
        )
        return dict(answer.get("Attributes", {}))


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


@dataclass
class Breaker:
    """One request's passage through one model's circuit.

    ``selection`` is the router's: ``model_id``, ``clock`` (now, cooldown_cutoff, probe_after) and
    ``breaker`` (failure_threshold) from the AppConfig strategy.
    """

    store: CircuitStore
    selection: dict[str, Any]
    item: CircuitItem | None = None
    claimed: int | None = None
    decisions: list[str] = field(default_factory=list)  # the transitions taken, for logs and tests

    @property
    def model_id(self) -> str:
        return str(self.selection["model_id"])

    @property
    def clock(self) -> dict[str, str]:
        return dict(self.selection["clock"])

    def admit(self) -> Admission:
        """May the primary be called? "probe" when this request holds the probe claim."""
        try:
            self.item = self.store.read(self.model_id)
        except (BotoCoreError, ClientError) as exc:  # ReadCircuit's Catch: the next tier answers
            logger.warning("circuit unreadable", extra={"model_id": self.model_id, "error": str(exc)[:200]})
            return "open"
        decision = route(self.item, self.clock["cooldown_cutoff"])
        if decision != "probe" or self.item is None:  # route() says "probe" only for an existing item
            return decision
        claimed = self._write(
            "ClaimProbe",
            {
                ":now": _s(self.clock["now"]),
                ":probe_after": _s(self.clock["probe_after"]),
                ":seen": _n(self.item.version),
            },
        )
        if claimed is None:  # ClaimLost: someone else probes; this request goes to the next tier
            return "open"
        self.claimed = int(claimed["version"]["N"])
        return "probe"

    def succeeded(self) -> None:
        if self.claimed is not None:
            self._write("CloseCircuit", {":claimed": _n(self.claimed)})
        elif self.item is not None and self.item.failures != 0:
            self._write("ResetFailures", {})

    def failed(self, failure_class: FailureClass) -> None:
        if self.claimed is not None:
            if failure_class is FailureClass.MODEL:
                self._write(
                    "ReopenCircuit",
                    {
                        ":claimed": _n(self.claimed),
                        ":now": _s(self.clock["now"]),
                        ":probe_after": _s(self.clock["probe_after"]),
                    },
                )
            else:
                previous = self.item.opened_at if self.item is not None else None
                self._write(
                    "ReleaseProbe",
                    {":claimed": _n(self.claimed), ":previous": _s(previous or ""), ":now": _s(self.clock["now"])},
                )
            return
        if failure_class is not FailureClass.MODEL:
            return  # not counted: the request's or the task's failure, not the model's
        recorded = self._write("RecordFailure", {})
        if recorded is None:
            return
        failures, version = int(recorded["failures"]["N"]), int(recorded["version"]["N"])
        if failures >= int(self.selection["breaker"]["failure_threshold"]):
            self._write(
                "OpenCircuit",
                {":seen": _n(version), ":now": _s(self.clock["now"]), ":probe_after": _s(self.clock["probe_after"])},
            )

    def _write(self, name: str, values: dict[str, dict[str, str]]) -> dict[str, Any] | None:
        try:
            attributes = self.store.apply(name, self.model_id, values)
        except (BotoCoreError, ClientError) as exc:
            # As the state machine's Catch on each write: the request still gets its answer.
            logger.info("circuit write not applied", extra={"transition": name, "error": str(exc)[:200]})
            self.decisions.append(f"{name}:skipped")
            return None
        self.decisions.append(name)
        return attributes

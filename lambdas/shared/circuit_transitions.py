"""The circuit's writes: one source for the state machine and the stream path.

Each transition is a conditional ``UpdateItem`` on a model's circuit item. The state machine
(``statemachines/circuit_breaker.asl.json``) names them as ``${<Name>Update}`` and
``${<Name>Condition}`` placeholders that CDK (``stacks/circuit_breaker.py``, which reads the same
JSON file) and the local emulator fill in; the stream path (``shared.breaker``) sends the same
strings. A change to how
a circuit opens, is probed or closes is made here once, and both paths change together.

Values named in the expressions are of two kinds: the constants below (states, 0 and 1), which
both paths send as they are, and per-request values (``:now``, ``:probe_after``, ``:seen``,
``:claimed``, ``:previous``), which the state machine reads by JSONPath and the stream path passes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

CLOSED, HALF_OPEN, OPEN = "CLOSED", "HALF_OPEN", "OPEN"

CONSTANTS: dict[str, dict[str, str]] = {
    ":closed": {"S": CLOSED},
    ":half": {"S": HALF_OPEN},
    ":open": {"S": OPEN},
    ":zero": {"N": "0"},
    ":one": {"N": "1"},
}


@dataclass(frozen=True)
class Transition:
    update: str
    condition: str

    def names(self) -> set[str]:
        """Every ``:value`` the two expressions use."""
        return set(re.findall(r":[a-z_]+", f"{self.update} {self.condition}"))

    def values(self) -> set[str]:
        """The per-request values the caller must pass."""
        return self.names() - set(CONSTANTS)


SOURCE = Path(__file__).with_name("circuit_transitions.json")


def load_transitions(path: Path = SOURCE) -> dict[str, Transition]:
    """The transitions, by the ASL state that performs each one:

    - RecordFailure: a counted failure of a closed (or never-seen) circuit; returns count and version;
    - OpenCircuit: the failure that reached the threshold opens it, unless another write came between;
    - ClaimProbe: one request (or health probe) claims a cooled-down circuit; the version makes it unique;
    - CloseCircuit / ReopenCircuit: the probe's outcome, only by the holder of the claim;
    - ReleaseProbe: a probe that failed for the request's own reason gives its slot back at once;
    - ResetFailures: a success on a closed circuit forgets the failures counted so far.
    """
    raw = json.loads(path.read_text())
    return {name: Transition(v["update"], v["condition"]) for name, v in raw.items() if not name.startswith("_")}


TRANSITIONS = load_transitions()

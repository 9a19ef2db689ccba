"""What the circuit monitor reports, free of Lambda and metrics so it tests in isolation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.circuits import CircuitReader, model_path_healthy
from shared.observability import logger


@dataclass(frozen=True)
class CircuitReport:
    table_reachable: bool
    open_by_model: dict[str, bool] = field(default_factory=dict)

    @property
    def open_models(self) -> list[str]:
        return [model for model, is_open in self.open_by_model.items() if is_open]

    @property
    def healthy(self) -> bool:
        return self.table_reachable and model_path_healthy(
            ["OPEN" if is_open else "CLOSED" for is_open in self.open_by_model.values()]
        )

    def as_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "table_reachable": self.table_reachable, "open": sorted(self.open_models)}


def report(reader: CircuitReader) -> CircuitReport:
    try:
        circuits = reader.circuits()
    except Exception as exc:  # an unreachable table is itself the finding: the path cannot serve
        logger.warning("circuit table unreachable", extra={"error": str(exc)})
        return CircuitReport(table_reachable=False)
    return CircuitReport(True, {model: c["state"] == "OPEN" for model, c in circuits.items()})

"""Route 53 failover, emulated: the health-check rule the synthesized template configures.

A check probes its endpoint every ``RequestInterval`` seconds and changes state after
``FailureThreshold`` consecutive results the other way; a probe passes when the status is 2xx or
3xx and the search string is in the first 5,120 bytes of the body. The failover record answers
with the PRIMARY while its check is healthy, else with a healthy SECONDARY (and, as Route 53
does, with the PRIMARY when both are unhealthy). The settings are read from the template, so the
local platform and the failover test follow whatever ``cdk synth`` produces.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEARCHED_BYTES = 5120
Probe = Callable[[], tuple[int, str]]


@dataclass(frozen=True)
class HealthCheckSettings:
    request_interval: int
    failure_threshold: int
    search_string: str
    resource_path: str

    @property
    def detection_window_s(self) -> int:
        """Worst case from the first failing probe's schedule to the record switching."""
        return self.request_interval * self.failure_threshold

    @classmethod
    def from_template(cls, template: dict[str, Any]) -> HealthCheckSettings:
        for resource in template.get("Resources", {}).values():
            if resource["Type"] != "AWS::Route53::HealthCheck":
                continue
            config = resource["Properties"]["HealthCheckConfig"]
            if config["Type"].startswith("HTTP"):
                return cls(
                    request_interval=int(config.get("RequestInterval", 30)),
                    failure_threshold=int(config.get("FailureThreshold", 3)),
                    search_string=str(config.get("SearchString", "")),
                    resource_path=str(config.get("ResourcePath", "/")),
                )
        raise ValueError("the template has no HTTP(S) Route 53 health check: synthesize with a domain_name")

    @classmethod
    def from_template_file(cls, path: Path) -> HealthCheckSettings:
        return cls.from_template(json.loads(path.read_text()))


@dataclass
class EmulatedHealthCheck:
    settings: HealthCheckSettings
    probe: Probe
    healthy: bool = True
    streak: int = 0  # consecutive probe results that disagree with the current state
    history: list[tuple[float, bool]] = field(default_factory=list)

    def passes(self) -> bool:
        try:
            status, body = self.probe()
        except Exception:  # an unreachable endpoint is a failed probe
            return False
        window = body.encode()[:SEARCHED_BYTES].decode(errors="ignore")
        return 200 <= status < 400 and self.settings.search_string in window

    def run(self, now: float) -> None:
        ok = self.passes()
        self.history.append((now, ok))
        self.streak = 0 if ok == self.healthy else self.streak + 1
        if self.streak >= self.settings.failure_threshold:
            self.healthy, self.streak = ok, 0


@dataclass
class Region:
    name: str
    probe: Probe
    serve: Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


class FailoverFront:
    """The failover record plus its two health checks, on a clock the caller advances."""

    def __init__(self, settings: HealthCheckSettings, primary: Region, secondary: Region) -> None:
        self.settings = settings
        self.regions = (primary, secondary)
        self.checks = {r.name: EmulatedHealthCheck(settings, r.probe) for r in self.regions}
        self.now = 0.0
        self._next_probe = 0.0

    def advance(self, seconds: float) -> None:
        """Let time pass; checks run on their schedule (every RequestInterval seconds)."""
        target = self.now + seconds
        while self._next_probe <= target:
            self.now = self._next_probe
            for check in self.checks.values():
                check.run(self.now)
            self._next_probe += self.settings.request_interval
        self.now = target

    def active(self) -> Region:
        primary, secondary = self.regions
        if self.checks[primary.name].healthy or not self.checks[secondary.name].healthy:
            return primary
        return secondary

    def request(self, body: dict[str, Any]) -> tuple[str, int, dict[str, Any]]:
        region = self.active()
        status, answer = region.serve(body)
        return region.name, status, answer

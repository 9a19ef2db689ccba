"""A model-based test: hypothesis drives random request/fault/clock sequences through the real
state machine and checks every step against a reference model of the breaker's rules."""

from dataclasses import dataclass

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from local.request_path import local_request_path
from tests.statemachine.conftest import COOLDOWN, PRIMARY, THRESHOLD


@dataclass
class ReferenceBreaker:
    """The rules as the README states them, in plain Python."""

    state: str = "CLOSED"
    failures: int = 0
    opened_at: float = 0.0

    def request(self, now: float, primary_ok: bool) -> tuple[str, bool]:
        """Returns (expected tier, whether the primary is called)."""
        if self.state == "CLOSED":
            if primary_ok:
                self.failures = 0
                return "primary", True
            self.failures += 1
            if self.failures >= THRESHOLD:
                self.state, self.opened_at = "OPEN", now
            return "fallback", True
        if now - self.opened_at >= COOLDOWN:  # one probe
            if primary_ok:
                self.state, self.failures = "CLOSED", 0
                return "primary", True
            self.state, self.opened_at = "OPEN", now
            return "fallback", True
        return "fallback", False


class BreakerMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self._context = local_request_path()
        self.path = self._context.__enter__()
        self.model = ReferenceBreaker()
        self.now = 0.0
        self.count = 0
        self.states_seen: set[str] = set()

    def teardown(self) -> None:
        if hasattr(self, "_context"):
            self._context.__exit__(None, None, None)

    @rule(primary_ok=st.booleans())
    def send(self, primary_ok: bool) -> None:
        if primary_ok:
            self.path.bedrock.heal(PRIMARY)
        else:
            self.path.bedrock.fail(PRIMARY)
        calls_before = self.path.bedrock.calls_to(PRIMARY)
        self.states_seen.add(self.model.state)
        self.count += 1
        result = self.path.execute(
            {"request_id": f"m-{self.count}", "prompt": "Is a CD FDIC insured?", "use_case": "general", "user_id": None}
        )
        expected_tier, primary_called = self.model.request(self.now, primary_ok)
        assert result["status"] == "SUCCEEDED", result
        assert result["output"]["tier"] == expected_tier
        assert (self.path.bedrock.calls_to(PRIMARY) - calls_before) == int(primary_called)

    @rule()
    def failure_burst(self) -> None:
        """Enough consecutive failures to open a closed circuit, so open/probe paths get explored."""
        for _ in range(THRESHOLD):
            self.send(primary_ok=False)

    # The cooldown's edges are where an off-by-one would hide.
    @rule(seconds=st.sampled_from([COOLDOWN, COOLDOWN - 1, 1]))
    def wait(self, seconds: int) -> None:
        self.now += seconds
        self.path.advance(seconds)

    @invariant()
    def stored_circuit_matches_model(self) -> None:
        if not hasattr(self, "path"):
            return
        stored = self.path.circuit(PRIMARY)
        state = stored["state"] if stored else "CLOSED"
        assert state == self.model.state
        if state == "CLOSED":
            assert (stored["failures"] if stored else 0) == self.model.failures
            assert self.model.failures < THRESHOLD
        else:
            assert stored is not None and stored["opened_at"] is not None


BreakerMachine.TestCase.settings = settings(
    max_examples=8,
    stateful_step_count=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCircuitBreakerModel = BreakerMachine.TestCase

"""Adapters trained behind a running platform (``make demo`` on a fresh clone).

The platform starts at once and serves every use case; the adapters that are not cached yet are
trained one after the other in a child process (``python -m local.adapters --only NAME``), never
in the server: training holds gigabytes the server would keep. Until an adapter is ready its
variants' traffic goes to the strategy's Bedrock variant (:func:`strategy_while_training`); when
it is ready, ``on_ready`` hot-swaps it into the regions. Progress (phase, step, ETA) is read from
the job's own output, printed at least every ``TICK_S`` seconds, and shown by health and the console.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess  # nosec B404 - starts this package's own training module
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TICK_S = 10.0  # the console never goes quiet for longer than this while an adapter trains
STEP = re.compile(r"step (\d+)/(\d+)")
# Which strategy targets each adapter serves (the endpoint stand-in plays the advisor on SmolLM2).
TARGETS = {"advisor": ("advisor", "advisor_large"), "sentiment": ("sentiment",)}


@dataclass
class AdapterProgress:
    name: str
    state: str = "queued"  # queued, training, ready, failed
    phase: str = "waiting for its turn"
    step: int = 0
    steps: int = 0
    started: float | None = None
    first_step: int = 0
    first_step_at: float | None = None
    eta_s: float | None = None
    serve: str | None = None
    message: str | None = None

    def describe(self) -> str:
        """One line a person reads: "advisor adapter: training, step 10/24, about 3 min left"."""
        elapsed = f" ({_minutes(time.monotonic() - self.started)} so far)" if self.started is not None else ""
        if self.state == "training" and self.steps and self.step < self.steps:
            left = f", about {_minutes(self.eta_s)} left" if self.eta_s is not None else ""
            return f"{self.name} adapter: training, step {self.step}/{self.steps}{left}"
        if self.state == "training":
            return f"{self.name} adapter: {self.phase}{elapsed}"
        if self.state == "failed":
            return f"{self.name} adapter: failed ({self.message}); its variants stay on the Bedrock model"
        if self.state == "ready":
            return f"{self.name} adapter: ready, serving"
        return f"{self.name} adapter: queued"

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "phase": self.phase,
            "step": self.step,
            "steps": self.steps,
            "eta_s": None if self.eta_s is None else round(self.eta_s),
            "summary": self.describe(),
        }


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{max(1, round(seconds / 60))} min" if seconds >= 90 else f"{max(5, round(seconds / 5) * 5)} s"


@dataclass
class BackgroundTraining:
    """Train ``names`` in order in a child process each; call ``on_ready(name, serve_dir)`` as each
    finishes. ``command`` builds the child's argv (tests give a quick stand-in)."""

    names: list[str]
    on_ready: Callable[[str, Path], None]
    log_dir: Path
    command: Callable[[str], list[str]] = field(
        default=lambda name: [sys.executable, "-m", "local.adapters", "--only", name, "--print-serve"]
    )
    say: Callable[[str], None] = field(default=lambda line: print(line, flush=True))
    progress: dict[str, AdapterProgress] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.progress = {name: AdapterProgress(name) for name in self.names}
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._worker = threading.Thread(target=self._run, name="adapters", daemon=True)
        self._ticker = threading.Thread(target=self._tick, name="adapters-ticker", daemon=True)
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self._worker.start()
        self._ticker.start()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {name: p.as_json() for name, p in self.progress.items()}

    def ready(self) -> set[str]:
        with self._lock:
            return {name for name, p in self.progress.items() if p.state == "ready"}

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def stop(self) -> None:
        self._done.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()

    def _run(self) -> None:
        try:
            for name in self.names:
                if self._done.is_set():
                    return
                self._train(name)
        finally:
            self._done.set()

    def _train(self, name: str) -> None:
        progress = self.progress[name]
        with self._lock:
            progress.state, progress.phase, progress.started = "training", "starting", time.monotonic()
        self.say(f"[adapters] {name}: training in the background (the platform serves meanwhile)")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'lambdas'}", "PYTHONUNBUFFERED": "1"}
        serve: str | None = None
        with (self.log_dir / f"adapter-{name}.log").open("w") as log:
            self._process = subprocess.Popen(  # noqa: S603  # nosec B603 - this package's own module
                self.command(name),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
                cwd=ROOT,
            )
            for line in self._process.stdout or ():
                log.write(line)
                log.flush()
                serve = self._read(progress, line.rstrip()) or serve
            code = self._process.wait()
        with self._lock:
            if code == 0 and serve and (Path(serve) / "manifest.json").is_file():
                progress.state, progress.phase, progress.serve, progress.eta_s = "ready", "ready", serve, 0
            else:
                progress.state = "failed"
                progress.message = f"exit {code}; see {self.log_dir / f'adapter-{name}.log'}"
        self.say(f"[adapters] {progress.describe()}")
        if progress.state == "ready" and serve:
            try:
                self.on_ready(name, Path(serve))
            except Exception as exc:  # a swap that fails leaves the Bedrock variant serving
                with self._lock:
                    progress.state, progress.message = "failed", f"hot swap failed: {exc}"
                self.say(f"[adapters] {progress.describe()}")

    def _read(self, progress: AdapterProgress, line: str) -> str | None:
        """Update progress from one line of the job's output; the serve/ path when it says so."""
        if line.startswith("SERVE "):
            return line.removeprefix("SERVE ").strip()
        now = time.monotonic()
        with self._lock:
            match = STEP.search(line)
            if match:
                progress.step, progress.steps = int(match.group(1)), int(match.group(2))
                progress.phase = "training"
                if progress.first_step_at is None:
                    progress.first_step_at, progress.first_step = now, progress.step
                done = progress.step - progress.first_step
                if done > 0:
                    rate = (now - progress.first_step_at) / done
                    progress.eta_s = rate * (progress.steps - progress.step)
            elif line and not line[0].isspace() and "warn" not in line.lower():
                # The job's own words ("[advisor] served evaluation 3/8", "device cpu; ...").
                phase = line.split("]", 1)[1].strip() if line.startswith("[") and "]" in line else line
                progress.phase = phase[:120]
                if progress.steps and progress.step >= progress.steps:
                    # After the last step: export and evaluation, which the step ETA does not cover.
                    progress.eta_s = None
        return None

    def _tick(self) -> None:
        while not self._done.wait(TICK_S):
            with self._lock:
                lines = [p.describe() for p in self.progress.values() if p.state in ("training", "queued")]
            if lines:
                self.say("[adapters] " + "; ".join(lines))


def strategy_while_training(document: dict[str, Any], ready: set[str]) -> dict[str, Any]:
    """The local strategy with every variant served by an adapter that is not ready yet moved to
    zero weight, its share given to the use case's first Bedrock variant; the version says which
    adapters are in."""
    updated = copy.deepcopy(document)
    waiting = {target for name, targets in TARGETS.items() if name not in ready for target in targets}
    for entry in updated["use_cases"].values():
        variants = entry["variants"]
        bedrock = next((v for v in variants if v["provider"] == "bedrock"), None)
        for variant in variants:
            if variant["provider"] != "bedrock" and variant.get("target") in waiting and bedrock is not None:
                bedrock["weight"] += variant["weight"]
                variant["weight"] = 0
    if waiting:
        suffix = "+".join(sorted(ready)) or "bedrock"
        updated["version"] = f"{document['version']}:{suffix}"[:64]
    return updated

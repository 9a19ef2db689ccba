"""Adapters trained behind a running platform: progress from the job's output, an ETA, a line at
least every tick, a hot swap per adapter when it is ready, and the strategy that serves meanwhile."""

from __future__ import annotations

import json
import re
import sys
import textwrap
import time
from pathlib import Path

import pytest

from local import background
from local.background import AdapterProgress, BackgroundTraining, strategy_while_training
from shared.strategy import parse_strategy

LOCAL_STRATEGY = json.loads((Path(__file__).resolve().parents[2] / "local" / "strategy.local.json").read_text())


def fake_job(tmp_path: Path, name: str, steps: int = 4, fail: bool = False) -> list[str]:
    """A stand-in for ``python -m local.adapters --only NAME --print-serve``: the same output shape."""
    serve = tmp_path / name / "serve"
    script = tmp_path / f"{name}.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import pathlib, sys, time
            print("[adapters] first run: training the {name} adapter", flush=True)
            print("device cpu; train 8 rows", flush=True)
            for step in range(1, {steps} + 1):
                time.sleep(0.3)
                print(f"[{name}] epoch 1/1 step {{step}}/{steps} loss 0.5", flush=True)
            print("[{name}] exporting the int8 serving artifact", flush=True)
            if {fail}:
                sys.exit(3)
            serve = pathlib.Path({str(serve)!r}); serve.mkdir(parents=True)
            (serve / "manifest.json").write_text("{{}}")
            print("SERVE " + str(serve), flush=True)
            """
        )
    )
    return [sys.executable, str(script)]


def test_each_adapter_is_trained_in_turn_and_swapped_in_when_ready(tmp_path, monkeypatch):
    monkeypatch.setattr(background, "TICK_S", 0.1)
    swapped: list[tuple[str, Path, set[str]]] = []
    lines: list[str] = []
    training: BackgroundTraining

    def on_ready(name: str, serve: Path) -> None:
        swapped.append((name, serve, training.ready()))

    training = BackgroundTraining(
        ["sentiment", "advisor"], on_ready, tmp_path / "logs", command=lambda n: fake_job(tmp_path, n), say=lines.append
    )
    assert training.snapshot()["advisor"]["state"] == "queued"
    training.start()
    assert training.wait(30)
    assert [(n, s) for n, s, _ in swapped] == [
        ("sentiment", tmp_path / "sentiment" / "serve"),
        ("advisor", tmp_path / "advisor" / "serve"),
    ]
    assert swapped[0][2] == {"sentiment"}  # ready before its swap is announced
    assert {p["state"] for p in training.snapshot().values()} == {"ready"}
    # Progress lines name the step and, once the rate is known, the time left; never silent.
    # Lines every tick while a job runs: its step (the ETA's arithmetic is tested below).
    assert any(re.search(r"sentiment adapter: training, step \d/4", line) for line in lines), lines
    assert any("advisor adapter: queued" in line for line in lines), lines
    assert (tmp_path / "logs" / "adapter-advisor.log").read_text().count("step") == 4


def test_a_failed_job_is_reported_and_nothing_is_swapped(tmp_path):
    swapped: list[str] = []
    lines: list[str] = []
    training = BackgroundTraining(
        ["advisor"],
        lambda name, serve: swapped.append(name),
        tmp_path / "logs",
        command=lambda n: fake_job(tmp_path, n, fail=True),
        say=lines.append,
    )
    training.start()
    assert training.wait(30)
    state = training.snapshot()["advisor"]
    assert state["state"] == "failed" and "exit 3" in state["summary"] and "Bedrock" in state["summary"]
    assert swapped == []


def test_the_eta_comes_from_the_step_rate():
    progress = AdapterProgress("advisor", state="training", started=time.monotonic())
    training = BackgroundTraining(["advisor"], lambda n, s: None, Path("/tmp"), say=lambda line: None)
    training.progress["advisor"] = progress
    training._read(progress, "[advisor] epoch 1/1 step 10/24 loss 0.4")
    progress.first_step_at = time.monotonic() - 100  # ten steps more took 100 s
    training._read(progress, "[advisor] epoch 1/1 step 20/24 loss 0.3")
    assert progress.eta_s == pytest.approx(40, abs=2)
    assert progress.describe() == "advisor adapter: training, step 20/24, about 40 s left"
    training._read(progress, "[advisor] served evaluation 3/8 (41 s)")
    training._read(progress, "[advisor] epoch 1/1 step 24/24 loss 0.2")
    training._read(progress, "[advisor] exporting the int8 serving artifact")
    assert progress.eta_s is None and progress.describe().startswith("advisor adapter: exporting the int8")


@pytest.mark.parametrize("ready", [set(), {"sentiment"}, {"advisor"}, {"advisor", "sentiment"}])
def test_the_strategy_while_training_sends_waiting_adapters_traffic_to_bedrock(ready):
    document = strategy_while_training(LOCAL_STRATEGY, ready)
    parse_strategy(document)  # what AppConfig would accept
    for use_case, adapters in (("budgeting_advice", "advisor"), ("sentiment", "sentiment")):
        variants = document["use_cases"][use_case]["variants"]
        bedrock = sum(v["weight"] for v in variants if v["provider"] == "bedrock")
        served = sum(v["weight"] for v in variants if v["provider"] != "bedrock")
        assert bedrock + served == 100
        assert (served > 0) == (adapters in ready), (use_case, variants)
    assert (document == LOCAL_STRATEGY) == (ready == {"advisor", "sentiment"})

"""Time to first token beside the sync latency: the shipped advisor's stream, and the stream route.

- advisor: the int8 ONNX advisor (what the serving function runs), time to its first generated
  token (``Generator.tokens``) against the whole answer (``generate_ids``), same prompt, same
  number of tokens;
- route: ``POST /v1/generate/stream`` and ``POST /v1/generate`` on the local request path (the real
  handlers, moto's tables and Step Functions), the offline Bedrock stand-in generating a word every
  ``pace`` seconds, as a model does: time to the first ``delta`` against the whole sync answer.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p95_ms": round(1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 1),
    }


def advisor_stream(model: str, int8: Path, prompt_ids: list[int], new_tokens: int, runs: int) -> dict[str, Any]:
    from serving.artifacts import verify
    from serving.generator import Generator

    generator = Generator(verify(int8))
    generator.generate_ids(prompt_ids, new_tokens, new_tokens)  # warm
    first, whole = [], []
    for _ in range(runs):
        started = time.perf_counter()
        steps = generator.tokens(prompt_ids, new_tokens, new_tokens)
        next(steps)
        first.append(time.perf_counter() - started)
        for _ in steps:
            pass
        started = time.perf_counter()
        generator.generate_ids(prompt_ids, new_tokens, new_tokens)
        whole.append(time.perf_counter() - started)
    return {
        "path": f"advisor {model} (int8, {'onnxruntime-genai' if generator.genai else 'our ONNX graphs'})",
        "ttft": percentiles(first),
        "sync": percentiles(whole),
        "tokens": new_tokens,
    }


def route_stream(runs: int, pace_s: float = 0.02) -> dict[str, Any]:
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    from local.bedrock_stub import OfflineBedrock
    from local.request_path import local_request_path, stream_request

    bedrock = OfflineBedrock(pace_s=pace_s)
    body = json.dumps({"use_case": "general", "prompt": "What is the difference between an ISA and a pension?"})
    first, whole_stream, sync = [], [], []
    with local_request_path(bedrock=bedrock, live_clock=True) as path:
        path.api("POST", "/v1/generate", body)  # warm both routes
        b"".join(stream_request(body).body)
        for _ in range(runs):
            started = time.perf_counter()
            response = stream_request(body)
            seen = False
            for chunk in response.body:
                if not seen and b"event: delta" in chunk:
                    first.append(time.perf_counter() - started)
                    seen = True
            whole_stream.append(time.perf_counter() - started)
            started = time.perf_counter()
            status, answer = path.api("POST", "/v1/generate", body)
            sync.append(time.perf_counter() - started)
            if status != 200 or answer["tier"] != "primary":
                raise RuntimeError(f"the sync route did not answer from the primary: {answer}")
    return {
        "path": f"stream route, offline Bedrock stand-in ({pace_s * 1000:.0f} ms per word)",
        "ttft": percentiles(first),
        "stream_whole": percentiles(whole_stream),
        "sync": percentiles(sync),
    }


def markdown(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "| streaming | time to first token p50 | p95 | whole answer, sync p50 | p95 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['path']} | {row['ttft']['p50_ms']:.0f} ms | {row['ttft']['p95_ms']:.0f} ms "
            f"| {row['sync']['p50_ms']:.0f} ms | {row['sync']['p95_ms']:.0f} ms |"
        )
    return lines


def plot(rows: list[dict[str, Any]], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.5))
    labels = [row["path"].replace(" (", "\n(") for row in rows]
    positions = range(len(rows))
    ax.barh(
        [p + 0.2 for p in positions],
        [r["sync"]["p50_ms"] for r in rows],
        height=0.4,
        color="#bbb",
        label="whole answer (sync) p50",
    )
    ax.barh(
        [p - 0.2 for p in positions],
        [r["ttft"]["p50_ms"] for r in rows],
        height=0.4,
        color="#247",
        label="time to first token p50",
    )
    ax.set_yticks(list(positions), labels, fontsize=8)
    ax.set_xlabel("ms")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Streaming: the first token against the whole answer")
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)

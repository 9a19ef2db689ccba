"""One serving path in a fresh process: cold start, warm latency and peak memory.

``python -m bench.worker SPEC_JSON`` answers once and prints ``READY``, times one generation per
``run`` line on stdin (``TIME``), and prints ``RESULT`` at ``done``. ONNX paths import only the Lambda's
runtime (``serving``), never torch, so their memory and start-up are what the container pays.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

STARTED = time.time()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def peak_rss_mb() -> float:
    """This process's high-water mark (VmHWM). ru_maxrss would not do: Linux carries it across
    execve, so a child would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def torch_runner(spec: dict[str, Any]) -> Any:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    torch.set_num_threads(spec["threads"])
    config = AutoConfig.from_pretrained(spec["model"])  # nosec B615 - a local directory
    seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    loader = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    model = loader.from_pretrained(spec["model"], dtype=torch.float32, attn_implementation="eager")
    if spec.get("adapter"):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, spec["adapter"])  # unmerged: LoRA runs beside each projection
    model.eval()
    ids = torch.tensor([spec["prompt_ids"]])
    new = spec["new_tokens"]

    def run() -> list[int]:
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=new,
                min_new_tokens=new,
                do_sample=False,
                pad_token_id=0,
            )
        tokens = out[0].tolist()
        return tokens[1:] if seq2seq else tokens[ids.shape[1] :]

    return run


def onnx_runner(spec: dict[str, Any]) -> Any:
    os.environ["ORT_THREADS"] = str(spec["threads"])
    from serving.artifacts import verify
    from serving.generator import Generator

    generator = Generator(verify(Path(spec["model"])))
    new = spec["new_tokens"]
    return lambda: generator.generate_ids(spec["prompt_ids"], new, new).token_ids


def main() -> int:
    """Answer once (the cold start), then time one run per ``run`` line on stdin until ``done``.

    The parent drives every path's worker in turn, so warm runs of (a) to (d) interleave and a
    noisy moment on a shared machine lands on all of them, not on whichever path ran then.
    """
    spec = json.loads(sys.argv[1])
    run = onnx_runner(spec) if spec["kind"] == "onnx" else torch_runner(spec)
    first = run()
    answered_at = time.time()  # the parent subtracts its spawn time: interpreter start-up counts
    print("READY " + json.dumps({"first_answer_at": answered_at, "in_process_s": round(answered_at - STARTED, 3)}))
    sys.stdout.flush()
    timings = []
    tokens = first
    for command in sys.stdin:
        if command.strip() != "run":
            break
        began = time.perf_counter()
        tokens = run()
        timings.append(time.perf_counter() - began)
        print(f"TIME {timings[-1]}", flush=True)
    result = {
        "p50_s": round(percentile(timings, 50), 4),
        "p95_s": round(percentile(timings, 95), 4),
        "runs": len(timings),
        "generated_tokens": len(tokens),
        "first_tokens": first[:64],
        "peak_rss_mb": peak_rss_mb(),
        "torch_imported": "torch" in sys.modules,
    }
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``make bench``: the advisor's serving paths beside the engines a user would pick instead, the
sentiment classifier, and time to first token.

Advisor, on the same 96-token prompt with exactly 64 generated tokens and 2 threads, warm runs
interleaved across every path, each path in its own process (cold start = spawn to first
answer; peak RSS of that process):
- PyTorch + PEFT with the adapter unmerged (eager), and PyTorch with it merged: the fp32
  reference every other row's greedy tokens are compared with;
- ours: the shipped path of each model (seq2seq: our int8 ONNX graphs; causal: onnxruntime-genai
  int8 with the LoRA adapter loaded at run time, decoded by our serving loop), plus the rows it
  replaced or rejected (our own causal graphs; genai int4; genai on the merged checkpoint);
- peers (bench/peers.py): onnxruntime-genai int8 and int4 on the merged checkpoint, CTranslate2
  int8, llama.cpp Q8_0 through llama-cpp-python; each skipped with a one-line reason where it
  cannot run.
Verdicts: ours <= the fastest 8-bit peer's p50, ours <= the fastest peer's that keeps fp32's
tokens, and fp32 agreement >= 15 of the first 16 greedy tokens (median over the agreement prompts).

Models: google/flan-t5-small's real architecture with random weights (its weights are not
available offline; latency depends on the architecture, not on the weight values), and the
offline causal default (SmolLM2-135M-Instruct, real weights). Both carry a random LoRA adapter.

Streaming (bench/stream.py): time to first token p50/p95 of the advisor's int8 stream and of the
stream route on the offline stand-in path, beside their sync latency.

Quality (bench/quality.py): the demo advisor's held-out well-formed and grounded rates and its
served latency; the demo classifier's macro-F1 against the VADER lexicon, in and out of domain.

Writes bench/results.json, bench/results.md, bench/results.png, bench/streaming.png and bench/quality.png.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess  # nosec B404 - runs this package's own worker module
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.quality import advisor_quality, sentiment_quality
from bench.quality import markdown as quality_markdown
from bench.quality import plot as quality_plot
from bench.stream import advisor_stream, route_stream
from bench.stream import markdown as stream_markdown
from bench.stream import plot as stream_plot

ROOT = Path(__file__).resolve().parent.parent
PROMPT_TOKENS, NEW_TOKENS, THREADS = 96, 64, 2
# The "7x faster than eager PEFT" target is retired (issue 20): eager PyTorch got 2.2x faster with
# transformers 5, so the ratio stopped measuring us. The speed bar is now the best peer engine.
TARGETS = {"advisor_p50_s": 0.300, "cold_start_s": 1.5, "sentiment_p50_ms": 5.0, "fp32_agreement": 15}
AGREEMENT_PROMPTS, AGREEMENT_TOKENS = 10, 16
HONESTY = (
    "flan-t5-small: google/flan-t5-small's real config with random weights (the real weights are not "
    "available offline); latency depends on the architecture, not on the weight values. "
    "smollm2-135m: real SmolLM2-135M-Instruct weights. Both with a random LoRA adapter (r=8)."
)


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def size_mb(*paths: Path) -> float:
    total = 0
    for path in paths:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        # Everything a deployment carries (graphs, external weights, adapters, GGUF), not build logs.
        total += sum(p.stat().st_size for p in files if p.suffix not in (".log", ".md", ".jinja"))
    return round(total / 1e6, 1)


def example_prompts(count: int = 20) -> list[str]:
    """Real advisor prompts from the synthetic data pipeline (a small, seeded population)."""
    from training_jobs.data.advisor_pairs import pairs_for_user
    from training_jobs.data.config import load_config
    from training_jobs.data.transactions import generate

    config = load_config(str(ROOT / "training_jobs" / "configs" / "synthetic.yaml"))
    frame, _ = generate(config.model_copy(update={"users": 4, "months": 4}))
    end = max(frame["date"])
    prompts: list[str] = []
    for user_id, rows in frame.groupby("user_id", sort=True):
        prompts += [pair["prompt"] for pair in pairs_for_user(rows, str(user_id), config.advisor, end)]
    return prompts[:count]


def prompt_ids(tokenizer_dir: Path, seq2seq: bool) -> list[int]:
    """Exactly PROMPT_TOKENS ids of a real advisor prompt (repeated when the tokenizer is coarse)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)  # nosec B615 - a local directory
    ids = tokenizer(example_prompts(1)[0], add_special_tokens=False).input_ids
    while len(ids) < PROMPT_TOKENS:
        ids = ids + ids
    ids = [*ids[: PROMPT_TOKENS - 1], tokenizer.eos_token_id] if seq2seq else ids[:PROMPT_TOKENS]
    return [int(i) for i in ids]


def agreement_prompt_ids(tokenizer_dir: Path, seq2seq: bool, count: int = AGREEMENT_PROMPTS) -> list[list[int]]:
    """Real advisor prompts as the advisor serves them (a causal model's in its chat template), as
    ids (at most 256), for the first-16-tokens comparison with fp32."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)  # nosec B615 - a local directory
    prompts = []
    for prompt in example_prompts(count):
        text = prompt
        if not seq2seq and getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
            )
        ids = tokenizer(text, add_special_tokens=seq2seq).input_ids
        prompts.append([int(i) for i in (ids[:255] + ids[-1:] if seq2seq and len(ids) > 256 else ids[:256])])
    return prompts


def prepare_model(name: str, base: Path, work: Path) -> dict[str, Path]:
    """Adapter, merged checkpoint and our artifacts for one base (causal: both engines)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    from training_jobs.common.tiny_models import random_adapter
    from training_jobs.export.onnx_export import export

    seq2seq = "t5" in name
    paths = {
        "base": base,
        "adapter": work / name / "adapter",
        "merged": work / name / "merged",
        "fp32": work / name / ("onnx-fp32" if seq2seq else "graphs-fp32"),
        "int8": work / name / ("onnx-int8" if seq2seq else "genai-int8"),
    }
    exports = [("fp32", "fp32", "graphs"), ("int8", "int8", "auto")]
    if not seq2seq:
        paths["graphs-int8"] = work / name / "graphs-int8"
        paths["genai-int4"] = work / name / "genai-int4"
        exports += [("graphs-int8", "int8", "graphs"), ("genai-int4", "int4", "genai")]
    if not (paths["adapter"] / "adapter_config.json").exists():
        log(f"{name}: random LoRA adapter")
        random_adapter(base, paths["adapter"])
    if not (paths["merged"] / "config.json").exists():
        log(f"{name}: merged checkpoint")
        loader = AutoModelForSeq2SeqLM if "t5" in name else AutoModelForCausalLM
        merged = PeftModel.from_pretrained(loader.from_pretrained(base), paths["adapter"]).merge_and_unload()
        merged.save_pretrained(paths["merged"])
        AutoTokenizer.from_pretrained(base).save_pretrained(paths["merged"])  # nosec B615 - a local directory
    for key, precision, engine in exports:
        if not (paths[key] / "manifest.json").exists():
            export(paths["adapter"], paths[key], precision, base_model=str(base), max_input_tokens=512, engine=engine)
    return paths


class Worker:
    """One serving path in its own process (see bench/worker.py for the protocol)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "PYTHONPATH": f"{ROOT}:{ROOT / 'lambdas'}"}
        self.errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 - read on failure, closed in finish()
        spawned = time.time()
        self.process = subprocess.Popen(  # noqa: S603  # nosec B603 - our own worker module with a JSON spec
            [spec.get("python", sys.executable), "-m", "bench.worker", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
            env=env,
        )
        if self.process.stdin is None or self.process.stdout is None:  # both are PIPEs: narrows types
            raise RuntimeError("worker pipes were not created")
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        ready = json.loads(self._expect("READY "))
        # Both start-up figures go into the report: spawn to first answer, and the in-process share.
        cold_start_s = round(ready["first_answer_at"] - spawned, 3)
        self.start = {"in_process_s": ready["in_process_s"], "cold_start_s": cold_start_s}

    def _expect(self, prefix: str) -> str:
        for line in self.stdout:
            if line.startswith(prefix):
                return line.removeprefix(prefix).strip()
        code = self.process.wait()
        self.errors.seek(0)
        tail = self.errors.read()[-2000:]
        raise RuntimeError(f"worker for {self.spec['path']} exited (code {code}) before {prefix.strip()}: {tail}")

    def _send(self, command: str) -> None:
        self.stdin.write(command + "\n")
        self.stdin.flush()

    def run_once(self) -> float:
        self._send("run")
        return float(self._expect("TIME "))

    def finish(self) -> dict[str, Any]:
        self._send("done")
        result = json.loads(self._expect("RESULT "))
        self.process.wait(timeout=60)
        self.errors.close()
        return {**result, **self.start}


def path_specs(name: str, paths: dict[str, Path], work: Path) -> list[dict[str, Any]]:
    """Every serving path for one model: key, label, role, the worker spec, and its files; a peer
    that cannot run here comes back with ``skipped`` (its reason) instead of a spec."""
    from bench import peers

    seq2seq = "t5" in name
    rows: list[dict[str, Any]] = [
        {"key": "a", "label": "PyTorch + PEFT, adapter unmerged (eager)", "role": "baseline",
         "spec": {"kind": "torch", "model": str(paths["base"]), "adapter": str(paths["adapter"])},
         "files": [paths["base"], paths["adapter"]]},
        {"key": "b", "label": "PyTorch fp32, adapter merged (eager): the fp32 reference", "role": "reference",
         "spec": {"kind": "torch", "model": str(paths["merged"])}, "files": [paths["merged"]]},
        {"key": "c", "label": "ours, ONNX Runtime fp32 graphs", "role": "ours-other",
         "spec": {"kind": "onnx", "model": str(paths["fp32"])}, "files": [paths["fp32"]]},
    ]  # fmt: skip
    if seq2seq:
        rows.append({"key": "d", "label": "ours, ONNX Runtime int8 graphs (shipped)", "role": "ours",
                     "spec": {"kind": "onnx", "model": str(paths["int8"])}, "files": [paths["int8"]]})  # fmt: skip
    else:
        rows += [
            {"key": "d", "label": "ours, ONNX Runtime int8 graphs (shipped until issue 20)", "role": "ours-other",
             "spec": {"kind": "onnx", "model": str(paths["graphs-int8"])}, "files": [paths["graphs-int8"]]},
            {"key": "e", "label": "ours, onnxruntime-genai int8 + runtime LoRA adapter (shipped)", "role": "ours",
             "spec": {"kind": "onnx", "model": str(paths["int8"])}, "files": [paths["int8"]]},
            {"key": "f", "label": "ours, onnxruntime-genai int4 + runtime LoRA adapter", "role": "ours-other",
             "spec": {"kind": "onnx", "model": str(paths["genai-int4"])}, "files": [paths["genai-int4"]]},
        ]  # fmt: skip
    merged = paths["merged"]
    peer_paths: list[tuple[str, str, Any]] = []
    if seq2seq:
        skip = "onnxruntime-genai's model builder has no T5 (encoder-decoder) architecture"
        peer_paths.append(("g", "onnxruntime-genai int8 (model builder, merged)", skip))
        peer_paths.append(("h", "onnxruntime-genai int4 (model builder, merged)", skip))
        skip = "llama-cpp-python's generate() has no encoder-decoder path (it never calls llama_encode)"
        peer_paths.append(("i", "llama.cpp GGUF Q8_0 (llama-cpp-python)", skip))
    else:
        for key, precision in (("g", "int8"), ("h", "int4")):
            label = f"onnxruntime-genai {precision} (model builder, merged)"
            folder = work / name / f"genai-merged-{precision}"
            peer_paths.append((key, label, lambda p=precision, f=folder: {
                "spec": {"kind": "genai", "model": str(peers.genai_merged(merged, f, p))}, "files": [f]}))  # fmt: skip

        def llama() -> dict[str, Any]:
            python = peers.llama_python(work)
            gguf = peers.gguf_q8(merged, work / name / "gguf-q8_0" / "model.gguf", work)
            return {"spec": {"kind": "llama", "model": str(gguf), "python": str(python)}, "files": [gguf]}

        peer_paths.append(("i", "llama.cpp GGUF Q8_0 (llama-cpp-python)", llama))
    peer_paths.append(("j", "CTranslate2 int8", lambda: {
        "spec": {"kind": "ct2", "model": str(peers.ct2_model(merged, work / name / "ct2-int8")), "seq2seq": seq2seq},
        "files": [work / name / "ct2-int8"]}))  # fmt: skip
    for key, label, prepare in peer_paths:
        row: dict[str, Any] = {"key": key, "label": label, "role": "peer", "bits": 4 if "int4" in label else 8}
        if isinstance(prepare, str):
            row["skipped"] = prepare
        else:
            try:
                row.update(prepare())
            except peers.PeerUnavailable as exc:
                row["skipped"] = str(exc)
        rows.append(row)
    return rows


def agreement(tokens: list[list[int]], reference: list[list[int]]) -> dict[str, Any]:
    """Per prompt, how many of the first AGREEMENT_TOKENS greedy tokens equal fp32's, position by position."""
    equal = [sum(a == b for a, b in zip(x, y, strict=False)) for x, y in zip(tokens, reference, strict=True)]
    return {"agreement": equal, "agreement_median": sorted(equal)[len(equal) // 2], "agreement_worst": min(equal)}


def advisor(name: str, paths: dict[str, Path], runs: int, work: Path) -> list[dict[str, Any]]:
    seq2seq = "t5" in name
    ids = prompt_ids(paths["base"], seq2seq)
    common = {
        "prompt_ids": ids,
        "new_tokens": NEW_TOKENS,
        "threads": THREADS,
        "agreement_prompts": agreement_prompt_ids(paths["base"], seq2seq),
        "agreement_tokens": AGREEMENT_TOKENS,
    }
    rows = path_specs(name, paths, work)
    # Cold starts one at a time (the other workers wait on stdin and use no CPU), then the warm
    # runs round-robin across the paths, so every path meets the same moments of a shared machine.
    workers: list[tuple[dict[str, Any], Worker]] = []
    for row in rows:
        if "skipped" in row:
            log(f"{name} ({row['key']}) {row['label']}: skipped - {row['skipped']}")
            continue
        try:
            worker = Worker({**common, **row["spec"], "path": f"{name}-{row['key']}"})
        except RuntimeError as exc:
            if row["role"] != "peer":
                raise
            row["skipped"] = f"did not start: {str(exc).splitlines()[-1][:200]}"
            log(f"{name} ({row['key']}) {row['label']}: skipped - {row['skipped']}")
            continue
        workers.append((row, worker))
        log(f"{name} ({row['key']}) {row['label']}: cold start {worker.start['cold_start_s']:.2f} s")
    for run in range(runs):
        order = workers[run % len(workers) :] + workers[: run % len(workers)]
        for _, worker in order:
            worker.run_once()
        log(f"{name}: warm round {run + 1}/{runs}")
    for row, worker in workers:
        result = worker.finish()
        row.update(result, artifact_mb=size_mb(*row["files"]))
    reference = next(row for row in rows if row["role"] == "reference")["agreement_tokens"]
    out = []
    for row in rows:
        clean = {k: v for k, v in row.items() if k not in ("spec", "files", "agreement_tokens", "first_tokens")}
        clean["model"] = name
        if "agreement_tokens" in row:
            clean.update(agreement(row["agreement_tokens"], reference))
            log(
                f"  ({row['key']}) p50 {row['p50_s']:.3f} s, p95 {row['p95_s']:.3f} s, "
                f"cold {row['cold_start_s']:.2f} s, RSS {row['peak_rss_mb']:.0f} MB, "
                f"fp32 agreement median {clean['agreement_median']}/16"
            )
        out.append(clean)
    return out


def best_peer(rows: list[dict[str, Any]], model: str, faithful: bool = False) -> dict[str, Any] | None:
    """The fastest 8-bit peer on ``model`` (like for like with our int8: 4-bit weights change the
    answers, measured), or with ``faithful`` the fastest peer that keeps fp32's tokens (a faster
    engine that changes the answer is not one a bank would choose)."""
    eligible = [
        r for r in rows
        if r["model"] == model and r["role"] == "peer" and "p50_s" in r
        and (r["agreement_median"] >= TARGETS["fp32_agreement"] if faithful else r.get("bits") == 8)
    ]  # fmt: skip
    return min(eligible, key=lambda r: r["p50_s"]) if eligible else None


def shipped(rows: list[dict[str, Any]], model: str) -> dict[str, Any]:
    return next(r for r in rows if r["model"] == model and r["role"] == "ours")


def sentiment(work: Path, runs: int) -> list[dict[str, Any]]:
    os.environ["ORT_THREADS"] = str(THREADS)
    sys.path.insert(0, str(ROOT / "lambdas"))
    from serving.artifacts import verify
    from serving.classifier import Classifier
    from training_jobs.common.models import resolve_base_model
    from training_jobs.common.tiny_models import random_adapter
    from training_jobs.data.sentiment import LABELS, OFFLINE_CORPUS, load_labelled
    from training_jobs.export.onnx_export import export

    base = resolve_base_model("offline:minilm-l6")
    adapter = work / "minilm" / "adapter"
    if not (adapter / "adapter_config.json").exists():
        random_adapter(base, adapter, labels=list(LABELS))
    texts = load_labelled(OFFLINE_CORPUS)["text"].head(32 * 8).tolist()
    rows = []
    for precision in ("fp32", "int8"):
        out = work / "minilm" / f"onnx-{precision}"
        if not (out / "manifest.json").exists():
            export(adapter, out, precision, max_input_tokens=128)
        model = Classifier(verify(out))
        model.predict(texts[:32], truncate=True)  # warm-up
        singles = []
        for text in texts[: runs * 10]:
            began = time.perf_counter()
            model.predict([text], truncate=True)
            singles.append(time.perf_counter() - began)
        began = time.perf_counter()
        for i in range(0, len(texts), 32):
            model.predict(texts[i : i + 32], truncate=True)
        throughput = len(texts) / (time.perf_counter() - began)
        singles.sort()
        rows.append(
            {
                "model": "minilm-l6 (real weights)",
                "precision": precision,
                "p50_ms_per_sentence": round(1000 * singles[len(singles) // 2], 2),
                "p95_ms_per_sentence": round(1000 * singles[int(len(singles) * 0.95)], 2),
                "batch32_sentences_per_s": round(throughput, 1),
                "artifact_mb": size_mb(out),
            }
        )
        log(
            f"sentiment {precision}: p50 {rows[-1]['p50_ms_per_sentence']} ms, {throughput:.0f} sentences/s at batch 32"
        )
    return rows


def advisor_table(results: dict[str, Any]) -> list[str]:
    lines = [
        f"Advisor, measured {results.get('date', '')}: {PROMPT_TOKENS}-token prompt, exactly {NEW_TOKENS} generated "
        f"tokens, {THREADS} threads, p50/p95 over {results['runs']} warm runs interleaved across every path, each "
        "path in its own process; cold start = process spawn to first answer. fp32 agreement: how many of the "
        f"first {AGREEMENT_TOKENS} greedy tokens equal the fp32 reference's (b), median and worst over "
        f"{AGREEMENT_PROMPTS} advisor prompts. vs best peer: p50 over the fastest 8-bit peer's.",
        "",
        "| model | path | p50 | p95 | vs best peer | cold start | peak RSS | artifact "
        "| first 16 = fp32 (median, worst) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results["advisor"]:
        name = f"({row['key']}) {row['label']}"
        if "p50_s" not in row:
            lines.append(f"| {row['model']} | {name} | skipped: {row['skipped']} | | | | | | |")
            continue
        peer = best_peer(results["advisor"], row["model"])
        versus = f"{row['p50_s'] / peer['p50_s']:.2f}x" if peer else "no peer"
        lines.append(
            f"| {row['model']} | {name} | {row['p50_s'] * 1000:,.0f} ms | {row['p95_s'] * 1000:,.0f} ms | {versus} "
            f"| {row['cold_start_s']:.2f} s | {row['peak_rss_mb']:.0f} MB | {row['artifact_mb']:.0f} MB "
            f"| {row['agreement_median']}/16, {row['agreement_worst']}/16 |"
        )
    versions = results.get("versions", {})
    if versions:
        lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items())]
    return lines


def verdict_text(value: bool | None) -> str:
    return "not measured" if value is None else ("met" if value else "NOT met")


def markdown(results: dict[str, Any]) -> str:
    lines = advisor_table(results)
    lines += [
        "",
        "| sentiment | p50 per sentence | p95 | batch 32 throughput | artifact |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in results["sentiment"]:
        lines.append(
            f"| {row['model']} {row['precision']} "
            f"| {row['p50_ms_per_sentence']:.2f} ms | {row['p95_ms_per_sentence']:.2f} ms "
            f"| {row['batch32_sentences_per_s']:.0f} sentences/s | {row['artifact_mb']:.0f} MB |"
        )
    lines += stream_markdown(results.get("streaming", []))
    if "quality" in results:
        lines += quality_markdown(results["quality"])
    lines += ["", "Targets: " + ", ".join(f"{k} {v}" for k, v in results["targets"].items()), "", results["note"]]
    verdicts = results["verdicts"]
    lines += ["", "Verdicts: " + ", ".join(f"{k}: {verdict_text(v)}" for k, v in verdicts.items())]
    return "\n".join(lines) + "\n"


ROLE_COLOURS = {"baseline": "#aaa", "reference": "#777", "ours-other": "#9cd", "ours": "#247", "peer": "#e93"}


def plot(results: dict[str, Any], target: Path) -> None:
    """p50 per path and model, ours against the best peer (dashed), fp32 agreement over each bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({row["model"] for row in results["advisor"]})
    fig, axes = plt.subplots(1, len(models), figsize=(7 * len(models), 4.6))
    for ax, model in zip(axes if len(models) > 1 else [axes], models, strict=True):
        rows = [row for row in results["advisor"] if row["model"] == model and "p50_s" in row]
        bars = ax.bar(
            [f"({r['key']})" for r in rows],
            [r["p50_s"] * 1000 for r in rows],
            color=[ROLE_COLOURS[r["role"]] for r in rows],
        )
        for bar, row in zip(bars, rows, strict=True):
            ax.annotate(f"{row['agreement_median']}/16", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)  # fmt: skip
        peer = best_peer(results["advisor"], model)
        if peer:
            ax.axhline(peer["p50_s"] * 1000, color="#e93", linestyle="--", label=f"fastest 8-bit peer ({peer['key']})")
        if model == "flan-t5-small":  # the absolute target is set for the FLAN-T5-small class
            ax.axhline(TARGETS["advisor_p50_s"] * 1000, color="red", linestyle=":", label="300 ms target")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax.set_title(f"{model}: p50 for {NEW_TOKENS} tokens (label: first 16 = fp32)")
        ax.set_ylabel("ms")
    fig.suptitle("dark blue: ours (shipped), light blue: ours (other), orange: peers, grey: PyTorch eager")
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)


def advisor_verdicts(rows: list[dict[str, Any]]) -> dict[str, bool | None]:
    verdicts: dict[str, bool | None] = {}
    for model in sorted({row["model"] for row in rows}):
        ours = shipped(rows, model)
        for faithful, what in ((False, "the fastest 8-bit peer's"), (True, "the fastest fp32-faithful peer's")):
            peer = best_peer(rows, model, faithful)
            name = f"{peer['label']} ({peer['key']})" if peer else "no peer ran and qualified"
            verdicts[f"{model}: ours ({ours['key']}) p50 <= {what}, {name}"] = (
                ours["p50_s"] <= peer["p50_s"] if peer else None
            )
        verdicts[f"{model}: ours keeps >= 15 of fp32's first 16 tokens (median)"] = (
            ours["agreement_median"] >= TARGETS["fp32_agreement"]
        )
    return verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "work")
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-causal", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from bench import peers
    from training_jobs.common.models import OFFLINE_CAUSAL, resolve_base_model
    from training_jobs.common.tiny_models import FLAN_T5_SMALL, build_t5

    started = time.perf_counter()
    flan_base = args.work / "flan-t5-small" / "base"
    if not (flan_base / "config.json").exists():
        log("flan-t5-small architecture with random weights")
        build_t5(flan_base, example_prompts(), FLAN_T5_SMALL)
    rows = advisor("flan-t5-small", prepare_model("flan-t5-small", flan_base, args.work), args.runs, args.work)
    if not args.skip_causal:
        causal = Path(resolve_base_model(OFFLINE_CAUSAL))
        rows += advisor("smollm2-135m", prepare_model("smollm2-135m", causal, args.work), args.runs, args.work)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "versions": peers.versions(args.work),
        "runs": args.runs,
        "threads": THREADS,
        "prompt_tokens": PROMPT_TOKENS,
        "new_tokens": NEW_TOKENS,
        "note": HONESTY,
        "targets": TARGETS,
        "advisor": rows,
        "sentiment": sentiment(args.work, args.runs),
    }
    log("streaming: time to first token, the advisor and the stream route")
    flan_paths = prepare_model("flan-t5-small", flan_base, args.work)
    streaming = [
        advisor_stream(
            "flan-t5-small", flan_paths["int8"], prompt_ids(flan_paths["merged"], True), NEW_TOKENS, args.runs
        )
    ]
    if not args.skip_causal:
        causal_paths = prepare_model("smollm2-135m", causal, args.work)
        streaming.append(
            advisor_stream(
                "smollm2-135m", causal_paths["int8"], prompt_ids(causal_paths["merged"], False), NEW_TOKENS, args.runs
            )
        )
    streaming.append(route_stream(max(args.runs, 10)))
    results["streaming"] = streaming
    log("quality: the demo adapters on held-out data (trained on first use)")
    results["quality"] = {"advisor": advisor_quality(), "sentiment": sentiment_quality()}
    flan = shipped(rows, "flan-t5-small")
    classifier = results["quality"]["sentiment"]
    ours = [r for r in rows if r["role"] in ("ours", "ours-other") and "p50_s" in r]
    results["verdicts"] = {
        **advisor_verdicts(rows),
        "advisor p50 <= 300 ms (flan-t5-small, shipped)": flan["p50_s"] <= TARGETS["advisor_p50_s"],
        "int8 cold start <= 1.5 s (flan-t5-small, shipped)": flan["cold_start_s"] <= TARGETS["cold_start_s"],
        "sentiment int8 p50 <= 5 ms": results["sentiment"][1]["p50_ms_per_sentence"] <= TARGETS["sentiment_p50_ms"],
        "our serving paths never import torch": not any(r["torch_imported"] for r in ours),
        "advisor grounded >= 0.95 (held-out)": results["quality"]["advisor"]["grounded_rate"] >= 0.95,
        "sentiment beats the lexicon (test split and held-out topic)": (
            classifier["test_macro_f1"] > classifier["test_lexicon_macro_f1"]
            and classifier["held_out_macro_f1"] > classifier["held_out_lexicon_macro_f1"]
        ),
        # Reported, not a target: long-form patient reviews are out of the classifier's genre.
        "sentiment beats the lexicon on drug reviews (out of genre)": (
            classifier["external_macro_f1"] > classifier["external_lexicon_macro_f1"]
        ),
        "sentiment labels independent of the batch (1e-4)": classifier["batch_drift"] <= 1e-4,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown(results))
    plot(results, args.out / "results.png")
    stream_plot(results["streaming"], args.out / "streaming.png")
    quality_plot(results["quality"], args.out / "quality.png")
    log(f"done in {time.perf_counter() - started:.0f} s -> {args.out / 'results.md'}")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

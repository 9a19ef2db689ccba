"""The sentiment job end to end on a tiny model, plus its data loading and failure modes."""

import json

import jsonschema
import pandas as pd
import pytest
import torch

from training_jobs.common.reports import METRICS_SCHEMA, to_jsonable
from training_jobs.data.sentiment import OFFLINE_CORPUS, class_weights, hold_out, load_labelled, stratified_split
from training_jobs.sentiment import train as job
from training_jobs.sentiment.external import HELD_OUT_TOPIC, TOPICS

PNG = b"\x89PNG\r\n\x1a\n"


def run(tmp_path, tiny_bert, data, *extra):
    args = [
        "--base-model",
        str(tiny_bert),
        "--data",
        str(data),
        "--model-dir",
        str(tmp_path / "model"),
        "--output-dir",
        str(tmp_path / "out"),
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--max-length",
        "32",
        "--learning-rate",
        "5e-3",
        *extra,
    ]
    return job.main(args)


def test_offline_corpus_loads_with_the_documented_counts():
    frame = load_labelled(OFFLINE_CORPUS)
    counts = frame["label"].value_counts().to_dict()
    assert set(counts) == {"negative", "neutral", "positive"}
    assert 37_000 < len(frame) <= 38_158  # duplicates dropped
    assert counts["negative"] > counts["neutral"] > counts["positive"]


def test_split_is_stratified_and_weights_favour_the_rare_class():
    frame = load_labelled(OFFLINE_CORPUS)
    splits = stratified_split(frame, 0.1, 0.1, seed=1)
    assert set(splits.train["text"]).isdisjoint(splits.test["text"])
    shares = [s["label"].value_counts(normalize=True) for s in (splits.train, splits.validation, splits.test)]
    for label in ("negative", "neutral", "positive"):
        assert max(s[label] for s in shares) - min(s[label] for s in shares) < 0.01
    weights = class_weights(splits.train["label"])
    assert weights["positive"] > weights["neutral"] > weights["negative"]


def test_the_held_out_topic_leaves_every_split():
    frame = load_labelled(OFFLINE_CORPUS)
    rest, held = hold_out(frame, TOPICS[HELD_OUT_TOPIC])
    assert 2_500 < len(held) < 3_500 and len(rest) + len(held) == len(frame)
    assert held["text"].str.contains("apple", case=False).mean() > 0.9
    assert not rest["text"].str.contains(r"\$aapl\b|\bapple\b", case=False).any()
    sample = pd.DataFrame({"text": ["$AAPL up 2%", "pineapple pie", "Apple store queue"]})
    assert hold_out(sample, TOPICS[HELD_OUT_TOPIC])[1]["text"].tolist() == ["$AAPL up 2%", "Apple store queue"]
    assert hold_out(frame, "")[1].empty


def test_a_broken_topic_pattern_is_a_clear_error(tmp_path, tiny_bert, sentiment_csv, capsys):
    assert run(tmp_path, tiny_bert, sentiment_csv, "--held-out-topic", "(unclosed") == 2
    assert "not a valid regular expression" in capsys.readouterr().err


def test_focal_loss_down_weights_easy_examples():
    logits = torch.tensor([[4.0, 0.0, 0.0], [0.2, 0.0, 0.0]])
    target = torch.tensor([0, 0])
    weight = torch.ones(3)
    easy, hard = (job.focal_loss(logits[i : i + 1], target[i : i + 1], weight, 2.0) for i in range(2))
    ce_easy, ce_hard = (torch.nn.functional.cross_entropy(logits[i : i + 1], target[i : i + 1]) for i in range(2))
    assert easy / ce_easy < hard / ce_hard
    assert job.focal_loss(logits, target, weight, 0.0) == pytest.approx(
        torch.nn.functional.cross_entropy(logits, target).item()
    )


def test_training_changes_only_lora_and_head_parameters(tiny_bert, sentiment_csv):
    args = job.parse_args(
        [
            "--base-model",
            str(tiny_bert),
            "--model-dir",
            "/tmp/x",
            "--output-dir",
            "/tmp/y",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--max-length",
            "32",
            "--learning-rate",
            "5e-2",
        ]
    )
    frame = load_labelled(str(sentiment_csv))
    model = job.with_lora(job.load_classifier(str(tiny_bert)), args)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    job.fit(model, frame.iloc[:96], frame.iloc[96:128], tokenizer, args, torch.ones(3), torch.device("cpu"), "t")
    changed = {k for k, v in model.named_parameters() if not torch.equal(v, before[k])}
    assert changed, "training must change something"
    assert all("lora_" in k or "classifier" in k for k in changed), sorted(changed)[:5]
    assert any("lora_" in k for k in changed)
    assert any("classifier" in k for k in changed)


def test_job_writes_every_output(tmp_path, tiny_bert, sentiment_csv):
    assert run(tmp_path, tiny_bert, sentiment_csv, "--loss", "focal") == 0
    model_dir, out = tmp_path / "model", tmp_path / "out"
    assert (model_dir / "adapter_model.safetensors").stat().st_size > 0
    adapter = json.loads((model_dir / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"], adapter["task_type"]) == (8, 16, "SEQ_CLS")
    assert (model_dir / "tokenizer.json").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    jsonschema.validate(metrics, METRICS_SCHEMA)
    assert 0 <= metrics["metrics"]["macro_f1"] <= 1
    assert metrics["hyperparameters"]["loss"] == "focal"
    assert metrics["parameters"]["trainable"] < metrics["parameters"]["total"]
    assert metrics["baseline_metrics"]["macro_f1"] is not None
    log = pd.read_csv(out / "evaluation_log.csv", keep_default_na=False)
    assert list(log.columns) == ["text", "label", "prediction", "confidence", "margin", "error_type"]
    assert set(log["error_type"]) <= {"", "misclassification", "low_confidence"}
    assert ((log["error_type"] == "misclassification") == (log["label"] != log["prediction"])).all()
    assert (log["margin"] <= log["confidence"]).all()
    for plot in ("confusion_matrix.png", "reliability_diagram.png", "confidence_vs_margin.png", "loss_curve.png"):
        assert (out / plot).read_bytes().startswith(PNG), plot
    comparison = json.loads((out / "comparison.json").read_text())
    assert set(comparison) == {"tuned", "untuned_base_head_only", "delta"}
    assert json.loads((out / "version_comparison.json").read_text())["previous"] is None


def test_report_sets_the_classifier_beside_the_lexicon_on_a_held_out_topic(tmp_path, tiny_bert, sentiment_csv):
    held = hold_out(load_labelled(str(sentiment_csv)), r"\bthe\b")[1]
    assert 20 < len(held) < 200
    topic = ["--held-out-topic", r"\bthe\b", "--pooling", "mean"]
    assert run(tmp_path, tiny_bert, sentiment_csv, "--compare-base", "false", *topic) == 0
    assert json.loads((tmp_path / "model" / "pooling.json").read_text()) == {"pooling": "mean"}
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    metrics = report["metrics"]
    assert report["split_sizes"]["held_out"] == metrics["held_out_rows"] == len(held)
    log = pd.read_csv(tmp_path / "out" / "evaluation_log.csv", keep_default_na=False)
    assert set(log["text"]).isdisjoint(held["text"])  # never trained, tuned or tested on
    for key in ("lexicon_macro_f1", "external_macro_f1", "external_lexicon_macro_f1", "held_out_macro_f1"):
        assert 0 <= metrics[key] <= 1, key
    assert metrics["external_rows"] == 979
    assert report["lexicon_comparison"]["held_out_corpus"] == r"\bthe\b"
    verdicts = report["lexicon_comparison"]["beats_lexicon"]
    assert verdicts["held_out"] == (metrics["held_out_macro_f1"] > metrics["held_out_lexicon_macro_f1"])
    assert verdicts["test"] == (metrics["macro_f1"] > metrics["lexicon_macro_f1"])


def test_second_run_compares_with_the_previous_version(tmp_path, tiny_bert, sentiment_csv):
    assert run(tmp_path / "v1", tiny_bert, sentiment_csv, "--compare-base", "false") == 0
    previous = tmp_path / "v1" / "out" / "metrics.json"
    assert (
        run(tmp_path / "v2", tiny_bert, sentiment_csv, "--compare-base", "false", "--previous-metrics", str(previous))
        == 0
    )
    comparison = json.loads((tmp_path / "v2" / "out" / "version_comparison.json").read_text())
    assert "macro_f1" in comparison["delta"]


def test_channel_takes_precedence_over_the_data_argument(tmp_path, tiny_bert, sentiment_csv, monkeypatch):
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(sentiment_csv.parent))
    assert run(tmp_path, tiny_bert, "/does/not/exist.csv", "--compare-base", "false") == 0
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["dataset"] == "channel:train"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (None, "does not exist"),
        ([{"body": "x", "sentiment": "positive"}], "has no column ['text']"),
        ([{"text": "great", "sentiment": "positive"}] * 5, "only the label"),
        ([{"text": "", "sentiment": "positive"}], "no usable rows"),
    ],
)
def test_bad_data_stops_before_training_with_a_clear_error(tmp_path, tiny_bert, capsys, rows, message):
    data = tmp_path / "data.csv"
    if rows is not None:
        pd.DataFrame(rows).to_csv(data, index=False)
    assert run(tmp_path, tiny_bert, data) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "model" / "adapter_model.safetensors").exists()


def test_missing_output_dirs_are_a_clear_error(capsys, monkeypatch):
    monkeypatch.delenv("SM_MODEL_DIR", raising=False)
    monkeypatch.delenv("SM_OUTPUT_DATA_DIR", raising=False)
    assert job.main(["--data", OFFLINE_CORPUS]) == 2
    assert "SM_MODEL_DIR" in capsys.readouterr().err


def test_numpy_and_torch_values_become_strict_json():
    import numpy as np

    value = {"a": np.float32(0.5), "b": np.int64(3), "c": np.array([1, 2]), "d": float("nan"), "e": torch.tensor(2.0)}
    assert json.dumps(to_jsonable(value), allow_nan=False) == '{"a": 0.5, "b": 3, "c": [1, 2], "d": null, "e": 2.0}'

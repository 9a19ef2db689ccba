"""The job's integrations that need no model: S3 data channels and optional MLflow logging."""

import sys
import types

import boto3
import pandas as pd
from moto import mock_aws

from training_jobs.common.reports import log_to_mlflow
from training_jobs.data.sentiment import load_labelled


@mock_aws
def test_sentiment_data_loads_from_s3(tmp_path):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="finai-data")
    rows = [{"text": f"stock {i} up", "sentiment": "positive"} for i in range(3)]
    rows += [{"text": f"stock {i} down", "sentiment": "negative"} for i in range(3)]
    path = tmp_path / "labelled.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    s3.upload_file(str(path), "finai-data", "sentiment/labelled.csv")
    frame = load_labelled("s3://finai-data/sentiment/labelled.csv")
    assert sorted(frame["label"].unique()) == ["negative", "positive"]
    assert len(frame) == 6


def test_mlflow_is_skipped_without_a_tracking_uri():
    assert log_to_mlflow(None, "run", {}, {}, []) is None


def test_mlflow_receives_params_metrics_and_artifacts(monkeypatch, tmp_path):
    calls: list[tuple] = []

    class Run:
        info = types.SimpleNamespace(run_id="run-123")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    fake = types.ModuleType("mlflow")
    fake.set_tracking_uri = lambda uri: calls.append(("uri", uri))
    fake.start_run = lambda run_name: calls.append(("run", run_name)) or Run()
    fake.log_params = lambda params: calls.append(("params", params))
    fake.log_metrics = lambda metrics: calls.append(("metrics", metrics))
    fake.log_artifact = lambda path: calls.append(("artifact", path))
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    plot = tmp_path / "plot.png"
    plot.write_bytes(b"png")
    run_id = log_to_mlflow("file:./mlruns", "sentiment-lora", {"epochs": 3}, {"macro_f1": 0.74, "note": "x"}, [plot])
    assert run_id == "run-123"
    assert calls == [
        ("uri", "file:./mlruns"),
        ("run", "sentiment-lora"),
        ("params", {"epochs": "3"}),
        ("metrics", {"macro_f1": 0.74}),
        ("artifact", str(plot)),
    ]

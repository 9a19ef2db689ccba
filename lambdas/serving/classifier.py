"""Batch sentence classification over the exported single-graph classifier."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serving.artifacts import Artifact, ArtifactError
from serving.runtime import InputTooLong, session, tokenizer


@dataclass(frozen=True)
class Prediction:
    label: str
    probabilities: dict[str, float]
    confidence: float
    truncated: bool = False


class Classifier:
    def __init__(self, artifact: Artifact) -> None:
        manifest = artifact.manifest
        if manifest.get("task") != "sentiment":
            raise ArtifactError(f"{artifact.path} holds a {manifest.get('task')!r} artifact, not a classifier")
        self.artifact = artifact
        self.labels = [str(label) for label in manifest["labels"]]
        self.limit = int(manifest["max_input_tokens"])
        self.pad = int(manifest.get("pad_token_id", 0))
        self.tokenizer = tokenizer(self.artifact)
        self.session = session(artifact, "classifier.onnx")

    @property
    def version(self) -> str:
        return self.artifact.version

    def encode(self, texts: list[str], truncate: bool = False) -> tuple[list[list[int]], list[bool]]:
        """Token ids per text, and which texts were cut to the window (only with ``truncate``)."""
        rows = [list(encoding.ids) for encoding in self.tokenizer.encode_batch(texts)]
        cut = [False] * len(rows)
        for index, row in enumerate(rows):
            if len(row) > self.limit:
                if not truncate:
                    raise InputTooLong(index, len(row), self.limit)
                rows[index] = row[: self.limit - 1] + row[-1:]  # keep [SEP]
                cut[index] = True
        return rows, cut

    def predict(self, texts: list[str], truncate: bool = False) -> list[Prediction]:
        if not texts:
            return []
        rows, cut = self.encode(texts, truncate)
        # One text per run, unpadded: the int8 graph quantises its activations dynamically, with
        # scales computed over the whole input tensor, so in a padded batch a text's label could
        # depend on the texts beside it. Alone, a text gets the same answer in any batch.
        probabilities = [self._probabilities(row) for row in rows]
        results = []
        for row, was_cut in zip(probabilities, cut, strict=True):
            best = int(row.argmax())
            results.append(
                Prediction(
                    label=self.labels[best],
                    probabilities={label: round(float(p), 4) for label, p in zip(self.labels, row, strict=True)},
                    confidence=round(float(row[best]), 4),
                    truncated=was_cut,
                )
            )
        return results

    def _probabilities(self, row: list[int]) -> np.ndarray:
        ids = np.asarray([row], dtype=np.int64)
        (out,) = self.session.run(["probabilities"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        return np.asarray(out[0])

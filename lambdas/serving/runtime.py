"""onnxruntime sessions and the tokenizer, configured for a Lambda's CPU budget."""

from __future__ import annotations

import os

import onnxruntime as ort
from tokenizers import Tokenizer

from serving.artifacts import Artifact


class InputTooLong(ValueError):
    """A text is over the model's token limit and the request did not ask for truncation."""

    def __init__(self, index: int, tokens: int, limit: int) -> None:
        super().__init__(f"text {index} is {tokens} tokens; the limit is {limit} (send truncate=true to cut it)")
        self.index, self.tokens, self.limit = index, tokens, limit


def threads() -> int:
    # Lambda exposes the vCPUs its memory size buys; 2 is what the benchmark and the sizing assume.
    return int(os.environ.get("ORT_THREADS", "2"))


def session(artifact: Artifact, name: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(artifact.file(name)), options, providers=["CPUExecutionProvider"])


def tokenizer(artifact: Artifact) -> Tokenizer:
    loaded = Tokenizer.from_file(str(artifact.file("tokenizer.json")))
    loaded.no_padding()
    loaded.no_truncation()
    return loaded

"""The causal advisor's engine: onnxruntime-genai, with one loaded base per function shared by
every adapter that names it.

An artifact exported with ``engine: onnxruntime-genai`` (training_jobs.export.genai_export)
holds the builder's base graph and the adapter as an ``.onnx_adapter`` file. Two artifacts with
the same ``base_sha256`` (two A/B variants, or a promoted adapter beside the baked-in one) load
the base once; each adapter is loaded into that base's adapter set under its model version, and
activated per generator. Decoding stays ours (serving.generator): each step reads the logits and
appends the token we chose, so the repetition penalty and the plan constraint apply unchanged.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

import numpy as np
import onnxruntime_genai as og

from serving.artifacts import Artifact, ArtifactError
from serving.runtime import threads

ENGINE = "onnxruntime-genai"


@dataclass
class _Base:
    model: og.Model
    adapters: og.Adapters
    loaded: set[str] = field(default_factory=set)


_BASES: dict[str, _Base] = {}
_LOCK = threading.Lock()


def _load_base(artifact: Artifact) -> _Base:
    config = og.Config(str(artifact.path))
    config.clear_providers()  # CPU
    # The Lambda's vCPUs, as for our own sessions (serving.runtime.session).
    options = {"intra_op_num_threads": threads(), "inter_op_num_threads": 1, "log_severity_level": 3}
    config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
    model = og.Model(config)
    return _Base(model, og.Adapters(model))


def loaded_bases() -> int:
    """How many base models this process holds (health and tests)."""
    return len(_BASES)


class GenaiDecoder:
    """One artifact's view of its shared base: ``start(prompt)`` and ``step(token)`` return the
    next token's logits (float32, vocabulary-long)."""

    def __init__(self, artifact: Artifact) -> None:
        manifest = artifact.manifest
        key = str(manifest.get("base_sha256") or "")
        if not key:
            raise ArtifactError(f"{artifact.path}: an {ENGINE} artifact must name its base_sha256")
        with _LOCK:
            base = _BASES.get(key)
            if base is None:
                base = _BASES[key] = _load_base(artifact)
            self.adapter = None
            adapter_file = manifest.get("adapter_file")
            if adapter_file:
                self.adapter = artifact.version
                if self.adapter not in base.loaded:
                    base.adapters.load(str(artifact.file(str(adapter_file))), self.adapter)
                    base.loaded.add(self.adapter)
        self.base = base

    def session(self, prompt: list[int], max_new_tokens: int) -> GenaiSession:
        return GenaiSession(self, prompt, max_new_tokens)


class GenaiSession:
    def __init__(self, decoder: GenaiDecoder, prompt: list[int], max_new_tokens: int) -> None:
        params = og.GeneratorParams(decoder.base.model)
        # The KV buffer is sized by max_length; +1 leaves room for the step after the last token.
        params.set_search_options(max_length=len(prompt) + max_new_tokens + 1, do_sample=False)
        self.generator = og.Generator(decoder.base.model, params)
        if decoder.adapter is not None:
            self.generator.set_active_adapter(decoder.base.adapters, decoder.adapter)
        self.prompt = prompt

    def start(self) -> np.ndarray:
        self.generator.append_tokens(self.prompt)
        return self._logits()

    def step(self, token: int) -> np.ndarray:
        self.generator.append_tokens([token])
        return self._logits()

    def _logits(self) -> np.ndarray:
        return np.asarray(self.generator.get_logits())[0, -1]

"""Greedy generation, with the decoding rules ours and the forward passes an engine's.

Two engines give the next token's logits: our exported graphs (seq2seq advisors, and causal
artifacts exported with ``--engine graphs``), whose KV cache never leaves onnxruntime (each
step's ``present`` OrtValues are the next step's ``past``); and onnxruntime-genai for causal
advisors (serving.genai). Either way only the last logits row reaches numpy, and the choice of
token (greedy, repetition penalty, minimum length, plan constraint) is made here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from serving.artifacts import Artifact, ArtifactError
from serving.genai import ENGINE, GenaiDecoder, GenaiSession
from serving.runtime import InputTooLong, session, tokenizer


@dataclass(frozen=True)
class Generation:
    text: str
    token_ids: list[int]
    confidence: float  # mean probability of the generated tokens
    input_tokens: int


def _penalise(logits: np.ndarray, generated: list[int], penalty: float) -> np.ndarray:
    """The usual repetition penalty (CTRL, as in transformers) on tokens this answer already holds:
    positive logits divided, negative ones multiplied. Small adapters loop on a phrase without it."""
    if penalty == 1.0 or not generated:
        return logits
    adjusted = logits.copy()
    seen = np.unique(np.asarray(generated))
    values = adjusted[seen]
    adjusted[seen] = np.where(values > 0, values / penalty, values * penalty)
    return adjusted


def _softmax_pick(logits: np.ndarray, banned: int | None) -> tuple[int, float]:
    """Greedy choice and its probability (softmax over the full vocabulary)."""
    if banned is not None:
        logits = logits.copy()
        logits[banned] = -np.inf
    token = int(logits.argmax())
    return token, float(1.0 / np.exp(logits - logits[token]).sum())


# accepts(decoded text so far, whether it would be the whole answer) -> bool
Constraint = Callable[[str, bool], bool]
CANDIDATES = 64  # tokens tried by probability before the whole vocabulary is


class Generator:
    def __init__(self, artifact: Artifact) -> None:
        manifest = artifact.manifest
        if manifest.get("task") != "advisor":
            raise ArtifactError(f"{artifact.path} holds a {manifest.get('task')!r} artifact, not an advisor")
        self.artifact = artifact
        self.kind = str(manifest["architecture"])
        self.layers = int(manifest["layers"])
        self.kv_heads = int(manifest["kv_heads"])
        self.head_dim = int(manifest["head_dim"])
        self.eos = int(manifest["eos_token_id"])
        self.start_token = int(manifest.get("decoder_start_token_id", 0))
        self.limit = int(manifest["max_input_tokens"])
        self.prefix = str(manifest["prompt"]["prefix"])
        self.suffix = str(manifest["prompt"]["suffix"])
        # "plan": the model writes structured steps that the handler renders (shared.budgeting).
        self.answer_format = str(manifest.get("answer_format", "text"))
        self.tokenizer = tokenizer(artifact)
        self.engine = str(manifest.get("engine", "graphs"))
        self.genai: GenaiDecoder | None = None
        self.decoder: ort.InferenceSession | None = None
        self.encoder: ort.InferenceSession | None = None
        if self.engine == ENGINE:
            if self.kind != "causal":
                raise ArtifactError(f"{artifact.path}: {ENGINE} serves causal advisors, not {self.kind}")
            self.genai = GenaiDecoder(artifact)
        elif self.engine == "graphs":
            self.decoder = session(artifact, "decoder.onnx")
            self.encoder = session(artifact, "encoder.onnx") if self.kind == "seq2seq" else None
        else:
            raise ArtifactError(f"{artifact.path}: unknown engine {self.engine!r}")
        self._past_names = [f"past.{i}.{part}" for i in range(self.layers) for part in ("key", "value")]
        self._present_names = [f"present.{i}.{part}" for i in range(self.layers) for part in ("key", "value")]
        self._cross_names = [f"cross.{i}.{part}" for i in range(self.layers) for part in ("key", "value")]

    @property
    def version(self) -> str:
        return self.artifact.version

    def _ids(self, text: str) -> list[int]:
        if self.kind == "seq2seq":
            return list(self.tokenizer.encode(text).ids)
        return list(self.tokenizer.encode(self.prefix + text + self.suffix, add_special_tokens=False).ids)

    def fits(self, text: str) -> bool:
        """Whether ``text`` (with the chat template, for a causal model) fits the input window."""
        return len(self._ids(text)) <= self.limit

    def encode(self, text: str, truncate: bool = False) -> list[int]:
        """Prompt ids as the model was trained on them; over the limit is an error unless truncating."""
        ids = self._ids(text)
        if len(ids) > self.limit:
            if not truncate:
                raise InputTooLong(0, len(ids), self.limit)
            # seq2seq keeps its closing EOS; causal keeps the chat template's tail (the answer cue)
            ids = ids[: self.limit - 1] + ids[-1:] if self.kind == "seq2seq" else ids[-self.limit :]
        return ids

    def _constrained_pick(self, logits: np.ndarray, generated: list[int], constraint: Constraint) -> tuple[int, float]:
        """The most probable token the constraint accepts (looking at the top CANDIDATES, then all)."""
        shifted = np.exp(logits - logits.max())
        probabilities = shifted / shifted.sum()
        top = np.argpartition(-logits, CANDIDATES)[:CANDIDATES]
        text = self.tokenizer.decode(generated, skip_special_tokens=True)
        for order in (top[np.argsort(-logits[top])], np.argsort(-logits)):
            for token in order.tolist():
                if token == self.eos:
                    if constraint(text.strip(), True):
                        return token, float(probabilities[token])
                    continue
                grown = self.tokenizer.decode([*generated, token], skip_special_tokens=True).lstrip()
                # A token that adds no text (padding, a special token) is no step towards a plan.
                if len(grown) > len(text.lstrip()) and constraint(grown, False):
                    return token, float(probabilities[token])
        return self.eos, float(probabilities[self.eos])  # nothing fits: stop, and let the caller judge

    def _empty_past(self) -> list[ort.OrtValue]:
        empty = np.zeros((1, self.kv_heads, 0, self.head_dim), dtype=np.float32)
        return [ort.OrtValue.ortvalue_from_numpy(empty) for _ in range(2 * self.layers)]

    def generate(
        self,
        text: str,
        max_new_tokens: int = 64,
        min_new_tokens: int = 0,
        truncate: bool = False,
        repetition_penalty: float = 1.0,
    ) -> Generation:
        ids = self.encode(text, truncate)
        return self.generate_ids(ids, max_new_tokens, min_new_tokens, repetition_penalty)

    def generate_ids(
        self,
        ids: list[int],
        max_new_tokens: int = 64,
        min_new_tokens: int = 0,
        repetition_penalty: float = 1.0,
        constraint: Constraint | None = None,
    ) -> Generation:
        generated: list[int] = []
        probabilities: list[float] = []
        for token, probability in self.tokens(ids, max_new_tokens, min_new_tokens, repetition_penalty, constraint):
            generated.append(token)
            probabilities.append(probability)
        text = self.tokenizer.decode(generated, skip_special_tokens=True).strip()
        confidence = float(np.mean(probabilities)) if probabilities else 0.0
        return Generation(text, generated, round(confidence, 4), len(ids))

    def stream(
        self,
        text: str,
        max_new_tokens: int = 64,
        min_new_tokens: int = 0,
        truncate: bool = False,
        repetition_penalty: float = 1.0,
    ) -> Iterator[str]:
        """The answer's text as it is generated: each step yields what the new token adds to the
        decoded text (nothing while a multi-byte character is incomplete). Joined, the pieces are
        ``generate(...).text``."""
        ids = self.encode(text, truncate)
        for piece, _ in self.stream_ids(ids, max_new_tokens, min_new_tokens, repetition_penalty):
            if piece:
                yield piece

    def stream_ids(
        self,
        ids: list[int],
        max_new_tokens: int = 64,
        min_new_tokens: int = 0,
        repetition_penalty: float = 1.0,
        constraint: Constraint | None = None,
    ) -> Iterator[tuple[str, int]]:
        """:meth:`stream` from token ids, each piece with the number of tokens generated so far;
        the last piece (possibly empty) carries the final count."""
        generated: list[int] = []
        shown = ""
        for token, _ in self.tokens(ids, max_new_tokens, min_new_tokens, repetition_penalty, constraint):
            generated.append(token)
            decoded = self.tokenizer.decode(generated, skip_special_tokens=True).lstrip()
            if decoded.endswith("\ufffd"):  # a character split across tokens: wait for the rest
                continue
            if len(decoded) > len(shown) and decoded.startswith(shown):
                yield decoded[len(shown) :], len(generated)
                shown = decoded
        final = self.tokenizer.decode(generated, skip_special_tokens=True).strip()
        rest = final[len(shown) :] if final.startswith(shown) else ""
        yield rest, len(generated)  # always: the count includes tokens that decoded to nothing

    def tokens(
        self,
        ids: list[int],
        max_new_tokens: int,
        min_new_tokens: int = 0,
        repetition_penalty: float = 1.0,
        constraint: Constraint | None = None,
    ) -> Iterator[tuple[int, float]]:
        """Greedy decoding, one (token, probability) per step, until EOS or ``max_new_tokens``.

        With a ``constraint`` (``accepts(text, final)``), each step takes the most probable token
        whose decoded text the constraint still accepts, and EOS only where it accepts the text as
        final: the model chooses, among what the constraint allows."""
        if max_new_tokens <= 0:
            return
        steps: GenaiSession | _GraphSession
        steps = self.genai.session(ids, max_new_tokens) if self.genai else _GraphSession(self, ids)
        logits = steps.start()
        generated: list[int] = []
        while True:
            logits = _penalise(logits, generated, repetition_penalty)
            banned = self.eos if len(generated) < min_new_tokens else None
            if constraint is None:
                token, probability = _softmax_pick(logits, banned)
            else:
                token, probability = self._constrained_pick(logits, generated, constraint)
            if token == self.eos:
                return
            generated.append(token)
            yield token, probability
            if len(generated) >= max_new_tokens:
                return  # no forward pass for a token nobody will read
            logits = steps.step(token)


class _GraphSession:
    """One generation over our exported graphs; the cache stays inside onnxruntime."""

    def __init__(self, model: Generator, ids: list[int]) -> None:
        if model.decoder is None:
            raise ArtifactError("this artifact has no decoder graph")
        self.model, self.decoder = model, model.decoder
        prompt = np.asarray([ids], dtype=np.int64)
        self.feeds: dict[str, ort.OrtValue] = {}
        if model.encoder is not None:
            mask = ort.OrtValue.ortvalue_from_numpy(np.ones_like(prompt))
            encoded = model.encoder.run_with_ort_values(
                ["encoder_states", *model._cross_names],
                {"input_ids": ort.OrtValue.ortvalue_from_numpy(prompt), "attention_mask": mask},
            )
            self.feeds["encoder_attention_mask"] = mask
            self.feeds.update(zip(model._cross_names, encoded[1:], strict=True))
            self.first = np.asarray([[model.start_token]], dtype=np.int64)
        else:
            self.first = prompt
        self.feeds.update(zip(model._past_names, model._empty_past(), strict=True))
        self.wanted = ["logits", *model._present_names]

    def _run(self, step_input: np.ndarray) -> np.ndarray:
        self.feeds["input_ids"] = ort.OrtValue.ortvalue_from_numpy(step_input)
        # OrtValues in, OrtValues out: the cache stays inside onnxruntime between steps.
        outputs = self.decoder.run_with_ort_values(self.wanted, self.feeds)
        self.feeds.update(zip(self.model._past_names, outputs[1:], strict=True))
        return np.asarray(outputs[0].numpy()[0, -1])

    def start(self) -> np.ndarray:
        return self._run(self.first)

    def step(self, token: int) -> np.ndarray:
        return self._run(np.asarray([[token]], dtype=np.int64))

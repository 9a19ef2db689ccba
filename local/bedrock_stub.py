"""A stand-in for the ``bedrock-runtime`` client that answers Converse calls offline.

It returns Converse-shaped responses, so the real ``shared.bedrock.converse`` code (request
building, retries, parsing) runs unchanged. Faults are set per model id, which is how tests and
the demo make a primary model fail while the fallback keeps answering.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from shared.budgeting import advise
from shared.sentiment import LABEL_INSTRUCTION

# A few unambiguous words of financial news; the stand-in needs a plausible label, not accuracy.
_POSITIVE = frozenset({"beat", "beats", "gain", "gains", "grew", "growth", "profit", "profits", "rally"})
_POSITIVE |= {"record", "rise", "rises", "rose", "strong", "surge", "upgrade"}
_NEGATIVE = frozenset({"cut", "cuts", "decline", "default", "fall", "falls", "fell", "loss", "losses"})
_NEGATIVE |= {"miss", "misses", "plunge", "weak", "warning", "downgrade"}


def stand_in_label(text: str) -> str:
    words = [word.strip(".,;:!?()\"'").lower() for word in text.split()]
    score = sum(word in _POSITIVE for word in words) - sum(word in _NEGATIVE for word in words)
    return "positive" if score > 0 else "negative" if score < 0 else "neutral"


@dataclass
class Fault:
    """Make calls to one model fail: always (rate 1.0) or at a given rate."""

    error_code: str = "ModelErrorException"
    rate: float = 1.0


@dataclass
class StreamFault:
    """What happens to a model's stream after ``after_words`` words: ``cut`` (the connection drops,
    no end marker), ``stall`` (nothing more for ``stall_s`` seconds, then the rest) or ``error``
    (Bedrock's modelStreamErrorException event)."""

    kind: str = "cut"
    after_words: int = 3
    stall_s: float = 30.0


@dataclass
class OfflineBedrock:
    faults: dict[str, Fault] = field(default_factory=dict)
    stream_faults: dict[str, StreamFault] = field(default_factory=dict)
    # Seconds between streamed words, as a model's generation pace.
    pace_s: float = 0.0
    seed: int = 0
    calls: list[str] = field(default_factory=list)
    # Called with the model id before answering; tests use it to hold one execution mid-call.
    before_call: Callable[[str], None] | None = None
    # A fixed answer per model (tests: an answer the grounding guard must reject).
    replies: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Seeded, reproducible fault injection; nothing security-related.
        self._rng = random.Random(self.seed)  # nosec B311
        self._lock = threading.Lock()

    def fail(self, model_id: str, error_code: str = "ModelErrorException", rate: float = 1.0) -> None:
        self.faults[model_id] = Fault(error_code, rate)

    def heal(self, model_id: str | None = None) -> None:
        if model_id is None:
            self.faults.clear()
            self.stream_faults.clear()
            self.pace_s = 0.0
            self.replies.clear()
        else:
            self.faults.pop(model_id, None)
            self.stream_faults.pop(model_id, None)

    def stream_fault(self, model_id: str, kind: str, after_words: int = 3, stall_s: float = 30.0) -> None:
        if kind not in ("cut", "stall", "error"):
            raise ValueError("a stream fault is cut, stall or error")
        self.stream_faults[model_id] = StreamFault(kind, after_words, stall_s)

    def draw_fault(self, model_id: str) -> Fault | None:
        """The fault this call suffers, drawn at the model's error rate (None: the call goes through).

        The local platform also draws from here for the serving Lambdas, so one chaos control
        covers every provider.
        """
        with self._lock:
            fault = self.faults.get(model_id)
            return fault if fault is not None and self._rng.random() < fault.rate else None

    def calls_to(self, model_id: str) -> int:
        return sum(1 for call in self.calls if call == model_id)

    def _answer(self, request: dict[str, Any], operation: str) -> str:
        model_id = request["modelId"]
        with self._lock:
            self.calls.append(model_id)
        if self.before_call is not None:
            self.before_call(model_id)
        fault = self.draw_fault(model_id)
        if fault is not None:
            raise ClientError(
                {
                    "Error": {"Code": fault.error_code, "Message": f"injected fault for {model_id}"},
                    "ResponseMetadata": {"HTTPStatusCode": 424},
                },
                operation,
            )
        prompt = request["messages"][0]["content"][0]["text"]
        system = " ".join(block.get("text", "") for block in request.get("system", []))
        if LABEL_INSTRUCTION in system:
            # Asked for a sentiment label, a real model answers with a word; so does the stand-in.
            return f"Sentiment: {stand_in_label(prompt)}."
        if model_id in self.replies:
            return self.replies[model_id]
        advice = advise(prompt)
        if advice is not None:
            # A spending profile gets costed steps, as a real model's would be: the rules' own.
            return f"[{model_id}] {advice}"
        echo = prompt[:120].rstrip()
        # A whole sentence, as a model's answer ends (a cut one is what the grounding guard rejects).
        return f"[{model_id}] Offline answer to: {echo}{'' if echo.endswith(('.', '?', '!')) else '.'}"

    def converse(self, **request: Any) -> dict[str, Any]:
        text = self._answer(request, "Converse")
        if self.pace_s:  # a model takes as long to write the whole answer whether or not it streams it
            time.sleep(self.pace_s * len(text.split(" ")))
        prompt = request["messages"][0]["content"][0]["text"]
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": len(prompt.split()), "outputTokens": len(text.split()), "totalTokens": 0},
            "metrics": {"latencyMs": 1},
        }

    def converse_stream(self, **request: Any) -> dict[str, Any]:
        """ConverseStream's event shapes, a word at a time at ``pace_s``, with the model's stream fault."""
        text = self._answer(request, "ConverseStream")
        prompt = request["messages"][0]["content"][0]["text"]
        fault = self.stream_faults.get(request["modelId"])
        return {"stream": self._events(text, prompt, fault)}

    def _events(self, text: str, prompt: str, fault: StreamFault | None) -> Iterator[dict[str, Any]]:
        yield {"messageStart": {"role": "assistant"}}
        words = text.split(" ")
        for i, word in enumerate(words):
            if fault is not None and i == fault.after_words:
                if fault.kind == "cut":
                    return  # the connection drops: no messageStop, no metadata
                if fault.kind == "error":
                    yield {"modelStreamErrorException": {"message": "injected stream error", "originalStatusCode": 500}}
                    return
                time.sleep(fault.stall_s)
            if self.pace_s:
                time.sleep(self.pace_s)
            piece = word if i == len(words) - 1 else word + " "
            yield {"contentBlockDelta": {"delta": {"text": piece}, "contentBlockIndex": 0}}
        yield {"contentBlockStop": {"contentBlockIndex": 0}}
        yield {"messageStop": {"stopReason": "end_turn"}}
        yield {"metadata": {"usage": {"inputTokens": len(prompt.split()), "outputTokens": len(words)}}}

"""The stream route's contract, independent of how the bytes leave (the Lambda Web Adapter on AWS,
Starlette on the local platform).

Events, as server-sent events:

- ``meta`` once, when a tier has produced its first text: tier, attempt, model, variant, request id;
- ``delta`` events with text;
- exactly one terminal event: ``done`` (token counts, the sentiment field, the stop reason,
  usage) or ``error`` (code, failure class, the tier that failed, whether text was already sent).

A tier that fails (or sends nothing within the first-token timeout) before any text was sent is
counted as the sync path counts it, and the next tier streams instead; the static answer is the
last tier and cannot fail. After the first text, a failure ends the stream with ``error``: two
models' text is never stitched into one answer. A stream that stops without a terminal event is
a broken connection, and a client can tell.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.bedrock import StreamEnd
from shared.failures import FailureClass, ModelCallError, describe_failure, failure
from shared.grounding import CODES, check, check_so_far, figures_for
from shared.guard import rejection
from shared.observability import emit, logger
from shared.static_answers import STATIC_MODEL

EVENT_TYPES = ("meta", "delta", "done", "error")
MEDIA_TYPE = "text/event-stream"


@dataclass(frozen=True)
class Event:
    name: Literal["meta", "delta", "done", "error"]
    data: dict[str, Any]

    def encode(self) -> bytes:
        # One JSON line per event: a delta's newlines stay inside the JSON string.
        return f"event: {self.name}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n".encode()


def parse_events(raw: str) -> list[Event]:
    """Server-sent events back into Events (tests, the bench and the local console read streams)."""
    events = []
    for block in raw.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines and "data" in lines:
            events.append(Event(lines["event"], json.loads(lines["data"])))  # type: ignore[arg-type]
    return events


class StreamTimeouts(BaseModel):
    """How long a tier may stay silent, from config (``streaming`` in cdk.json), checked at cold start."""

    model_config = ConfigDict(frozen=True)

    # Before the first text: past this the tier counts as failed and the next one streams.
    first_token_s: float = Field(default=5.0, gt=0, le=60)
    # Between two pieces of text after the first: past this the stream ends with error "stalled".
    idle_s: float = Field(default=10.0, gt=0, le=120)
    # The whole stream, every tier: past it the stream ends with error "deadline" (or, before any
    # text, the static answer). The function's timeout is derived from it (stacks/api_stream.py).
    total_s: float = Field(default=60.0, gt=0, le=600)


@dataclass(frozen=True)
class End:
    """How a tier's answer finished."""

    model_id: str
    input_tokens: int
    output_tokens: int
    stop_reason: str
    sentiment: dict[str, Any] | None = None
    guardrail: str = "not_configured"


Piece = str | End | StreamEnd


@dataclass
class Tier:
    """One tier's answer as a stream of text pieces ending with an End (or a StreamEnd)."""

    name: Literal["primary", "fallback", "degraded"]
    attempt: int
    model_id: str
    variant: str | None
    open: Callable[[], Iterator[Piece]]


@dataclass
class Summary:
    """What the stream did, for the budget, the audit record and the metrics."""

    tier: str | None = None
    model_used: str | None = None
    variant: str | None = None
    outcome: Literal["done", "error"] | None = None
    failure_class: str | None = None
    error_code: str | None = None
    first_token_ms: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    usage_known: bool = True
    cost_micros: int = 0
    currency: str | None = None
    guardrail: str | None = None
    degraded_reason: str | None = None
    failed_tiers: list[str] = field(default_factory=list)
    # Tiers whose answer the platform rejected (shared.grounding): (tier, model, tokens billed, or
    # None when the stream was stopped before its usage was reported). Charged too.
    rejected: list[tuple[str, str, tuple[int, int] | None]] = field(default_factory=list)
    primary_failure: dict[str, Any] | None = None


def timed(
    source: Iterator[Piece],
    model_id: str,
    timeouts: StreamTimeouts,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Piece]:
    """``source``'s pieces, but a silence longer than the first-token (then the idle) timeout, or
    the stream's deadline (a ``clock()`` value), raises the model's failure. The source runs in
    its own thread, so a model that never answers cannot hold the request past either."""
    pieces: queue.Queue[tuple[str, Any]] = queue.Queue()

    def pump() -> None:
        try:
            for piece in source:
                pieces.put(("piece", piece))
            pieces.put(("end", None))
        except Exception as exc:  # handed to the consumer, which classifies it
            pieces.put(("error", exc))

    threading.Thread(target=pump, daemon=True, name=f"stream-{model_id}").start()
    started = False
    while True:
        limit = timeouts.idle_s if started else timeouts.first_token_s
        left = deadline - clock()
        try:
            kind, value = pieces.get(timeout=max(0.0, min(limit, left)))
        except queue.Empty:
            if left <= limit:
                raise failure(model_id, "StreamDeadline", f"the stream passed its {timeouts.total_s:g} s") from None
            code = "StreamStalled" if started else "FirstTokenTimeout"
            raise failure(model_id, code, f"no text for {limit:g} s") from None
        if kind == "end":
            return
        if kind == "error":
            raise _classified(model_id, value)
        if isinstance(value, str):
            started = True
        yield value


def _classified(model_id: str, exc: Exception) -> ModelCallError:
    """A source's exception as the model's classified failure (a botocore timeout, a bug in a tier)."""
    return exc if isinstance(exc, ModelCallError) else failure(model_id, type(exc).__name__, str(exc)[:300])


REJECTION_CODES = frozenset(CODES.values())
_SENTENCE_END = re.compile(r"(?:[.!?][\"')\]]*\s+|\n)")


def verified(source: Iterator[Piece], prompt: str, model_id: str, tier: str) -> Iterator[Piece]:
    """Budgeting advice released a sentence at a time, each checked by the grounding guard before
    it leaves (the way a guardrail's synchronous mode releases chunks): an invented figure or a
    loop found before any text was sent hands over to the next tier; found later, it ends the
    stream with an error. The end checks the whole answer, the cut-off check included."""
    figures = figures_for(prompt)
    shown, held = "", ""
    for piece in source:
        if isinstance(piece, str):
            start = max(0, len(held) - 4)  # only the new text (and a closing quote before it) can end a sentence
            held += piece
            cut = max((m.end() for m in _SENTENCE_END.finditer(held, start)), default=0)
            if not cut:
                continue
            ready, held = held[:cut], held[cut:]
            verdict = check_so_far(shown + ready, figures)
            if not verdict.ok:
                raise rejection(verdict, model_id, tier)
            shown += ready
            yield ready
            continue
        tokens = (piece.input_tokens, piece.output_tokens)
        verdict = check(shown + held, prompt, figures)
        if not verdict.ok:
            raise rejection(verdict, model_id, tier, tokens)
        if held:
            yield held
        yield piece
    # A source that stops without its end: the held text is not released (timed() or the caller
    # reports the cut).


def _end_of(piece: End | StreamEnd, guardrail: str) -> End:
    if isinstance(piece, End):
        return piece
    verdict = "intervened" if piece.stop_reason == "guardrail_intervened" else guardrail
    return End(piece.model_id, piece.input_tokens, piece.output_tokens, piece.stop_reason, None, verdict)


def stream_answer(
    tiers: list[Tier],
    degraded: Tier,
    request_id: str,
    use_case: str,
    timeouts: StreamTimeouts,
    summary: Summary,
    *,
    on_result: Callable[[str, FailureClass | None], None],
    finish: Callable[[Summary], dict[str, Any]],
    guardrail: str = "not_configured",
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Event]:
    """The events of one streamed answer. ``on_result(tier, failure_class or None)`` is told each
    model tier's outcome (the breaker listens for the primary's); ``finish`` settles the budget
    and returns what the terminal event adds (``usage``)."""
    started = clock()
    deadline = started + timeouts.total_s
    for tier in [*tiers, degraded]:
        sent = 0
        end: End | None = None
        try:
            source = tier.open() if tier is degraded else timed(tier.open(), tier.model_id, timeouts, deadline, clock)
            for piece in source:
                if isinstance(piece, str):
                    if not sent:
                        summary.first_token_ms = int((clock() - started) * 1000)
                        summary.tier, summary.model_used, summary.variant = tier.name, tier.model_id, tier.variant
                        yield Event(
                            "meta",
                            {
                                "tier": tier.name,
                                "attempt": tier.attempt,
                                "model": tier.model_id,
                                "variant": tier.variant,
                                "use_case": use_case,
                                "request_id": request_id,
                            },
                        )
                    sent += 1
                    yield Event("delta", {"text": piece})
                else:
                    end = _end_of(piece, guardrail)
            if not sent or end is None:
                # Text without an end marker is a cut stream; an end without text, an empty answer.
                raise failure(tier.model_id, "TruncatedStream" if sent else "EmptyResponse", "no complete answer")
        except ModelCallError as exc:
            on_result(tier.name, exc.failure_class)
            summary.failed_tiers.append(tier.name)
            described = describe_failure(exc, tier.name)
            if exc.code in REJECTION_CODES:
                tokens = (described["input_tokens"], described["output_tokens"])
                summary.rejected.append((tier.name, tier.model_id, tokens if tokens != (0, 0) else None))
            if tier.name == "primary" and not sent:
                summary.primary_failure = described
            emit("PathFailures", 1, failure_class=str(exc.failure_class), tier=tier.name)
            logger.warning(
                "stream tier failed",
                extra={"tier": tier.name, "model_id": tier.model_id, "code": exc.code, "text_sent": bool(sent)},
            )
            if not sent:
                continue  # nothing shown yet: the next tier answers
            summary.outcome, summary.failure_class, summary.error_code = "error", str(exc.failure_class), exc.code
            summary.usage_known = False  # a cut stream reports no usage; finish() charges the tier's bound
            extra = finish(summary)
            yield Event(
                "error",
                {
                    "code": _error_code(exc.code),
                    "message": (
                        f"the answer failed a check ({described['detail']}); the text sent so far is "
                        "not advice we stand behind"
                        if exc.code in REJECTION_CODES
                        else "the answer was interrupted; the text sent so far is incomplete"
                    ),
                    "failure_class": str(exc.failure_class),
                    "tier": tier.name,
                    "model": tier.model_id,
                    "partial": True,
                    "request_id": request_id,
                    **extra,
                },
            )
            return
        on_result(tier.name, None)
        summary.outcome = "done"
        summary.input_tokens, summary.output_tokens = end.input_tokens, end.output_tokens
        summary.guardrail = end.guardrail
        extra = finish(summary)
        yield Event(
            "done",
            {
                "tier": tier.name,
                "attempt": tier.attempt,
                "model_used": end.model_id,
                "variant": tier.variant,
                "use_case": use_case,
                "request_id": request_id,
                "input_tokens": end.input_tokens,
                "output_tokens": end.output_tokens,
                "stop_reason": end.stop_reason,
                "sentiment": end.sentiment,
                "guardrail": end.guardrail,
                "degraded_reason": summary.degraded_reason if tier is degraded else None,
                "primary_failure": summary.primary_failure,
                **extra,
            },
        )
        return
    raise AssertionError("unreachable: the degraded tier always answers")


def _error_code(code: str) -> str:
    """The error event's code: what a client can branch on."""
    if code in REJECTION_CODES:
        return "rejected"  # the text sent so far is not advice the platform stands behind
    return {"StreamStalled": "stalled", "TruncatedStream": "truncated", "StreamDeadline": "deadline"}.get(
        code, "model_error"
    )


def static_tier(text: str, reason: str, summary: Summary) -> Tier:
    """The static answer as a tier: its words as deltas, then the end. It cannot fail."""

    def pieces() -> Iterator[Piece]:
        summary.degraded_reason = reason
        words = text.split(" ")
        for i, word in enumerate(words):
            yield word if i == len(words) - 1 else word + " "
        yield End(STATIC_MODEL, 0, 0, "static", None, "not_applicable")

    return Tier("degraded", 3, STATIC_MODEL, None, pieces)

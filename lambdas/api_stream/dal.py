"""Where the stream's tiers get their text: Bedrock's ConverseStream, or the sync path's own code.

Free text from a Bedrock model streams token by token, and so does a serving Lambda's generated
advice (``InvokeWithResponseStream``, see :func:`serving_stream`). Answers that exist only whole (a
sentiment label, the rule-based budgeting advice, a served answer that a guardrail must read whole)
come from the same code the state machine's tiers run (``router.handler.handle_invoke``,
``fallback.handler``), sent as one piece: the stream path never answers differently from the sync
path, only sooner.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from api_stream.logic import End, Piece
from fallback.handler import BASELINE_MODEL, MAX_TOKENS, SYSTEM_PROMPT, TEMPERATURE, FallbackEvent
from fallback.handler import answer as fallback_answer
from router.dal import lambda_targets_from_env, refused, with_artifact
from router.handler import InvokeEvent, handle_invoke
from shared.bedrock import GuardrailRef, converse_stream
from shared.budgeting import advise
from shared.failures import failure
from shared.pii import redact
from shared.use_cases import UseCase

# A whole-answer tier must end inside the stream's own bound, as the router's task does in the ASL.
WHOLE_ANSWER_S = 9.0


def whole(answer: Callable[[], dict[str, Any]]) -> Iterator[Piece]:
    """A sync tier's answer (the router's or the fallback's dict) as one piece and its end."""
    result = answer()
    yield str(result["response"])
    yield End(
        str(result["model_used"]),
        int(result.get("input_tokens") or 0),
        int(result.get("output_tokens") or 0),
        "end_turn",
        result.get("sentiment"),
        str(result.get("guardrail") or "not_applicable"),
    )


def _frames(events: Any) -> Iterator[dict[str, Any]]:
    """JSON lines out of an ``InvokeWithResponseStream`` event stream, whatever its chunking."""
    pending = b""
    for event in events:
        if "PayloadChunk" in event:
            pending += event["PayloadChunk"].get("Payload") or b""
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    yield json.loads(line)
        elif "InvokeComplete" in event:
            complete = event["InvokeComplete"]
            if complete.get("ErrorCode"):
                yield {"error": complete["ErrorCode"], "message": complete.get("ErrorDetails") or ""}
    if pending.strip():
        yield json.loads(pending)


def serving_stream(
    lambda_client: Any, target: str, model_id: str, prompt: str, artifact_uri: str | None = None
) -> Iterator[Piece]:
    """A serving Lambda's advice as it is generated.

    The function answers ``{"query", "stream": true}`` with JSON lines: ``{"delta": text}`` per
    step and one ``{"end": {...}}``. A function whose runtime buffers (the container image's
    default Python runtime) returns its usual whole response instead, and Lambda delivers that in
    one chunk: it is read as one piece, so either runtime gives the same answer. A stream that
    stops without its ``end`` line is a truncated answer, never a whole one.
    """
    function = lambda_targets_from_env().get(target)
    if function is None:
        raise failure(model_id, "UnknownTarget", f"no function configured for target {target!r}")
    payload = json.dumps(with_artifact({"query": redact(prompt).text, "stream": True}, artifact_uri)).encode()
    result = lambda_client.invoke_with_response_stream(FunctionName=function, Payload=payload)
    sent = False
    for frame in _frames(result["EventStream"]):
        if "delta" in frame:
            sent = sent or bool(frame["delta"])
            yield str(frame["delta"])
        elif "end" in frame:
            if not sent:  # as on the sync path: no advice is the model failing, not an answer
                raise failure(model_id, "BadResponse", "the serving function generated no text")
            end = frame["end"]
            version = str(end.get("model_version") or model_id)
            yield End(version, int(end.get("input_tokens", 0)), int(end.get("output_tokens", 0)), "end_turn")
            return
        elif frame.get("error") == "malformed_plan":
            raise refused(model_id, 422, frame)
        elif "error" in frame or "errorMessage" in frame:
            raise failure(model_id, "FunctionError", str(frame.get("message") or frame.get("errorMessage"))[:300])
        else:  # the buffered runtime's whole response: {"statusCode", "body"}
            body = json.loads(frame["body"]) if isinstance(frame.get("body"), str) else frame
            if int(frame.get("statusCode", 200)) >= 400:
                raise refused(model_id, int(frame["statusCode"]), body)
            if not body.get("response"):
                raise failure(model_id, "BadResponse", str(body)[:300])
            yield str(body["response"])
            usage = body.get("usage") or {}
            version = str(body.get("model_version") or model_id)
            yield End(version, int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)), "end_turn")
            return
    raise failure(model_id, "TruncatedStream", "the serving function's stream ended without its end line")


def primary_source(
    selection: dict[str, Any],
    request_id: str,
    prompt: str,
    use_case: UseCase,
    client: Any,
    guardrail: GuardrailRef | None,
    lambda_client: Any = None,
) -> Callable[[], Iterator[Piece]]:
    """The primary tier: ConverseStream for a Bedrock model's free text, a serving Lambda's
    stream for its generated advice, else the router's invoke."""
    if selection["provider"] == "bedrock" and use_case is not UseCase.SENTIMENT:
        return lambda: converse_stream(
            client,
            model_id=selection["model_id"],
            prompt=redact(prompt).text,
            system_prompt=selection.get("system_prompt"),
            max_tokens=int(selection["max_tokens"]),
            temperature=float(selection["temperature"]),
            top_p=selection.get("top_p"),
            guardrail=guardrail,
        )
    if selection["provider"] == "lambda" and use_case is not UseCase.SENTIMENT and guardrail is None:
        # With an output guardrail the served text is checked whole (as on the sync path) before
        # any of it is sent, so it comes through handle_invoke below as one piece.
        return lambda: serving_stream(
            lambda_client,
            str(selection.get("target") or ""),
            selection["model_id"],
            prompt,
            selection.get("artifact_uri"),
        )
    event = InvokeEvent.model_validate(
        {"action": "invoke", "request_id": request_id, "use_case": use_case, "prompt": prompt, "selection": selection}
    )
    return lambda: whole(lambda: {**handle_invoke(event, time.monotonic() + WHOLE_ANSWER_S)})


def fallback_source(
    request_id: str, prompt: str, use_case: UseCase, client: Any, model_id: str, guardrail: GuardrailRef | None
) -> tuple[str, Callable[[], Iterator[Piece]]]:
    """The fallback tier (its model id for the meta event, and its pieces)."""
    redacted = redact(prompt).text
    if use_case is UseCase.BUDGETING_ADVICE and advise(redacted) is not None:
        model_id = BASELINE_MODEL
    if use_case is UseCase.SENTIMENT or model_id == BASELINE_MODEL:
        event = FallbackEvent(request_id=request_id, use_case=use_case, prompt=prompt)
        return model_id, lambda: whole(lambda: fallback_answer(event, time.monotonic() + WHOLE_ANSWER_S, client))
    return model_id, lambda: converse_stream(
        client,
        model_id=model_id,
        prompt=redacted,
        system_prompt=SYSTEM_PROMPT,
        max_tokens=MAX_TOKENS,
        temperature=TEMPERATURE,
        guardrail=guardrail,
    )

"""Where the stream's tiers get their text: Bedrock's ConverseStream, or the sync path's own code.

Free text from a Bedrock model streams token by token. Answers that exist only whole (a sentiment
label, the rule-based budgeting advice, a serving Lambda's answer on AWS) come from the same code
the state machine's tiers run (``router.handler.handle_invoke``, ``fallback.handler``), sent as
one piece: the stream path never answers differently from the sync path, only sooner.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from api_stream.logic import End, Piece
from fallback.handler import BASELINE_MODEL, MAX_TOKENS, SYSTEM_PROMPT, TEMPERATURE, FallbackEvent
from fallback.handler import answer as fallback_answer
from router.handler import InvokeEvent, handle_invoke
from shared.bedrock import GuardrailRef, converse_stream
from shared.budgeting import advise
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


def primary_source(
    selection: dict[str, Any],
    request_id: str,
    prompt: str,
    use_case: UseCase,
    client: Any,
    guardrail: GuardrailRef | None,
) -> Callable[[], Iterator[Piece]]:
    """The primary tier: ConverseStream for a Bedrock model's free text, else the router's invoke."""
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

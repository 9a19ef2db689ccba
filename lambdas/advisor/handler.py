"""Budgeting advisor container Lambda: ``{"query": ...}`` -> advice, confidence, model version.

Serves the merged, int8-quantised adapter through onnxruntime (see ``serving``). It is also the
router's ``lambda`` provider for the ``budgeting_advice`` use case.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field

from serving.artifacts import ARTIFACT_URI, PROMOTED_KEEP, ArtifactError, resolve
from serving.generator import Generator
from serving.http import BadRequest, bad_request, health, parse, response, unavailable
from serving.plans import REPETITION_PENALTY, plan_constraint
from serving.runtime import InputTooLong
from shared.budgeting import (
    MAX_STEPS,
    MIN_STEPS,
    PlanError,
    fit_prompt,
    parse_prompt,
    plan_step,
    render_plan,
    render_step,
    render_total,
)

logger = Logger(service="advisor")
MAX_QUERY_CHARS = 8000
PROMPT_TOO_LONG = "prompt_too_long"  # the router's cue that the input, not the model, failed
MALFORMED_PLAN = "malformed_plan"  # the model's plan names a step the profile does not support


class AdviceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    max_new_tokens: int = Field(default=96, ge=1, le=256)
    truncate: bool = False
    # Asked for by the stream route (InvokeWithResponseStream); see stream_handler.
    stream: bool = False
    # The strategy variant's artifact (what promotion wrote); absent: the function's default.
    artifact_uri: str | None = Field(default=None, max_length=1024, pattern=ARTIFACT_URI.pattern)


@lru_cache(maxsize=PROMOTED_KEEP)
def generator(artifact_uri: str | None = None) -> Generator:
    # Once per artifact and container: the artifact is verified against its manifest checksums here.
    return Generator(resolve(artifact_uri))


def _prepare(event: Any) -> tuple[AdviceRequest, Generator, list[int], str]:
    """The request, the model, the prompt's ids and the prompt itself, the profile compacted to fit
    the window when it must be (``shared.budgeting.fit_prompt``): the model never sees an
    over-long prompt."""
    request = parse(event, AdviceRequest)
    if not request.query.strip():
        raise BadRequest("query: must contain text, not only whitespace")
    model = generator(request.artifact_uri) if request.artifact_uri else generator()
    if model.answer_format == "plan" and parse_prompt(request.query) is None:
        # The plan advisor renders steps from a profile; without one it has nothing to answer.
        raise BadRequest("query: this advisor answers a spending profile, and the query carries none")
    query = request.query if request.truncate else fit_prompt(request.query, model.fits)
    if query is None:
        model.encode(request.query)  # raises InputTooLong with the prompt's token count
    fitted = query or request.query
    return request, model, model.encode(fitted, request.truncate), fitted


def too_long(exc: InputTooLong) -> dict[str, Any]:
    """The 400 for a prompt over the window even compacted: the input's fault, never the model's."""
    message = f"query is {exc.tokens} tokens; the limit is {exc.limit} (send truncate=true to cut it)"
    return response(400, {"error": PROMPT_TOO_LONG, "message": message})


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    if isinstance(event, dict) and event.get("action") == "health":
        return health(generator, event.get("artifact_uri"))
    try:
        request, model, ids, prompt = _prepare(event)
    except InputTooLong as exc:
        return too_long(exc)
    except BadRequest as exc:
        return bad_request(str(exc))
    except ArtifactError as exc:
        return unavailable(exc)
    result = model.generate_ids(
        ids,
        max_new_tokens=request.max_new_tokens,
        repetition_penalty=REPETITION_PENALTY,
        constraint=plan_constraint(model, prompt),
    )
    logger.info(
        "advice generated",
        extra={"input_tokens": result.input_tokens, "output_tokens": len(result.token_ids), "model": model.version},
    )
    text, plan = result.text, None
    if model.answer_format == "plan":
        plan = result.text
        try:
            text = render_plan(prompt, plan)  # the model chose the steps; every amount is computed here
        except PlanError as exc:
            return malformed(exc, plan)
    return response(
        200,
        {
            "response": text,
            "plan": plan,
            "confidence": result.confidence,
            "model_version": model.version,
            "usage": {"input_tokens": result.input_tokens, "output_tokens": len(result.token_ids)},
            "compacted": prompt != request.query,
        },
    )


def malformed(exc: PlanError, plan: str) -> dict[str, Any]:
    """The model's plan names steps the profile does not support: the model failed the task."""
    return response(422, {"error": MALFORMED_PLAN, "message": str(exc), "plan": plan[:200]})


def _line(frame: dict[str, Any]) -> bytes:
    return json.dumps(frame).encode() + b"\n"


def stream_handler(event: Any, context: Any) -> Iterator[bytes]:
    """The advice as JSON lines while it is generated, for a runtime that streams responses.

    ``{"delta": text}`` per decoding step, then ``{"end": {model_version, input_tokens,
    output_tokens}}``. Bad input is the same 400 response as :func:`lambda_handler`'s, as one line,
    before any text. The container's default (buffered) runtime calls ``lambda_handler``, whose
    whole response the stream route reads as one piece.
    """
    try:
        request, model, ids, prompt = _prepare(event)
    except InputTooLong as exc:
        yield _line(too_long(exc))
        return
    except BadRequest as exc:
        yield _line(bad_request(str(exc)))
        return
    except ArtifactError as exc:
        yield _line(unavailable(exc))
        return
    pieces = model.stream_ids(
        ids, request.max_new_tokens, repetition_penalty=REPETITION_PENALTY, constraint=plan_constraint(model, prompt)
    )
    generated = 0
    if model.answer_format == "plan":
        for frame in _plan_frames(prompt, pieces):
            if isinstance(frame, int):
                generated = frame
            else:
                yield _line(frame)
                if "error" in frame:
                    return
    else:
        for piece, count in pieces:
            generated = count
            if piece:
                yield _line({"delta": piece})
    logger.info("advice streamed", extra={"input_tokens": len(ids), "output_tokens": generated, "model": model.version})
    yield _line({"end": {"model_version": model.version, "input_tokens": len(ids), "output_tokens": generated}})


def _plan_frames(prompt: str, pieces: Iterator[tuple[str, int]]) -> Iterator[dict[str, Any] | int]:
    """A plan's steps rendered as each is completed (a step's line as soon as the model writes the
    separator after it), then the total; an error frame for a step the profile does not support.
    Ints in between are the token count so far."""
    profile = parse_prompt(prompt)
    if profile is None:
        yield {"error": MALFORMED_PLAN, "message": "the prompt carries no spending profile to render a plan with"}
        return
    plan, steps = "", []

    def step(item: str) -> dict[str, Any]:
        steps.append(plan_step(profile, item))
        return {"delta": render_step(profile, len(steps), steps[-1]) + "\n"}

    try:
        for piece, count in pieces:
            yield count
            plan += piece
            *done, plan = plan.split(";")
            for item in (i for i in done if i.strip()):
                yield step(item)
        if plan.strip():
            yield step(plan)
        if not MIN_STEPS <= len(steps) <= MAX_STEPS or len({s.action for s in steps}) != len(steps):
            raise PlanError(f"a plan has {MIN_STEPS} to {MAX_STEPS} distinct steps; this one has {len(steps)}")
    except PlanError as exc:
        yield {"error": MALFORMED_PLAN, "message": str(exc)}
        return
    yield {"delta": render_total(profile, steps)}

"""The stream route in front of a serving Lambda (the fine-tuned advisor).

The strategy sends budgeting advice to the advisor function; the route calls it with
``InvokeWithResponseStream``. A function whose runtime streams writes JSON lines as it decodes and
the route passes each on as a ``delta``; a buffered function's whole response arrives as one
piece; a stream that breaks is an honest error, exactly as with a Bedrock model.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest

from api_stream import handler as stream
from api_stream.logic import StreamTimeouts
from local.request_path import RequestPath, local_request_path
from router.dal import StaticStrategySource
from shared.budgeting import advise, format_prompt
from shared.strategy import load_default_strategy, parse_strategy
from tests.unit.test_grounding import PROFILE

ADVISOR = "advisor-lora"
PROFILE_PROMPT = format_prompt(PROFILE)
QUESTION = json.dumps({"use_case": "budgeting_advice", "prompt": "Groceries 410, dining 260. How do I save?"})
FAST = StreamTimeouts(first_token_s=0.5, idle_s=0.5)
WORDS = ["Cook", " at", " home.", " Walk", " to", " work.", " Cancel", " one", " app."]
# Budgeting advice leaves a checked sentence at a time (the grounding guard; see logic.verified).
SENTENCES = ["Cook at home. ", "Walk to work. ", "Cancel one app."]


def advisor_strategy() -> StaticStrategySource:
    document = json.loads(load_default_strategy().model_dump_json(exclude_none=True))
    for variant in document["use_cases"]["budgeting_advice"]["variants"]:
        variant["weight"] = 100 if variant["provider"] == "lambda" else 0
    return StaticStrategySource(parse_strategy(document))


@pytest.fixture
def path() -> Iterator[RequestPath]:
    with local_request_path(strategy_source=advisor_strategy()) as request_path:
        os.environ["LAMBDA_PROVIDERS"] = json.dumps(
            {"advisor": "arn:aws:lambda:us-east-1:123456789012:function:advisor"}
        )
        settings = stream.settings().model_copy(update={"timeouts": FAST})
        with mock.patch.object(stream, "settings", lambda: settings):
            yield request_path


def lines(*frames: dict[str, Any]) -> list[bytes]:
    return [json.dumps(f).encode() + b"\n" for f in frames]


def buffered(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body = {
        "response": "".join(WORDS),
        "model_version": "advisor-int8-abc",
        "usage": {"input_tokens": 12, "output_tokens": 7},
    }
    return {"statusCode": 200, "body": json.dumps(body)}


def streaming(
    frames: list[bytes], pause_s: float = 0.0, then: Exception | None = None
) -> Callable[..., Iterator[bytes]]:
    def streamer(event: dict[str, Any], context: Any) -> Iterator[bytes]:
        streamer.received.append(event)  # type: ignore[attr-defined]
        for frame in frames:
            time.sleep(pause_s)
            yield frame
        if then is not None:
            raise then

    streamer.received = []  # type: ignore[attr-defined]
    return streamer


def names(events) -> list[str]:
    return [e.name for e in events]


def text(events) -> str:
    return "".join(e.data["text"] for e in events if e.name == "delta")


def test_a_streaming_advisor_sends_each_piece_as_it_is_decoded(path):
    end = {"end": {"model_version": "advisor-int8-abc", "input_tokens": 12, "output_tokens": 7}}
    streamer = streaming(lines(*({"delta": w} for w in WORDS), end), pause_s=0.01)
    path.lambdas.register("advisor", buffered, streamer)
    status, _, events, _ = path.stream(QUESTION)
    assert status == 200 and names(events) == ["meta", *["delta"] * len(SENTENCES), "done"]
    assert [e.data["text"] for e in events if e.name == "delta"] == SENTENCES
    assert events[0].data["tier"] == "primary" and events[0].data["model"] == ADVISOR
    assert text(events) == "".join(WORDS)
    done = events[-1].data
    assert (done["model_used"], done["input_tokens"], done["output_tokens"]) == ("advisor-int8-abc", 12, 7)
    # The prompt reached the function redacted, as on the sync path, and asking for a stream.
    assert streamer.received == [{"query": json.loads(QUESTION)["prompt"], "stream": True}]
    assert path.bedrock.calls == []


def test_a_buffered_advisor_answers_in_one_piece_with_the_same_text(path):
    path.lambdas.register("advisor", buffered)  # the container's default runtime: no streamer
    _, _, events, _ = path.stream(QUESTION)
    # One piece from the function; the guard releases its checked sentences, the last at the end.
    assert names(events) == ["meta", "delta", "delta", "done"]
    assert text(events) == "".join(WORDS) and events[-1].data["output_tokens"] == 7


def test_an_advisor_that_breaks_mid_stream_ends_with_an_error_and_counts_on_its_circuit(path):
    streamer = streaming(lines(*({"delta": w} for w in WORDS[:4])), then=RuntimeError("out of memory"))
    path.lambdas.register("advisor", buffered, streamer)
    _, _, events, _ = path.stream(QUESTION)
    assert names(events) == ["meta", "delta", "error"]  # the first sentence had left; "Walk" had not
    error = events[-1].data
    assert error["code"] == "model_error" and error["partial"] is True and error["tier"] == "primary"
    assert path.circuit(ADVISOR)["failures"] == 1


def test_an_advisor_stream_without_its_end_line_is_truncated_never_whole(path):
    path.lambdas.register("advisor", buffered, streaming(lines(*({"delta": w} for w in WORDS))))
    _, _, events, _ = path.stream(QUESTION)
    assert events[-1].name == "error" and events[-1].data["code"] == "truncated"
    assert events[-1].data["partial"] is True


def test_an_advisor_that_refuses_before_any_text_hands_over_to_the_fallback(path):
    refusal = {"statusCode": 400, "body": json.dumps({"error": "bad_request", "message": "query is 900 tokens"})}
    path.lambdas.register("advisor", buffered, streaming(lines(refusal)))
    _, _, events, _ = path.stream(QUESTION)
    assert events[0].data["tier"] == "fallback" and events[-1].name == "done"
    # The function refused the input (its 400): the request's fault, as on the sync path, not counted.
    assert path.circuit(ADVISOR) is None
    assert events[-1].data["primary_failure"]["code"] == "InputRejected"


def test_an_advisor_that_generates_nothing_is_a_failure_not_an_empty_answer(path):
    end = {"end": {"model_version": "advisor-int8-abc", "input_tokens": 12, "output_tokens": 0}}
    path.lambdas.register("advisor", buffered, streaming(lines(end)))
    _, _, events, _ = path.stream(QUESTION)
    assert events[0].data["tier"] == "fallback" and events[-1].name == "done"
    assert events[0].data["model"] != ADVISOR  # the answer came from the next tier
    assert path.circuit(ADVISOR)["failures"] == 1


def test_advice_that_invents_a_figure_mid_stream_ends_with_rejected_and_is_charged(path):
    frames = [{"delta": "Cook at home. "}, {"delta": "That saves USD 950 a month. "}, {"delta": "Done."}]
    path.lambdas.register("advisor", buffered, streaming(lines(*frames)))
    _, _, events, _ = path.stream(QUESTION)
    assert names(events) == ["meta", "delta", "error"] and text(events) == "Cook at home. "
    error = events[-1].data
    assert error["code"] == "rejected" and error["failure_class"] == "task" and error["partial"] is True
    assert "USD 950" in error["message"]
    circuit = path.circuit(ADVISOR)
    assert circuit is None or circuit["failures"] == 0  # a task failure: the circuit is not touched


def test_advice_rejected_before_any_text_hands_over_to_the_baseline_and_says_why(path):
    profile_question = json.dumps({"use_case": "budgeting_advice", "prompt": PROFILE_PROMPT})
    end = {"end": {"model_version": "advisor-int8-abc", "input_tokens": 12, "output_tokens": 7}}
    path.lambdas.register("advisor", buffered, streaming(lines({"delta": "Save HKD 12,345 a month."}, end)))
    _, _, events, _ = path.stream(profile_question)
    assert events[0].data["tier"] == "fallback" and events[-1].name == "done"
    done = events[-1].data
    assert done["model_used"] == "rule-based-budgeting-baseline"
    assert done["primary_failure"]["code"] == "UngroundedAmount" and done["primary_failure"]["model"] == ADVISOR
    assert text(events) == advise(PROFILE_PROMPT)
    # The rejected answer was billed; the baseline is free: the usage is the rejected answer's.
    assert (done["usage"]["input_tokens"], done["usage"]["output_tokens"]) == (12, 7)

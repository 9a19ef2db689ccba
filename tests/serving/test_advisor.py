"""The advisor container handler: contract, every input error as a 400, artifact loading."""

import json

import pytest

from advisor import handler
from local.request_path import FakeContext
from serving.artifacts import ArtifactError
from tests.serving.conftest import manifest

CTX = FakeContext("advisor", "us-east-1")


@pytest.fixture
def advisor(monkeypatch, t5_artifacts):
    monkeypatch.setenv("MODEL_DIR", str(t5_artifacts["int8"]))
    monkeypatch.delenv("MODEL_S3_URI", raising=False)
    handler.generator.cache_clear()
    yield handler
    handler.generator.cache_clear()


def call(event):
    result = handler.lambda_handler(event, CTX)
    return result["statusCode"], json.loads(result["body"])


def test_direct_invocation_returns_advice_confidence_and_version(advisor, t5_artifacts, advisor_texts):
    status, body = call({"query": advisor_texts[0]["prompt"][:300], "max_new_tokens": 12})
    assert status == 200
    assert isinstance(body["response"], str)
    assert 0.0 < body["confidence"] <= 1.0
    assert body["model_version"] == manifest(t5_artifacts["int8"])["model_version"]
    assert 1 <= body["usage"]["output_tokens"] <= 12


def test_api_gateway_proxy_event_is_accepted(advisor):
    status, body = call({"body": json.dumps({"query": "Dining 420, groceries 300", "max_new_tokens": 4})})
    assert status == 200 and "response" in body


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"body": "{not json"}, "not valid JSON"),
        ({"body": ""}, "body is empty"),
        ({"body": "[1, 2]"}, "must be a JSON object"),
        ([1, 2], "must be a JSON object"),
        ({}, "query: Field required"),
        ({"query": ""}, "query: String should have at least 1 character"),
        ({"query": "   "}, "only whitespace"),
        ({"query": 42}, "query: Input should be a valid string"),
        ({"query": "x", "max_new_tokens": 0}, "max_new_tokens"),
        ({"query": "x", "temperature": 0.2}, "temperature: Extra inputs are not permitted"),
        ({"query": "x" * 8001}, "at most 8000 characters"),
    ],
)
def test_bad_input_is_a_400_that_says_what_is_wrong(advisor, event, message):
    status, body = call(event)
    assert status == 400
    assert body["error"] == "bad_request"
    assert message in body["message"]


def test_over_the_token_limit_is_rejected_unless_truncation_is_asked_for(advisor, advisor_texts):
    long_query = " ".join(p["prompt"] for p in advisor_texts[:6])
    status, body = call({"query": long_query})
    assert status == 400
    assert "the limit is 512" in body["message"] and "truncate=true" in body["message"]
    status, body = call({"query": long_query, "truncate": True, "max_new_tokens": 4})
    assert status == 200


def test_a_missing_artifact_is_a_clear_503_and_the_health_says_so(monkeypatch, tmp_path):
    """No crash at cold start or on a request: the function says it has nothing to serve."""
    monkeypatch.setenv("MODEL_DIR", str(tmp_path))
    monkeypatch.delenv("MODEL_S3_URI", raising=False)
    handler.generator.cache_clear()
    result = handler.lambda_handler({"query": "hello"}, CTX)
    body = json.loads(result["body"])
    assert (result["statusCode"], body["error"]) == (503, "no_artifact")
    assert "manifest.json" in body["message"] and "promote one" in body["message"]
    health = handler.lambda_handler({"action": "health"}, CTX)
    assert (health["statusCode"], json.loads(health["body"])["status"]) == (503, "no_artifact")
    lines = [json.loads(line) for line in handler.stream_handler({"query": "hello", "stream": True}, CTX)]
    assert lines[0]["statusCode"] == 503 and json.loads(lines[0]["body"])["error"] == "no_artifact"
    handler.generator.cache_clear()


def test_wrong_kind_of_artifact_is_refused(monkeypatch, bert_artifacts):
    monkeypatch.setenv("MODEL_DIR", str(bert_artifacts["int8"]))
    handler.generator.cache_clear()
    with pytest.raises(ArtifactError, match="not an advisor"):
        handler.generator()
    result = handler.lambda_handler({"query": "hello"}, CTX)
    body = json.loads(result["body"])
    assert (result["statusCode"], body["error"]) == (503, "artifact_error") and "not an advisor" in body["message"]
    handler.generator.cache_clear()


@pytest.mark.parametrize("artifacts", ["t5_artifacts", "llama_artifacts"])
def test_the_generator_streams_the_tokens_it_generates_and_they_join_to_the_answer(request, artifacts, advisor_texts):
    """The seq2seq and the causal advisor both stream: pieces arrive one decoding step at a time,
    and joined they are exactly the sync answer (the stream route must not change the text)."""
    from serving.artifacts import verify
    from serving.generator import Generator

    generator = Generator(verify(request.getfixturevalue(artifacts)["int8"]))
    for text in [p["prompt"] for p in advisor_texts[:3]]:
        whole = generator.generate(text, max_new_tokens=24, min_new_tokens=12, repetition_penalty=1.1)
        steps = generator.tokens(generator.encode(text), 24, 12, 1.1)
        assert next(steps)[0] == whole.token_ids[0]  # one token per step, before the answer is done
        pieces = list(generator.stream(text, max_new_tokens=24, min_new_tokens=12, repetition_penalty=1.1))
        assert "".join(pieces) == whole.text, (pieces, whole.text)
        # Random adapter weights may spend tokens on text that decodes to nothing; what decodes streams.
        assert len(pieces) > 1 or len(whole.text.split()) <= 1, (pieces, whole.text)


@pytest.mark.parametrize("artifacts", ["t5_artifacts", "llama_artifacts"])
def test_the_streaming_handler_writes_the_same_advice_as_json_lines(monkeypatch, request, artifacts, advisor_texts):
    """What a streaming runtime sends the stream route: a line per decoded piece, then the end
    line with the token counts; joined, exactly the buffered handler's answer."""
    monkeypatch.setenv("MODEL_DIR", str(request.getfixturevalue(artifacts)["int8"]))
    handler.generator.cache_clear()
    try:
        event = {"query": advisor_texts[1]["prompt"][:300], "max_new_tokens": 16, "stream": True}
        frames = [json.loads(line) for line in handler.stream_handler(event, CTX)]
        status, whole = call(event)
    finally:
        handler.generator.cache_clear()
    assert status == 200
    deltas, end = frames[:-1], frames[-1]["end"]
    assert all(set(f) == {"delta"} for f in deltas)
    assert "".join(f["delta"] for f in deltas) == whole["response"]
    assert end["model_version"] == whole["model_version"]
    assert (end["input_tokens"], end["output_tokens"]) == (
        whole["usage"]["input_tokens"],
        whole["usage"]["output_tokens"],
    )


def test_the_streaming_handler_refuses_bad_input_with_the_same_400_line(advisor):
    frames = [json.loads(line) for line in handler.stream_handler({"query": "   ", "stream": True}, CTX)]
    assert len(frames) == 1 and frames[0]["statusCode"] == 400
    assert "only whitespace" in json.loads(frames[0]["body"])["message"]


def test_a_profile_over_the_window_is_compacted_to_fit_not_refused(monkeypatch, request, advisor_texts):
    """The platform builds the advisor's prompt, so it makes it fit: the largest categories and
    payments stay, the period and totals stay, and the model never sees an over-long prompt."""
    from shared.budgeting import RecurringPayment, SpendingProfile, format_prompt, parse_prompt

    monkeypatch.setenv("MODEL_DIR", str(request.getfixturevalue("llama_artifacts")["int8"]))
    handler.generator.cache_clear()
    try:
        model = handler.generator()
        merchants = [f"Merchant Number {i} Subscription Service" for i in range(40)]
        profile = SpendingProfile(
            currency="USD",
            period="month",
            period_days=30,
            as_of="2026-06-30",
            monthly_income=5_000,
            monthly_spend=4_200,
            top_categories=(("Rent", 1_800), ("Dining", 420), ("Shopping", 380), ("Groceries", 360), ("Health", 90)),
            recurring=tuple(RecurringPayment(m, "Entertainment", 5 + i) for i, m in enumerate(merchants)),
            trends=(("Dining", 35), ("Health", -20)),
        )
        prompt = format_prompt(profile)
        assert not model.fits(prompt)
        status, body = call({"query": prompt, "max_new_tokens": 4})
        assert status == 200 and body["compacted"] is True
        request_ids = []
        monkeypatch.setattr(model, "generate_ids", lambda ids, **kw: request_ids.append(ids) or _fake_generation())
        call({"query": prompt, "max_new_tokens": 4})
        assert len(request_ids[0]) <= model.limit
        # What was kept: the totals, the period, the largest categories and payments.
        from shared.budgeting import fit_prompt

        kept = parse_prompt(fit_prompt(prompt, model.fits) or "")
        assert kept is not None and kept.monthly_income == 5_000 and kept.period == "month"
        assert kept.top_categories[0] == ("Rent", 1_800)
        assert all(r.monthly_amount >= 40 for r in kept.recurring)
        # Free text over the window is refused as the input's fault, with the code the router reads.
        result = handler.lambda_handler({"query": " ".join(["spend"] * 900)}, CTX)
        assert result["statusCode"] == 400 and json.loads(result["body"])["error"] == "prompt_too_long"
    finally:
        handler.generator.cache_clear()


def _fake_generation():
    from serving.generator import Generation

    return Generation("ok.", [1], 1.0, 1)


def test_a_plan_advisor_renders_its_steps_with_computed_amounts(monkeypatch, t5_plan_artifact, advisor_texts):
    """Whatever the (random) weights prefer, decoding is constrained to the plans the profile
    supports, the handler renders them, and the advice passes the grounding guard; the stream
    handler sends the same advice a step at a time."""
    from shared.budgeting import render_plan
    from shared.grounding import check

    monkeypatch.setenv("MODEL_DIR", str(t5_plan_artifact))
    handler.generator.cache_clear()
    try:
        for pair in advisor_texts[:4]:
            status, body = call({"query": pair["prompt"], "max_new_tokens": 48})
            assert status == 200, body
            assert body["response"] == render_plan(pair["prompt"], body["plan"])
            assert check(body["response"], pair["prompt"]).ok
            assert body["usage"]["output_tokens"] < 48  # the plan ended; it did not run out of tokens
            stream = handler.stream_handler({"query": pair["prompt"], "max_new_tokens": 48}, CTX)
            frames = [json.loads(line) for line in stream]
            deltas = [f["delta"] for f in frames if "delta" in f]
            assert "".join(deltas) == body["response"] and len(deltas) == body["response"].count("\n") + 1
            assert frames[-1]["end"]["output_tokens"] == body["usage"]["output_tokens"]
        status, body = call({"query": "How do I save more each month?"})
        assert status == 400 and "spending profile" in body["message"]  # the router's InputRejected
    finally:
        handler.generator.cache_clear()

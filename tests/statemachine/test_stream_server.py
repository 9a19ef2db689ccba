"""The stream function's HTTP server, as the Lambda Web Adapter talks to it: readiness, the
request context in ``x-amzn-request-context``, and events leaving as chunks while the model writes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from api_stream.logic import parse_events
from api_stream.server import READINESS_PATH, request_context, serve
from local.request_path import LOCAL_API_KEY_ID, RequestPath, local_request_path
from tests.statemachine.conftest import PRIMARY


@pytest.fixture
def server() -> Iterator[tuple[str, RequestPath]]:
    with local_request_path() as path:
        httpd = serve(port=0)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}", path
        finally:
            httpd.shutdown()


def context(key_id: str | None = LOCAL_API_KEY_ID) -> dict[str, str]:
    return {"x-amzn-request-context": json.dumps({"requestId": "req-lwa-1", "identity": {"apiKeyId": key_id}})}


def test_the_adapter_finds_the_server_ready(server):
    url, _ = server
    assert requests.get(url + READINESS_PATH, timeout=5).status_code == 200


def test_events_leave_as_chunks_while_the_model_writes(server):
    url, path = server
    path.bedrock.pace_s = 0.05
    body = {"use_case": "general", "prompt": "What is an ISA?"}
    started = time.monotonic()
    with requests.post(url + "/v1/generate/stream", json=body, headers=context(), stream=True, timeout=30) as response:
        assert response.status_code == 200 and response.headers["Content-Type"] == "text/event-stream"
        assert response.headers["X-Request-Id"] == "req-lwa-1"  # API Gateway's request id, from the context
        arrivals, raw = [], b""
        for chunk in response.iter_content(chunk_size=None):
            arrivals.append(time.monotonic() - started)
            raw += chunk
    events = parse_events(raw.decode())
    assert events[0].name == "meta" and events[-1].name == "done"
    assert len(arrivals) >= len(events) - 1 and arrivals[0] < arrivals[-1] - 0.2  # not one buffered block
    record = path.audit_records()[-1]
    assert record["client"] == "default" and record["request_id"] == "req-lwa-1"  # the key id named the client


def test_bad_input_through_the_adapter_is_the_json_4xx(server):
    url, path = server
    response = requests.post(url + "/v1/generate/stream", data=b'{"use_case": "general"', headers=context(), timeout=10)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert path.bedrock.calls == []


@pytest.mark.parametrize("raw", [None, "", "null", "not json", "[1, 2]"])
def test_a_missing_or_odd_request_context_is_empty(raw):
    assert request_context(raw) == {}


def test_a_circuit_opened_through_the_server_is_the_same_item(server):
    url, path = server
    path.bedrock.fail(PRIMARY)
    for _ in range(5):
        reply = requests.post(url + "/v1/generate/stream", json={"use_case": "general", "prompt": "Hi"}, timeout=30)
        assert reply.status_code == 200
    assert path.circuit(PRIMARY)["state"] == "OPEN"

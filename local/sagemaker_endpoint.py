"""A SageMaker real-time endpoint on this machine: ``sagemaker-runtime``'s ``InvokeEndpoint``.

The router's ``sagemaker`` provider (``router.dal.SageMakerProvider``) calls this client exactly as
it calls boto3's: the request is checked against botocore's own model of ``InvokeEndpoint``, the
body is the chat-completions request an LMI container reads, and errors come back as the
``ClientError`` codes SageMaker returns (``ValidationError`` for an endpoint or inference
component that does not exist, ``ModelError`` with the container's status, throttling).

Each inference component is played by a local model: in ``make demo`` the advisor adapter on
SmolLM2 (its exported artifact, as the advisor Lambda serves it), decoding freely as an LMI
container does, with none of the Lambda's plan-constrained decoding.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

CREATE, DESCRIBE = "CreateInferenceComponent", "DescribeInferenceComponent"
# messages in; (text, input tokens, output tokens, finish reason) out.
ChatModel = Callable[[list[dict[str, str]], int], tuple[str, int, int, str]]


@dataclass
class LocalEndpoint:
    """Inference components by name, each answered by a local model, on named endpoints."""

    region: str
    endpoints: set[str] = field(default_factory=set)
    components: dict[str, tuple[str, ChatModel]] = field(default_factory=dict)
    # Called with the component's name before it answers: chaos draws its faults here.
    before_call: Callable[[str], str | None] | None = None
    calls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        import boto3

        # botocore's own shape of the request, so a call the real API would refuse fails here too.
        self._operation = boto3.client("sagemaker-runtime", region_name=self.region).meta.service_model
        self._lock = threading.Lock()

    def add_component(self, endpoint: str, component: str, model: ChatModel) -> None:
        with self._lock:
            self.endpoints.add(endpoint)
            self.components[component] = (endpoint, model)

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        from botocore.validate import validate_parameters

        validate_parameters(request, self._operation.operation_model("InvokeEndpoint").input_shape)
        endpoint, component = request["EndpointName"], request.get("InferenceComponentName")
        if endpoint not in self.endpoints:
            raise _error("ValidationError", f"Endpoint {endpoint} of account 123456789012 not found.")
        found = self.components.get(component or "")
        if found is None or found[0] != endpoint:
            raise _error("ValidationError", f"Inference Component {component} not found on endpoint {endpoint}.")
        self.calls.append(str(component))
        if self.before_call is not None:
            fault = self.before_call(str(component))
            if fault == "ThrottlingException":
                raise _error("ThrottlingException", "Rate exceeded (injected)")
            if fault:
                raise _error("ModelError", f"Received server error (500) from primary: injected {fault}", 500)
        body = json.loads(request["Body"])
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _error("ModelError", "Received client error (400) from primary: messages is required", 400)
        text, input_tokens, output_tokens, reason = found[1](messages, int(body.get("max_tokens", 256)))
        answer = {
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": reason}],
            "usage": {
                "prompt_tokens": input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            },
        }
        return {"Body": io.BytesIO(json.dumps(answer).encode()), "ContentType": "application/json"}


def _error(code: str, message: str, status: int | None = None, operation: str = "InvokeEndpoint") -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": message}}
    if status is not None:
        response["OriginalStatusCode"] = status
    return ClientError(response, operation)


def generator_chat_model(generator: Any, repetition_penalty: float = 1.1) -> ChatModel:
    """A serving ``Generator`` (an exported causal adapter) as an endpoint's chat model: the user's
    message is the query, the profile fitted to the window as the container's prompt template
    would, decoding greedy and unconstrained."""
    from shared.budgeting import fit_prompt

    def answer(messages: list[dict[str, str]], max_tokens: int) -> tuple[str, int, int, str]:
        query = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        fitted = fit_prompt(query, generator.fits) or query
        ids = generator.encode(fitted, True)
        result = generator.generate_ids(ids, max_new_tokens=min(max_tokens, 96), repetition_penalty=repetition_penalty)
        reason = "length" if len(result.token_ids) >= min(max_tokens, 96) else "stop"
        return result.text, result.input_tokens, len(result.token_ids), reason

    return answer


@dataclass
class LocalInferenceComponents:
    """The endpoint's control plane for adapter components (``sagemaker``'s
    ``CreateInferenceComponent`` and ``DescribeInferenceComponent``), which moto does not have.

    A created component is ``Creating`` for ``creating_polls`` describes, then ``InService`` and
    answerable on ``endpoint`` with the model ``model_for(ArtifactUrl)`` gives. Requests are checked
    against botocore's own model of each operation.
    """

    endpoint: LocalEndpoint
    model_for: Callable[[str], ChatModel]
    creating_polls: int = 1
    base_components: set[str] = field(default_factory=set)
    created: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import boto3

        self._model = boto3.client("sagemaker", region_name=self.endpoint.region).meta.service_model

    @property
    def region(self) -> str:
        return self.endpoint.region

    def _validate(self, operation: str, request: dict[str, Any]) -> None:
        from botocore.validate import validate_parameters

        validate_parameters(request, self._model.operation_model(operation).input_shape)

    def create_inference_component(self, **request: Any) -> dict[str, Any]:
        self._validate("CreateInferenceComponent", request)
        name, spec = request["InferenceComponentName"], request["Specification"]
        if name in self.created:
            raise _error(
                "ValidationException", f"Cannot create already existing inference component {name}.", None, CREATE
            )
        if request["EndpointName"] not in self.endpoint.endpoints:
            raise _error("ValidationException", f"Could not find endpoint {request['EndpointName']}.", None, CREATE)
        if spec.get("BaseInferenceComponentName") not in self.base_components:
            raise _error("ValidationException", "Could not find base inference component.", None, CREATE)
        self.created[name] = {**request, "polls": 0}
        return {
            "InferenceComponentArn": f"arn:aws:sagemaker:{self.endpoint.region}:123456789012:inference-component/{name}"
        }

    def describe_inference_component(self, **request: Any) -> dict[str, Any]:
        self._validate("DescribeInferenceComponent", request)
        name = request["InferenceComponentName"]
        found = self.created.get(name)
        if found is None:
            raise _error("ValidationException", f"Could not find inference component {name}.", None, DESCRIBE)
        found["polls"] += 1
        if found["polls"] <= self.creating_polls:
            return {"InferenceComponentName": name, "InferenceComponentStatus": "Creating"}
        url = found["Specification"]["Container"]["ArtifactUrl"]
        if name not in self.endpoint.components:
            self.endpoint.add_component(found["EndpointName"], name, self.model_for(url))
        return {"InferenceComponentName": name, "InferenceComponentStatus": "InService"}

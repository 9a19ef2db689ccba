"""Recording the AWS calls our functions make while the test suite runs.

Every botocore call passes through ``BaseClient._make_api_call``; the stand-in Bedrock client of the
local platform (:class:`local.bedrock_stub.OfflineBedrock`) is recorded at its ``converse``. A call
belongs to the function whose package under ``lambdas/`` is the innermost caller on the stack (code
in ``lambdas/shared`` and ``lambdas/serving`` runs inside several functions, so it never names one).
Calls made by the tests themselves (creating moto tables, reading results) belong to no function
and are not recorded.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
LAMBDAS = REPO / "lambdas"
LIBRARY_PACKAGES = frozenset({"shared", "serving"})
# moto on the stack before any function means AWS itself is acting (the ASL interpreter's own
# DynamoDB tasks); the state machine's role is judged from its definition instead.
AWS_SIDE = ("/moto/",)
# The functions that start a function's work: a Lambda handler, or, for the stream function (a web
# server behind the Lambda Web Adapter), the request handler and the stream it returns.
DEFAULT_ENTRY = frozenset({"lambda_handler"})
INHERITED = "_finai_principal"  # set on threads started inside a function
ENTRY_POINTS = {"api_stream": frozenset({"handle", "_run"})}
# The parameters that name what a call touches; anything else (a prompt, an item) is not kept.
KEPT_PARAMS = frozenset(
    {
        "TableName",
        "FunctionName",
        "stateMachineArn",
        "executionArn",
        "Bucket",
        "Key",
        "modelId",
        "guardrailIdentifier",
        "guardrailConfig",
        "ApplicationIdentifier",
        "EnvironmentIdentifier",
        "ConfigurationProfileIdentifier",
        "ApplicationId",
        "ConfigurationProfileId",
        "EnvironmentId",
        "DeploymentStrategyId",
        "VersionNumber",
        "ResourceArn",
        "TrainingJobName",
        "ModelName",
        "EndpointName",
        "EndpointConfigName",
        "ModelPackageGroupName",
        "InferenceComponentName",
        "CopySource",
        "QueueUrl",
        "Name",
    }
)


# Parameters that hold data beside the names of what they touch: only the names are kept.
def _transact_tables(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{kind: {"TableName": body["TableName"]} for kind, body in item.items()} for item in items]


REDUCED_PARAMS = {
    # TransactWriteItems: each item's kind and table (IAM authorises each as its own action).
    "TransactItems": _transact_tables,
    # BatchGetItem / BatchWriteItem: the tables.
    "RequestItems": lambda tables: {table: {} for table in tables},
}


@dataclass(frozen=True)
class Recorded:
    principal: str  # the package under lambdas/ (router, api_front, ...)
    site: str  # the innermost function of that package on the stack (PollingExecutor.run, ...)
    service: str  # botocore's service name
    operation: str
    region: str
    params: dict[str, Any]
    env: dict[str, str]
    test: str


@dataclass
class Recorder:
    calls: list[Recorded] = field(default_factory=list)
    current_test: str = ""
    _patches: list[Any] = field(default_factory=list)

    def principal(self) -> tuple[str, str] | None:
        """The function whose handler is making this call, or None (test code, AWS itself).

        The innermost entry point on the stack names the function (a package's
        ``handler.lambda_handler``, or the stream function's ``handle`` and the stream it returns,
        ``_run``): only then does the call run with the function's environment, which names its
        resources. The site is the innermost function's frame in a package of ``lambdas/``: the
        stream function runs the router's and the fallback's code in its own process, under its
        own role. A test that uses a function's classes directly (the local platform polls
        executions with the front's executor; a unit test passes a bucket name as an argument) is
        not the function calling AWS.
        """
        frame = sys._getframe(2)
        site = ""
        seen_lambdas = False
        while frame is not None:
            filename = frame.f_code.co_filename
            if not seen_lambdas and any(marker in filename for marker in AWS_SIDE):
                return None
            path = Path(filename)
            if path.is_relative_to(LAMBDAS):
                parts = path.relative_to(LAMBDAS).parts
                seen_lambdas = True
                if not site and parts[0] not in LIBRARY_PACKAGES and len(parts) > 1:
                    site = frame.f_code.co_qualname
                if (
                    len(parts) == 2
                    and parts[1] == "handler.py"
                    and frame.f_code.co_name in ENTRY_POINTS.get(parts[0], DEFAULT_ENTRY)
                ):
                    return parts[0], site
            frame = frame.f_back  # type: ignore[assignment]
        # A thread a function started (the stream's model reader) acts for that function.
        inherited: tuple[str, str] | None = getattr(threading.current_thread(), INHERITED, None)
        return (inherited[0], site or inherited[1]) if inherited else None

    def record(
        self, principal: tuple[str, str], service: str, operation: str, region: str, params: dict[str, Any]
    ) -> None:
        kept = {k: v for k, v in params.items() if k in KEPT_PARAMS}
        kept |= {k: REDUCED_PARAMS[k](v) for k, v in params.items() if k in REDUCED_PARAMS}
        package, site = principal
        self.calls.append(
            Recorded(package, site, service, operation, region, kept, dict(os.environ), self.current_test)
        )

    def install(self) -> None:
        from unittest import mock

        import botocore.client

        recorder = self
        original = botocore.client.BaseClient._make_api_call

        def recording(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            principal = recorder.principal()
            if principal is not None:
                service = client.meta.service_model.service_name
                recorder.record(principal, service, operation_name, client.meta.region_name, api_params)
            return original(client, operation_name, api_params)

        self._patches.append(mock.patch.object(botocore.client.BaseClient, "_make_api_call", recording))
        start = threading.Thread.start

        def starting(thread: threading.Thread) -> None:
            setattr(thread, INHERITED, recorder.principal())
            start(thread)

        self._patches.append(mock.patch.object(threading.Thread, "start", starting))
        self._patch_stand_in()
        for patch in self._patches:
            patch.start()

    def _patch_stand_in(self) -> None:
        """The local platform's stand-ins (Bedrock, Lambda's response streams) are no botocore
        clients: record their calls too."""
        from local.bedrock_stub import OfflineBedrock
        from local.request_path import LocalLambdaStreams

        self._record_calls(OfflineBedrock, "converse", "bedrock-runtime", "Converse")
        self._record_calls(OfflineBedrock, "converse_stream", "bedrock-runtime", "ConverseStream")
        self._record_calls(LocalLambdaStreams, "invoke_with_response_stream", "lambda", "InvokeWithResponseStream")
        # The endpoint tier's stand-ins (moto has no InvokeEndpoint answers and no inference components).
        from local.sagemaker_endpoint import LocalEndpoint, LocalInferenceComponents

        self._record_calls(LocalEndpoint, "invoke_endpoint", "sagemaker-runtime", "InvokeEndpoint")
        for method, operation in (
            ("create_inference_component", "CreateInferenceComponent"),
            ("describe_inference_component", "DescribeInferenceComponent"),
        ):
            self._record_calls(LocalInferenceComponents, method, "sagemaker", operation)

    def _record_calls(self, owner: type, method: str, service: str, operation: str) -> None:
        """Patch ``owner.method`` to record each call as ``service:operation`` by the current principal."""
        from unittest import mock

        recorder, original = self, getattr(owner, method)

        def recording(stand_in: Any, **request: Any) -> Any:
            principal = recorder.principal()
            if principal is not None:
                # A stand-in for one region says which; otherwise the function's own region.
                default = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
                region = getattr(stand_in, "region", None) or default
                recorder.record(principal, service, operation, region, request)
            return original(stand_in, **request)

        self._patches.append(mock.patch.object(owner, method, recording))

    def uninstall(self) -> None:
        for patch in reversed(self._patches):
            patch.stop()
        self._patches.clear()

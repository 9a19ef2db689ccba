"""One emulated region as an HTTP server: ``python -m local.region --region us-east-1 --port 8081``.

It runs the real request path (``local_request_path``: the front, router, fallback and degradation
handlers, the shipped ASL in moto's Step Functions, DynamoDB circuit and audit tables) on real
time, and serves the API's routes as API Gateway would hand them to the front Lambda. Each region
is its own process, so the two regions share no handler state, moto state or fault settings.

Admin routes (only for the local front, never part of the API):
- ``POST /admin/chaos`` ``{"model", "error_rate", "latency_ms", "throttle"}`` sets a fault;
- ``POST /admin/heal`` clears every fault; ``POST /admin/reset`` also forgets every circuit;
- ``GET /admin/state`` returns circuits, answers by tier, audit count and model calls.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
warnings.filterwarnings("ignore", message="No application metrics to publish")

from starlette.applications import Starlette  # noqa: E402 - environment first
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, Response, StreamingResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from local.bedrock_stub import OfflineBedrock  # noqa: E402
from local.request_path import (  # noqa: E402
    FakeContext,
    RequestPath,
    Streamer,
    api_event,
    local_request_path,
    response_headers,
)
from shared.strategy import load_default_strategy  # noqa: E402

OPENAPI = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
AGENT_PATH = "/applications/{application}/environments/{environment}/configurations/{profile}"
FALLBACK_MODEL = "us.amazon.nova-micro-v1:0"
STREAM_PATH = "/v1/generate/stream"


def api_routes(document: Path = OPENAPI) -> list[tuple[str, str]]:
    """(METHOD, path) of every API route, from the OpenAPI document the front Lambda generates."""
    paths = json.loads(document.read_text())["paths"]
    return sorted((method.upper(), path) for path, methods in paths.items() for method in methods)


def strategy_models() -> list[str]:
    """Every model the shipped strategy can route to (Bedrock and serving Lambdas), and the fallback."""
    strategy = load_default_strategy()
    models = {v.model_id for uc in strategy.use_cases.values() for v in uc.variants}
    return sorted(models | {FALLBACK_MODEL})


class InjectedFault(RuntimeError):
    """A chaos fault in a serving Lambda; the router sees it as the function's error."""


class LocalAppConfig:
    """The strategy in moto's AppConfig control plane (application, environment, profile with the
    JSON-schema validator), and the AppConfig agent's HTTP endpoint the router reads it from."""

    def __init__(self, region: str, document: dict[str, Any]) -> None:
        import boto3

        from shared.strategy import SCHEMA_PATH

        self.client = boto3.client("appconfig", region_name=region)
        self.application = self.client.create_application(Name="finai-platform")["Id"]
        # moto has no CreateEnvironment (nor deployments): the environment is a name in the agent's path.
        self.environment = "local"
        self.profile = self.client.create_configuration_profile(
            ApplicationId=self.application,
            Name="model-selection",
            LocationUri="hosted",
            Validators=[{"Type": "JSON_SCHEMA", "Content": SCHEMA_PATH.read_text()}],
        )["Id"]
        self.version = 0
        self.document: dict[str, Any] = {}
        self.publish(document)

    def publish(self, document: dict[str, Any]) -> int:
        from shared.strategy import parse_strategy

        parse_strategy(document)  # what AppConfig's validator does; moto does not validate
        self.document = document
        self.version = int(
            self.client.create_hosted_configuration_version(
                ApplicationId=self.application,
                ConfigurationProfileId=self.profile,
                Content=json.dumps(document).encode(),
                ContentType="application/json",
            )["VersionNumber"]
        )
        return self.version

    def latest(self) -> bytes:
        response = self.client.get_hosted_configuration_version(
            ApplicationId=self.application, ConfigurationProfileId=self.profile, VersionNumber=self.version
        )
        return bytes(response["Content"].read())

    @property
    def ids(self) -> dict[str, str]:
        return {"application": self.application, "environment": self.environment, "profile": self.profile}


class RegionState:
    """Fault settings and the serialised access to the region's handlers."""

    def __init__(self, path: RequestPath, appconfig: LocalAppConfig | None = None) -> None:
        self.path = path
        self.appconfig = appconfig
        self.lock = threading.Lock()  # one request at a time: moto and the handlers are not re-entrant
        self.latency_ms: dict[str, int] = {}
        path.bedrock.before_call = self._delay

    def _delay(self, model_id: str) -> None:
        delay = self.latency_ms.get(model_id, 0)
        if delay:
            time.sleep(delay / 1000)

    def call(self, method: str, route: str, body: str | None, content_type: str | None = None) -> dict[str, Any]:
        from api_front import handler as front

        event = api_event(method, route, body)
        event["headers"] = {"Content-Type": content_type} if content_type else {}
        with self.lock:
            result = front.lambda_handler(event, FakeContext("api_front", self.path.region))
            # The SQS event source delivers within seconds; here each answer delivers the queue.
            self.path.drain_ledger()
            return result

    def stream(self, headers: dict[str, str], body: bytes) -> Any:
        from local.request_path import LOCAL_API_KEY_ID, stream_request

        with self.lock:
            return stream_request(body, LOCAL_API_KEY_ID, content_type=headers.get("content-type"))

    def locked(self, chunks: Any) -> Any:
        """A stream's chunks, each produced under the region's lock (moto and the handlers are
        not re-entrant); the lock is let go between chunks, so chaos controls act mid-stream."""
        try:
            while True:
                with self.lock:
                    chunk = next(chunks, None)
                    if chunk is None:
                        self.path.drain_ledger()
                        return
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                with self.lock:
                    close()

    def serve_with_faults(self, target: str) -> None:
        """Let chaos reach a serving Lambda: faults and latency set for the model ids that the
        current strategy serves from ``target`` apply to its invocations."""
        handler = self.path.lambdas.handlers[target]
        streamer = self.path.lambdas.streamers.get(target)

        def faults() -> None:
            for model_id in self._models_served_by(target):
                self._delay(model_id)
                fault = self.path.bedrock.draw_fault(model_id)
                if fault is not None:
                    raise InjectedFault(f"injected {fault.error_code} for {model_id}")

        def invoke(event: Any, context: Any) -> Any:
            faults()
            return handler(event, context)

        def streaming(inner: Streamer) -> Streamer:
            def stream(event: Any, context: Any) -> Iterator[bytes]:
                faults()  # before the first token, as a failing model's would
                yield from inner(event, context)

            return stream

        self.path.lambdas.register(target, invoke, streaming(streamer) if streamer is not None else None)

    def load_adapter(self, target: str, artifact: Path) -> None:
        """Hot-swap a newly trained adapter in: its serving function loads the artifact (under the
        lock: a request waits the seconds it takes rather than meet a half-loaded model), the router
        learns its function, chaos reaches it, and the advisor also plays the endpoint tier."""
        from router import handler as router

        with self.lock:
            attach_adapter(self.path, target, artifact, self.appconfig.document if self.appconfig else None)
            router._lambda_provider.cache_clear()
            self.serve_with_faults(target)

    def serve_endpoint_with_faults(self) -> None:
        """Let chaos reach the endpoint tier: faults and latency set for the model ids whose
        variants name an inference component apply to that component's invocations."""

        def before_call(component: str) -> str | None:
            for model_id in self._models_on_component(component):
                self._delay(model_id)
                fault = self.path.bedrock.draw_fault(model_id)
                if fault is not None:
                    return fault.error_code
            return None

        self.path.endpoint.before_call = before_call

    def _models_on_component(self, component: str) -> set[str]:
        return self._models_where("inference_component", component)

    def _models_served_by(self, target: str) -> set[str]:
        return self._models_where("target", target)

    def _models_where(self, key: str, value: str) -> set[str]:
        """The model ids of the published strategy's variants whose ``key`` is ``value``."""
        if self.appconfig is None:
            return set()
        use_cases = self.appconfig.document["use_cases"].values()
        return {v["model_id"] for uc in use_cases for v in uc["variants"] if v.get(key) == value}

    def chaos(self, model: str, error_rate: float, latency_ms: int, throttle: bool) -> None:
        with self.lock:
            if error_rate > 0:
                self.path.bedrock.fail(model, "ThrottlingException" if throttle else "ModelErrorException", error_rate)
            else:
                self.path.bedrock.heal(model)
            self.latency_ms[model] = latency_ms

    def stream_chaos(self, model: str, fault: dict[str, Any] | None, pace_ms: int) -> None:
        """Stream faults for a model (cut after N words, stall, an error event) and the words' pace."""
        with self.lock:
            if fault is not None:
                self.path.bedrock.stream_fault(
                    model, str(fault.get("kind")), int(fault.get("after_words", 3)), float(fault.get("stall_s", 30))
                )
            if pace_ms >= 0:
                self.path.bedrock.pace_s = pace_ms / 1000

    def heal(self) -> None:
        with self.lock:
            self.path.bedrock.heal()
            self.latency_ms.clear()

    def reset(self) -> None:
        """Heal every fault and forget every circuit (the audit trail stays)."""
        with self.lock:
            self.path.bedrock.heal()
            self.latency_ms.clear()
            table = self.path.table_name
            for item in self.path.dynamodb.scan(TableName=table)["Items"]:
                self.path.dynamodb.delete_item(TableName=table, Key={"model_id": item["model_id"]})

    def state(self) -> dict[str, Any]:
        with self.lock:
            records = self.path.audit_records()
            # The shipped strategy's models and the ones the published strategy routes to (the
            # local strategy adds the endpoint's).
            published = self.appconfig.document["use_cases"].values() if self.appconfig else []
            models = set(strategy_models()) | {v["model_id"] for uc in published for v in uc["variants"]}
            # Every model's circuit, closed ones too (a model with no item yet is CLOSED, no failures).
            closed = {"state": "CLOSED", "failures": 0}
            circuits = {m: self.path.circuit(m) or dict(closed) for m in sorted(models)}
            faults = {m: {"error_rate": f.rate, "code": f.error_code} for m, f in self.path.bedrock.faults.items()}
            return {
                "region": self.path.region,
                "circuits": circuits,
                "tiers": dict(Counter(str(r.get("tier") or "rejected (4xx)") for r in records)),
                "audit_records": len(records),
                "model_calls": dict(Counter(self.path.bedrock.calls)),
                "faults": faults,
                "latency_ms": dict(self.latency_ms),
                "lambda_invocations": dict(Counter(self.path.lambdas.invocations)),
                "endpoint_invocations": dict(Counter(self.path.endpoint.calls)),
                "strategy_version": self.appconfig.version if self.appconfig else None,
                "strategy": self.appconfig.document["version"] if self.appconfig else None,
                "appconfig": self.appconfig.ids if self.appconfig else None,
            }


async def api(request: Request) -> Response:
    state: RegionState = request.app.state.region
    # API Gateway hands a REST proxy body to Lambda as text; bytes that are not UTF-8 arrive
    # replaced, so the front answers 400 (not JSON) instead of the server failing.
    raw = (await request.body()).decode(errors="replace") or None
    result = await run_in_threadpool(
        state.call, request.method, request.url.path, raw, request.headers.get("content-type")
    )
    passed = {k: v for k, v in response_headers(result).items() if k.lower() == "retry-after"}
    return Response(
        result["body"],
        status_code=int(result["statusCode"]),
        media_type="application/json",
        headers={**passed, "x-finai-region": state.path.region},
    )


async def stream(request: Request) -> Response:
    """POST /v1/generate/stream: the stream function's own code, as the Lambda Web Adapter serves it."""
    state: RegionState = request.app.state.region
    raw = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    response = await run_in_threadpool(state.stream, headers, raw)
    return StreamingResponse(
        iterate_in_threadpool(state.locked(response.body)),
        status_code=response.status,
        headers={**response.headers, "x-finai-region": state.path.region},
    )


async def chaos(request: Request) -> Response:
    state: RegionState = request.app.state.region
    try:
        body = await request.json()
        model = str(body["model"])
        rate = float(body.get("error_rate", 0))
        latency = int(body.get("latency_ms", 0))
        if not 0 <= rate <= 1 or not 0 <= latency <= 30_000:
            raise ValueError("error_rate must be in [0, 1] and latency_ms in [0, 30000]")
        stream_fault = body.get("stream_fault")  # {"kind": cut|stall|error, "after_words", "stall_s"}
        if stream_fault is not None and (
            not isinstance(stream_fault, dict) or not 0 <= int(stream_fault.get("after_words", 3)) <= 10_000
        ):
            raise ValueError("stream_fault must be an object with kind and after_words in [0, 10000]")
        pace_ms = int(body.get("pace_ms", -1))
        if pace_ms > 2_000:
            raise ValueError("pace_ms must be at most 2000")
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        return JSONResponse(
            {"error": "bad_request", "message": f"chaos needs model, error_rate, latency_ms: {exc}"}, 400
        )
    await run_in_threadpool(state.chaos, model, rate, latency, bool(body.get("throttle", False)))
    if stream_fault is not None or pace_ms >= 0:
        try:
            await run_in_threadpool(state.stream_chaos, model, stream_fault, pace_ms)
        except ValueError as exc:
            return JSONResponse({"error": "bad_request", "message": str(exc)}, 400)
    return JSONResponse(await run_in_threadpool(state.state))


async def heal(request: Request) -> Response:
    state: RegionState = request.app.state.region
    await run_in_threadpool(state.heal)
    return JSONResponse(await run_in_threadpool(state.state))


async def status(request: Request) -> Response:
    state: RegionState = request.app.state.region
    return JSONResponse(await run_in_threadpool(state.state))


async def reset(request: Request) -> Response:
    state: RegionState = request.app.state.region
    await run_in_threadpool(state.reset)
    return JSONResponse(await run_in_threadpool(state.state))


async def agent(request: Request) -> Response:
    state: RegionState = request.app.state.region
    if state.appconfig is None or dict(request.path_params) != state.appconfig.ids:
        return JSONResponse({"message": "unknown application, environment or profile"}, 404)
    content = await run_in_threadpool(state.appconfig.latest)
    return Response(content, media_type="application/json")


async def publish(request: Request) -> Response:
    state: RegionState = request.app.state.region
    if state.appconfig is None:
        return JSONResponse({"error": "not_found", "message": "this region has no AppConfig"}, 404)
    try:
        document = await request.json()
        version = await run_in_threadpool(state.appconfig.publish, document)
    except (ValueError, json.JSONDecodeError) as exc:  # StrategyError is a ValueError
        return JSONResponse({"error": "bad_request", "message": f"strategy rejected: {exc}"}, 400)
    return JSONResponse({"version": version})


async def adapters(request: Request) -> Response:
    """``{"target": "advisor"|"sentiment", "artifact": "<serve dir>"}``: hot-swap that adapter in."""
    state: RegionState = request.app.state.region
    try:
        body = await request.json()
        target, artifact = str(body["target"]), Path(str(body["artifact"]))
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        return JSONResponse({"error": "bad_request", "message": f"need target and artifact: {exc}"}, 400)
    if target not in ("advisor", "sentiment") or not (artifact / "manifest.json").is_file():
        return JSONResponse({"error": "bad_request", "message": f"no {target!r} artifact at {artifact}"}, 400)
    await run_in_threadpool(state.load_adapter, target, artifact)
    return JSONResponse({"loaded": target, "artifact": str(artifact)})


def build_app(state: RegionState) -> Starlette:
    routes = [Route(path, stream if path == STREAM_PATH else api, methods=[method]) for method, path in api_routes()]
    routes += [
        Route(AGENT_PATH, agent, methods=["GET"]),
        Route("/admin/strategy", publish, methods=["POST"]),
    ]
    routes += [
        Route("/admin/chaos", chaos, methods=["POST"]),
        Route("/admin/heal", heal, methods=["POST"]),
        Route("/admin/state", status, methods=["GET"]),
        Route("/admin/reset", reset, methods=["POST"]),
        Route("/admin/adapters", adapters, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.region = state
    return app


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description="One emulated region of the FinAI platform")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault-injection RNG")
    parser.add_argument("--strategy", type=Path, default=None, help="strategy document (default: the shipped one)")
    parser.add_argument("--advisor-artifact", type=Path, default=None, help="serve/ directory of the advisor")
    parser.add_argument("--sentiment-artifact", type=Path, default=None, help="serve/ directory of the classifier")
    args = parser.parse_args(argv)
    from shared.strategy import DOCUMENT_PATH

    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    document = json.loads((args.strategy or DOCUMENT_PATH).read_text())
    with local_request_path(args.region, bedrock=OfflineBedrock(seed=args.seed), live_clock=True) as path:
        appconfig = LocalAppConfig(args.region, document)
        adapters = {"advisor": args.advisor_artifact, "sentiment": args.sentiment_artifact}
        served = {k: v for k, v in adapters.items() if v is not None}
        configure(path, appconfig, args.port, served)
        state = RegionState(path, appconfig)
        for target in served:
            state.serve_with_faults(target)
        state.serve_endpoint_with_faults()
        uvicorn.run(build_app(state), host="127.0.0.1", port=args.port, log_level="warning")
    return 0


def _exit_with_parent(parent: int) -> None:
    """A region must not outlive the front that started it (a killed front leaves no orphans)."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def configure(path: RequestPath, appconfig: LocalAppConfig, port: int, adapters: dict[str, Path]) -> None:
    """Point the router at the agent endpoint and at the serving functions that have an artifact.

    ``adapters`` maps a target name (``advisor``, ``sentiment``) to its ``serve/`` directory.
    """
    from api_front import handler as front
    from router import handler as router

    os.environ.update(
        {
            "STRATEGY_SOURCE": "agent",
            "APPCONFIG_AGENT_URL": f"http://127.0.0.1:{port}",
            "APPCONFIG_APPLICATION": appconfig.application,
            "APPCONFIG_ENVIRONMENT": appconfig.environment,
            "APPCONFIG_PROFILE": appconfig.profile,
        }
    )
    os.environ["LAMBDA_PROVIDERS"] = "{}"
    for target, artifact in adapters.items():
        attach_adapter(path, target, artifact, appconfig.document)
    router._strategy_source.cache_clear()
    router._lambda_provider.cache_clear()
    front.strategy_source.cache_clear()


def attach_adapter(path: RequestPath, target: str, artifact: Path, document: dict[str, Any] | None) -> None:
    """Load a serving function's artifact and add it to the router's LAMBDA_PROVIDERS; the
    advisor also plays the endpoint tier for the strategy's ``sagemaker`` variants."""
    path.lambdas.register(target, *cold_start(target, artifact))
    targets = json.loads(os.environ.get("LAMBDA_PROVIDERS", "{}"))
    targets[target] = f"arn:aws:lambda:{path.region}:123456789012:function:{target}"
    os.environ["LAMBDA_PROVIDERS"] = json.dumps(targets)
    if target == "advisor" and document is not None:
        serve_endpoint(path, document)


def serve_endpoint(path: RequestPath, document: dict[str, Any]) -> None:
    """The endpoint tier, played by the advisor adapter on SmolLM2 (the model the advisor function
    just loaded): every inference component the strategy's ``sagemaker`` variants name answers
    with it, on the endpoint their target names."""
    from advisor import handler as advisor
    from cdk_app.names import endpoint_name
    from local.sagemaker_endpoint import generator_chat_model

    model = generator_chat_model(advisor.generator())
    for entry in document["use_cases"].values():
        for variant in entry["variants"]:
            if variant["provider"] == "sagemaker" and variant.get("inference_component"):
                path.endpoint.add_component(endpoint_name(variant["target"]), variant["inference_component"], model)


def cold_start(target: str, artifact: Path) -> tuple[Any, Any]:
    """Load a serving function's model now, as its container would, and return its handler
    (and its streaming handler, where it has one: the advisor streams the tokens it generates).

    In AWS each function has its own process and ``MODEL_DIR``; here they share one, so each
    loads at start-up (single-threaded) with its own directory, and its cached model keeps it.
    """
    import importlib

    module = importlib.import_module(f"{target}.handler")
    loader = {"advisor": "generator", "sentiment": "classifier"}[target]
    previous = os.environ.get("MODEL_DIR")
    os.environ["MODEL_DIR"] = str(artifact)
    try:
        getattr(module, loader).cache_clear()
        getattr(module, loader)()
    finally:
        if previous is None:
            os.environ.pop("MODEL_DIR", None)
        else:
            os.environ["MODEL_DIR"] = previous
    return module.lambda_handler, getattr(module, "stream_handler", None)


if __name__ == "__main__":
    raise SystemExit(main())

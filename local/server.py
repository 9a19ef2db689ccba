"""The platform on one machine: ``python -m local.server`` serves http://127.0.0.1:8080.

Two emulated regions run as their own processes (``local.region``: the real handlers, the shipped
ASL in moto, DynamoDB tables with the deployed key schema). This front plays the parts AWS plays
in front of them:
- API Gateway's API-key check: ``POST /v1/generate`` without a valid ``x-api-key`` gets the
  gateway's 403 and never reaches a region (``/v1/health`` stays open);
- Route 53 failover: health checks on each region's ``/v1/health`` with the RequestInterval,
  FailureThreshold and search string of the synthesized template (``local.failover``).

Admin routes drive chaos: ``POST /admin/chaos`` (error rate, latency, throttling for a model in a
region), ``POST /admin/heal``, ``POST /admin/reset`` (also closes every circuit),
``POST /admin/region/{name}/down|up``, ``GET /admin/status``,
``POST /admin/load`` (a bounded burst with latency percentiles and the tier mix). The web UI at
``/`` uses them; ``python -m local.chaos`` is the command-line way.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess  # nosec B404 - starts this package's own region module
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from local.background import BackgroundTraining, strategy_while_training
from local.failover import FailoverFront, HealthCheckSettings, Region
from local.region import STREAM_PATH, api_routes

ROOT = Path(__file__).resolve().parent.parent
WEB = Path(__file__).resolve().parent / "web"
ADMIN_TIMEOUT_S = 60  # a region serialises requests: an admin call may wait behind a slow answer
DEFAULT_API_KEY = "local-demo-key"  # a local stand-in for API Gateway's generated keys
FORBIDDEN = '{{"error": "forbidden", "message": "a valid API key or signature is required", "request_id": "{id}"}}'


def health_settings(template_dir: Path, primary_region: str) -> tuple[HealthCheckSettings, str]:
    """The synthesized health-check settings; without a domain the template has none, so the
    values the DnsFailover construct would synthesize are used (and the source is said)."""
    template = template_dir / f"FinAi-{primary_region}.template.json"
    if template.exists():
        try:
            return HealthCheckSettings.from_template_file(template), str(template)
        except ValueError:
            pass
    from stacks.health_check import FAILURE_THRESHOLD, HEALTH_SEARCH_STRING, REQUEST_INTERVAL_SECONDS

    settings = HealthCheckSettings(REQUEST_INTERVAL_SECONDS, FAILURE_THRESHOLD, HEALTH_SEARCH_STRING, "/prod/v1/health")
    return settings, "stacks/dns_failover.py (synthesize with a domain_name to read them from the template)"


class RegionProcess:
    def __init__(self, name: str, port: int, seed: int, log_dir: Path, extra: list[str] | None = None) -> None:
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self.down = False
        self.last_health = "not checked yet"  # the last health check's answer, in words (the console's "why")
        self.session = requests.Session()
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log = (log_dir / f"region-{name}.log").open("w")
        env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'lambdas'}"}
        self.process = subprocess.Popen(  # noqa: S603  # nosec B603 - this package's own module
            [
                sys.executable,
                "-m",
                "local.region",
                *("--region", name, "--port", str(port), "--seed", str(seed)),
                *(extra or []),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"region {self.name} exited; see its log")
            try:
                if self.session.get(f"{self.url}/admin/state", timeout=2).ok:
                    return
            except requests.RequestException:
                time.sleep(0.3)
        raise TimeoutError(f"region {self.name} did not start in {timeout} s")

    def probe(self) -> tuple[int, str]:
        if self.down:
            self.last_health = "taken down from the console: health checks get no answer"
            raise ConnectionError(f"region {self.name} is down")
        try:
            response = self.session.get(f"{self.url}/v1/health", timeout=2)
        except requests.RequestException as exc:
            self.last_health = f"no answer: {type(exc).__name__}"
            raise
        self.last_health = describe_health(response.status_code, response.text)
        return response.status_code, response.text

    def forward(
        self, method: str, path: str, body: bytes, content_type: str | None = "application/json"
    ) -> tuple[int, bytes, dict[str, str]]:
        if self.down:
            raise ConnectionError(f"region {self.name} is down")
        # The client's media type goes through, as API Gateway hands it to the front (which
        # answers anything but JSON with 415).
        headers = {"Content-Type": content_type} if content_type else {}
        response = self.session.request(method, f"{self.url}{path}", data=body, headers=headers, timeout=60)
        passed = {k: v for k, v in response.headers.items() if k.lower() == "retry-after"}
        return response.status_code, response.content, passed

    def open_stream(self, body: bytes, content_type: str | None) -> requests.Response:
        if self.down:
            raise ConnectionError(f"region {self.name} is down")
        headers = {"Content-Type": content_type} if content_type else {}
        return requests.post(f"{self.url}{STREAM_PATH}", data=body, headers=headers, stream=True, timeout=(2, 90))

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 10) -> Any:
        response = self.session.request(method, f"{self.url}{path}", json=body, timeout=timeout)
        return response.status_code, response.json()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


class StrategyRefused(RuntimeError):
    """A region refused a strategy document (its schema check); ``body`` is its answer."""

    def __init__(self, region: str, code: int, body: Any) -> None:
        super().__init__(f"{region} refused the strategy: {body}")
        self.code, self.body = code, body


def describe_health(status: int, text: str) -> str:
    """A health answer in words: its status and, when degraded, which circuits are open."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return f"HTTP {status}"
    if not isinstance(body, dict):
        return f"HTTP {status}"
    opened = sorted(
        m for m, c in (body.get("circuits") or {}).items() if isinstance(c, dict) and c.get("state") == "OPEN"
    )
    why = f"; open circuits: {', '.join(opened)}" if opened else ""
    return f"HTTP {status}, {body.get('status', '?')}{why}"


class Platform:
    def __init__(
        self,
        regions: list[RegionProcess],
        settings: HealthCheckSettings,
        settings_source: str,
        api_keys: set[str],
    ) -> None:
        self.regions = {r.name: r for r in regions}
        self.settings, self.settings_source = settings, settings_source
        self.api_keys = api_keys
        self.lock = threading.Lock()
        primary, secondary = regions
        self.front = FailoverFront(
            settings,
            Region(primary.name, primary.probe, lambda body: (0, {})),
            Region(secondary.name, secondary.probe, lambda body: (0, {})),
        )
        self.requests_by_region: dict[str, int] = dict.fromkeys(self.regions, 0)
        # Adapters still training behind the platform (make demo on a fresh clone), if any.
        self.training: BackgroundTraining | None = None
        self.rejected = 0
        self._stop = threading.Event()
        self._clock = threading.Thread(target=self._run_checks, daemon=True)

    def start(self) -> None:
        for region in self.regions.values():
            region.wait_ready()
        self.front.advance(0)
        self._clock.start()

    def _run_checks(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(0.25):
            now = time.monotonic()
            with self.lock:
                self.front.advance(now - last)
            last = now

    def active(self) -> RegionProcess:
        with self.lock:
            return self.regions[self.front.active().name]

    def status(self) -> dict[str, Any]:
        with self.lock:
            checks = {name: check.healthy for name, check in self.front.checks.items()}
            active = self.front.active().name
        regions = {}
        for name, region in self.regions.items():
            try:
                _, state = region.admin("GET", "/admin/state")
            except requests.RequestException as exc:
                state = {"error": str(exc)}
            regions[name] = {**state, "healthy": checks[name], "down": region.down, "health": region.last_health}
        return {
            "active_region": active,
            "adapters": self.training.snapshot() if self.training else {},
            "regions": regions,
            "requests_by_region": dict(self.requests_by_region),
            "rejected_by_api_key": self.rejected,
            "health_check": {
                "request_interval": self.settings.request_interval,
                "failure_threshold": self.settings.failure_threshold,
                "detection_window_s": self.settings.detection_window_s,
                "source": self.settings_source,
            },
        }

    def publish(self, document: dict[str, Any]) -> dict[str, int]:
        """Publish a strategy to every region's AppConfig; each region's new version number."""
        versions = {}
        for region in self.regions.values():
            code, body = region.admin("POST", "/admin/strategy", document)
            if code != 200:
                raise StrategyRefused(region.name, code, body)
            versions[region.name] = int(body["version"])
        return versions

    def hot_swap(self, name: str, serve: Path, document: dict[str, Any]) -> None:
        """Load a newly trained adapter in every region, then move its variants' traffic to it."""
        for region in self.regions.values():
            code, body = region.admin("POST", "/admin/adapters", {"target": name, "artifact": str(serve)}, timeout=120)
            if code != 200:
                raise RuntimeError(f"{region.name} could not load the {name} adapter: {body}")
        self.publish(document)

    def stop(self) -> None:
        self._stop.set()
        if self.training is not None:
            self.training.stop()
        for region in self.regions.values():
            region.stop()


async def api(request: Request) -> Response:
    platform: Platform = request.app.state.platform
    body = await request.body()
    path = request.url.path
    # Every route but health needs the key, as the API's methods do (stacks/api_front.py).
    if path != "/v1/health" and request.headers.get("x-api-key") not in platform.api_keys:
        platform.rejected += 1  # API Gateway answers; no region, Lambda or audit record sees it
        return Response(FORBIDDEN.format(id=uuid.uuid4()), 403, media_type="application/json")
    region = platform.active()
    if path == STREAM_PATH:
        return await stream(platform, region, body, request.headers.get("content-type"))
    try:
        status, content, passed = await run_in_threadpool(
            region.forward, request.method, path, body, request.headers.get("content-type")
        )
    except (requests.RequestException, ConnectionError) as exc:
        message = {"error": "region_unavailable", "message": f"{region.name}: {exc}"}
        return JSONResponse(message, 503, headers={"x-finai-region": region.name})
    platform.requests_by_region[region.name] += 1
    headers = {**passed, "x-finai-region": region.name}
    if path == "/v1/health" and platform.training is not None:
        content = with_adapters(content, platform.training.snapshot())
    return Response(content, status, media_type="application/json", headers=headers)


def with_adapters(content: bytes, adapters: dict[str, Any]) -> bytes:
    """Health as the region answers it, plus (locally) the adapters still training behind it."""
    try:
        body = json.loads(content)
    except json.JSONDecodeError:
        return content
    if not isinstance(body, dict):
        return content
    return json.dumps({**body, "local_adapters": adapters}).encode()


async def stream(platform: Platform, region: RegionProcess, body: bytes, content_type: str | None) -> Response:
    """The stream route through the active region, passed on chunk by chunk as API Gateway streams it."""
    try:
        upstream = await run_in_threadpool(region.open_stream, body, content_type)
    except (requests.RequestException, ConnectionError) as exc:
        message = {"error": "region_unavailable", "message": f"{region.name}: {exc}"}
        return JSONResponse(message, 503, headers={"x-finai-region": region.name})
    platform.requests_by_region[region.name] += 1
    return StreamingResponse(
        iterate_in_threadpool(upstream.iter_content(chunk_size=None)),
        status_code=upstream.status_code,
        media_type=upstream.headers.get("content-type"),
        headers={"x-finai-region": region.name, "cache-control": "no-cache"},
    )


async def status(request: Request) -> Response:
    platform: Platform = request.app.state.platform
    return JSONResponse(await run_in_threadpool(platform.status))


async def routes(request: Request) -> Response:
    return JSONResponse([{"method": m, "path": p} for m, p in api_routes()])


async def chaos(request: Request) -> Response:
    platform: Platform = request.app.state.platform
    try:
        body = await request.json()
        region = platform.regions[str(body.pop("region", platform.active().name))]
    except (KeyError, json.JSONDecodeError, AttributeError) as exc:
        return JSONResponse({"error": "bad_request", "message": f"unknown region or bad JSON: {exc}"}, 400)
    code, state = await run_in_threadpool(region.admin, "POST", "/admin/chaos", body)
    return JSONResponse(state, code)


async def heal(request: Request) -> Response:
    return await every_region(request, "/admin/heal")


async def strategy(request: Request) -> Response:
    """Publish a strategy document to every region's AppConfig (validated against the schema)."""
    platform: Platform = request.app.state.platform
    try:
        document = await request.json()
    except json.JSONDecodeError as exc:
        return JSONResponse({"error": "bad_request", "message": f"not JSON: {exc}"}, 400)
    try:
        versions = await run_in_threadpool(platform.publish, document)
    except StrategyRefused as exc:
        return JSONResponse(exc.body, exc.code)
    return JSONResponse({"versions": versions})


async def reset(request: Request) -> Response:
    return await every_region(request, "/admin/reset")


async def every_region(request: Request, path: str) -> Response:
    """Bring every region up and send it ``path``; a region that does not answer in time (it holds
    its lock while it serves) is named in a 503 rather than a bare 500."""
    platform: Platform = request.app.state.platform
    for region in platform.regions.values():
        region.down = False
        try:
            await run_in_threadpool(region.admin, "POST", path, None, ADMIN_TIMEOUT_S)
        except requests.RequestException as exc:
            waited = f"within {ADMIN_TIMEOUT_S} s ({type(exc).__name__})"
            message = f"{region.name} did not complete {path} {waited}; try again"
            return JSONResponse({"error": "region_busy", "message": message}, 503)
    return JSONResponse(await run_in_threadpool(platform.status))


async def region_switch(request: Request) -> Response:
    platform: Platform = request.app.state.platform
    name, action = request.path_params["name"], request.path_params["action"]
    if name not in platform.regions or action not in ("down", "up"):
        return JSONResponse({"error": "bad_request", "message": "use /admin/region/<name>/down or /up"}, 400)
    platform.regions[name].down = action == "down"
    return JSONResponse(await run_in_threadpool(platform.status))


async def load(request: Request) -> Response:
    platform: Platform = request.app.state.platform
    try:
        body = await request.json()
        count = int(body.get("count", 50))
        concurrency = int(body.get("concurrency", 4))
        use_case = str(body.get("use_case", "general"))
        if not 1 <= count <= 500 or not 1 <= concurrency <= 16:
            raise ValueError("count must be 1-500 and concurrency 1-16")
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        return JSONResponse({"error": "bad_request", "message": str(exc)}, 400)
    return JSONResponse(await run_in_threadpool(burst, platform, count, concurrency, use_case))


async def index(request: Request) -> Response:
    return FileResponse(WEB / "index.html")


async def favicon(request: Request) -> Response:
    return FileResponse(WEB / "favicon.svg", media_type="image/svg+xml")


async def strategies(request: Request) -> Response:
    """The strategies the console can publish: the shipped one (Bedrock only) and the local one."""
    from shared.strategy import DOCUMENT_PATH

    return JSONResponse(
        {
            "shipped (Bedrock)": json.loads(DOCUMENT_PATH.read_text()),
            "local adapters": json.loads((ROOT / "local" / "strategy.local.json").read_text()),
        }
    )


def build_app(platform: Platform) -> Starlette:
    routes_ = [Route(path, api, methods=[method]) for method, path in api_routes()]
    routes_ += [
        Route("/", index, methods=["GET"]),
        Route("/favicon.svg", favicon, methods=["GET"]),
        Route("/admin/strategies", strategies, methods=["GET"]),
        Route("/admin/status", status, methods=["GET"]),
        Route("/admin/routes", routes, methods=["GET"]),
        Route("/admin/chaos", chaos, methods=["POST"]),
        Route("/admin/heal", heal, methods=["POST"]),
        Route("/admin/reset", reset, methods=["POST"]),
        Route("/admin/strategy", strategy, methods=["POST"]),
        Route("/admin/region/{name}/{action}", region_switch, methods=["POST"]),
        Route("/admin/load", load, methods=["POST"]),
    ]
    app = Starlette(routes=routes_)
    app.state.platform = platform
    return app


def burst(platform: Platform, count: int, concurrency: int, use_case: str) -> dict[str, Any]:
    """A bounded burst through the failover front to the active region (an authorised client)."""

    def one(i: int) -> tuple[float, int, str]:
        began = time.perf_counter()
        region = platform.active()
        body = json.dumps({"use_case": use_case, "prompt": f"Load test question {i}: what is an ISA?"}).encode()
        try:
            status, content, _ = region.forward("POST", "/v1/generate", body)
            platform.requests_by_region[region.name] += 1
            tier = json.loads(content).get("tier", "none") if status == 200 else f"http_{status}"
        except (requests.RequestException, ConnectionError):
            status, tier = 503, "http_503"
        return time.perf_counter() - began, status, tier

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, range(count)))
    latencies = sorted(r[0] * 1000 for r in results)
    tiers: dict[str, int] = {}
    for _, _, tier in results:
        tiers[tier] = tiers.get(tier, 0) + 1

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q / 100 * len(latencies)))], 1)

    return {
        "requests": count,
        "errors_5xx": sum(1 for r in results if r[1] >= 500),
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "tiers": tiers,
    }


def start_training(platform: Platform, missing: list[str], document: dict[str, Any], logs: Path) -> None:
    """Serve at once with the adapters' traffic on the Bedrock variants, train the missing adapters
    in a child process, and hot-swap each in as it is ready."""
    ready = {"advisor", "sentiment"} - set(missing)
    platform.publish(strategy_while_training(document, ready))

    def on_ready(name: str, serve: Path) -> None:
        ready.add(name)
        platform.hot_swap(name, serve, strategy_while_training(document, ready))
        print(f"[adapters] {name} adapter hot-swapped in; no restart", flush=True)

    platform.training = BackgroundTraining(missing, on_ready, logs)
    print(
        f"[adapters] not trained yet: {', '.join(missing)}. The platform serves now (their use cases on the "
        "Bedrock stand-in); training runs in a separate process and each adapter is swapped in when ready.",
        flush=True,
    )
    platform.training.start()


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description="Serve the FinAI platform locally (two emulated regions)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--cdk-out", type=Path, default=ROOT / "cdk.out")
    parser.add_argument("--primary", default="us-east-1")
    parser.add_argument("--secondary", default="us-west-2")
    parser.add_argument("--request-interval", type=int, default=None, help="override (tests): seconds between probes")
    parser.add_argument("--strategy", type=Path, default=None, help="strategy document (default: the shipped one)")
    parser.add_argument("--advisor-artifact", type=Path, default=None, help="serve/ directory of the local advisor")
    parser.add_argument("--sentiment-artifact", type=Path, default=None, help="serve/ directory of the classifier")
    parser.add_argument(
        "--local-adapters",
        action="store_true",
        help="serve budgeting advice and sentiment from the locally fine-tuned adapters "
        "(trained on first use, then cached)",
    )
    args = parser.parse_args(argv)
    missing: list[str] = []
    if args.local_adapters:
        from local.adapters import cached

        # Cached adapters serve from the start; the others train behind the running platform.
        args.advisor_artifact = args.advisor_artifact or cached("advisor")
        args.sentiment_artifact = args.sentiment_artifact or cached("sentiment")
        missing = [n for n, a in (("sentiment", args.sentiment_artifact), ("advisor", args.advisor_artifact)) if not a]
        args.strategy = args.strategy or ROOT / "local" / "strategy.local.json"
    extra = ["--strategy", str(args.strategy)] if args.strategy else []
    extra += ["--advisor-artifact", str(args.advisor_artifact)] if args.advisor_artifact else []
    extra += ["--sentiment-artifact", str(args.sentiment_artifact)] if args.sentiment_artifact else []
    settings, source = health_settings(args.cdk_out, args.primary)
    if args.request_interval:
        settings = HealthCheckSettings(
            args.request_interval, settings.failure_threshold, settings.search_string, settings.resource_path
        )
        source += f" (interval overridden to {args.request_interval} s)"
    key = os.environ.get("FINAI_LOCAL_API_KEY", DEFAULT_API_KEY)
    logs = ROOT / "build" / "local"
    regions = [
        RegionProcess(args.primary, args.port + 1, 1, logs, extra),
        RegionProcess(args.secondary, args.port + 2, 2, logs, extra),
    ]
    platform = Platform(regions, settings, source, {key})
    try:
        print(f"starting regions {args.primary} and {args.secondary} (logs in {logs}) ...", flush=True)
        platform.start()
        if missing:
            start_training(platform, missing, json.loads(args.strategy.read_text()), logs)
        url = f"http://127.0.0.1:{args.port}"
        print(f"\nFinAI platform at {url}  (web UI: {url}/)", flush=True)
        print(f"health checks: every {settings.request_interval} s, {settings.failure_threshold} failures ({source})")
        print("try:", flush=True)
        print(
            f"  curl -s -X POST {url}/v1/generate -H 'x-api-key: {key}' -H 'content-type: application/json' "
            '-d \'{"use_case": "general", "prompt": "What is an ISA?"}\'',
            flush=True,
        )
        print(
            f"  curl -s -X POST {url}/v1/generate -H 'x-api-key: {key}' -H 'content-type: application/json' "
            '-d \'{"use_case": "sentiment", "prompt": "Shares fell 12% after the profit warning."}\'',
            flush=True,
        )
        print(
            f"  python -m local.chaos --url {url} fail --error-rate 1.0   # watch fallback and the circuit", flush=True
        )
        uvicorn.run(build_app(platform), host="127.0.0.1", port=args.port, log_level="warning")
    finally:
        platform.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

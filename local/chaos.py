"""``python -m local.chaos``: chaos controls for the local platform (``python -m local.server``).

python -m local.chaos fail --error-rate 0.5               # primary model in the active region
python -m local.chaos fail --model us.amazon.nova-micro-v1:0 --error-rate 1 --region us-east-1
python -m local.chaos latency --latency-ms 2000
python -m local.chaos throttle --error-rate 1
python -m local.chaos down us-east-1 | up us-east-1
python -m local.chaos stream cut --after-words 5         # the primary's stream drops after 5 words
python -m local.chaos stream stall --after-words 0       # silent before its first token (fails over)
python -m local.chaos stream error --after-words 3       # Bedrock's modelStreamErrorException mid-stream
python -m local.chaos pace --pace-ms 80                   # streamed words arrive 80 ms apart
python -m local.chaos heal | status
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import requests

PRIMARY = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


DEFAULT_URL = os.environ.get("FINAI_URL", "http://127.0.0.1:8080")


def call(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> int:
    try:
        response = requests.request(method, f"{url}{path}", json=body, timeout=30)
    except requests.ConnectionError:
        print(
            f"nothing answers at {url}: start the platform with `make demo` (or `make demo PORT=...` and "
            "pass --url or set FINAI_URL)",
            file=sys.stderr,
        )
        return 2
    try:
        print(json.dumps(response.json(), indent=2))
    except ValueError:  # not JSON: something else listens there
        print(
            f"{url}{path} answered {response.status_code} but not with JSON: is this the FinAI platform?",
            file=sys.stderr,
        )
        return 2
    return 0 if response.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Chaos controls for the local FinAI platform")
    parser.add_argument("--url", default=DEFAULT_URL, help="the platform's front (default: FINAI_URL or :8080)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("fail", "latency", "throttle"):
        p = sub.add_parser(name)
        p.add_argument("--model", default=PRIMARY)
        p.add_argument("--region", default=None, help="default: the active region")
        p.add_argument("--error-rate", type=float, default=1.0 if name != "latency" else 0.0)
        p.add_argument("--latency-ms", type=int, default=0 if name != "latency" else 2000)
    for name in ("down", "up"):
        sub.add_parser(name).add_argument("region")
    p = sub.add_parser("stream", help="a stream fault for one model")
    p.add_argument("kind", choices=("cut", "stall", "error"))
    p.add_argument("--model", default=PRIMARY)
    p.add_argument("--region", default=None)
    p.add_argument("--after-words", type=int, default=3)
    p.add_argument("--stall-s", type=float, default=30.0)
    p = sub.add_parser("pace", help="how fast the stand-in streams")
    p.add_argument("--pace-ms", type=int, default=80)
    p.add_argument("--region", default=None)
    sub.add_parser("heal")
    sub.add_parser("status")
    args = parser.parse_args(argv)
    if args.command in ("fail", "latency", "throttle"):
        body: dict[str, Any] = {
            "model": args.model,
            "error_rate": args.error_rate,
            "latency_ms": args.latency_ms,
            "throttle": args.command == "throttle",
        }
        if args.region:
            body["region"] = args.region
        return call(args.url, "POST", "/admin/chaos", body)
    if args.command in ("stream", "pace"):
        body = {"model": getattr(args, "model", PRIMARY), "error_rate": 0, "latency_ms": 0}
        if args.command == "stream":
            body["stream_fault"] = {"kind": args.kind, "after_words": args.after_words, "stall_s": args.stall_s}
        else:
            body["pace_ms"] = args.pace_ms
        if args.region:
            body["region"] = args.region
        return call(args.url, "POST", "/admin/chaos", body)
    if args.command in ("down", "up"):
        return call(args.url, "POST", f"/admin/region/{args.region}/{args.command}")
    if args.command == "heal":
        return call(args.url, "POST", "/admin/heal")
    return call(args.url, "GET", "/admin/status")


if __name__ == "__main__":
    sys.exit(main())

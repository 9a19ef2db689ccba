"""The stream function's HTTP server, behind the AWS Lambda Web Adapter (``run.sh``).

Python has no native Lambda streaming runtime. The adapter (a Lambda layer, in
``AWS_LWA_INVOKE_MODE=response_stream``) turns each API Gateway invocation into an HTTP request
to this server and streams its chunked response back; API Gateway's request context arrives in
the ``x-amzn-request-context`` header. The standard library's server is enough: Lambda sends one
request at a time to an execution environment, and the zip needs no third-party dependency.
"""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from api_stream.handler import handle
from shared.observability import logger

READINESS_PATH = "/healthz"  # AWS_LWA_READINESS_CHECK_PATH in stacks/api_stream.py


def request_context(raw: str | None) -> dict[str, Any]:
    """API Gateway's request context as the adapter forwards it (absent or ``null`` outside one)."""
    try:
        value = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


class StreamRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked transfer: each event leaves as soon as it is written

    def do_GET(self) -> None:
        if self.path == READINESS_PATH:
            self._whole(200, b'{"status": "ready"}')
        else:
            self._whole(404, b'{"error": "not_found", "message": "use POST /v1/generate/stream"}')

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = handle("POST", headers, body, request_context(self.headers.get("x-amzn-request-context")))
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in response.body:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):  # the client went away; the stream's finally audits it
            close = getattr(response.body, "close", None)
            if close is not None:
                close()

    def _whole(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http", extra={"line": format % args})


def serve(port: int | None = None) -> ThreadingHTTPServer:
    # port=0 asks the OS for a free port (tests); None means the adapter's port.
    chosen = int(os.environ.get("AWS_LWA_PORT", "8080")) if port is None else port
    return ThreadingHTTPServer(("127.0.0.1", chosen), StreamRequestHandler)


if __name__ == "__main__":
    serve().serve_forever()

"""``python -m local.chaos`` says in one line when nothing (or something else) answers at its URL."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from local import chaos


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_nothing_listening_is_one_line_not_a_traceback(capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert chaos.main(["--url", url, "status"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"nothing answers at {url}") and "make demo" in err[0]


def test_something_else_listening_is_named_as_such(capsys):
    class Plain(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>not the platform</html>")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Plain)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        assert chaos.main(["--url", url, "status"]) == 2
    finally:
        server.shutdown()
    assert "not with JSON: is this the FinAI platform?" in capsys.readouterr().err


def test_the_url_comes_from_the_environment_when_not_given(monkeypatch):
    import importlib

    monkeypatch.setenv("FINAI_URL", "http://127.0.0.1:8090")
    assert importlib.reload(chaos).DEFAULT_URL == "http://127.0.0.1:8090"
    monkeypatch.delenv("FINAI_URL")
    assert importlib.reload(chaos).DEFAULT_URL == "http://127.0.0.1:8080"

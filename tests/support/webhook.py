"""A loopback webhook receiver: a threaded HTTP server on 127.0.0.1 that records JSON bodies.

    with WebhookReceiver() as hook:
        hook.fail_next(2, status=500)   # the next two requests get HTTP 500
        ... hook.url ...
        assert hook.bodies == [...]
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    def __init__(self) -> None:
        self.bodies: list[Any] = []          # bodies of the requests answered 2xx
        self.requests: list[dict[str, Any]] = []  # every request: path, headers, body, status answered
        self._failures: list[int] = []
        self.redirect_to: str | None = None  # when set, every request is answered 307 to this URL
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer the next `count` requests with `status` instead of 200."""
        with self._lock:
            self._failures.extend([status] * count)

    def fail_always(self, status: int = 500) -> None:
        self.fail_next(10_000, status)

    def heal(self) -> None:
        with self._lock:
            self._failures.clear()

    def _answer(self, path: str, headers: dict[str, str], raw: bytes) -> int:
        with self._lock:
            status = self._failures.pop(0) if self._failures else 200
            body = json.loads(raw) if raw else None
            self.requests.append({"path": path, "headers": headers, "body": body, "status": status})
            if status < 300:
                self.bodies.append(body)
        return status

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = 307 if receiver.redirect_to else receiver._answer(self.path, dict(self.headers), raw)
                payload = b'{"ok": true}' if status < 300 else b'{"error": "scripted failure"}'
                self.send_response(status)
                if receiver.redirect_to:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

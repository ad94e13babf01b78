"""A loopback server speaking Exa's search API (POST /search), for driving the real `exa-py` SDK in tests.

Each request takes the next scripted reply (a list of result dicts, or an HTTP status); requests are recorded
with their JSON body and headers.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def exa_result(title: str, url: str, highlight: str, published: str = "2025-01-01") -> dict[str, Any]:
    return {"id": url, "url": url, "title": title, "score": 0.5, "publishedDate": published,
            "author": None, "highlights": [highlight], "highlightScores": [0.9]}  # fmt: skip


class LoopbackExaServer:
    def __init__(self, script: Iterable[list[dict[str, Any]] | int] = ()):
        self.script: deque[list[dict[str, Any]] | int] = deque(script)
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LoopbackExaServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.requests.append({"path": self.path, "body": json.loads(raw or b"{}"),
                                        "headers": {k.lower(): v for k, v in self.headers.items()}})  # fmt: skip
                reply = server.script.popleft() if server.script else []
                if self.path != "/search":
                    status, payload = 404, {"error": f"no route {self.path}"}
                elif isinstance(reply, int):
                    status, payload = reply, {"error": "scripted failure", "tag": "INTERNAL_ERROR"}
                else:
                    status, payload = (
                        200,
                        {"requestId": "test", "resolvedSearchType": "neural", "results": reply},
                    )
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

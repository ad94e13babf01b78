"""Loopback HTTP servers that speak the real LLM wire protocols, for driving the real SDKs in tests/benchmarks.

`LoopbackLLMServer("openai")` answers POST /v1/chat/completions, POST /v1/completions and GET /v1/models;
`LoopbackLLMServer("gemini")` answers POST /v1beta/models/{model}:generateContent;
`LoopbackLLMServer("anthropic")` answers POST /v1/messages (Anthropic's Messages API). Each request takes the next
`Reply` of the script (then `responder(request)`, then `default`), after the reply's delay, so a test can
script "429 with Retry-After, then success", a 5xx, a hang, prose without code, blocked or truncated answers.
Every request is recorded (path, JSON body, headers, arrival time) and the peak of concurrent requests is kept.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_GEMINI_PATH = re.compile(r"^/(v1beta|v1|v1alpha)/models/(?P<model>[^/:]+):generateContent$")
_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
}


@dataclass
class Reply:
    """One scripted answer. `finish` is protocol-neutral: stop | length | blocked (mapped per protocol)."""

    text: str | None = ""
    status: int = 200
    finish: str = "stop"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float | None = None  # None: the server's default delay
    prompt_tokens: int = 100
    completion_tokens: int = 50
    body: dict[str, Any] | None = None  # replaces the generated JSON body entirely


@dataclass
class RecordedRequest:
    method: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str]  # lower-case names
    arrived: float

    @property
    def prompt_text(self) -> str:
        """Everything the client sent as prompt text, whatever the protocol."""
        if "messages" in self.body:
            system = self.body.get("system")  # Anthropic puts the system prompt beside the messages
            head = [str(system)] if isinstance(system, str) and system else []
            return "\n".join(head + [str(m.get("content", "")) for m in self.body["messages"]])
        if "prompt" in self.body:
            return str(self.body["prompt"])
        pieces = []
        for holder in [self.body.get("systemInstruction") or {}, *(self.body.get("contents") or [])]:
            pieces += [str(part.get("text", "")) for part in holder.get("parts", [])]
        return "\n".join(pieces)


def error_reply(status: int, message: str = "scripted failure", **headers: str) -> Reply:
    """An HTTP error; pass e.g. retry_after="1" (sent as Retry-After) or retry_after_ms="200"."""
    return Reply(
        text=None, status=status, headers={k.replace("_", "-"): v for k, v in headers.items()}, body=None
    )


def program_answer(source: str, pattern: list[str] | None = None, prose: str = "Here is the program.") -> str:
    """A well-formed LLM answer: prose, one fenced python block, and a Final Pattern line."""
    answer = f"{prose}\n\n```python\n{source.strip()}\n```\n"
    if pattern is not None:
        answer += f"Final Pattern: [{', '.join(pattern)}]\n"
    return answer


class LoopbackLLMServer:
    PROTOCOLS: tuple[str, ...] = ("openai", "gemini", "anthropic")

    def __init__(
        self,
        protocol: str,
        script: Iterable[Reply] = (),
        *,
        responder: Callable[[RecordedRequest], Reply] | None = None,
        default: Reply | None = None,
        delay_s: float = 0.0,
        models: tuple[str, ...] = ("test-model",),
    ):
        if protocol not in self.PROTOCOLS:
            raise ValueError(f"protocol must be one of {self.PROTOCOLS}, got {protocol!r}")
        self.protocol = protocol
        self.script: deque[Reply] = deque(script)
        self.responder = responder
        self.default = default or Reply(text="no scripted reply left")
        self.delay_s = delay_s
        self.models = models
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    # ----- lifecycle -----------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    def __enter__(self) -> LoopbackLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stopping.set()  # releases handlers sleeping in a "hang"
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def generation_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST"]

    # ----- behaviour -----------------------------------------------------------------------------------------
    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            if self.script:
                return self.script.popleft()
        if self.responder is not None:
            return self.responder(request)
        return self.default

    def _openai_body(self, reply: Reply, request: RecordedRequest) -> dict[str, Any]:
        finish = {"stop": "stop", "length": "length", "blocked": "content_filter"}[reply.finish]
        usage = {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        }
        model = request.body.get("model", self.models[0])
        if request.path.endswith("/chat/completions"):
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text},
                "finish_reason": finish,
                "logprobs": None,
            }
            kind = "chat.completion"
        else:
            choice = {"index": 0, "text": reply.text, "finish_reason": finish, "logprobs": None}
            kind = "text_completion"
        return {
            "id": "cmpl-test",
            "object": kind,
            "created": 0,
            "model": model,
            "choices": [choice],
            "usage": usage,
        }

    def _gemini_body(self, reply: Reply, model: str) -> dict[str, Any]:
        usage = {
            "promptTokenCount": reply.prompt_tokens,
            "candidatesTokenCount": reply.completion_tokens,
            "totalTokenCount": reply.prompt_tokens + reply.completion_tokens,
        }
        if reply.finish == "blocked":
            return {
                "promptFeedback": {"blockReason": "SAFETY"},
                "usageMetadata": usage,
                "modelVersion": model,
            }
        finish = {"stop": "STOP", "length": "MAX_TOKENS"}[reply.finish]
        parts = [{"text": reply.text}] if reply.text else []
        candidate = {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model}

    def _anthropic_body(self, reply: Reply, request: RecordedRequest) -> dict[str, Any]:
        stop = {"stop": "end_turn", "length": "max_tokens", "blocked": "refusal"}[reply.finish]
        content = [{"type": "text", "text": reply.text}] if reply.text else []
        return {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": request.body.get("model", self.models[0]),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": reply.prompt_tokens, "output_tokens": reply.completion_tokens},
        }

    def _error_body(self, reply: Reply) -> dict[str, Any]:
        if self.protocol == "anthropic":
            kind = {429: "rate_limit_error", 529: "overloaded_error", 401: "authentication_error"}.get(
                reply.status, "api_error" if reply.status >= 500 else "invalid_request_error"
            )
            return {"type": "error", "error": {"type": kind, "message": "scripted failure"}}
        if self.protocol == "openai":
            return {
                "error": {"message": "scripted failure", "type": "server_error", "param": None, "code": None}
            }
        status = _GEMINI_STATUS.get(
            reply.status, "UNAVAILABLE" if reply.status >= 500 else "FAILED_PRECONDITION"
        )
        return {"error": {"code": reply.status, "message": "scripted failure", "status": status}}

    def _respond(self, request: RecordedRequest) -> tuple[int, dict[str, str], dict[str, Any]]:
        if request.method == "GET":
            if self.protocol == "openai" and request.path == "/v1/models":
                data = [{"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in self.models]
                return 200, {}, {"object": "list", "data": data}
            return 404, {}, {"error": {"message": f"no route {request.path}"}}
        gemini_match = _GEMINI_PATH.match(request.path)
        openai_route = request.path in {"/v1/chat/completions", "/v1/completions"}
        routed = {
            "openai": openai_route,
            "gemini": bool(gemini_match),
            "anthropic": request.path == "/v1/messages",
        }.get(self.protocol, False)
        if not routed:
            return 404, {}, {"error": {"message": f"no route {request.path}"}}
        reply = self._next_reply(request)
        delay = self.delay_s if reply.delay_s is None else reply.delay_s
        if delay > 0 and self._stopping.wait(delay):
            return 503, {}, self._error_body(Reply(status=503))
        if reply.body is not None:
            body = reply.body
        elif reply.status != 200:
            body = self._error_body(reply)
        elif self.protocol == "openai":
            body = self._openai_body(reply, request)
        elif self.protocol == "anthropic":
            body = self._anthropic_body(reply, request)
        else:
            assert gemini_match is not None
            body = self._gemini_body(reply, gemini_match.group("model"))
        return reply.status, reply.headers, body

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                request = RecordedRequest(
                    method,
                    self.path.split("?")[0],
                    body,
                    {k.lower(): v for k, v in self.headers.items()},
                    time.monotonic(),
                )
                with server._lock:
                    server.requests.append(request)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    status, headers, payload = server._respond(request)
                finally:
                    with server._lock:
                        server.in_flight -= 1
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    self.close_connection = True

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        return Handler


# ----- wiring a backend to a server (tests, benchmarks, end-to-end runs) ------------------------------------------
VARIANTS = ("openai", "local-chat", "local-completions", "gemini", "anthropic", "xai")


def variant_protocol(variant: str) -> str:
    return variant if variant in {"gemini", "anthropic"} else "openai"


def variant_config(variant: str, server: LoopbackLLMServer, **overrides: Any) -> dict[str, Any]:
    """GeneratorConfig keys pointing one backend variant at `server`:
    openai = an OpenAI model name (priced) over chat; local-* = model_name=local:<served> with api_style;
    gemini = a Gemini model name; anthropic = a Claude model name; xai = a Grok model name (OpenAI protocol).
    API keys come from the environment (tests set fake ones)."""
    if variant == "gemini":
        keys: dict[str, Any] = {"model_name": "gemini-2.5-flash", "base_url": server.url}
    elif variant == "anthropic":
        keys = {"model_name": "claude-haiku-4-5", "base_url": server.url}
    elif variant == "xai":
        keys = {"model_name": "grok-3-mini", "base_url": server.openai_base_url}
    elif variant == "openai":
        keys = {"model_name": "gpt-4o-mini", "base_url": server.openai_base_url}
    elif variant in {"local-chat", "local-completions"}:
        keys = {
            "model_name": f"local:{server.models[0]}",
            "base_url": server.openai_base_url,
            "api_style": variant.split("-", 1)[1],
        }
    else:
        raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")
    keys.update(overrides)
    return keys


# ----- valid programs to answer with (end-to-end tests, the overlap benchmark) ------------------------------------
_ACTIVATIONS = [
    "torch.relu",
    "torch.tanh",
    "torch.sigmoid",
    "F.gelu",
    "F.silu",
    "F.softplus",
    "F.elu",
    "F.mish",
]
_PATTERN_NAMES = {
    "torch.relu": "ReLU",
    "torch.tanh": "Tanh",
    "torch.sigmoid": "Sigmoid",
    "F.gelu": "GELU",
    "F.silu": "SiLU",
    "F.softplus": "Softplus",
    "F.elu": "ELU",
    "F.mish": "Mish",
}


def valid_program(variant: int) -> tuple[str, list[str]]:
    """A small valid program (Linear -> act -> Linear -> act + scaled skip) whose sizes and activations vary with
    `variant`, so answers differ from one another; returns (source, final pattern)."""
    rng = random.Random(variant)
    features = rng.choice([16, 24, 32, 48, 64])
    hidden = rng.choice([32, 64, 96, 128])
    batch = rng.choice([8, 16, 32])
    first, second = rng.sample(_ACTIVATIONS, 2)
    scale = rng.choice([0.25, 0.5, 0.75, 1.5])
    source = f"""import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, features: int, hidden: int, skip_scale: float):
        super().__init__()
        self.up = nn.Linear(features, hidden)
        self.down = nn.Linear(hidden, features)
        self.skip_scale = skip_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = {first}(self.up(x))
        y = {second}(self.down(y))
        return y + self.skip_scale * x


def get_inputs():
    return [torch.randn({batch}, {features})]


def get_init_inputs():
    return [[{features}, {hidden}], {{"skip_scale": {scale}}}]
"""
    pattern = ["Linear", _PATTERN_NAMES[first], "Linear", _PATTERN_NAMES[second], "mul", "add"]
    return source, pattern

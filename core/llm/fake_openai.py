"""A fake OpenAI-compatible chat-completions server on loopback, for tests (DESIGN §8, §13).

``POST /v1/chat/completions`` answers in JSON, or as server-sent ``data:`` chunks when
``"stream": true`` (``chat.completion.chunk`` objects, a final chunk with ``finish_reason``,
then — when ``stream_options.include_usage`` — a chunk with empty ``choices`` and ``usage``,
then ``data: [DONE]``). ``GET /v1/models`` lists :attr:`FakeOpenAI.models`. Every response
carries an ``x-request-id`` header (``req_oai_000001``, …).

**Tokens** (deterministic): ``ceil(utf-8 bytes / 4)`` of each message's text (the system
prompt included); ``completion_tokens`` likewise of the answer. An answer longer than
``max_tokens`` (or ``max_completion_tokens``) is cut and ends with ``finish_reason:
"length"``. With ``cached_prefix=True`` a repeated first message is reported as
``prompt_tokens_details.cached_tokens``.

**Knobs:** ``report_usage`` (False: a server that sends no usage), ``refuse_stream_options``
(400 when the request has them, like an older server), ``context_window`` (served as
llama.cpp's ``GET /props`` ``default_generation_settings.n_ctx``; a request whose prompt plus
``max_tokens`` exceeds it gets llama.cpp's 400 ``exceed_context_size_error``), ``flavor``
(``"vllm"``: ``max_model_len`` in ``/v1/models`` and no ``/props``; ``"ollama"``:
``/api/show`` and ``/api/tags``; ``"lmstudio"``: ``/api/v0/models/{id}``), the ``Fault`` queue
of ``core.llm.fake_server`` (rate limit, spend limit as OpenAI's ``insufficient_quota``, 529,
500, any status, an error object mid-stream, a cut connection, and ``no_finish``: a stream that
ends after its deltas without a finish reason), ``chunk_size`` and ``chunk_delay``.

``responder(body) -> str`` makes the answer (default: ``core.llm.fake_server.DEFAULT_ANSWER``);
when the last message is the assistant's (a continuation), ``continue_responder(body, prefix)``
is used if given, else the rest of the responder's answer after ``prefix``. Every request is
recorded in :attr:`FakeOpenAI.requests`. It binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import math
import threading
import time
from collections import deque
from typing import Any, Callable

from aiohttp import web

from core.llm.fake_server import DEFAULT_ANSWER, Fault, RecordedRequest


def count_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / 4)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


class FakeOpenAI:
    def __init__(
        self,
        responder: Callable[[dict], Any] | None = None,
        *,
        continue_responder: Callable[[dict, str], Any] | None = None,
        models: list[str] | None = None,
        report_usage: bool = True,
        refuse_stream_options: bool = False,
        context_window: int | None = None,
        flavor: str = "llamacpp",
        cached_prefix: bool = False,
        chunk_size: int = 16,
        chunk_delay: float = 0.0,
        api_key: str | None = None,
        port: int = 0,
    ) -> None:
        self.responder = responder or (lambda body: DEFAULT_ANSWER)
        self.continue_responder = continue_responder
        self.models = list(models or ["fake-model"])
        self.report_usage = report_usage
        self.refuse_stream_options = refuse_stream_options
        self.context_window = context_window
        self.flavor = flavor
        self.cached_prefix = cached_prefix
        self.chunk_size = max(1, chunk_size)
        self.chunk_delay = chunk_delay
        self.api_key = api_key
        self.port = port
        self.requests: list[RecordedRequest] = []
        self._faults: deque[Fault] = deque()
        self._seen_prefixes: set[str] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None

    # -- control --------------------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (with /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    # -- lifecycle ------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        if self.flavor == "llamacpp":
            app.router.add_get("/props", self._props)
        if self.flavor == "ollama":
            app.router.add_post("/api/show", self._ollama_show)
            app.router.add_get("/api/tags", self._ollama_tags)
        if self.flavor == "lmstudio":
            app.router.add_get("/api/v0/models/{model}", self._lmstudio_model)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    async def start(self) -> str:
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeOpenAI":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- small endpoints ------------------------------------------------------------

    def _rid(self) -> str:
        with self._lock:
            return f"req_oai_{next(self._ids):06d}"

    def _record(self, request: web.Request, body: Any) -> RecordedRequest:
        rec = RecordedRequest(self._rid(), request.method, request.path, dict(request.headers), body)
        self.requests.append(rec)
        return rec

    async def _not_found(self, request: web.Request) -> web.Response:
        self._record(request, None)
        return web.json_response({"error": {"message": f"no route {request.path}", "type": "not_found_error"}},
                                 status=404)

    async def _models(self, request: web.Request) -> web.Response:
        self._record(request, None)
        data = []
        for m in self.models:
            entry: dict[str, Any] = {"id": m, "object": "model", "created": 0, "owned_by": "fake"}
            if self.flavor == "vllm" and self.context_window:
                entry["max_model_len"] = self.context_window
            data.append(entry)
        return web.json_response({"object": "list", "data": data})

    async def _props(self, request: web.Request) -> web.Response:
        self._record(request, None)
        if not self.context_window:
            return web.json_response({"model_path": self.models[0]})
        return web.json_response({"default_generation_settings": {"n_ctx": self.context_window},
                                  "model_path": self.models[0]})

    async def _ollama_show(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._record(request, body)
        return web.json_response({"model_info": {"general.architecture": "qwen2",
                                                 "qwen2.context_length": 32768},
                                  "parameters": f"num_ctx                        {self.context_window or 4096}\n"
                                                "temperature                    0.7"})

    async def _ollama_tags(self, request: web.Request) -> web.Response:
        self._record(request, None)
        return web.json_response({"models": [{"name": m} for m in self.models]})

    async def _lmstudio_model(self, request: web.Request) -> web.Response:
        self._record(request, None)
        return web.json_response({"id": request.match_info["model"], "max_context_length": 131072,
                                  "loaded_context_length": self.context_window or 4096})

    # -- chat completions -------------------------------------------------------------

    async def _answer(self, body: dict) -> str:
        messages = body.get("messages") or []
        if messages and messages[-1].get("role") == "assistant":
            prefix = _text(messages[-1].get("content"))
            if self.continue_responder is not None:
                text = self.continue_responder(body, prefix)
            else:
                full = self.responder(body)
                full = await full if inspect.isawaitable(full) else full
                text = full[len(prefix):] if str(full).startswith(prefix) else ""
        else:
            text = self.responder(body)
        if inspect.isawaitable(text):
            text = await text
        return str(text)

    def _usage(self, body: dict, completion: int) -> dict:
        messages = body.get("messages") or []
        prompt = sum(count_tokens(_text(m.get("content"))) for m in messages)
        usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                                 "total_tokens": prompt + completion}
        if self.cached_prefix and messages:
            first = _text(messages[0].get("content"))
            cached = count_tokens(first) if first in self._seen_prefixes else 0
            self._seen_prefixes.add(first)
            usage["prompt_tokens_details"] = {"cached_tokens": cached}
        return usage

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        rec = self._record(request, body)
        headers = {"x-request-id": rec.request_id}
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": {"message": "bad key", "type": "invalid_request_error",
                                                "code": "invalid_api_key"}}, status=401, headers=headers)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body.get("model"):
            return web.json_response({"error": {"message": "model and messages are required",
                                                "type": "invalid_request_error"}}, status=400, headers=headers)
        if self.refuse_stream_options and "stream_options" in body:
            return web.json_response({"error": {"message": "Unrecognized request argument supplied: stream_options",
                                                "type": "invalid_request_error"}}, status=400, headers=headers)
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        rec.fault = fault.kind if fault else None
        if fault is not None and fault.kind not in ("stream_error", "truncate", "no_finish"):
            return self._fault_response(fault, headers)
        max_tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or 1_000_000)
        prompt_tokens = sum(count_tokens(_text(m.get("content"))) for m in body["messages"])
        rec.usage = {"prompt_tokens": prompt_tokens, "max_tokens": max_tokens}
        if self.context_window:
            if prompt_tokens >= self.context_window:  # llama.cpp refuses such a prompt outright
                return web.json_response({"error": {
                    "code": 400, "type": "exceed_context_size_error",
                    "message": f"request ({prompt_tokens} tokens) exceeds the available context "
                               f"size ({self.context_window} tokens)",
                    "n_prompt_tokens": prompt_tokens, "n_ctx": self.context_window}}, status=400, headers=headers)
            max_tokens = min(max_tokens, self.context_window - prompt_tokens)  # generation stops when it is full
        text = await self._answer(body)
        finish = "stop"
        limit = max_tokens * 4
        encoded = text.encode("utf-8")
        if len(encoded) > limit:
            text = encoded[:limit].decode("utf-8", errors="ignore")
            finish = "length"
        usage = self._usage(body, count_tokens(text))
        rec.usage = usage
        cid = "chatcmpl-" + rec.request_id.rsplit("_", 1)[1]
        if not body.get("stream"):
            out = {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": body["model"],
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                "finish_reason": finish}]}
            if self.report_usage:
                out["usage"] = usage
            return web.json_response(out, headers=headers)
        return await self._stream(request, body, text, finish, usage, cid, headers, fault)

    def _fault_response(self, fault: Fault, headers: dict[str, str]) -> web.Response:
        headers = {**headers, **fault.headers}
        if fault.retry_after is not None:
            headers["retry-after"] = str(fault.retry_after)
        if fault.retry_after_ms is not None:
            headers["retry-after-ms"] = str(fault.retry_after_ms)
        if fault.kind == "rate_limit":
            status, err = 429, {"message": "Rate limit reached for requests", "type": "requests",
                                "code": "rate_limit_exceeded"}
        elif fault.kind == "spend_limit":
            status, err = 429, {"message": "You exceeded your current quota, please check your plan and billing "
                                           "details.", "type": "insufficient_quota",
                                "code": "insufficient_quota" if fault.with_code else None}
        elif fault.kind == "overloaded":
            status, err = 529, {"message": "Overloaded", "type": "overloaded_error"}
        elif fault.kind == "server_error":
            status, err = 500, {"message": "Internal server error", "type": "server_error"}
        elif fault.kind == "status":
            status = fault.status or 500
            return web.json_response(fault.body if fault.body is not None else {"error": {"message": str(status)}},
                                     status=status, headers=headers)
        else:  # pragma: no cover - guarded by Fault's constructors
            raise ValueError(f"unknown fault kind {fault.kind!r}")
        return web.json_response({"error": err}, status=status, headers=headers)

    async def _stream(self, request: web.Request, body: dict, text: str, finish: str, usage: dict, cid: str,
                      headers: dict[str, str], fault: Fault | None) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={**headers, "content-type": "text/event-stream",
                                                        "cache-control": "no-cache"})
        await resp.prepare(request)
        model = body["model"]

        def chunk(delta: dict, finish_reason: str | None = None) -> bytes:
            obj = {"id": cid, "object": "chat.completion.chunk", "created": 0, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
            return f"data: {json.dumps(obj)}\n\n".encode()

        await resp.write(chunk({"role": "assistant", "content": ""}))
        parts = [text[i: i + self.chunk_size] for i in range(0, len(text), self.chunk_size)]
        for n, part in enumerate(parts):
            if fault is not None and n == fault.after_chunks and fault.kind in ("stream_error", "truncate"):
                if fault.kind == "stream_error":
                    err = {"error": {"message": "the model crashed mid-answer", "type": "server_error"}}
                    await resp.write(f"data: {json.dumps(err)}\n\n".encode())
                    await resp.write_eof()
                    return resp
                if request.transport is not None:
                    request.transport.close()
                raise asyncio.CancelledError()
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            await resp.write(chunk({"content": part}))
        if fault is not None and fault.kind == "no_finish":
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            return resp
        await resp.write(chunk({}, finish))
        if self.report_usage and (body.get("stream_options") or {}).get("include_usage"):
            obj = {"id": cid, "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [],
                   "usage": usage}
            await resp.write(f"data: {json.dumps(obj)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


class FakeOpenAIThread:
    """Runs a :class:`FakeOpenAI` on its own event loop in a daemon thread."""

    def __init__(self, responder: Callable[[dict], Any] | None = None, **kw: Any) -> None:
        self.server = FakeOpenAI(responder, **kw)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> str:
        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.server.start())
            self._ready.set()
            loop.run_forever()
            loop.run_until_complete(self.server.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-openai", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake OpenAI server did not start")
        return self.server.base_url

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.server, name)

    def __enter__(self) -> "FakeOpenAIThread":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main_fake_openai(port: int = 0, *, models: list[str] | None = None,
                     context_window: int | None = 8192) -> int:
    """Serve the fake OpenAI-compatible API (a llama.cpp-like server: ``/props`` says the
    context window) on 127.0.0.1:PORT until interrupted (``cambrian dev fake-llm --api openai``)."""

    async def serve() -> None:
        server = FakeOpenAI(models=models, context_window=context_window or None, port=port)
        url = await server.start()
        print(f"fake OpenAI-compatible API listening on {url} (models: {', '.join(server.models)}; "
              f"context window {context_window or 'not said'})", flush=True)
        print(f"use: provider openai, base URL {url}, no key", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0

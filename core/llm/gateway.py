"""The LLM gateway: the one outside channel a rig container may have (DESIGN §7,
"Reproduction").

While an offspring is asked to do its job (``POST /generate`` of a Prime), its calls to a
model reach the engine through a unix socket the rig mounts into the container (the
container still has no network; a stdlib forwarder of the rig's runner serves it on a
loopback port, which the organism finds through ``ANTHROPIC_BASE_URL``). This module is the
engine's end: a Messages-API-compatible endpoint (``POST /v1/messages``, JSON or server-sent
events, the wire format the anthropic SDK speaks) that forwards each call to the campaign's
own provider — sim, anthropic, replay, openai, any later one.

* The real API key never leaves the engine; the organism holds a placeholder. The gateway
  ignores the key it is sent.
* Every call goes through the provider the engine gives it — in a campaign, the ledgered and
  budgeted one, with ``purpose="reproduction"`` and the generation it serves — so it is in
  the ledger and counts against the campaign's budget, in-flight calls included.
* Caps per reproduction test: calls, tokens (in + out, in-flight reservations included) and
  wall time. A call over a cap is refused (HTTP 429, ``error.type = "cap_exceeded"``) and the
  reason recorded: a runaway organism is cut off, not paid for.
* Whatever the model name the organism asks for, the campaign's model answers (the request
  is recorded with both names).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from core.llm.base import LLMRequest, ProviderError

PURPOSE = "reproduction"


@dataclass
class Caps:
    calls: int = 6                 # generate + repair, a retry or two
    tokens: int = 200_000          # input + output over the whole test
    wall_s: float = 900.0          # from the first call
    max_tokens_per_call: int = 32_000


@dataclass
class GatewayCall:
    """One call as the gateway saw it (the inspector's Reproduction tab shows these)."""

    index: int
    asked_model: str
    model: str
    stream: bool
    status: int
    input_tokens: int = 0
    output_tokens: int = 0
    ms: int = 0
    error: str | None = None
    forwarded: bool = True  # reached the provider (refusals by the gateway did not)


@dataclass
class GatewayLog:
    calls: list[GatewayCall] = field(default_factory=list)
    cut_off: str | None = None     # why the gateway stopped answering, if it did
    tokens: int = 0
    reserved: int = 0              # tokens of calls in flight
    in_flight: int = 0
    started: float | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"calls": [vars(c) for c in self.calls], "cut_off": self.cut_off,
                "tokens": self.tokens}


class Gateway:
    """``async with Gateway(provider, model=..., socket_path=...)``: serves until closed."""

    def __init__(self, provider: Any, *, model: str, socket_path: str | os.PathLike[str],
                 caps: Caps | None = None, metadata: dict[str, Any] | None = None):
        self.provider = provider
        self.model = model
        self.socket_path = Path(socket_path)
        self.caps = caps or Caps()
        self.metadata = dict(metadata or {})
        self.log = GatewayLog()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._lock = asyncio.Lock()

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        site = web.UnixSite(self._runner, str(self.socket_path))
        await site.start()
        # the organism's uid connects through a read-only bind mount: the socket itself
        # must be writable for it (connect needs write permission on a socket)
        os.chmod(self.socket_path, 0o666)
        return str(self.socket_path)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.socket_path.unlink(missing_ok=True)

    async def __aenter__(self) -> "Gateway":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the endpoint ----------------------------------------------------------------------
    async def _not_found(self, request: web.Request) -> web.Response:
        return _error(404, "not_found_error", f"the gateway serves POST /v1/messages only, not "
                                              f"{request.method} {request.path}")

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        index = next(self._ids)
        try:
            body = await request.json()
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise ValueError("the body must be an object with a messages list")
        except (ValueError, json.JSONDecodeError) as exc:
            return self._refuse(index, "?", False, 400, "invalid_request_error", str(exc))
        asked = str(body.get("model") or "")
        stream = bool(body.get("stream"))
        req = self._request(body)
        async with self._lock:
            why = self._over_cap(req)
            if why:
                self.log.cut_off = self.log.cut_off or why
                return self._refuse(index, asked, stream, 429, "cap_exceeded", why)
            if self.log.started is None:
                self.log.started = time.monotonic()
            reservation = req.max_tokens + _estimate_prompt_tokens(req)
            self.log.reserved += reservation
            self.log.in_flight += 1
        t0 = time.monotonic()
        if stream:
            return await self._stream(request, index, asked, req, reservation, t0)
        try:
            resp = await self.provider.complete(req, None)
        except ProviderError as exc:
            return self._provider_failed(index, asked, False, exc, reservation, t0)
        except Exception as exc:  # noqa: BLE001 - e.g. the campaign's budget: said, not raised
            return self._provider_failed(index, asked, False, exc, reservation, t0)
        self._settle(index, asked, False, 200, resp, reservation, t0)
        return web.json_response(_message_json(index, resp, self.model),
                                 headers={"request-id": f"req_gw_{index:06d}"})

    async def _stream(self, request: web.Request, index: int, asked: str, req: LLMRequest,
                      reservation: int, t0: float) -> web.StreamResponse:
        out = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                          "Cache-Control": "no-cache",
                                          "request-id": f"req_gw_{index:06d}"})
        await out.prepare(request)
        mid = f"msg_gw_{index:06d}"
        await out.write(_sse("message_start", {"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0}}}))
        await out.write(_sse("content_block_start", {
            "type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}))
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def on_delta(chunk: str) -> None:
            if chunk:  # a reset (the provider restarted its stream) is invisible here
                queue.put_nowait(chunk)

        task = asyncio.create_task(self.provider.complete(req, on_delta))
        task.add_done_callback(lambda _t: queue.put_nowait(None))
        sent = 0
        while True:
            chunk = await queue.get()
            if chunk is None:
                break
            sent += len(chunk)
            await out.write(_sse("content_block_delta", {
                "type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": chunk}}))
        try:
            resp = task.result()
        except Exception as exc:  # noqa: BLE001 - a mid-stream error event, as the API sends
            self._provider_failed(index, asked, True, exc, reservation, t0)
            await out.write(_sse("error", {"type": "error", "error": {
                "type": _error_type(exc), "message": str(exc)[:500]}}))
            return out
        if sent < len(resp.text):  # a provider that streamed nothing (or less) sends the rest
            await out.write(_sse("content_block_delta", {
                "type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": resp.text[sent:]}}))
        await out.write(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        await out.write(_sse("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": resp.stop_reason or "end_turn", "stop_sequence": None},
            "usage": _usage(resp)}))
        await out.write(_sse("message_stop", {"type": "message_stop"}))
        self._settle(index, asked, True, 200, resp, reservation, t0)
        return out

    # -- caps and records ------------------------------------------------------------------
    def _request(self, body: dict[str, Any]) -> LLMRequest:
        system = body.get("system") or ""
        if isinstance(system, list):
            system = "".join(b.get("text", "") for b in system if isinstance(b, dict))
        try:
            want = int(body.get("max_tokens") or self.caps.max_tokens_per_call)
        except (TypeError, ValueError):
            want = self.caps.max_tokens_per_call
        return LLMRequest(model=self.model, system=str(system), messages=body["messages"],
                          max_tokens=max(1, min(want, self.caps.max_tokens_per_call)),
                          purpose=PURPOSE, cache_prefix_blocks=0,
                          metadata={**self.metadata, "asked_model": str(body.get("model") or "")})

    def _over_cap(self, req: LLMRequest) -> str | None:
        caps, log = self.caps, self.log
        if log.cut_off:
            return log.cut_off
        if sum(1 for c in log.calls if c.forwarded) + log.in_flight >= caps.calls:
            return f"call cap reached ({caps.calls} calls per reproduction test)"
        if log.started is not None and time.monotonic() - log.started > caps.wall_s:
            return f"wall-time cap reached ({caps.wall_s:.0f} s per reproduction test)"
        need = log.tokens + log.reserved + req.max_tokens + _estimate_prompt_tokens(req)
        if need > caps.tokens:
            return (f"token cap reached ({caps.tokens} tokens per reproduction test; this call "
                    f"could take {need - log.tokens - log.reserved})")
        return None

    def _settle(self, index: int, asked: str, stream: bool, status: int, resp: Any,
                reservation: int, t0: float) -> None:
        self.log.reserved = max(0, self.log.reserved - reservation)
        self.log.in_flight -= 1
        self.log.tokens += resp.prompt_tokens + resp.output_tokens
        self.log.calls.append(GatewayCall(index, asked, self.model, stream, status,
                                          resp.prompt_tokens, resp.output_tokens,
                                          int((time.monotonic() - t0) * 1000)))

    def _provider_failed(self, index: int, asked: str, stream: bool, exc: BaseException,
                         reservation: int, t0: float) -> web.Response:
        self.log.reserved = max(0, self.log.reserved - reservation)
        self.log.in_flight -= 1
        status = getattr(exc, "status", None) or 502
        if type(exc).__name__ == "BudgetExceeded":
            status = 429
            self.log.cut_off = self.log.cut_off or f"campaign budget: {exc}"
        self.log.calls.append(GatewayCall(index, asked, self.model, stream, int(status),
                                          ms=int((time.monotonic() - t0) * 1000),
                                          error=f"{type(exc).__name__}: {exc}"[:500]))
        return _error(int(status) if 400 <= int(status) < 600 else 502, _error_type(exc),
                      str(exc)[:500])

    def _refuse(self, index: int, asked: str, stream: bool, status: int, kind: str,
                why: str) -> web.Response:
        self.log.calls.append(GatewayCall(index, asked, self.model, stream, status, error=why,
                                          forwarded=False))
        return _error(status, kind, why)


# --- wire helpers ---------------------------------------------------------------------------


def _estimate_prompt_tokens(req: LLMRequest) -> int:
    return req.prompt_chars() // 4 + 1


def _usage(resp: Any) -> dict[str, int]:
    return {"input_tokens": resp.input_tokens, "output_tokens": resp.output_tokens,
            "cache_creation_input_tokens": resp.cache_creation_input_tokens,
            "cache_read_input_tokens": resp.cache_read_input_tokens}


def _message_json(index: int, resp: Any, model: str) -> dict[str, Any]:
    return {"id": f"msg_gw_{index:06d}", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": resp.text}],
            "stop_reason": resp.stop_reason or "end_turn", "stop_sequence": None,
            "usage": _usage(resp)}


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _error_type(exc: BaseException) -> str:
    kind = getattr(exc, "kind", None)
    return {"rate_limit": "rate_limit_error", "overloaded": "overloaded_error",
            "bad_request": "invalid_request_error", "auth": "authentication_error"
            }.get(kind or "", "api_error")


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"type": "error", "error": {"type": kind, "message": message}},
                             status=status)

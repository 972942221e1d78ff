"""The ``openai`` provider: any OpenAI-compatible ``/v1/chat/completions`` server through the
official ``openai`` SDK (DESIGN §8) — Ollama, vLLM, llama.cpp's server, LM Studio, or a
hosted API.

* **Where:** ``base_url`` (e.g. ``http://127.0.0.1:8080/v1``; ``core.llm.endpoints.PRESETS``
  lists the usual ones); default the OpenAI API. **Key:** from the environment variable
  ``api_key_env`` names (default ``OPENAI_API_KEY``); a local server needs none. **Model:**
  any name the server knows (``check_connection`` lists them).
* ``AsyncOpenAI(max_retries=0)``: the SDK never retries; ``core.llm.retry`` does, with the
  same error kinds, backoff and model fallback as the anthropic provider, so every attempt is
  in the ledger. Each attempt has a connect/read timeout (``timeout``, ``connect_timeout``) and
  a bound on the whole stream (``attempt_timeout``).
* **Streaming:** ``stream=True`` with ``stream_options.include_usage``; ``delta.content`` goes to
  ``on_delta`` as it arrives (reasoning text some servers stream apart is not the answer and is
  dropped). A server that refuses ``stream_options`` is asked again without it (once; it is
  remembered). The request id is the ``x-request-id`` header, else the completion id.
* **Usage** exactly as the server reports it (kept raw in ``usage_raw``):
  ``input_tokens = prompt_tokens − prompt_tokens_details.cached_tokens``,
  ``cache_read_input_tokens = cached_tokens``, ``output_tokens = completion_tokens``. A server
  that reports none gets estimates (4 characters a token) marked ``usage_estimated``.
* **Finish reasons** map to the shared vocabulary (``core.llm.base``): ``stop`` → ``end_turn``,
  ``length`` → ``max_tokens`` (truncation, continued by the prime), ``content_filter`` →
  ``refusal``, ``tool_calls``/``function_call`` → ``tool_use``, anything else ``other:<it>``. A
  stream that ends without any finish reason was cut: a ``stream`` error, retried whole.
* **Continuations** (``purpose="continue"``; ``continuation``): ``prefill`` sends the partial
  answer as the final assistant message (llama.cpp, Ollama, LM Studio continue it);
  ``continue_final_message`` adds vLLM's ``continue_final_message: true,
  add_generation_prompt: false``; ``instruct`` adds a user turn asking to go on (hosted APIs,
  which ignore prefills). Default: ``instruct`` on the OpenAI API, else ``prefill``.
* **Output limit:** ``max_completion_tokens`` on the OpenAI API, ``max_tokens`` elsewhere
  (``max_tokens_param`` overrides).
* **Prices** from the price book (``core.llm.pricing``): configured per base URL/model, $0 on
  a local server, otherwise *unknown* — shown as unknown, never guessed.
* ``context_window(model)``: the configured window, else what the server says
  (``core.llm.endpoints.probe_context_window``).

Requests are Cambrian's provider-neutral :class:`LLMRequest` (Messages-shaped content blocks):
text blocks of a message are joined with blank lines; the system prompt is the first message.
An LLM gateway that speaks the Messages API can forward to this provider unchanged.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Callable, Sequence

import httpx2
import openai

from core.llm import urls
from core.llm.base import (
    AttemptRecord,
    LLMRequest,
    LLMResponse,
    ProviderError,
    continuation_as_instruction,
    message_text,
    report_attempt,
)
from core.llm.pricing import PriceBook, Quote
from core.llm.retry import AttemptState, RetryingProvider, classify, parse_retry_after
from core.models import utcnow

FINISH_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "content_filter": "refusal",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
}
CONTINUATION_MODES = ("prefill", "continue_final_message", "instruct")
LOCAL_KEY = "local-server-needs-no-key"


def map_finish_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    return FINISH_REASONS.get(reason, f"other:{reason}")


def _estimate_tokens(chars: int) -> int:
    return -(-chars // 4)


class OpenAIProvider(RetryingProvider):
    name = "openai"
    simulated = False

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        api_key_env: str | None = None,
        timeout: float = 600.0,
        connect_timeout: float = 10.0,
        attempt_timeout: float | None = 1800.0,
        max_attempts: int = 4,
        fallback_models: Sequence[str] = (),
        fallback_on: Sequence[str] = ("overloaded",),
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        max_wait_s: float = 300.0,
        prices: PriceBook | None = None,
        context_window: int | None = None,
        continuation: str | None = None,
        max_tokens_param: str | None = None,
        stream_usage: bool = True,
        sleep: Callable[[float], Any] = asyncio.sleep,
        rng: Any = None,
        client: Any = None,
        **_ignored: Any,
    ) -> None:
        super().__init__(max_attempts=max_attempts, fallback_models=fallback_models, fallback_on=fallback_on,
                         backoff_base=backoff_base, backoff_max=backoff_max, max_wait_s=max_wait_s,
                         sleep=sleep, rng=rng)
        try:
            self.base_url = urls.normalize(base_url) if base_url else None
        except urls.BadBaseURL as exc:
            raise ProviderError(str(exc), kind="bad_request") from exc
        self.local = urls.is_local(self.base_url)
        self.api_key_env = api_key_env or "OPENAI_API_KEY"
        self.api_key = api_key if api_key is not None else os.environ.get(self.api_key_env)
        if client is None and not self.api_key:
            if not self.local:
                where = self.base_url or "the OpenAI API"
                raise ProviderError(f"no API key for {where}: set {self.api_key_env} "
                                    "(a local server needs none)", kind="auth")
            self.api_key = LOCAL_KEY
        from core.llm.endpoints import default_continuation

        self.continuation = continuation or default_continuation(self.base_url)
        if self.continuation not in CONTINUATION_MODES:
            raise ValueError(f"continuation must be one of {CONTINUATION_MODES}, not {self.continuation!r}")
        self.max_tokens_param = max_tokens_param or (
            "max_completion_tokens" if urls.is_openai_api(self.base_url) else "max_tokens")
        self.stream_usage = stream_usage
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.attempt_timeout = attempt_timeout
        self.prices = prices if prices is not None else PriceBook.load()
        self.configured_context_window = context_window
        self._windows: dict[str, tuple[int | None, str]] = {}
        self._client = client

    # -- client -----------------------------------------------------------------------

    @property
    def client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            self._client = openai.AsyncOpenAI(
                api_key=self.api_key,
                base_url=self.base_url,
                max_retries=0,
                timeout=httpx2.Timeout(self.timeout, connect=self.connect_timeout),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    # -- what the server is -------------------------------------------------------------

    def quote(self, model: str) -> Quote:
        return self.prices.quote(self.name, self.base_url, model)

    async def context_window(self, model: str) -> tuple[int | None, str]:
        if self.configured_context_window:
            return self.configured_context_window, "configured"
        if model not in self._windows:
            from core.llm.endpoints import probe_context_window

            self._windows[model] = await probe_context_window(
                self.base_url, model, api_key=None if self.api_key == LOCAL_KEY else self.api_key)
        return self._windows[model]

    async def list_models(self) -> list[str]:
        from core.llm.endpoints import list_models

        return await list_models(self.name, self.base_url, None if self.api_key == LOCAL_KEY else self.api_key)

    # -- request building -------------------------------------------------------------

    def build_params(self, req: LLMRequest, model: str) -> dict[str, Any]:
        """The ``chat.completions.create`` keyword arguments."""
        if req.purpose == "continue" and self.continuation == "instruct":
            req = continuation_as_instruction(req)
        messages: list[dict[str, Any]] = []
        if req.system:
            messages.append({"role": "system", "content": req.system})
        for msg in req.messages:
            messages.append({"role": msg.get("role", "user"), "content": message_text(msg.get("content"))})
        params: dict[str, Any] = {"model": model, "messages": messages, "stream": True,
                                  self.max_tokens_param: req.max_tokens}
        if self.stream_usage:
            params["stream_options"] = {"include_usage": True}
        if (req.purpose == "continue" and self.continuation == "continue_final_message"
                and messages and messages[-1]["role"] == "assistant"):
            params["extra_body"] = {"continue_final_message": True, "add_generation_prompt": False}
        return params

    # -- one attempt ----------------------------------------------------------------------

    async def _attempt(
        self,
        req: LLMRequest,
        model: str,
        on_delta: Callable[[str], None] | None,
        st: AttemptState,
    ) -> LLMResponse:
        try:
            return await self._stream_once(req, model, on_delta, st)
        except ProviderError as err:
            if not (self.stream_usage and err.kind == "bad_request" and "stream_options" in err.message):
                raise
            # an older server that does not know stream_options: ask again without it
            if err.attempt is not None:
                err.attempt.error = f"{err.attempt.error} (asking again without stream_options)"
                report_attempt(err.attempt)
            self.stream_usage = False
            fresh = AttemptState()
            resp = await self._stream_once(req, model, on_delta, fresh)
            st.__dict__.update(fresh.__dict__)
            return resp

    async def _stream_once(
        self,
        req: LLMRequest,
        model: str,
        on_delta: Callable[[str], None] | None,
        st: AttemptState,
    ) -> LLMResponse:
        started_at = utcnow()
        t0 = time.monotonic()
        params = self.build_params(req, model)
        completion_id: str | None = None
        try:
            async with asyncio.timeout(self.attempt_timeout):
                stream = await self.client.chat.completions.create(**params)
                st.request_id = stream.response.headers.get("x-request-id")
                async with stream:
                    async for chunk in stream:
                        completion_id = completion_id or getattr(chunk, "id", None)
                        if getattr(chunk, "model", None):
                            st.model = chunk.model
                        usage = getattr(chunk, "usage", None)
                        if usage is not None:
                            st.usage = usage.model_dump(mode="json", exclude_none=True)
                        for choice in chunk.choices or []:
                            if choice.index != 0:
                                continue
                            text = choice.delta.content if choice.delta is not None else None
                            if text:
                                st.deliver(text, on_delta)
                            if choice.finish_reason:
                                st.saw_stop = True
                                st.stop_reason = map_finish_reason(choice.finish_reason)
        except openai.APIStatusError as exc:
            kind, retryable = classify(exc.status_code, exc.body, exc.response.headers)
            raise self._error(req, model, st, started_at, t0, kind, retryable, exc.message,
                              status=exc.status_code, request_id=exc.request_id or st.request_id,
                              retry_after=parse_retry_after(exc.response.headers), body=exc.body) from exc
        except (openai.APITimeoutError, httpx2.TimeoutException, TimeoutError) as exc:
            raise self._error(req, model, st, started_at, t0, "timeout", True,
                              f"timed out: {type(exc).__name__}: {exc}") from exc
        except openai.APIConnectionError as exc:
            kind = "stream" if st.delivered else "connection"
            raise self._error(req, model, st, started_at, t0, kind, True,
                              f"{exc.message} ({exc.__cause__!r})") from exc
        except httpx2.TransportError as exc:
            raise self._error(req, model, st, started_at, t0, "stream", True,
                              f"stream broke: {type(exc).__name__}: {exc}") from exc
        except openai.APIResponseValidationError as exc:
            raise self._error(req, model, st, started_at, t0, "stream", True,
                              f"invalid response: {exc.message}") from exc
        except openai.APIError as exc:  # an error object inside the stream
            kind, retryable = classify(None, exc.body)
            raise self._error(req, model, st, started_at, t0, kind, retryable,
                              f"error mid-stream: {exc.message}", body=exc.body) from exc
        st.request_id = st.request_id or completion_id
        if not st.saw_stop:
            raise self._error(req, model, st, started_at, t0, "stream", True,
                              "stream ended without a finish reason (cut off)")
        text = "".join(st.parts)
        tokens, estimated = self._tokens(req, st, text)
        quote = self.quote(model)
        cost = quote.cost(*tokens)
        return LLMResponse(
            text=text,
            model=st.model or model,
            request_id=st.request_id,
            stop_reason=st.stop_reason,
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            cache_creation_input_tokens=tokens[2],
            cache_read_input_tokens=tokens[3],
            usage_raw=dict(st.usage),
            cost_usd=cost.usd,
            latency_ms=int((time.monotonic() - t0) * 1000),
            attempts=1,
            price_source=quote.source,
            usage_estimated=estimated,
            deltas=st.deltas,
        )

    @staticmethod
    def _tokens(req: LLMRequest, st: AttemptState, text: str) -> tuple[tuple[int, int, int, int], bool]:
        u = st.usage
        if "prompt_tokens" not in u and "completion_tokens" not in u:
            chars = req.prompt_chars()
            return (_estimate_tokens(chars), _estimate_tokens(len(text)), 0, 0), True
        prompt = int(u.get("prompt_tokens") or 0)
        details = u.get("prompt_tokens_details") if isinstance(u.get("prompt_tokens_details"), dict) else {}
        cached = min(prompt, int(details.get("cached_tokens") or 0))
        return (prompt - cached, int(u.get("completion_tokens") or 0), 0, cached), False

    def _error(
        self,
        req: LLMRequest,
        model: str,
        st: AttemptState,
        started_at: str,
        t0: float,
        kind: str,
        retryable: bool,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> ProviderError:
        u = st.usage
        if "prompt_tokens" in u or "completion_tokens" in u:
            tokens, _ = self._tokens(req, st, "".join(st.parts))
        else:
            tokens = (0, 0, 0, 0)  # nothing billed that we know of
        quote = self.quote(model)
        rid = request_id or st.request_id
        record = AttemptRecord(
            model=model, attempt=1, kind=kind, error=message, status=status, request_id=rid,
            started_at=started_at, latency_ms=int((time.monotonic() - t0) * 1000),
            input_tokens=tokens[0], output_tokens=tokens[1], cache_creation_input_tokens=tokens[2],
            cache_read_input_tokens=tokens[3], usage_raw=dict(u), cost_usd=quote.cost(*tokens).usd,
            price_source=quote.source,
        )
        if kind == "spend_limit":
            message = f"spend limit reached, not retrying: {message}"
        return ProviderError(message, kind=kind, retryable=retryable, status=status, request_id=rid, model=model,
                             attempt=record, retry_after_s=retry_after, body=body)

"""The ``anthropic`` provider: the Messages API through the official SDK (DESIGN §8) — Anthropic's
own API, or any Messages-compatible server (llama.cpp's server speaks it too).

* **Base URL** is a first-class setting: ``base_url=`` (CLI ``--base-url``), else
  ``ANTHROPIC_BASE_URL``, else the Anthropic API. ``doctor`` and the CLI show which one is
  used. A local server needs no key; elsewhere the key comes from the environment variable
  ``api_key_env`` names (default ``ANTHROPIC_API_KEY``).
* ``AsyncAnthropic(api_key, base_url, max_retries=0, timeout)`` — the SDK never retries; this
  module does (``core.llm.retry``: kinds, backoff, fallback), so that every attempt is visible
  to the ledger.
* ``client.messages.stream(...)``: text deltas go to ``on_delta`` as they arrive; the final
  message gives ``usage`` (incl. ``cache_creation_input_tokens`` / ``cache_read_input_tokens``),
  kept raw in ``usage_raw``; the request id is the ``request-id`` response header (else the
  message id, for servers that send no such header, like llama.cpp). A server
  that reports no usage gets estimated counts, marked ``usage_estimated``.
* Prompt caching: the system prompt is sent as one text block with
  ``cache_control: {"type": "ephemeral"}``; the ``cache_prefix_blocks``-th content block of the
  first user message gets the second breakpoint (so system + spec are the cached prefix).
* Continuations (``purpose="continue"``) are sent as a prefill (the partial answer is the last,
  assistant message, without trailing whitespace, which the API refuses). A model that refuses
  prefills (a 400 saying so) gets the instruction form (``core.llm.base``) from then on.
* Cost from the price book (``core.llm.pricing``): list prices on the Anthropic API, $0 on a
  local server, configured prices elsewhere, otherwise *unknown* — never a guessed Claude price.
* ``context_window(model)``: the configured window, else what a llama.cpp server says
  (``core.llm.endpoints``); ``None`` on the Anthropic API (its windows exceed any answer).
"""

from __future__ import annotations

import asyncio
import copy
import os
import time
from typing import Any, Callable, Sequence

import anthropic
import httpx2

from core.llm import urls
from core.llm.base import (
    AttemptRecord,
    LLMRequest,
    LLMResponse,
    ProviderError,
    continuation_as_instruction,
    report_attempt,
)
from core.llm.pricing import PriceBook, Quote
from core.llm.retry import (  # noqa: F401 - re-exported: tests and callers import them from here
    NON_RETRYABLE_STREAM_TYPES,
    SPEND_LIMIT_CODES,
    SPEND_LIMIT_TEXT,
    AttemptState,
    RetryingProvider,
    classify,
    error_fields,
    is_spend_limit,
    parse_retry_after,
)
from core.models import utcnow

_AttemptState = AttemptState  # the old name
LOCAL_KEY = "local-server-needs-no-key"


def _estimate_tokens(chars: int) -> int:
    return -(-chars // 4)


class AnthropicProvider(RetryingProvider):
    name = "anthropic"
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
        sleep: Callable[[float], Any] = asyncio.sleep,
        rng: Any = None,
        client: Any = None,
        **_ignored: Any,
    ) -> None:
        super().__init__(max_attempts=max_attempts, fallback_models=fallback_models, fallback_on=fallback_on,
                         backoff_base=backoff_base, backoff_max=backoff_max, max_wait_s=max_wait_s,
                         sleep=sleep, rng=rng)
        raw_url = base_url or os.environ.get("ANTHROPIC_BASE_URL") or None
        try:
            self.base_url = urls.normalize(raw_url) if raw_url else None
        except urls.BadBaseURL as exc:
            raise ProviderError(str(exc), kind="bad_request") from exc
        self.api_key_env = api_key_env or "ANTHROPIC_API_KEY"
        self.api_key = api_key if api_key is not None else os.environ.get(self.api_key_env)
        self.local = urls.is_local(self.base_url)
        if client is None and not self.api_key:
            if not self.local:
                where = self.base_url or "the Anthropic API"
                raise ProviderError(
                    f"no API key for {where}: set {self.api_key_env} (or use the offline 'sim' provider)",
                    kind="auth",
                )
            self.api_key = LOCAL_KEY  # a local server: the SDK insists on some key
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.attempt_timeout = attempt_timeout
        self.prices = prices if prices is not None else PriceBook.load()
        self.configured_context_window = context_window
        self._windows: dict[str, tuple[int | None, str]] = {}
        self._no_prefill: set[str] = set()
        self._client = client

    # -- client -----------------------------------------------------------------------

    @property
    def client(self) -> anthropic.AsyncAnthropic:
        if self._client is None:
            self._client = anthropic.AsyncAnthropic(
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
        """(tokens, where it came from): configured, else the server's own word, else None."""
        if self.configured_context_window:
            return self.configured_context_window, "configured"
        if self.base_url is None or urls.is_anthropic_api(self.base_url):
            return None, "the Anthropic API (windows larger than any answer)"
        if model not in self._windows:
            from core.llm.endpoints import probe_context_window

            self._windows[model] = await probe_context_window(self.base_url, model, api_key=self.api_key,
                                                              provider=self.name)
        return self._windows[model]

    async def list_models(self) -> list[str]:
        from core.llm.endpoints import list_models

        return await list_models(self.name, self.base_url, self.api_key)

    # -- request building -------------------------------------------------------------

    @staticmethod
    def build_params(req: LLMRequest, model: str) -> dict[str, Any]:
        """The ``messages.stream`` keyword arguments, with the cache breakpoints placed."""
        cache = req.cache_prefix_blocks > 0
        params: dict[str, Any] = {"model": model, "max_tokens": req.max_tokens}
        if req.system:
            block: dict[str, Any] = {"type": "text", "text": req.system}
            if cache:
                block["cache_control"] = {"type": "ephemeral"}
            params["system"] = [block]
        messages = copy.deepcopy(req.messages)
        if cache:
            for msg in messages:
                if msg.get("role") != "user":
                    continue
                content = msg.get("content")
                if isinstance(content, str):
                    content = [{"type": "text", "text": content}]
                    msg["content"] = content
                if content:
                    idx = min(req.cache_prefix_blocks, len(content)) - 1
                    content[idx] = dict(content[idx], cache_control={"type": "ephemeral"})
                break
        if messages and messages[-1].get("role") == "assistant" and isinstance(messages[-1].get("content"), str):
            # a prefill: the API refuses a final assistant turn that ends in whitespace
            messages[-1] = dict(messages[-1], content=messages[-1]["content"].rstrip())
        params["messages"] = messages
        return params

    # -- one attempt ----------------------------------------------------------------------

    async def _attempt(
        self,
        req: LLMRequest,
        model: str,
        on_delta: Callable[[str], None] | None,
        st: AttemptState,
    ) -> LLMResponse:
        if req.purpose == "continue" and model in self._no_prefill:
            req = continuation_as_instruction(req)
        try:
            return await self._stream_once(req, model, on_delta, st)
        except ProviderError as err:
            refused_prefill = (err.kind == "bad_request" and req.purpose == "continue"
                               and "prefill" in err.message.lower()
                               and req.metadata.get("continuation_mode") != "instruct")
            if not refused_prefill:
                raise
            # this model takes no prefill: say so in the ledger, then ask in words
            if err.attempt is not None:
                err.attempt.error = f"{err.attempt.error} (continuing by instruction instead)"
                report_attempt(err.attempt)
            self._no_prefill.add(model)
            fresh = AttemptState()
            resp = await self._stream_once(continuation_as_instruction(req), model, on_delta, fresh)
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
        try:
            async with asyncio.timeout(self.attempt_timeout):
                async with self.client.messages.stream(**params) as stream:
                    st.request_id = stream.request_id
                    async for event in stream:
                        etype = event.type
                        if etype == "message_start":
                            st.model = event.message.model
                            # servers other than Anthropic's may send no request-id header
                            st.request_id = st.request_id or getattr(event.message, "id", None)
                            st.usage = event.message.usage.model_dump(mode="json", exclude_none=True)
                        elif etype == "text":
                            if event.text:
                                st.deliver(event.text, on_delta)
                        elif etype == "message_delta":
                            st.stop_reason = event.delta.stop_reason
                            st.usage.update(event.usage.model_dump(mode="json", exclude_none=True))
                        elif etype == "message_stop":
                            st.saw_stop = True
                            final = event.message
                            st.usage = final.usage.model_dump(mode="json", exclude_none=True)
                            st.stop_reason = final.stop_reason
        except anthropic.APIStatusError as exc:
            status = exc.status_code if exc.status_code >= 400 else None
            kind, retryable = classify(status, exc.body, exc.response.headers if status else None)
            text = exc.api_message or exc.message
            if status is None:
                text = f"error event mid-stream ({exc.type or 'error'}): {text}"
            raise self._error(
                req, model, st, started_at, t0, kind, retryable,
                text,
                status=status,
                request_id=exc.request_id or st.request_id,
                retry_after=parse_retry_after(exc.response.headers) if status else None,
                body=exc.body,
            ) from exc
        except (anthropic.APITimeoutError, httpx2.TimeoutException, TimeoutError) as exc:
            raise self._error(req, model, st, started_at, t0, "timeout", True,
                              f"timed out: {type(exc).__name__}: {exc}") from exc
        except anthropic.APIConnectionError as exc:
            kind = "stream" if st.request_id else "connection"
            raise self._error(req, model, st, started_at, t0, kind, True,
                              f"{exc.message} ({exc.__cause__!r})") from exc
        except httpx2.TransportError as exc:
            raise self._error(req, model, st, started_at, t0, "stream", True,
                              f"stream broke: {type(exc).__name__}: {exc}") from exc
        except anthropic.APIResponseValidationError as exc:
            raise self._error(req, model, st, started_at, t0, "stream", True,
                              f"invalid response: {exc.message}") from exc
        if not st.saw_stop:
            raise self._error(req, model, st, started_at, t0, "stream", True,
                              "stream ended before message_stop (truncated)")
        latency_ms = int((time.monotonic() - t0) * 1000)
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
            latency_ms=latency_ms,
            attempts=1,
            price_source=quote.source,
            usage_estimated=estimated,
            deltas=st.deltas,
        )

    @staticmethod
    def _tokens(req: LLMRequest, st: AttemptState, text: str) -> tuple[tuple[int, int, int, int], bool]:
        u = st.usage
        if "input_tokens" not in u and "output_tokens" not in u:
            # a Messages-compatible server that reports nothing: estimate, and say so
            return (_estimate_tokens(req.prompt_chars()), _estimate_tokens(len(text)), 0, 0), True
        return (
            int(u.get("input_tokens") or 0),
            int(u.get("output_tokens") or 0),
            int(u.get("cache_creation_input_tokens") or 0),
            int(u.get("cache_read_input_tokens") or 0),
        ), False

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
        tokens = (
            int(u.get("input_tokens") or 0),
            int(u.get("output_tokens") or 0) if st.delivered else 0,
            int(u.get("cache_creation_input_tokens") or 0),
            int(u.get("cache_read_input_tokens") or 0),
        )
        quote = self.quote(model)
        cost = quote.cost(*tokens)
        rid = request_id or st.request_id
        record = AttemptRecord(
            model=model,
            attempt=1,
            kind=kind,
            error=message,
            status=status,
            request_id=rid,
            started_at=started_at,
            latency_ms=int((time.monotonic() - t0) * 1000),
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            cache_creation_input_tokens=tokens[2],
            cache_read_input_tokens=tokens[3],
            usage_raw=dict(u),
            cost_usd=cost.usd,
            price_source=quote.source,
        )
        if kind == "spend_limit":
            message = f"spend limit reached, not retrying: {message}"
        return ProviderError(
            message,
            kind=kind,
            retryable=retryable,
            status=status,
            request_id=rid,
            model=model,
            attempt=record,
            retry_after_s=retry_after,
            body=body,
        )

"""The real provider: Anthropic's Messages API through the official SDK (DESIGN §8).

* ``AsyncAnthropic(api_key, base_url, max_retries=0, timeout)`` — the SDK never retries; this
  module does, so that every attempt is visible to the ledger.
* ``client.messages.stream(...)``: text deltas go to ``on_delta`` as they arrive; the final
  message gives ``usage`` (incl. ``cache_creation_input_tokens`` / ``cache_read_input_tokens``),
  kept raw in ``usage_raw``; the request id is the ``request-id`` response header.
* Prompt caching: the system prompt is sent as one text block with
  ``cache_control: {"type": "ephemeral"}``; the ``cache_prefix_blocks``-th content block of the
  first user message gets the second breakpoint (so system + spec are the cached prefix).
* Cost from ``core/llm/prices.json`` (see ``core.llm.pricing``; unknown models → documented
  fallback, ``price_known=False``).

Retry policy (``max_attempts`` per model, exponential backoff with jitter —
``delay = d/2 + U(0, d/2)`` with ``d = min(backoff_max, backoff_base·2^(n-1))`` — unless the
response says ``retry-after-ms`` / ``retry-after`` (seconds or HTTP date), which is honoured
as given, capped at ``max_wait_s``):

=========================  ==================  =========
status / failure           kind                retried
=========================  ==================  =========
408                        timeout             yes
409                        conflict            yes
429                        rate_limit          yes
429 spend limit (below)    spend_limit         **no**
402, billing errors        spend_limit         no
500–599 (not 529)          server              yes
529                        overloaded          yes (then model fallback)
``error`` event mid-stream stream              yes (whole request)
stream cut / no            stream              yes (whole request)
``message_stop``
connect/read failure       connection/timeout  yes
400/413/422                bad_request         no
401 / 403 / 404            auth / permission   no
                           / not_found
=========================  ==================  =========

An explicit ``x-should-retry: false`` header also stops retries (``true`` allows them for
statuses not listed above). A stream retried after text was delivered first sends
``on_delta(STREAM_RESET)`` (``core.llm.base``), then streams the new answer from its start, so
the final text is never duplicated.

**Spend-limit heuristic** (a spend limit does not lift by waiting seconds; retrying only burns
requests): an error is a spend limit when its body has ``error.details.error_code`` in
:data:`SPEND_LIMIT_CODES` (``enforced_spend_limit_reached``, ``contract_spend_limit_reached``,
``linked_organization_spend_limit_reached``, ``linked_organization_billing_unavailable``), or
``error.type == "billing_error"``, or the status is 402, or the status is 400/403/429 and
``error.message`` matches :data:`SPEND_LIMIT_TEXT` (spend limit, credit balance, billing,
usage limit, insufficient credit/funds, monthly spend). Plain rate-limit wording ("would exceed
the rate limit … per minute") does not match.

**Model fallback:** when every attempt on a model failed with a kind in ``fallback_on``
(default: ``overloaded``), the same request goes to the next model in ``fallback_models``; the
response's ``fallback_from`` is then the model originally requested.
"""

from __future__ import annotations

import asyncio
import copy
import email.utils
import os
import random
import re
import time
from typing import Any, Awaitable, Callable, Sequence

import anthropic
import httpx2

from core.llm.base import (
    STREAM_RESET,
    AttemptRecord,
    LLMRequest,
    LLMResponse,
    ProviderError,
    report_attempt,
)
from core.llm.pricing import PriceTable, default_prices
from core.models import utcnow

SPEND_LIMIT_CODES = frozenset(
    {
        "enforced_spend_limit_reached",
        "contract_spend_limit_reached",
        "linked_organization_spend_limit_reached",
        "linked_organization_billing_unavailable",
    }
)
SPEND_LIMIT_TEXT = re.compile(
    r"spend(ing)?[\s_-]*limit|credit[\s_-]*balance|billing|usage[\s_-]*limit|monthly[\s_-]*(spend|usage)"
    r"|insufficient[\s_-]*(credit|funds)|out of credits|purchase (more )?credits",
    re.IGNORECASE,
)
NON_RETRYABLE_STREAM_TYPES = frozenset(
    {"invalid_request_error", "authentication_error", "permission_error", "not_found_error", "billing_error"}
)


def _error_fields(body: Any) -> tuple[str | None, str | None, str]:
    """(error.type, error.details.error_code, error.message) from an API error body."""
    if isinstance(body, dict):
        err = body.get("error") if isinstance(body.get("error"), dict) else body
        details = err.get("details") if isinstance(err.get("details"), dict) else {}
        code = details.get("error_code")
        return (
            err.get("type") if isinstance(err.get("type"), str) else None,
            code if isinstance(code, str) else None,
            str(err.get("message") or ""),
        )
    return None, None, "" if body is None else str(body)


def is_spend_limit(status: int | None, body: Any) -> bool:
    """The spend-limit heuristic (see the module docstring)."""
    etype, code, message = _error_fields(body)
    if code in SPEND_LIMIT_CODES or etype == "billing_error" or status == 402:
        return True
    return status in (400, 403, 429) and bool(SPEND_LIMIT_TEXT.search(message))


def classify(status: int | None, body: Any, headers: Any = None) -> tuple[str, bool]:
    """(kind, retryable) for an HTTP error status (``status < 400``: an in-stream error event)."""
    if is_spend_limit(status, body):
        return "spend_limit", False
    etype, _code, _msg = _error_fields(body)
    if status is None or status < 400:
        return "stream", etype not in NON_RETRYABLE_STREAM_TYPES
    table = {408: ("timeout", True), 409: ("conflict", True), 429: ("rate_limit", True),
             529: ("overloaded", True), 400: ("bad_request", False), 413: ("bad_request", False),
             422: ("bad_request", False), 401: ("auth", False), 403: ("permission", False),
             404: ("not_found", False)}
    if status in table:
        kind, retryable = table[status]
    elif status >= 500:
        kind, retryable = "server", True
    else:
        kind, retryable = "client", False
    should = (headers or {}).get("x-should-retry") if headers is not None else None
    if should == "false":
        retryable = False
    elif should == "true" and kind not in ("bad_request", "auth", "permission", "not_found"):
        retryable = True
    return kind, retryable


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if ra is None:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


class _AttemptState:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.delivered = False
        self.usage: dict[str, Any] = {}
        self.request_id: str | None = None
        self.saw_stop = False
        self.stop_reason: str | None = None
        self.model: str | None = None


class AnthropicProvider:
    name = "anthropic"
    simulated = False

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 600.0,
        connect_timeout: float = 10.0,
        attempt_timeout: float | None = 1800.0,
        max_attempts: int = 4,
        fallback_models: Sequence[str] = (),
        fallback_on: Sequence[str] = ("overloaded",),
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        max_wait_s: float = 300.0,
        prices: PriceTable | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
        client: Any = None,
        **_ignored: Any,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be ≥ 1")
        self.api_key = api_key if api_key is not None else os.environ.get("ANTHROPIC_API_KEY")
        if client is None and not self.api_key:
            raise ProviderError(
                "no Anthropic API key: set ANTHROPIC_API_KEY (or use the offline 'sim' provider)",
                kind="auth",
            )
        self.base_url = base_url
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.attempt_timeout = attempt_timeout
        self.max_attempts = max_attempts
        self.fallback_models = list(fallback_models)
        self.fallback_on = frozenset(fallback_on)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_wait_s = max_wait_s
        self.prices = prices or default_prices()
        self._sleep = sleep
        self._rng = rng or random.Random()
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
        params["messages"] = messages
        return params

    # -- the call -----------------------------------------------------------------------

    def _backoff(self, n: int) -> float:
        d = min(self.backoff_max, self.backoff_base * (2 ** (n - 1)))
        return d / 2 + self._rng.uniform(0, d / 2)

    async def complete(
        self, req: LLMRequest, on_delta: Callable[[str], None] | None = None
    ) -> LLMResponse:
        models = [req.model] + [m for m in self.fallback_models if m != req.model]
        total = 0
        fallback_from: str | None = None
        state = _AttemptState()
        for mi, model in enumerate(models):
            last: ProviderError | None = None
            for n in range(1, self.max_attempts + 1):
                total += 1
                state = _AttemptState()
                try:
                    resp = await self._attempt(req, model, on_delta, state)
                except ProviderError as err:
                    err.attempts = total
                    if err.attempt is not None:
                        err.attempt.attempt = total
                        err.attempt.fallback_from = fallback_from
                    if not err.retryable:
                        raise
                    last = err
                    if n < self.max_attempts:
                        delay = err.retry_after_s if err.retry_after_s is not None else self._backoff(n)
                        delay = min(delay, self.max_wait_s)
                        if err.attempt is not None:
                            err.attempt.retry_in_s = delay
                            report_attempt(err.attempt)
                        if state.delivered and on_delta is not None:
                            on_delta(STREAM_RESET)
                        await self._sleep(delay)
                        continue
                    break
                resp.attempts = total
                resp.fallback_from = fallback_from
                return resp
            assert last is not None
            if last.kind in self.fallback_on and mi + 1 < len(models):
                if last.attempt is not None:
                    last.attempt.error = f"{last.attempt.error} (falling back to {models[mi + 1]})"
                    report_attempt(last.attempt)
                if state.delivered and on_delta is not None:
                    on_delta(STREAM_RESET)
                fallback_from = req.model
                continue
            last.message = f"{last.message} (gave up after {total} attempt{'s' if total != 1 else ''})"
            raise last
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self,
        req: LLMRequest,
        model: str,
        on_delta: Callable[[str], None] | None,
        st: _AttemptState,
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
                            st.usage = event.message.usage.model_dump(mode="json", exclude_none=True)
                        elif etype == "text":
                            if event.text:
                                st.parts.append(event.text)
                                st.delivered = True
                                if on_delta is not None:
                                    on_delta(event.text)
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
        u = st.usage
        tokens = (
            int(u.get("input_tokens") or 0),
            int(u.get("output_tokens") or 0),
            int(u.get("cache_creation_input_tokens") or 0),
            int(u.get("cache_read_input_tokens") or 0),
        )
        cost = self.prices.cost(model, *tokens)
        return LLMResponse(
            text="".join(st.parts),
            model=st.model or model,
            request_id=st.request_id,
            stop_reason=st.stop_reason,
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            cache_creation_input_tokens=tokens[2],
            cache_read_input_tokens=tokens[3],
            usage_raw=dict(u),
            cost_usd=cost.usd,
            latency_ms=latency_ms,
            attempts=1,
            price_known=cost.known,
        )

    def _error(
        self,
        req: LLMRequest,
        model: str,
        st: _AttemptState,
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
        cost = self.prices.cost(model, *tokens)
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

"""What the real providers share: error kinds, backoff, and the retry/fallback loop.

Every HTTP provider (``anthropic``, ``openai``) maps a failure to the same kinds, so the ledger,
the engine and the budget treat a refused Messages call and a refused chat-completions call
alike (``core.llm.base`` lists the kinds):

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
error event mid-stream     stream              yes (whole request)
stream cut / no final      stream              yes (whole request)
event
connect/read failure       connection/timeout  yes
400/413/422                bad_request         no
401 / 403 / 404            auth / permission   no
                           / not_found
=========================  ==================  =========

An explicit ``x-should-retry: false`` header also stops retries (``true`` allows them for
statuses not listed above).

**Spend-limit heuristic** (a spend limit does not lift by waiting seconds; retrying only burns
requests): an error is a spend limit when its body's error code (``error.details.error_code``
on Anthropic, ``error.code`` on OpenAI-compatible servers) is in :data:`SPEND_LIMIT_CODES`, or
``error.type`` is ``billing_error`` / ``insufficient_quota``, or the status is 402, or the status
is 400/403/429 and the message matches :data:`SPEND_LIMIT_TEXT` (spend limit, credit balance,
billing, usage limit, insufficient credit/funds, monthly spend, quota exceeded). Plain
rate-limit wording ("would exceed the rate limit … per minute") does not match.

**Backoff:** ``max_attempts`` per model, exponential with jitter — ``delay = d/2 + U(0, d/2)``
with ``d = min(backoff_max, backoff_base·2^(n-1))`` — unless the response says
``retry-after-ms`` / ``retry-after`` (seconds or HTTP date), which is honoured as given,
capped at ``max_wait_s``. A stream retried after text was delivered first sends
``on_delta(STREAM_RESET)``, then streams the new answer from its start.

**Model fallback:** when every attempt on a model failed with a kind in ``fallback_on``
(default: ``overloaded``), the same request goes to the next model in ``fallback_models``; the
response's ``fallback_from`` is then the model originally requested.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import re
import time
from typing import Any, Awaitable, Callable, Sequence

from core.llm.base import STREAM_RESET, LLMRequest, LLMResponse, ProviderError, report_attempt

SPEND_LIMIT_CODES = frozenset(
    {
        "enforced_spend_limit_reached",
        "contract_spend_limit_reached",
        "linked_organization_spend_limit_reached",
        "linked_organization_billing_unavailable",
        "insufficient_quota",  # OpenAI: "You exceeded your current quota"
        "billing_hard_limit_reached",
    }
)
SPEND_LIMIT_TEXT = re.compile(
    r"spend(ing)?[\s_-]*limit|credit[\s_-]*balance|billing|usage[\s_-]*limit|monthly[\s_-]*(spend|usage)"
    r"|insufficient[\s_-]*(credit|funds|quota)|out of credits|purchase (more )?credits|exceeded your current quota",
    re.IGNORECASE,
)
NON_RETRYABLE_STREAM_TYPES = frozenset(
    {"invalid_request_error", "authentication_error", "permission_error", "not_found_error", "billing_error",
     "exceed_context_size_error"}
)


def error_fields(body: Any) -> tuple[str | None, str | None, str]:
    """(error.type, error code, error.message) from an API error body (either shape)."""
    if isinstance(body, dict):
        err = body.get("error") if isinstance(body.get("error"), dict) else body
        details = err.get("details") if isinstance(err.get("details"), dict) else {}
        code = details.get("error_code")
        if not isinstance(code, str) and isinstance(err.get("code"), str):
            code = err.get("code")
        return (
            err.get("type") if isinstance(err.get("type"), str) else None,
            code if isinstance(code, str) else None,
            str(err.get("message") or ""),
        )
    return None, None, "" if body is None else str(body)


def is_spend_limit(status: int | None, body: Any) -> bool:
    """The spend-limit heuristic (see the module docstring)."""
    etype, code, message = error_fields(body)
    if code in SPEND_LIMIT_CODES or etype in ("billing_error", "insufficient_quota") or status == 402:
        return True
    return status in (400, 403, 429) and bool(SPEND_LIMIT_TEXT.search(message))


def classify(status: int | None, body: Any, headers: Any = None) -> tuple[str, bool]:
    """(kind, retryable) for an HTTP error status (``status < 400``: an in-stream error event)."""
    if is_spend_limit(status, body):
        return "spend_limit", False
    etype, _code, _msg = error_fields(body)
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


class AttemptState:
    """What one attempt saw so far (for the answer, the error record and STREAM_RESET)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.delivered = False
        self.usage: dict[str, Any] = {}
        self.request_id: str | None = None
        self.saw_stop = False
        self.stop_reason: str | None = None
        self.model: str | None = None
        self.deltas = 0

    def deliver(self, text: str, on_delta: Callable[[str], None] | None) -> None:
        self.parts.append(text)
        self.delivered = True
        self.deltas += 1
        if on_delta is not None:
            on_delta(text)


class RetryingProvider:
    """The retry/fallback loop around one attempt (subclasses implement :meth:`_attempt`)."""

    def __init__(
        self,
        *,
        max_attempts: int = 4,
        fallback_models: Sequence[str] = (),
        fallback_on: Sequence[str] = ("overloaded",),
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        max_wait_s: float = 300.0,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be ≥ 1")
        self.max_attempts = max_attempts
        self.fallback_models = list(fallback_models)
        self.fallback_on = frozenset(fallback_on)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_wait_s = max_wait_s
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def _attempt(self, req: LLMRequest, model: str, on_delta: Callable[[str], None] | None,
                       st: AttemptState) -> LLMResponse:  # pragma: no cover - abstract
        raise NotImplementedError

    def _backoff(self, n: int) -> float:
        d = min(self.backoff_max, self.backoff_base * (2 ** (n - 1)))
        return d / 2 + self._rng.uniform(0, d / 2)

    async def complete(
        self, req: LLMRequest, on_delta: Callable[[str], None] | None = None
    ) -> LLMResponse:
        models = [req.model] + [m for m in self.fallback_models if m != req.model]
        total = 0
        fallback_from: str | None = None
        state = AttemptState()
        for mi, model in enumerate(models):
            last: ProviderError | None = None
            for n in range(1, self.max_attempts + 1):
                total += 1
                state = AttemptState()
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

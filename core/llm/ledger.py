"""The LLM ledger: every call, failed ones and every retry attempt too (DESIGN §5 step 3).

``LedgeredProvider(inner, sink, generation=None, campaign_id=None)`` wraps any provider and
writes one ``core.models.LLMCall`` per attempt through ``sink.record_llm_call(call)`` (the
``Store`` is such a sink; :class:`MemorySink` is one for tests):

* an attempt that failed and was retried (or fell back to another model): ``outcome="retried"``,
  with its error, status kind, request id, usage and cost as far as known;
* the final attempt: ``outcome="ok"`` with the response's usage, or ``outcome="error"`` with
  ``error="<kind>: <message>"`` — a spend-limit refusal is ``outcome="refused"``.

Each row says where its price came from (``price_source``: list, configured, local, unknown,
simulated) and whether its token counts are the server's or estimates (``usage_estimated``).
A continuation of a cut-off answer is its own row with ``purpose="continue"``.

``simulated`` comes from the wrapped provider. ``generation`` / ``campaign_id`` default to
``req.metadata["generation"]`` / ``["campaign_id"]``. Retry attempts are collected through the
context-variable hook in ``core.llm.base`` (``report_attempt``), so any provider that retries
internally shows up attempt by attempt.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable, Protocol

from core.llm.base import (
    AttemptRecord,
    LLMRequest,
    LLMResponse,
    ProviderError,
    listen_attempts,
    unlisten_attempts,
    unwrap,
)
from core.models import LLMCall, utcnow


class LedgerSink(Protocol):
    def record_llm_call(self, call: LLMCall) -> int: ...


class MemorySink:
    """A sink that keeps calls in a list (tests, dry runs)."""

    def __init__(self) -> None:
        self.calls: list[LLMCall] = []

    def record_llm_call(self, call: LLMCall) -> int:
        self.calls.append(call.model_copy(update={"id": len(self.calls) + 1}))
        return len(self.calls)

    def llm_calls(self, generation: int | None = None, campaign_id: str | None = None) -> list[LLMCall]:
        return [
            c for c in self.calls
            if (generation is None or c.generation == generation)
            and (campaign_id is None or c.campaign_id == campaign_id)
        ]


def _purpose(p: str) -> str:
    known = ("generate", "continue", "repair", "mutate", "reproduction", "examine", "redteam", "other")
    return p if p in known else "other"


def _usage_json(d: dict) -> str:
    return json.dumps(d, sort_keys=True, default=str)


class LedgeredProvider:
    """Wraps a provider; records every attempt in the ledger (see the module docstring)."""

    def __init__(
        self,
        inner: Any,
        sink: LedgerSink,
        generation: int | None = None,
        campaign_id: str | None = None,
    ) -> None:
        self.inner = inner
        self.sink = sink
        self.generation = generation
        self.campaign_id = campaign_id

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def simulated(self) -> bool:
        return bool(getattr(self.inner, "simulated", False))

    def _price_source(self, model: str) -> str:
        """For attempts the provider did not describe (an error before any answer)."""
        quote = getattr(unwrap(self.inner), "quote", None)
        try:
            return quote(model).source if quote is not None else "list"
        except Exception:  # noqa: BLE001 - a ledger row must be written whatever the price book says
            return "unknown"

    def _ids(self, req: LLMRequest) -> tuple[int | None, str | None]:
        gen = self.generation if self.generation is not None else req.metadata.get("generation")
        camp = self.campaign_id if self.campaign_id is not None else req.metadata.get("campaign_id")
        return (int(gen) if gen is not None else None), (str(camp) if camp is not None else None)

    def _from_attempt(self, req: LLMRequest, a: AttemptRecord, outcome: str) -> LLMCall:
        gen, camp = self._ids(req)
        return LLMCall(
            generation=gen,
            campaign_id=camp,
            provider=self.name,
            model=a.model,
            purpose=_purpose(req.purpose),  # type: ignore[arg-type]
            request_id=a.request_id,
            started_at=a.started_at,
            latency_ms=a.latency_ms,
            input_tokens=a.input_tokens,
            output_tokens=a.output_tokens,
            cache_creation_input_tokens=a.cache_creation_input_tokens,
            cache_read_input_tokens=a.cache_read_input_tokens,
            usage_json=_usage_json(a.usage_raw),
            cost_usd=a.cost_usd,
            outcome=outcome,  # type: ignore[arg-type]
            error=f"{a.kind}: {a.error}" if a.kind else a.error,
            fallback_from=a.fallback_from,
            simulated=self.simulated,
            price_source="simulated" if self.simulated else a.price_source,
            usage_estimated=a.usage_estimated,
        )

    async def complete(
        self, req: LLMRequest, on_delta: Callable[[str], None] | None = None
    ) -> LLMResponse:
        started_at = utcnow()

        def on_attempt(a: AttemptRecord) -> None:
            self.sink.record_llm_call(self._from_attempt(req, a, "retried"))

        token = listen_attempts(on_attempt)
        try:
            resp = await self.inner.complete(req, on_delta)
        except ProviderError as err:
            a = err.attempt or AttemptRecord(
                model=err.model or req.model, attempt=err.attempts, started_at=started_at,
                price_source=self._price_source(err.model or req.model),
            )
            a.kind, a.error = err.kind, err.message
            outcome = "refused" if err.kind == "spend_limit" else "error"
            self.sink.record_llm_call(self._from_attempt(req, a, outcome))
            raise
        except (Exception, asyncio.CancelledError) as exc:  # a bug or a cancellation: still ledgered
            a = AttemptRecord(model=req.model, attempt=1, kind="internal",
                              error=f"{type(exc).__name__}: {exc}", started_at=started_at,
                              price_source=self._price_source(req.model))
            self.sink.record_llm_call(self._from_attempt(req, a, "error"))
            raise
        finally:
            unlisten_attempts(token)
        gen, camp = self._ids(req)
        self.sink.record_llm_call(
            LLMCall(
                generation=gen,
                campaign_id=camp,
                provider=self.name,
                model=resp.model,
                purpose=_purpose(req.purpose),  # type: ignore[arg-type]
                request_id=resp.request_id,
                started_at=started_at,
                latency_ms=resp.latency_ms,
                input_tokens=resp.input_tokens,
                output_tokens=resp.output_tokens,
                cache_creation_input_tokens=resp.cache_creation_input_tokens,
                cache_read_input_tokens=resp.cache_read_input_tokens,
                usage_json=_usage_json(resp.usage_raw),
                cost_usd=resp.cost_usd,
                outcome="ok",
                error=None,
                fallback_from=resp.fallback_from,
                simulated=self.simulated,
                price_source="simulated" if self.simulated else resp.price_source,
                usage_estimated=resp.usage_estimated,
            )
        )
        return resp

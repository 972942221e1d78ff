"""The LLM provider protocol (DESIGN §8).

Every provider — ``anthropic`` (the Anthropic API or any Messages-compatible server),
``openai`` (any OpenAI-compatible chat-completions server), ``sim`` (offline, simulated),
``replay`` (answers from a cassette) — implements :class:`Provider`:

``await provider.complete(req, on_delta) -> LLMResponse``

* ``req`` is an :class:`LLMRequest`. Only ``model``, ``system`` and ``messages`` say *what* is
  asked (they form the replay key, see ``core.llm.replay``); ``max_tokens``, ``purpose``,
  ``cache_prefix_blocks`` and ``metadata`` say *how*. ``metadata`` carries ``seed``,
  ``generation``, ``attempt``, ``campaign_id`` for providers that want them (the sim
  provider reads ``seed``).
* ``on_delta`` receives text as it streams. When a provider retries a request after part of
  the answer was already streamed (a stream broke mid-way), it first calls
  ``on_delta(STREAM_RESET)``: consumers must then discard everything received so far, because
  the whole answer is streamed again from the start. ``STREAM_RESET`` is an *empty* ``str``
  subclass instance, so a consumer that ignores it merely keeps stale text; test for it with
  ``chunk is STREAM_RESET`` (or use :class:`DeltaBuffer`, which does this).
* ``LLMResponse.stop_reason`` uses one vocabulary for every provider: ``end_turn``,
  ``max_tokens`` (the answer was cut off at the output limit: :attr:`LLMResponse.truncated`),
  ``stop_sequence``, ``tool_use``, ``refusal``, or ``other:<the server's word>``.
* A request whose last message is the assistant's (``purpose="continue"``) asks the model to
  continue that partial answer: the answer returned is only the new text. Providers send it
  as a prefill (Messages API, llama.cpp, Ollama, LM Studio), with vLLM's
  ``continue_final_message`` when configured, or — where a server refuses prefills — as an
  instruction to go on exactly where the text stops (:func:`continuation_as_instruction`).
* Optional methods a provider may have (wrappers expose the inner provider as ``inner``;
  :func:`unwrap` finds it): ``quote(model) -> core.llm.pricing.Quote``,
  ``async context_window(model) -> (tokens | None, source)``, ``async list_models()``.
* Failures raise :class:`ProviderError` with a ``kind`` (``spend_limit``, ``rate_limit``,
  ``overloaded``, ``server``, ``stream``, ``timeout``, ``connection``, ``bad_request``,
  ``auth``, ``permission``, ``not_found``, ``cassette_miss``, …) and ``retryable``.

Retry attempts inside a provider are reported to whoever listens through
:func:`report_attempt` (a context-variable hook, so the protocol stays one method):
``core.llm.ledger.LedgeredProvider`` listens and writes one ledger row per attempt.
"""

from __future__ import annotations

import contextvars
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

from core.models import utcnow

# --- stream reset sentinel -------------------------------------------------------------


class _StreamReset(str):
    """Type of :data:`STREAM_RESET` (an empty string that is recognisably not text)."""

    __slots__ = ()

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return "STREAM_RESET"


STREAM_RESET: str = _StreamReset("")
"""Passed to ``on_delta`` when partial streamed text must be discarded (whole-request retry)."""


def is_reset(chunk: str) -> bool:
    return chunk is STREAM_RESET or isinstance(chunk, _StreamReset)


class DeltaBuffer:
    """An ``on_delta`` consumer that honours :data:`STREAM_RESET`.

    ``buf = DeltaBuffer(); await provider.complete(req, buf)``; ``buf.text`` is the text of
    the current attempt, ``buf.resets`` how many times a partial answer was thrown away and
    ``buf.calls`` how many text chunks arrived in total.
    """

    def __init__(self, forward: Callable[[str], None] | None = None) -> None:
        self._parts: list[str] = []
        self.resets = 0
        self.calls = 0
        self.forward = forward

    def __call__(self, chunk: str) -> None:
        if is_reset(chunk):
            self._parts.clear()
            self.resets += 1
        else:
            self._parts.append(chunk)
            self.calls += 1
        if self.forward is not None:
            self.forward(chunk)

    @property
    def text(self) -> str:
        return "".join(self._parts)


# --- request / response ----------------------------------------------------------------

PURPOSES = ("generate", "continue", "repair", "mutate", "examine", "redteam", "other")
STOP_REASONS = ("end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal", "model_context_window_exceeded")
# Cut off, not finished: at the output limit, or (Messages API) when the context window filled up.
TRUNCATION_STOPS = frozenset({"max_tokens", "model_context_window_exceeded"})


@dataclass
class LLMRequest:
    model: str
    system: str
    # [{"role": "user"|"assistant", "content": str | [{"type": "text", "text": ...}, ...]}]
    messages: list[dict]
    max_tokens: int = 32000
    purpose: str = "generate"  # generate | continue | repair | mutate | examine | redteam | other
    # How many leading content blocks of the first user message are the stable, cacheable
    # prefix (the system prompt is always part of it). 0 disables caching.
    cache_prefix_blocks: int = 1
    # seed, generation, attempt, campaign_id — NOT part of the replay key.
    metadata: dict = field(default_factory=dict)

    def with_model(self, model: str) -> "LLMRequest":
        return LLMRequest(
            model=model,
            system=self.system,
            messages=self.messages,
            max_tokens=self.max_tokens,
            purpose=self.purpose,
            cache_prefix_blocks=self.cache_prefix_blocks,
            metadata=dict(self.metadata),
        )

    def text_blocks(self) -> Iterator[tuple[int, int, str]]:
        """(message index, block index, text) for every text block (a str content is block 0)."""
        for mi, msg in enumerate(self.messages):
            content = msg.get("content")
            if isinstance(content, str):
                yield mi, 0, content
            else:
                for bi, block in enumerate(content or []):
                    if isinstance(block, dict) and block.get("type", "text") == "text":
                        yield mi, bi, str(block.get("text", ""))

    def prompt_chars(self) -> int:
        return len(self.system) + sum(len(t) for _, _, t in self.text_blocks())


@dataclass
class LLMResponse:
    text: str
    model: str
    request_id: str | None
    stop_reason: str | None
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    usage_raw: dict
    cost_usd: float
    latency_ms: int
    attempts: int
    fallback_from: str | None = None
    # where cost_usd came from (core.llm.pricing): list | configured | local | unknown
    # (unknown: cost_usd is 0 and must be shown as unknown, never as free)
    price_source: str = "list"
    # True when the server reported no usage and the token counts are estimates
    usage_estimated: bool = False
    # text chunks delivered to on_delta for this answer (a measure of streaming)
    deltas: int = 0

    @property
    def prompt_tokens(self) -> int:
        """All input tokens: uncached + cache writes + cache reads."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    @property
    def price_known(self) -> bool:
        return self.price_source != "unknown"

    @property
    def truncated(self) -> bool:
        """The answer was cut off (output limit or a full context window): not a format error."""
        return self.stop_reason in TRUNCATION_STOPS


@runtime_checkable
class Provider(Protocol):
    name: str  # "anthropic" | "sim" | "replay" | ...
    simulated: bool

    async def complete(
        self, req: LLMRequest, on_delta: Callable[[str], None] | None = None
    ) -> LLMResponse: ...


# --- errors ----------------------------------------------------------------------------


@dataclass
class AttemptRecord:
    """One attempt of a request inside a provider (used for the ledger)."""

    model: str
    attempt: int
    kind: str | None = None  # error kind; None for a successful attempt
    error: str | None = None
    status: int | None = None
    request_id: str | None = None
    started_at: str = field(default_factory=utcnow)
    latency_ms: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    usage_raw: dict = field(default_factory=dict)
    cost_usd: float = 0.0
    fallback_from: str | None = None
    retry_in_s: float | None = None
    price_source: str = "list"
    usage_estimated: bool = False


class ProviderError(Exception):
    """A provider failure. ``kind`` names the class; ``retryable`` says whether the same
    request may succeed if sent again (already-exhausted retries are not retried again)."""

    def __init__(
        self,
        message: str,
        *,
        kind: str = "other",
        retryable: bool = False,
        status: int | None = None,
        request_id: str | None = None,
        model: str | None = None,
        attempts: int = 1,
        attempt: AttemptRecord | None = None,
        retry_after_s: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.retryable = retryable
        self.status = status
        self.request_id = request_id
        self.model = model
        self.attempts = attempts
        self.attempt = attempt  # the last (failed) attempt, for the ledger
        self.retry_after_s = retry_after_s
        self.body = body

    def __str__(self) -> str:
        bits = [self.kind]
        if self.status is not None:
            bits.append(str(self.status))
        if self.request_id:
            bits.append(f"request-id {self.request_id}")
        return f"[{' '.join(bits)}] {self.message}"


# --- attempt reporting (context-variable hook) -----------------------------------------

_attempt_listener: contextvars.ContextVar[Callable[[AttemptRecord], None] | None] = (
    contextvars.ContextVar("cambrian_llm_attempt_listener", default=None)
)


def report_attempt(record: AttemptRecord) -> None:
    """Called by providers for every attempt that failed and is being retried (or falls back
    to another model). The final outcome is the provider's return value or raised error."""
    listener = _attempt_listener.get()
    if listener is not None:
        listener(record)


def listen_attempts(listener: Callable[[AttemptRecord], None] | None) -> contextvars.Token:
    return _attempt_listener.set(listener)


def unlisten_attempts(token: contextvars.Token) -> None:
    _attempt_listener.reset(token)


# --- factory ---------------------------------------------------------------------------

PROVIDERS = ("sim", "anthropic", "openai", "replay")
DEFAULT_MODELS = {
    "anthropic": "claude-sonnet-4-6",
    "sim": "sim-1",
}


def default_provider_name() -> str:
    """``anthropic`` when ``ANTHROPIC_API_KEY`` is set, else the offline ``sim`` provider."""
    return "anthropic" if os.environ.get("ANTHROPIC_API_KEY") else "sim"


def default_model(provider_name: str) -> str | None:
    """The model used when none is given; None for ``openai`` (servers name their own models:
    ``core.llm.endpoints.check_connection`` lists them)."""
    if provider_name == "openai":
        return None
    return DEFAULT_MODELS.get(provider_name, DEFAULT_MODELS["anthropic"])


def unwrap(provider: Any) -> Any:
    """The innermost provider behind wrappers (ledger, budget, recording) that hold ``inner``."""
    seen = 0
    while hasattr(provider, "inner") and seen < 16:
        provider = provider.inner
        seen += 1
    return provider


CONTINUE_INSTRUCTION = (
    "Your answer above was cut off at the output limit. Continue it exactly where it stops: "
    "do not repeat anything already written, do not restart, add no preamble."
)


def continuation_as_instruction(req: LLMRequest) -> LLMRequest:
    """A continue request for servers that refuse a final assistant message (prefill): the
    partial answer stays as the assistant's turn and a user turn asks to go on from its end."""
    messages = list(req.messages)
    if not messages or messages[-1].get("role") != "assistant":
        return req
    messages.append({"role": "user", "content": CONTINUE_INSTRUCTION})
    return LLMRequest(model=req.model, system=req.system, messages=messages, max_tokens=req.max_tokens,
                      purpose=req.purpose, cache_prefix_blocks=req.cache_prefix_blocks,
                      metadata=dict(req.metadata, continuation_mode="instruct"))


def message_text(content: Any) -> str:
    """The text of a message's content: a string, or its text blocks joined by blank lines."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, dict) and block.get("type", "text") == "text":
            parts.append(str(block.get("text", "")))
    return "\n\n".join(parts)


def make_provider(name: str, **kw: Any) -> Provider:
    """Build a provider by name. ``anthropic`` → :class:`AnthropicProvider` (kw: api_key,
    base_url, timeout, max_attempts, fallback_models, …); ``openai`` →
    :class:`OpenAIProvider` (kw: base_url, api_key_env, context_window, …); ``sim`` →
    ``core.llm.sim.SimProvider`` (imported lazily); ``replay`` → :class:`ReplayProvider`
    (kw: ``path`` or ``cassette``)."""
    if name == "anthropic":
        from core.llm.anthropic_provider import AnthropicProvider

        return AnthropicProvider(**kw)
    if name == "openai":
        from core.llm.openai_provider import OpenAIProvider

        return OpenAIProvider(**kw)
    if name == "sim":
        from core.llm.sim import SimProvider  # written separately, against this protocol

        return SimProvider(**kw)
    if name == "replay":
        from core.llm.replay import ReplayProvider

        path = kw.pop("path", None) or kw.pop("cassette", None)
        if path is None:
            raise ValueError("the replay provider needs a cassette: make_provider('replay', path=FILE)")
        return ReplayProvider(path, **kw)
    raise ValueError(f"unknown provider {name!r} (expected one of {', '.join(PROVIDERS)})")

"""LLM providers (DESIGN §8): the protocol in ``base``, ``anthropic`` (real), ``sim`` (offline,
simulated), ``replay`` (cassettes), the ledger wrapper, prices and a fake Messages API."""

from core.llm.base import (
    STREAM_RESET,
    AttemptRecord,
    DeltaBuffer,
    LLMRequest,
    LLMResponse,
    Provider,
    ProviderError,
    default_model,
    default_provider_name,
    is_reset,
    make_provider,
)

__all__ = [
    "STREAM_RESET",
    "AttemptRecord",
    "DeltaBuffer",
    "LLMRequest",
    "LLMResponse",
    "Provider",
    "ProviderError",
    "default_model",
    "default_provider_name",
    "is_reset",
    "make_provider",
]

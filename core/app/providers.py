"""The LLM providers a campaign or an evolution run can use, as data for the forms.

A provider brings its label, whether it is simulated, the environment it needs, and its
own settings fields (the replay provider's cassette; an OpenAI-compatible server's base
URL): the forms show a provider's fields when it is chosen and pass their values to the
settings under the field's key. Adding a provider is one entry here (plus the provider
itself in ``core.llm`` and its name in the settings models).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from core.app.forms import FieldSpec


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    label: str
    simulated: bool = False
    needs_env: str | None = None  # an environment variable it cannot work without
    fields: tuple[FieldSpec, ...] = ()  # provider-specific settings (keys of the settings models)
    evolution: bool = True  # offered for evolution runs too

    @property
    def default_model(self) -> str:
        from core.llm.base import default_model

        return default_model(self.name)

    def problem(self, environ: dict[str, str] | None = None,
                settings: dict[str, object] | None = None) -> str | None:
        """Why it cannot be used here, or None. A server of one's own (a base URL: llama.cpp
        speaks the Messages API too) needs no key."""
        env = os.environ if environ is None else environ
        if (settings or {}).get("base_url") or (self.name == "anthropic" and env.get("ANTHROPIC_BASE_URL")):
            return None
        if self.needs_env and not env.get(self.needs_env):
            return f"provider {self.name} needs {self.needs_env} in the environment (use sim offline)"
        return None


PROVIDERS: dict[str, ProviderInfo] = {p.name: p for p in (
    ProviderInfo("sim", "sim (offline)", simulated=True),
    ProviderInfo("anthropic", "anthropic", needs_env="ANTHROPIC_API_KEY", fields=(
        FieldSpec("base_url", "Base URL", "text", required=False, wide=True,
                  placeholder="default: ANTHROPIC_BASE_URL or the API (llama.cpp: http://127.0.0.1:8080)"),)),
    ProviderInfo("openai", "openai-compatible server", fields=(
        FieldSpec("base_url", "Base URL", "text", required=True, wide=True,
                  placeholder="http://127.0.0.1:8080/v1 (llama.cpp) · :11434/v1 Ollama · :8000/v1 vLLM"),
        FieldSpec("api_key_env", "Key variable", "text", required=False,
                  placeholder="none for a local server"),
        FieldSpec("context_window", "Context window", "int", required=False, lo=256,
                  placeholder="what the server says"))),
    ProviderInfo("replay", "replay (cassette)", fields=(
        FieldSpec("cassette", "Cassette", "path", required=True, placeholder="cassette file (.jsonl)",
                  wide=True),)),
)}


def default_provider() -> str:
    from core.llm.base import default_provider_name

    return default_provider_name()


def provider(name: str) -> ProviderInfo:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown provider {name!r} (known: {', '.join(PROVIDERS)})") from None

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


# The fields a model server needs (anthropic, openai): the settings models' keys.
_KEY_VARIABLE = "Key variable"
_WINDOW = FieldSpec("context_window", "Context window", "int", required=False, lo=256,
                    placeholder="what the server says",
                    help="tokens; empty: what the server says (llama.cpp /props, vLLM, LM Studio, Ollama)")

PROVIDERS: dict[str, ProviderInfo] = {p.name: p for p in (
    ProviderInfo("sim", "sim (offline)", simulated=True),
    ProviderInfo("anthropic", "anthropic", needs_env="ANTHROPIC_API_KEY", fields=(
        FieldSpec("base_url", "Base URL", "url", required=False, wide=True,
                  placeholder="default: ANTHROPIC_BASE_URL or the API (llama.cpp: http://127.0.0.1:8080)"),
        FieldSpec("api_key_env", _KEY_VARIABLE, "text", required=False,
                  placeholder="ANTHROPIC_API_KEY", help="the name of the variable holding the key (never stored)"),
        _WINDOW)),
    ProviderInfo("openai", "openai-compatible", fields=(
        FieldSpec("base_url", "Base URL", "url", required=True, wide=True,
                  placeholder="http://127.0.0.1:8080/v1 (llama.cpp) · :11434/v1 Ollama · :8000/v1 vLLM"),
        FieldSpec("api_key_env", _KEY_VARIABLE, "text", required=False,
                  placeholder="none for a local server", help="the name of the variable holding the key"),
        _WINDOW,
        FieldSpec("continuation", "Continuation", "choice", required=False,
                  choices=(("by server", ""), ("prefill", "prefill"),
                           ("continue_final_message (vLLM)", "continue_final_message"),
                           ("instruct (OpenAI API)", "instruct")),
                  help="how a cut-off answer is continued (docs/providers.md)"))),
    ProviderInfo("replay", "replay (cassette)", fields=(
        FieldSpec("cassette", "Cassette", "path", required=True, placeholder="cassette file (.jsonl)",
                  wide=True),)),
)}

# Providers that talk to a model server ("Test connection" checks them).
SERVER_PROVIDERS = ("anthropic", "openai")


@dataclass(frozen=True)
class ServerPreset:
    """A known server as the forms offer it: choosing it fills provider and fields."""

    name: str
    label: str
    provider: str
    values: dict[str, str]  # field key -> value
    notes: str


def server_presets() -> tuple[ServerPreset, ...]:
    """Ollama, vLLM, llama.cpp server (both APIs), LM Studio, the OpenAI API
    (``core.llm.endpoints.PRESETS``)."""
    from core.llm.endpoints import PRESETS

    out = []
    for p in PRESETS.values():
        values = {"base_url": p.base_url, "api_key_env": p.api_key_env or ""}
        if p.provider == "openai":
            values["continuation"] = "" if p.continuation == "prefill" else p.continuation
        out.append(ServerPreset(p.name, f"{p.title} ({p.provider})", p.provider, values,
                                f"start: {p.start} — {p.notes}"))
    return tuple(out)


def default_provider() -> str:
    from core.llm.base import default_provider_name

    return default_provider_name()


def provider(name: str) -> ProviderInfo:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown provider {name!r} (known: {', '.join(PROVIDERS)})") from None

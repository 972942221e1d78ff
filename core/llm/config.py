"""Where a provider's settings meet the provider: one factory for the engine, the CLI, the
evolution loop, doctor, the forms — and the LLM gateway when it lands (it forwards to the
provider a campaign's settings describe).

A provider is described by ``provider`` (sim | anthropic | openai | replay), ``base_url``,
``api_key_env`` (the *name* of the variable holding the key; keys are never stored),
``context_window`` (tokens; None: ask the server), ``continuation`` (openai: prefill |
continue_final_message | instruct) and ``cassette`` (replay). :func:`provider_from` builds it
from any object or mapping with those fields (``CampaignSettings``, ``EvolutionSettings``).

**Model references** let one evolution run mix providers in its model dimension: a model
choice may name its provider and server, ``[provider:]model[@base_url]`` —
``claude-sonnet-4-6``, ``anthropic:claude-haiku-4-5``, ``openai:qwen2.5-coder:7b@http://gpu:11434/v1``.
Without a prefix the run's provider is meant; without ``@`` its base URL when the provider is
the run's own, else the provider's default. Only a known provider name counts as a prefix, so
Ollama's ``name:tag`` models stay whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from core.llm.base import PROVIDERS, make_provider

PROVIDER_FIELDS = ("base_url", "api_key_env", "context_window", "continuation")


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def provider_kwargs(settings: Any) -> dict[str, Any]:
    """``make_provider`` keyword arguments from settings (only what is set)."""
    name = _get(settings, "provider")
    kw: dict[str, Any] = {}
    if name == "replay":
        kw["cassette"] = _get(settings, "cassette")
        return kw
    if name in ("anthropic", "openai"):
        for key in PROVIDER_FIELDS:
            value = _get(settings, key)
            if value is not None and not (key == "continuation" and name != "openai"):
                kw[key] = value
    return kw


def provider_from(settings: Any, **extra: Any) -> Any:
    """The provider the settings describe (raises ProviderError/ValueError with the reason)."""
    return make_provider(_get(settings, "provider"), **provider_kwargs(settings), **extra)


_AT_URL = re.compile(r"@[A-Za-z][A-Za-z0-9+.-]*://(?!.*@[A-Za-z][A-Za-z0-9+.-]*://)")  # the last "@scheme://"


@dataclass(frozen=True)
class ModelRef:
    provider: str
    model: str
    base_url: str | None

    @classmethod
    def parse(cls, text: str, *, provider: str, base_url: str | None = None) -> "ModelRef":
        """See the module docstring; ``provider``/``base_url`` are the run's."""
        raw = text.strip()
        if not raw:
            raise ValueError("empty model reference")
        ref_provider = provider
        head, sep, rest = raw.partition(":")
        if sep and head in PROVIDERS:
            ref_provider, raw = head, rest
        url = None
        server = _AT_URL.search(raw)  # any scheme: "m@ftp://host" is a bad server, not a model's name
        if server is not None:
            from core.llm.urls import BadBaseURL, normalize

            raw, url = raw[:server.start()], raw[server.start() + 1:]
            try:
                normalize(url)
            except BadBaseURL as exc:
                raise ValueError(f"model reference {text!r}: {exc}") from None
        if not raw:
            raise ValueError(f"model reference {text!r} names no model")
        if url is None and ref_provider == provider:
            url = base_url
        return cls(ref_provider, raw, url)

    def settings(self, base: Mapping[str, Any]) -> dict[str, Any]:
        """Campaign settings for this model: ``base`` with provider, model and server replaced
        (a key variable and window that belong to another provider are dropped)."""
        out = dict(base)
        same_provider = out.get("provider") == self.provider
        same_server = same_provider and out.get("base_url") == self.base_url
        out.update(provider=self.provider, model=self.model, base_url=self.base_url)
        if not same_provider:
            out.update(api_key_env=None, continuation=None)
        if not same_server:
            out.update(context_window=None)
        return out

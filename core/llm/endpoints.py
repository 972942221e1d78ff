"""Model servers: presets, what a server says about itself, and the connectivity check.

* :data:`PRESETS` — Ollama, vLLM, llama.cpp server, LM Studio, the OpenAI API: the provider,
  base URL and notes each needs (docs/providers.md shows them; the forms offer them).
* :func:`probe_context_window` — the context window a server says a model has:
  llama.cpp ``GET /props`` (``default_generation_settings.n_ctx``), vLLM ``GET /v1/models``
  (``max_model_len``), LM Studio ``GET /api/v0/models/{model}`` (``loaded_context_length``,
  else ``max_context_length``), Ollama ``POST /api/show`` (``model_info.*.context_length``,
  lowered to the model's ``num_ctx`` parameter when it sets one). The first that answers wins.
* :func:`list_models` — ``GET {base}/models`` (OpenAI-compatible) or ``GET /v1/models``
  (Messages-compatible; both answer ``{"data": [{"id": ...}]}``), else Ollama's ``/api/tags``.
* :func:`check_connection` — the check behind ``cambrian doctor --provider … --base-url …``
  and the forms' "Test connection": reaches the server, lists its models, learns the context
  window and says how calls will be priced. It never raises: the report says what failed and
  how to fix it. :func:`check_connection_sync` runs it from a thread (doctor, TUI workers).

Probes use plain HTTP (httpx2) with short timeouts; an endpoint a server lacks just answers
404 and the next probe is tried.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx2

from core.llm import urls

PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    provider: str  # openai | anthropic
    base_url: str
    api_key_env: str | None  # None: no key needed
    start: str  # how people start the server
    notes: str
    continuation: str = "prefill"  # prefill | continue_final_message | instruct


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("llamacpp", "llama.cpp server", "openai", "http://127.0.0.1:8080/v1", None,
           "llama-server -m MODEL.gguf --ctx-size 16384 --port 8080",
           "Context window from /props. The same server speaks the Messages API: provider anthropic, "
           "base URL http://127.0.0.1:8080."),
    Preset("llamacpp-messages", "llama.cpp server (Messages API)", "anthropic", "http://127.0.0.1:8080", None,
           "llama-server -m MODEL.gguf --ctx-size 16384 --port 8080",
           "llama.cpp's Anthropic-compatible /v1/messages; context window from /props."),
    Preset("ollama", "Ollama", "openai", "http://127.0.0.1:11434/v1", None,
           "ollama serve   (then: ollama pull qwen2.5-coder:7b)",
           "Model names as in `ollama list`. Ollama runs a model with its num_ctx, often far below the "
           "model's maximum: set OLLAMA_CONTEXT_LENGTH on the server, or --context-window here."),
    Preset("vllm", "vLLM", "openai", "http://127.0.0.1:8000/v1", None,
           "vllm serve MODEL --max-model-len 32768",
           "Context window from /v1/models (max_model_len). Continuations use vLLM's "
           "continue_final_message.", continuation="continue_final_message"),
    Preset("lmstudio", "LM Studio", "openai", "http://127.0.0.1:1234/v1", None,
           "lms server start   (load a model in the app or with `lms load`)",
           "Context window from /api/v0/models (loaded_context_length)."),
    Preset("openai", "OpenAI API", "openai", "https://api.openai.com/v1", "OPENAI_API_KEY",
           "(hosted)",
           "Prices are not built in: add the model's price to CAMBRIAN_HOME/prices.toml, or its calls are "
           "recorded at an unknown price.", continuation="instruct"),
)}


def default_continuation(base_url: str | None) -> str:
    """How the openai provider continues a cut-off answer at this server, by default."""
    return "instruct" if urls.is_openai_api(base_url) else "prefill"


# --- HTTP helpers ----------------------------------------------------------------------------


def _headers(provider: str, api_key: str | None) -> dict[str, str]:
    if provider == "anthropic":
        h = {"anthropic-version": "2023-06-01"}
        if api_key:
            h["x-api-key"] = api_key
        return h
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


async def _get_json(client: httpx2.AsyncClient, url: str, headers: dict[str, str]) -> Any:
    r = await client.get(url, headers=headers)
    if r.status_code != 200:
        return None
    try:
        return r.json()
    except ValueError:
        return None


def _positive_int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


# --- context window --------------------------------------------------------------------------


async def probe_context_window(base_url: str | None, model: str, *, api_key: str | None = None,
                               provider: str = "openai",
                               timeout: float = PROBE_TIMEOUT_S) -> tuple[int | None, str]:
    """(tokens, source) — what the server says the model's context window is, or (None, why)."""
    if not base_url or urls.is_openai_api(base_url) or urls.is_anthropic_api(base_url):
        return None, "a hosted API: configure the window if needed"
    root = urls.root_of(base_url)
    models_url = (urls.normalize(base_url) + "/models") if provider == "openai" else root + "/v1/models"
    headers = _headers(provider, api_key)
    try:
        async with httpx2.AsyncClient(timeout=timeout) as client:
            props = await _get_json(client, root + "/props", headers)
            if isinstance(props, dict):
                gen = props.get("default_generation_settings")
                n = _positive_int(gen.get("n_ctx")) if isinstance(gen, dict) else None
                n = n or _positive_int(props.get("n_ctx"))
                if n:
                    return n, f"llama.cpp {root}/props"
            listing = await _get_json(client, models_url, headers)
            for entry in (listing.get("data") or []) if isinstance(listing, dict) else []:
                if isinstance(entry, dict) and entry.get("id") == model and _positive_int(entry.get("max_model_len")):
                    return entry["max_model_len"], f"vLLM {models_url} (max_model_len)"
            lms = await _get_json(client, f"{root}/api/v0/models/{model}", headers)
            if isinstance(lms, dict):
                n = _positive_int(lms.get("loaded_context_length")) or _positive_int(lms.get("max_context_length"))
                if n:
                    return n, f"LM Studio {root}/api/v0/models"
            r = await client.post(root + "/api/show", json={"model": model}, headers=headers)
            show = r.json() if r.status_code == 200 else None
            if isinstance(show, dict):
                n = _ollama_window(show)
                if n:
                    return n, f"Ollama {root}/api/show"
    except (httpx2.HTTPError, ValueError, OSError) as exc:
        return None, f"could not ask the server: {type(exc).__name__}: {exc}"
    return None, "the server does not say: set --context-window"


def _ollama_window(show: dict) -> int | None:
    info = show.get("model_info") if isinstance(show.get("model_info"), dict) else {}
    n = next((_positive_int(v) for k, v in info.items() if k.endswith(".context_length") and _positive_int(v)), None)
    m = re.search(r"(?m)^\s*num_ctx\s+(\d+)", str(show.get("parameters") or ""))
    if m:
        num_ctx = int(m.group(1))
        n = min(n, num_ctx) if n else num_ctx
    return n


# --- models ----------------------------------------------------------------------------------


class ServerProblem(Exception):
    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


async def list_models(provider: str, base_url: str | None, api_key: str | None = None, *,
                      timeout: float = PROBE_TIMEOUT_S) -> list[str]:
    """The model ids the server offers (raises :class:`ServerProblem` when it cannot say)."""
    if provider == "openai":
        base = urls.normalize(base_url or "https://api.openai.com/v1")
        url = base + "/models"
    else:
        base = urls.normalize(base_url or "https://api.anthropic.com")
        url = urls.root_of(base) + "/v1/models"
    headers = _headers(provider, api_key)
    try:
        async with httpx2.AsyncClient(timeout=timeout) as client:
            r = await client.get(url, headers=headers)
            if r.status_code in (401, 403):
                raise ServerProblem(f"{url} refused the key ({r.status_code}): {r.text[:200]}",
                                    "check the API key variable")
            data = r.json() if r.status_code == 200 else None
            if isinstance(data, dict) and isinstance(data.get("data"), list):
                return [str(m["id"]) for m in data["data"] if isinstance(m, dict) and m.get("id")]
            tags = await _get_json(client, urls.root_of(base) + "/api/tags", headers)
            if isinstance(tags, dict) and isinstance(tags.get("models"), list):
                return [str(m.get("name") or m.get("model")) for m in tags["models"] if isinstance(m, dict)]
            raise ServerProblem(f"{url} answered {r.status_code} without a model list: {r.text[:200]}",
                                "is this the server's API base URL? (OpenAI-compatible ones usually end in /v1)")
    except httpx2.HTTPError as exc:
        raise ServerProblem(f"cannot reach {url}: {type(exc).__name__}: {exc}",
                            "is the server running and listening on that address?") from exc
    except ValueError as exc:
        raise ServerProblem(f"{url} did not answer JSON: {exc}") from exc


# --- the connectivity check ----------------------------------------------------------------


@dataclass
class ConnectionReport:
    provider: str
    base_url: str | None
    ok: bool
    models: list[str] = field(default_factory=list)
    model: str | None = None  # the model checked (given, or the server's only one)
    context_window: int | None = None
    context_source: str = ""
    local: bool = False
    api_key_env: str | None = None
    api_key_set: bool = False
    price_source: str = "unknown"
    price_note: str = ""
    error: str | None = None
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The report for people (doctor, the forms)."""
        where = self.base_url or ("the Anthropic API" if self.provider == "anthropic" else "the OpenAI API")
        out = [f"{self.provider} at {where}" + (" (local)" if self.local else "")]
        if self.error:
            out.append(f"not reachable: {self.error}")
            if self.fix:
                out.append(f"fix: {self.fix}")
            return out
        shown = ", ".join(self.models[:12]) + (f" … ({len(self.models)} in all)" if len(self.models) > 12 else "")
        out.append(f"models: {shown or '(none listed)'}")
        if self.model:
            window = f"{self.context_window} tokens ({self.context_source})" if self.context_window \
                else f"unknown ({self.context_source})"
            out.append(f"{self.model}: context window {window}")
            out.append(f"price: {self.price_source} — {self.price_note}")
        return out


def resolve_api_key(provider: str, base_url: str | None, api_key_env: str | None) -> tuple[str | None, str]:
    """(key or None, the variable it comes from)."""
    env = api_key_env or ("ANTHROPIC_API_KEY" if provider == "anthropic" else "OPENAI_API_KEY")
    return os.environ.get(env) or None, env


async def check_connection(provider: str, base_url: str | None = None, *, api_key_env: str | None = None,
                           model: str | None = None, context_window: int | None = None,
                           timeout: float = PROBE_TIMEOUT_S, home: str | None = None) -> ConnectionReport:
    """Reach the server, list its models, learn the window and the price basis (never raises).
    Prices come from ``home``'s prices.toml (default: CAMBRIAN_HOME's), as the campaign's will."""
    from core.llm.pricing import PriceBook

    if provider == "anthropic" and not base_url:
        base_url = os.environ.get("ANTHROPIC_BASE_URL") or None
    rep = ConnectionReport(provider=provider, base_url=base_url, ok=False)
    try:
        if base_url:
            rep.base_url = base_url = urls.normalize(base_url)
    except urls.BadBaseURL as exc:
        rep.error, rep.fix = str(exc), "give the server's base URL, e.g. http://127.0.0.1:8080/v1"
        return rep
    if provider not in ("openai", "anthropic"):
        rep.error = f"provider {provider!r} has no server to check (openai and anthropic do)"
        return rep
    rep.local = urls.is_local(base_url)
    key, rep.api_key_env = resolve_api_key(provider, base_url, api_key_env)
    rep.api_key_set = key is not None
    if key is None and not rep.local:
        rep.error = f"no API key: {rep.api_key_env} is not set"
        rep.fix = f"export {rep.api_key_env}=… (a local server needs none)"
        return rep
    try:
        rep.models = await list_models(provider, base_url, key, timeout=timeout)
    except ServerProblem as exc:
        rep.error, rep.fix = exc.message, exc.fix
        return rep
    rep.ok = True
    rep.model = model or (rep.models[0] if len(rep.models) == 1 else None)
    if rep.model:
        if context_window:
            rep.context_window, rep.context_source = context_window, "configured"
        else:
            rep.context_window, rep.context_source = await probe_context_window(
                base_url, rep.model, api_key=key, provider=provider, timeout=timeout)
        try:
            quote = PriceBook.load(home).quote(provider, base_url, rep.model)
            rep.price_source, rep.price_note = quote.source, quote.where
        except ValueError as exc:  # a broken prices.toml: say so, the connection itself is fine
            rep.price_source, rep.price_note = "unknown", str(exc)
        if model and rep.models and model not in rep.models:
            rep.price_note += f"; note: {model!r} is not among the server's models"
    return rep


def check_connection_sync(provider: str, base_url: str | None = None, **kw: Any) -> ConnectionReport:
    """:func:`check_connection` from synchronous code (a thread without a running loop)."""
    return asyncio.run(check_connection(provider, base_url, **kw))

"""Record and replay LLM calls (DESIGN §8 ``replay``): deterministic re-runs of a generation.

**Cassette** — a JSONL file, one object per recorded call::

    {"v": 1, "key": "sha256:…", "model": "…", "purpose": "generate", "recorded_at": "…",
     "provider": "anthropic", "simulated": false,
     "request": {"system_sha256": "…", "messages": 1, "prompt_chars": 12345, "max_tokens": 32000},
     "response": {"text": "…", "model": "…", "request_id": "…", "stop_reason": "end_turn",
                  "input_tokens": …, "output_tokens": …, "cache_creation_input_tokens": …,
                  "cache_read_input_tokens": …, "usage_raw": {…}, "cost_usd": …,
                  "latency_ms": …, "attempts": …, "fallback_from": null, "price_known": true,
                  "price_source": "list", "usage_estimated": false}}

**Key** — :func:`request_key`: ``"sha256:" + sha256(canonical JSON of {"model", "system",
"messages"})`` where canonical JSON is ``json.dumps(..., sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` encoded as UTF-8. ``max_tokens``, ``purpose``, ``cache_prefix_blocks`` and
``metadata`` (seed, generation, attempt, campaign) are deliberately *not* part of the key.

``RecordingProvider(inner, path)`` passes calls through and appends one line per successful
call (failed calls have nothing to replay; they are in the ledger). ``ReplayProvider(path)``
answers from the cassette: entries with the same key are served in recording order (the last
one repeats); a miss raises ``ProviderError(kind="cassette_miss")`` naming the key and model.
A replayed call costs nothing: ``cost_usd`` is 0 (``price_source`` ``"replay"``) while the
recorded token counts are kept.
The replay provider's ``name`` is ``"replay"``; it is ``simulated`` only if a recorded entry
was (a cassette recorded from the sim provider stays labelled simulated).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

from core.llm.base import LLMRequest, LLMResponse, ProviderError
from core.models import utcnow

CASSETTE_VERSION = 1
_RESPONSE_FIELDS = (
    "text", "model", "request_id", "stop_reason", "input_tokens", "output_tokens",
    "cache_creation_input_tokens", "cache_read_input_tokens", "usage_raw", "cost_usd",
    "latency_ms", "attempts", "fallback_from", "price_known", "price_source", "usage_estimated",
)


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(req: LLMRequest) -> str:
    payload = {"model": req.model, "system": req.system, "messages": req.messages}
    return "sha256:" + hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def _entry(req: LLMRequest, resp: LLMResponse, provider: str, simulated: bool) -> dict:
    return {
        "v": CASSETTE_VERSION,
        "key": request_key(req),
        "model": req.model,
        "purpose": req.purpose,
        "recorded_at": utcnow(),
        "provider": provider,
        "simulated": simulated,
        "request": {
            "system_sha256": hashlib.sha256(req.system.encode("utf-8")).hexdigest(),
            "messages": len(req.messages),
            "prompt_chars": req.prompt_chars(),
            "max_tokens": req.max_tokens,
        },
        "response": {f: getattr(resp, f) for f in _RESPONSE_FIELDS},
    }


def read_cassette(path: str | os.PathLike[str]) -> list[dict]:
    entries: list[dict] = []
    p = Path(path)
    if not p.exists():
        return entries
    with p.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{p}:{n}: not a cassette line: {exc}") from exc
            if not isinstance(entry, dict) or "key" not in entry or "response" not in entry:
                raise ValueError(f"{p}:{n}: cassette entry needs 'key' and 'response'")
            entries.append(entry)
    return entries


class RecordingProvider:
    """Pass-through provider that appends each successful call to a cassette."""

    def __init__(self, inner: Any, path: str | os.PathLike[str]) -> None:
        self.inner = inner
        self.path = Path(path)
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def simulated(self) -> bool:
        return bool(getattr(self.inner, "simulated", False))

    async def complete(
        self, req: LLMRequest, on_delta: Callable[[str], None] | None = None
    ) -> LLMResponse:
        resp = await self.inner.complete(req, on_delta)
        line = canonical_json(_entry(req, resp, self.inner.name, self.simulated)) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
        return resp


class ReplayProvider:
    """Answers from a cassette; never touches the network."""

    name = "replay"

    def __init__(self, path: str | os.PathLike[str], *, chunk_size: int = 256, **_ignored: Any) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise ProviderError(f"cassette {self.path} does not exist", kind="cassette_miss")
        self.entries = read_cassette(self.path)
        self.chunk_size = max(1, chunk_size)
        self._by_key: dict[str, list[dict]] = {}
        for e in self.entries:
            self._by_key.setdefault(e["key"], []).append(e)
        self._served: dict[str, int] = {}
        self.simulated = any(bool(e.get("simulated")) for e in self.entries)

    @property
    def models(self) -> list[str]:
        return sorted({str(e.get("model")) for e in self.entries})

    async def complete(
        self, req: LLMRequest, on_delta: Callable[[str], None] | None = None
    ) -> LLMResponse:
        t0 = time.monotonic()
        key = request_key(req)
        hits = self._by_key.get(key)
        if not hits:
            raise ProviderError(
                f"cassette miss: no recorded answer for key {key} (model {req.model!r}, "
                f"purpose {req.purpose!r}) in {self.path} — it holds {len(self.entries)} "
                f"entr{'y' if len(self.entries) == 1 else 'ies'} for model(s) {self.models}",
                kind="cassette_miss",
                model=req.model,
            )
        i = self._served.get(key, 0)
        self._served[key] = i + 1
        r = hits[min(i, len(hits) - 1)]["response"]
        text = str(r.get("text", ""))
        if on_delta is not None:
            for j in range(0, len(text), self.chunk_size):
                on_delta(text[j : j + self.chunk_size])
        return LLMResponse(
            text=text,
            model=str(r.get("model") or req.model),
            request_id=r.get("request_id"),
            stop_reason=r.get("stop_reason"),
            input_tokens=int(r.get("input_tokens") or 0),
            output_tokens=int(r.get("output_tokens") or 0),
            cache_creation_input_tokens=int(r.get("cache_creation_input_tokens") or 0),
            cache_read_input_tokens=int(r.get("cache_read_input_tokens") or 0),
            usage_raw=dict(r.get("usage_raw") or {}),
            cost_usd=0.0,
            latency_ms=int((time.monotonic() - t0) * 1000),
            attempts=1,
            fallback_from=r.get("fallback_from"),
            price_source="replay",
            usage_estimated=bool(r.get("usage_estimated", False)),
        )

"""One generation's LLM half: spec → prompt → provider → parser → safe writer → manifest.

``await generate(spec_text, out_dir, provider, ...)`` (DESIGN §5 steps 2–5):

1. parse the spec (``core.spec.parse_spec``) and build the prompt
   (``core.prime.prompt.build_generate_request``) with the bounded history digest and, on a
   retry, the failed attempt's diagnostics and files;
2. call the provider — wrapped in ``LedgeredProvider`` when a ``sink`` is given, so every call
   and retry attempt lands in the ledger;
3. parse the answer; on a ``ParseError`` make up to ``max_repairs`` parse-repair calls
   (``purpose="repair"``; part of this generation, not a new one). Before each repair call
   ``on_delta(STREAM_RESET)`` tells a live view to start over;
4. write the files with the safe writer (everything validated before anything is written),
   add the spec copy, and write ``manifest.json`` (code, never the model).

Escalation: on a retry (``retry.attempt >= 1``) the ``escalation_model`` is used when given.
``token-usage`` in the manifest sums every call (repairs included); ``input`` counts uncached,
cache-write and cache-read tokens. ``producer-model`` is the model that wrote the final answer
(after any fallback).

Pass either a ``sink`` or an already ledgered provider, not both (calls would be recorded
twice). Failures never raise: ``GenerateResult.error`` says what happened and ``error_kind`` is one of
``spec``, ``provider:<kind>``, ``parse``, ``unsafe:<kind>`` / ``write:<kind>``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from core.llm.base import (
    STREAM_RESET,
    LLMResponse,
    ProviderError,
    default_model,
    default_provider_name,
    make_provider,
)
from core.llm.ledger import LedgeredProvider, MemorySink
from core.prime.manifest import artifact_files, build_manifest, spec_copy_path, write_manifest
from core.prime.parser import ParsedFile, ParseError, parse_files
from core.prime.prompt import RetryInfo, build_generate_request, build_repair_request
from core.prime.writer import WriteError, WriteLimits, write_artifact
from rig.schema import Manifest


@dataclass
class GenerateResult:
    files: list[ParsedFile]
    manifest: Manifest | None
    responses: list[LLMResponse]
    repairs: int
    error: str | None
    error_kind: str | None = None
    out_dir: Path | None = None
    model: str | None = None
    simulated: bool = False
    artifact: dict[str, bytes] = field(default_factory=dict)  # every file written, manifest included

    @property
    def ok(self) -> bool:
        return self.error is None and self.manifest is not None

    @property
    def input_tokens(self) -> int:
        return sum(r.prompt_tokens for r in self.responses)

    @property
    def output_tokens(self) -> int:
        return sum(r.output_tokens for r in self.responses)

    @property
    def cost_usd(self) -> float:
        return sum(r.cost_usd for r in self.responses)


async def generate(
    spec_text: str,
    out_dir: str | Path,
    provider: Any,
    *,
    generation: int = 0,
    parent: int = 0,
    seed: int = 0,
    model: str,
    history: str = "",
    retry: RetryInfo | None = None,
    sink: Any = None,
    max_repairs: int = 2,
    escalation_model: str | None = None,
    campaign_id: str | None = None,
    on_delta: Callable[[str], None] | None = None,
    limits: WriteLimits | None = None,
    max_tokens: int = 32_000,
    created_at: str | None = None,
    draw: int | None = None,
) -> GenerateResult:
    from core.spec import SpecError, parse_spec

    out = Path(out_dir)
    simulated = bool(getattr(provider, "simulated", False))
    responses: list[LLMResponse] = []
    result = GenerateResult([], None, responses, 0, None, out_dir=out, simulated=simulated)
    try:
        spec = parse_spec(spec_text)
    except SpecError as exc:
        result.error, result.error_kind = f"invalid spec: {exc}", "spec"
        return result

    use_model = escalation_model if (retry is not None and retry.attempt >= 1 and escalation_model) else model
    result.model = use_model
    prov = LedgeredProvider(provider, sink, generation, campaign_id) if sink is not None else provider
    req = build_generate_request(spec, history, retry, generation=generation, model=use_model, seed=seed, draw=draw,
                                 max_tokens=max_tokens, campaign_id=campaign_id)
    current = req
    files: list[ParsedFile] | None = None
    while True:
        try:
            resp = await prov.complete(current, on_delta)
        except ProviderError as exc:
            result.error, result.error_kind = f"LLM call failed: {exc}", f"provider:{exc.kind}"
            return result
        responses.append(resp)
        result.model = resp.model
        try:
            files = parse_files(resp.text)
            break
        except ParseError as exc:
            if result.repairs >= max_repairs:
                result.error = (f"the answer could not be parsed after {result.repairs} repair call"
                                f"{'s' if result.repairs != 1 else ''}: {exc}")
                result.error_kind = "parse"
                return result
            result.repairs += 1
            if on_delta is not None:
                on_delta(STREAM_RESET)
            current = build_repair_request(req, resp.text, exc, model=use_model,
                                           stop_reason=resp.stop_reason, repair=result.repairs)
    result.files = files

    try:
        data = artifact_files(files, spec)
        copy = spec_copy_path(spec)
        written = write_artifact(data, out, limits, allow={copy})
        manifest = build_manifest(
            files, spec, generation, parent, result.model or use_model,
            {"input": result.input_tokens, "output": result.output_tokens}, created_at,
        )
        mbytes = write_manifest(manifest, out)
    except WriteError as exc:
        kind = "unsafe" if exc.__class__.__name__ == "UnsafePathError" else "write"
        result.error, result.error_kind = f"refused to write the artifact: {exc}", f"{kind}:{exc.kind}"
        return result
    except ValueError as exc:
        result.error, result.error_kind = f"could not build the artifact: {exc}", "write:invalid"
        return result
    result.manifest = manifest
    result.artifact = {**written, "manifest.json": mbytes}
    return result


# --- `cambrian generate` ------------------------------------------------------------------------


def generate_cli(
    spec_path: str,
    out: str,
    provider_name: str | None = None,
    seed: int = 0,
    model: str | None = None,
    cassette: str | None = None,
    record: str | None = None,
    *,
    generation: int = 0,
    parent: int = 0,
    json_out: bool = False,
    stream: bool = False,
    provider_kw: dict | None = None,
) -> int:
    """``cambrian generate SPEC --out DIR [--provider] [--seed] [--model] [--cassette] [--record]``.

    Returns 0 when an artifact was written, 1 when the generation failed, 2 on a usage error."""
    from core.llm.replay import RecordingProvider, ReplayProvider

    def say(msg: str) -> None:
        print(msg, file=sys.stderr if json_out else sys.stdout, flush=True)

    name = provider_name or ("replay" if cassette and not record else default_provider_name())
    try:
        spec_text = Path(spec_path).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        say(f"error: cannot read spec {spec_path}: {exc}")
        return 2
    try:
        if name == "replay":
            if not cassette:
                say("error: --provider replay needs --cassette FILE")
                return 2
            provider: Any = ReplayProvider(cassette)
            if model is None and len(provider.models) == 1:
                model = provider.models[0]
        else:
            provider = make_provider(name, **(provider_kw or {}))
    except ProviderError as exc:
        say(f"error: cannot set up the {name} provider: {exc}")
        return 2
    except (ValueError, ImportError) as exc:
        say(f"error: {exc}")
        return 2
    model = model or default_model(name)
    if record:
        provider = RecordingProvider(provider, record)
    simulated = bool(getattr(provider, "simulated", False))
    label = "SIMULATED " if simulated else ""
    say(f"{label}generation {generation} of {spec_path} with provider {name}, model {model}, seed {seed} → {out}")
    if simulated:
        say("note: the sim provider writes simulated code with seeded defects; it is not a real model's output")

    def delta(chunk: str) -> None:
        if stream and chunk:
            sys.stderr.write(chunk)
            sys.stderr.flush()

    sink = MemorySink()

    async def run() -> GenerateResult:
        try:
            return await generate(spec_text, out, provider, generation=generation, parent=parent, seed=seed,
                                  model=model, sink=sink, on_delta=delta if stream else None)
        finally:
            inner = getattr(provider, "inner", provider)
            closer = getattr(inner, "aclose", None)
            if closer is not None:
                await closer()

    res = asyncio.run(run())
    calls = sink.calls
    if res.ok:
        assert res.manifest is not None
        say(f"{label}wrote {len(res.manifest.files)} files to {out} (artifact-hash {res.manifest.artifact_hash})")
        for f in res.manifest.files:
            say(f"  {f}")
    else:
        say(f"{label}generation failed ({res.error_kind}): {res.error}")
    say(f"llm calls: {len(calls)} ({sum(1 for c in calls if c.outcome == 'ok')} ok, "
        f"{sum(1 for c in calls if c.outcome == 'retried')} retried), repairs: {res.repairs}, "
        f"tokens in/out: {res.input_tokens}/{res.output_tokens}, cost: ${res.cost_usd:.6f}"
        + (" (simulated)" if simulated else ""))
    if record:
        say(f"recorded the call(s) to cassette {record}")
    if json_out:
        print(json.dumps({
            "ok": res.ok,
            "error": res.error,
            "error_kind": res.error_kind,
            "provider": name,
            "model": res.model,
            "simulated": simulated,
            "repairs": res.repairs,
            "out": str(out),
            "manifest": res.manifest.to_wire() if res.manifest else None,
            "llm_calls": [c.model_dump(mode="json") for c in calls],
        }, indent=2))
    return 0 if res.ok else 1

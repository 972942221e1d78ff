"""One generation's LLM half: spec → prompt → provider → parser → safe writer → manifest.

``await generate(spec_text, out_dir, provider, ...)`` (DESIGN §5 steps 2–5):

1. parse the spec (``core.spec.parse_spec``) and build the prompt
   (``core.prime.prompt.build_generate_request``) with the bounded history digest and, on a
   retry, the failed attempt's diagnostics and files;
2. call the provider — wrapped in ``LedgeredProvider`` when a ``sink`` is given, so every call
   and retry attempt lands in the ledger;
3. an answer cut off at the output limit (``stop_reason == "max_tokens"``, any provider) is
   **not** a format error: up to ``max_continuations`` continue calls (``purpose="continue"``,
   each a ledger row) ask the model to go on from where it stopped, and the parts are joined.
   When the budget is spent (or the context window is full) the generation fails with
   ``error_kind="truncated"`` — "truncated after N continuations" — and no repair is made;
4. parse the answer; on a ``ParseError`` make up to ``max_repairs`` parse-repair calls
   (``purpose="repair"``; part of this generation, not a new one). Before each repair call
   ``on_delta(STREAM_RESET)`` tells a live view to start over;
5. write the files with the safe writer (everything validated before anything is written),
   add the spec copy, and write ``manifest.json`` (code, never the model).

**Sealed vectors.** A spec's ``sealed-vectors`` block is removed before step 1
(``Spec.visible``): the prompt, every repair and continuation, the spec copy and the
manifest are built from the spec without it, so ``spec-hash`` in the manifest is the hash of
the writer's view (the copy's bytes), not of the stored spec version. The rig gets the
sealed vectors from the engine (``core.engine.runner``), never from the artifact.

**Context window.** ``context_window`` (or what the provider learns from its server, see
``core.prime.fit``) sizes every call: ``max_tokens`` of the generate and continue calls is
lowered to what is left after the prompt, and a repair resends only as much of the bad
answer as fits. A prompt that cannot fit at all fails before any call (``error_kind="context"``).

Escalation: on a retry (``retry.attempt >= 1``) the ``escalation_model`` is used when given.
``token-usage`` in the manifest sums every call (repairs included); ``input`` counts uncached,
cache-write and cache-read tokens. ``producer-model`` is the model that wrote the final answer
(after any fallback).

Pass either a ``sink`` or an already ledgered provider, not both (calls would be recorded
twice). Failures never raise: ``GenerateResult.error`` says what happened and ``error_kind`` is one of
``spec``, ``context``, ``provider:<kind>``, ``truncated``, ``parse``, ``unsafe:<kind>`` /
``write:<kind>``; ``answer_text`` keeps the model's last answer (joined parts) for the record.
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
    unwrap,
)
from core.llm.ledger import LedgeredProvider, MemorySink
from core.prime.manifest import artifact_files, build_manifest, spec_copy_path, write_manifest
from core.prime.parser import ParsedFile, ParseError, parse_files
from core.prime.fit import ContextFit, NoRoom
from core.prime.prompt import (
    RetryInfo,
    build_continue_request,
    build_generate_request,
    build_repair_request,
    join_continuation,
)
from core.prime.writer import WriteError, WriteLimits, write_artifact
from rig.schema import Manifest

REPAIR_ANSWER_CHARS = 60_000  # the most of a bad answer a repair resends (less when the window is small)


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
    continuations: int = 0  # continue calls in all (each is a ledger row of purpose "continue")
    continuations_of_answer: int = 0  # of the answer being assembled now
    truncated: bool = False  # failed because every continuation was cut off too
    answer_text: str = ""  # the model's last (assembled) answer, kept when it fails
    context_window: int | None = None

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

    @property
    def price_unknown(self) -> bool:
        """Some call has no known price: cost_usd is a lower bound, to be shown as unknown."""
        return any(not r.price_known for r in self.responses)


async def learn_context_window(provider: Any, model: str) -> tuple[int | None, str]:
    """The model's context window as the provider knows it (configured or the server's word)."""
    ask = getattr(unwrap(provider), "context_window", None)
    if ask is None:
        return None, ""
    try:
        return await ask(model)
    except Exception as exc:  # noqa: BLE001 - an unknown window only means no sizing
        return None, f"could not learn it: {type(exc).__name__}: {exc}"


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
    max_continuations: int = 3,
    context_window: int | None = None,
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
        # the writer's view: the sealed vectors are never in a prompt or the spec copy, so the
        # manifest's spec-hash is the hash of what the writer saw (the copy's bytes)
        spec = parse_spec(spec_text).visible()
    except SpecError as exc:
        result.error, result.error_kind = f"invalid spec: {exc}", "spec"
        return result

    use_model = escalation_model if (retry is not None and retry.attempt >= 1 and escalation_model) else model
    result.model = use_model
    prov = LedgeredProvider(provider, sink, generation, campaign_id) if sink is not None else provider
    window, source = (context_window, "configured") if context_window else await learn_context_window(
        provider, use_model)
    fit = ContextFit(window, source)
    result.context_window = window
    req = build_generate_request(spec, history, retry, generation=generation, model=use_model, seed=seed, draw=draw,
                                 max_tokens=max_tokens, campaign_id=campaign_id)
    try:
        current = fit.fit(req, what="the prompt")
    except NoRoom as exc:
        result.error, result.error_kind = f"the prompt does not fit the model: {exc}", "context"
        return result
    answering = current  # the request whose answer is being assembled (generate or repair)
    answer = ""
    files: list[ParsedFile] | None = None
    while True:
        try:
            resp = await prov.complete(current, on_delta)
        except ProviderError as exc:
            result.error, result.error_kind = f"LLM call failed: {exc}", f"provider:{exc.kind}"
            return result
        responses.append(resp)
        fit.learn(current, resp)
        result.model = resp.model
        answer = join_continuation(answer, resp.text) if current.purpose == "continue" else resp.text
        result.answer_text = answer
        if resp.truncated:
            # cut off at the output limit: not a format error — continue the same answer
            done = result.continuations_of_answer
            why = "" if resp.stop_reason == "max_tokens" else " (the model's context window is full)"
            if done < max_continuations and not why:
                try:
                    current = fit.fit(build_continue_request(answering, answer, continuation=done + 1),
                                      what="the prompt with the partial answer")
                except NoRoom as exc:
                    why = f" (no room for more: {exc})"
                else:
                    result.continuations += 1
                    result.continuations_of_answer += 1
                    continue
            result.truncated = True
            result.error = (f"truncated after {done} continuation{'s' if done != 1 else ''}: the answer "
                            f"({len(answer)} characters) hit the output limit every time{why}")
            result.error_kind = "truncated"
            return result
        try:
            files = parse_files(answer)
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
            excerpt = fit.repair_answer_chars(req, REPAIR_ANSWER_CHARS)
            repair = build_repair_request(req, answer, exc, model=use_model, max_answer_chars=excerpt,
                                          stop_reason=resp.stop_reason, repair=result.repairs)
            try:
                current = answering = fit.fit(repair, what="the repair request")
            except NoRoom as no_room:
                result.error = (f"the answer could not be parsed ({exc}) and a repair does not fit the "
                                f"model: {no_room}")
                result.error_kind = "parse"
                return result
            result.continuations_of_answer = 0
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
    base_url: str | None = None,
    api_key_env: str | None = None,
    context_window: int | None = None,
    continuation: str | None = None,
    max_tokens: int = 32_000,
    max_repairs: int = 2,
    max_continuations: int = 3,
) -> int:
    """``cambrian generate SPEC --out DIR [--provider] [--base-url] [--model] [--seed] …``.

    Returns 0 when an artifact was written, 1 when the generation failed, 2 on a usage error."""
    from core.llm.config import provider_from
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
        elif provider_kw:
            provider = make_provider(name, **provider_kw)
        else:
            provider = provider_from({"provider": name, "base_url": base_url, "api_key_env": api_key_env,
                                      "context_window": context_window, "continuation": continuation})
    except ProviderError as exc:
        say(f"error: cannot set up the {name} provider: {exc}")
        return 2
    except (ValueError, ImportError) as exc:
        say(f"error: {exc}")
        return 2
    model = model or default_model(name)
    if model is None:
        model, problem = _only_model(provider)
        if model is None:
            say(f"error: --model is required for the {name} provider: {problem}")
            return 2
    if record:
        provider = RecordingProvider(provider, record)
    simulated = bool(getattr(provider, "simulated", False))
    label = "SIMULATED " if simulated else ""
    where = getattr(unwrap(provider), "base_url", None)
    at = f" at {where}" if where else ""
    say(f"{label}generation {generation} of {spec_path} with provider {name}{at}, model {model}, seed {seed} → {out}")
    if simulated:
        say("note: the sim provider writes simulated code with seeded defects; it is not a real model's output")
    quote = getattr(unwrap(provider), "quote", None)
    if quote is not None:
        q = quote(model)
        say(f"price: {q.source} — {q.where}")

    def delta(chunk: str) -> None:
        if stream and chunk:
            sys.stderr.write(chunk)
            sys.stderr.flush()

    sink = MemorySink()

    async def run() -> GenerateResult:
        try:
            return await generate(spec_text, out, provider, generation=generation, parent=parent, seed=seed,
                                  model=model, sink=sink, on_delta=delta if stream else None,
                                  max_tokens=max_tokens, max_repairs=max_repairs,
                                  max_continuations=max_continuations, context_window=context_window)
        finally:
            inner = getattr(provider, "inner", provider)
            closer = getattr(inner, "aclose", None)
            if closer is not None:
                await closer()

    res = asyncio.run(run())
    calls = sink.calls
    kept = None
    if res.ok:
        assert res.manifest is not None
        say(f"{label}wrote {len(res.manifest.files)} files to {out} (artifact-hash {res.manifest.artifact_hash})")
        for f in res.manifest.files:
            say(f"  {f}")
    else:
        say(f"{label}generation failed ({res.error_kind}): {res.error}")
        if res.answer_text:
            kept = _keep_answer(Path(out), res.answer_text)
            say(f"the model's answer ({len(res.answer_text)} characters) is kept in {kept}")
    window = f", context window {res.context_window}" if res.context_window else ""
    cost = (f"${res.cost_usd:.6f} + unknown (calls at an unknown price)" if res.price_unknown
            else f"${res.cost_usd:.6f}")
    say(f"llm calls: {len(calls)} ({sum(1 for c in calls if c.outcome == 'ok')} ok, "
        f"{sum(1 for c in calls if c.outcome == 'retried')} retried), continuations: {res.continuations}, "
        f"repairs: {res.repairs}, tokens in/out: {res.input_tokens}/{res.output_tokens}{window}, cost: {cost}"
        + (" (simulated)" if simulated else ""))
    if record:
        say(f"recorded the call(s) to cassette {record}")
    if json_out:
        print(json.dumps({
            "ok": res.ok,
            "error": res.error,
            "error_kind": res.error_kind,
            "provider": name,
            "base_url": where,
            "model": res.model,
            "simulated": simulated,
            "repairs": res.repairs,
            "continuations": res.continuations,
            "context_window": res.context_window,
            "cost_usd": res.cost_usd,
            "price_unknown": res.price_unknown,
            "answer_file": str(kept) if kept else None,
            "out": str(out),
            "manifest": res.manifest.to_wire() if res.manifest else None,
            "llm_calls": [c.model_dump(mode="json") for c in calls],
        }, indent=2))
    return 0 if res.ok else 1


FAILED_ANSWER_FILE = "cambrian-failed-answer.txt"


def _keep_answer(out: Path, text: str) -> Path:
    """Write the failed answer next to where the artifact would have gone (never into it)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / FAILED_ANSWER_FILE
    path.write_text(text, encoding="utf-8")
    return path


def _only_model(provider: Any) -> tuple[str | None, str]:
    """The server's model when it serves exactly one (llama.cpp does), else (None, why)."""
    lister = getattr(unwrap(provider), "list_models", None)
    if lister is None:
        return None, "this provider cannot list models"

    async def ask() -> list[str]:
        try:
            return await lister()
        finally:
            closer = getattr(unwrap(provider), "aclose", None)
            if closer is not None:
                await closer()

    try:
        models = asyncio.run(ask())
    except Exception as exc:  # noqa: BLE001 - reported as a usage error
        return None, f"the server's models could not be listed ({exc})"
    if len(models) == 1:
        return models[0], ""
    return None, f"the server offers {len(models)}: {', '.join(models[:20]) or '(none)'}"

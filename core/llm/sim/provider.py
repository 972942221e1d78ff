"""``SimProvider``: the offline, simulated LLM (DESIGN §8 "sim").

It answers the three kinds of request Cambrian makes:

* ``generate`` — reads ``<spec>`` (and ``<retry>`` on an informed retry) from the prompt,
  draws the answer's defects from the spec-sensitive model in ``defects.py``, and writes a
  real codebase (``build.py``) as §6.4 file blocks;
* ``repair`` — answers the original request again, correctly formatted;
* ``mutate`` — rewrites one section's prose (``mutate.py``);
* an offspring Prime's own call (reproduction, through the LLM gateway): the user message is
  the raw spec, front matter first, as the Prime's template assembles it — answered with a
  codebase in the same format, from randomness of its own (``breed_key``).
* ``examine`` — the dual-blind examiner's probes for the spec it was shown (``examine.py``).

Everything is deterministic in (seed, generation, attempt) from ``req.metadata``; nothing
depends on the clock or the process. It is always labelled simulated.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

from core.llm.sim import defects as dm
from core.llm.sim.build import build_files, forced, template_name  # noqa: F401
from core.llm.sim.examine import examine_answer
from core.llm.sim.mutate import mutate_section
from core.llm.sim.redteam import redteam_answer
from core.llm.sim.retry import detect, detect_breeding, detect_habits, detect_hidden, named_by_diagnostics, parse_retry
from core.llm.sim.specinfo import SpecInfo, parse_spec_text, split_sections

try:  # the protocol module; fall back to look-alikes if it is not importable
    from core.llm.base import LLMRequest, LLMResponse
except Exception:  # pragma: no cover - only while core.llm.base is missing
    LLMRequest = Any  # type: ignore[assignment,misc]
    LLMResponse = None  # type: ignore[assignment]

MODELS = tuple(dm.MODEL_FACTORS)
DEFAULT_MODEL = "sim-1"
FORMAT_ERROR_P = 0.02  # chance that a generate answer leaves its last block unterminated

SPEC_RE = re.compile(r'<spec name="(?P<name>[^"]*)" hash="(?P<hash>[^"]*)">\n(?P<text>.*)\n</spec>\s*\Z', re.S)
MUTATE_RE = re.compile(r'<mutate section="(?P<section>[^"]*)">\n?(?P<body>.*?)\n?</mutate>', re.S)
TASK_GEN_RE = re.compile(r"generation (\d+)")
FRONT_RE = re.compile(r"\A---[ \t]*\n.*?\n---[ \t]*(\n|\Z)", re.S)
# what a Prime appends to the spec (templates_prime.build_prompt / repair_prompt), outermost last
REPAIR_MARK = "\n\nYour previous answer could not be parsed"
DIAGNOSTICS_MARK = "\n\nWhy the previous attempt failed:\n"
HISTORY_MARK = "\n\nEarlier attempts:\n"


@dataclass(frozen=True)
class OrganismPrompt:
    """A Prime's own request, read back: its spec, history digest, diagnostics, and whether
    it is the repair call."""

    spec: str
    history: str = ""
    diagnostics: str = ""
    repair: bool = False


def read_organism_prompt(text: str) -> OrganismPrompt | None:
    """The raw-spec form of a Prime's user message, or None when ``text`` is not one: the
    spec (starting with its ``---`` front matter), then optionally "Earlier attempts:…",
    "Why the previous attempt failed:…" and the repair call's "Your previous answer could
    not be parsed…" (each after a blank line; read from the end)."""
    repair = False
    cut = text.rfind(REPAIR_MARK)
    if cut >= 0:
        text, repair = text[:cut], True
    parts = {}
    for name, mark in (("diagnostics", DIAGNOSTICS_MARK), ("history", HISTORY_MARK)):
        cut = text.rfind(mark)
        if cut >= 0:
            text, parts[name] = text[:cut], text[cut + len(mark):]
    if not FRONT_RE.match(text):
        return None
    return OrganismPrompt(text, parts.get("history", ""), parts.get("diagnostics", ""), repair)


def breed_key(meta: dict) -> str:
    """The key an organism's calls draw their randomness under: ``bred-<draw>``, the draw
    (campaign slot; else the generation) of the breeder the gateway serves, kept apart from
    the breeder's own key so that a grand-offspring is a fresh answer, not a copy of its
    viable parent. Same breeder, same answer: a resumed campaign breeds the same way."""
    parent = meta.get("draw")
    if parent is None:
        parent = meta.get("generation")
    return f"bred-{_int(parent)}"


def _unattr(s: str) -> str:
    return s.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _blocks(message: dict) -> list[str]:
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    out = []
    for block in content or []:
        if isinstance(block, str):
            out.append(block)
        elif isinstance(block, dict) and block.get("type", "text") == "text":
            out.append(str(block.get("text", "")))
    return out


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


class SimProvider:
    """The simulated provider. ``latency_ms`` spreads the stream over that time;
    ``format_errors=False`` turns off the occasional unterminated block; ``force_defects``
    (tests and benchmarks only) replaces the drawn defects by exactly that set."""

    name = "sim"
    simulated = True
    models = MODELS

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        chunks: int = 32,
        format_errors: bool = True,
        model: str | None = None,
        force_defects: Any = None,
        force_habits: Any = None,
        **_ignored: Any,
    ) -> None:
        self.latency_ms = float(latency_ms)
        self.chunks = max(1, int(chunks))
        self.format_errors = format_errors
        self.default_model = model or DEFAULT_MODEL
        self.calls = 0
        # tests and benchmarks: every generate answer has exactly these defects and habits
        # (habits: name -> biting form, or a set of biting ones); the other kind is then empty
        self.force_defects = None if force_defects is None else frozenset(force_defects)
        self.force_habits = force_habits
        if self.forcing:
            forced(dm.Decision(False, frozenset()), self.force_defects, self.force_habits)  # validates names

    @property
    def forcing(self) -> bool:
        return self.force_defects is not None or self.force_habits is not None

    # --- the protocol ------------------------------------------------------------------

    async def complete(self, req: Any, on_delta: Callable[[str], Any] | None = None) -> Any:
        started = time.monotonic()
        self.calls += 1
        model = req.model if str(req.model).startswith("sim") else self.default_model
        text = self.answer(req, model)
        await self._stream(text, on_delta)
        prompt_chars = len(req.system or "") + sum(len(t) for m in req.messages for t in _blocks(m))
        input_tokens = math.ceil(prompt_chars / 4)
        output_tokens = math.ceil(len(text) / 4)
        digest = hashlib.sha256(f"{model}|{req.system}|{req.messages!r}|{req.metadata!r}".encode()).hexdigest()
        usage = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "simulated": True,
        }
        fields = dict(
            text=text,
            model=model,
            request_id=f"sim-{digest[:24]}",
            stop_reason="end_turn",
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_creation_input_tokens=0,
            cache_read_input_tokens=0,
            usage_raw=usage,
            cost_usd=0.0,
            latency_ms=int((time.monotonic() - started) * 1000),
            attempts=1,
        )
        if LLMResponse is None:  # pragma: no cover
            return fields
        return LLMResponse(**fields)

    async def aclose(self) -> None:
        return None

    async def _stream(self, text: str, on_delta: Callable[[str], Any] | None) -> None:
        if on_delta is None and self.latency_ms <= 0:
            return
        n = self.chunks
        size = max(1, math.ceil(len(text) / n))
        pause = self.latency_ms / 1000.0 / n
        for i in range(0, len(text), size):
            if on_delta is not None:
                res = on_delta(text[i : i + size])
                if inspect.isawaitable(res):
                    await res
            if pause > 0:
                await asyncio.sleep(pause)

    # --- answers -----------------------------------------------------------------------

    def answer(self, req: Any, model: str | None = None) -> str:
        """The full answer text for ``req`` (deterministic)."""
        model = model or (req.model if str(req.model).startswith("sim") else self.default_model)
        purpose = getattr(req, "purpose", "generate") or "generate"
        user_msgs = [m for m in req.messages if m.get("role") == "user"]
        all_text = [t for m in user_msgs for t in _blocks(m)]
        if purpose == "examine":  # the examiner (examine.py): probes from the spec it was shown
            spec = self._spec_of(all_text)
            return examine_answer(spec[1] if spec else "", model)
        if purpose == "redteam":  # the red team (redteam.py): attack probes from the spec it was shown
            spec = self._spec_of(all_text)
            return redteam_answer(spec[1] if spec else "", next((t for t in all_text if t.startswith("<artifact ")), ""))
        if purpose == "mutate" or any(MUTATE_RE.search(t) for t in all_text):
            return self._mutate(req, all_text)
        if purpose == "repair":
            # answer the original request, correctly formatted this time
            first = user_msgs[0] if user_msgs else {"content": ""}
            return self._generate(req, _blocks(first), model, allow_format_error=False)
        spec_blocks = [t for t in all_text if t.startswith("<spec ")]
        if not spec_blocks:
            organism = read_organism_prompt("".join(_blocks(user_msgs[0]))) if user_msgs else None
            if organism is not None:
                return self._breed(req, organism, model)
            return ("(simulated) The sim provider only writes codebases and spec mutations; "
                    "this request held neither a <spec> block nor a spec (front matter first) "
                    "as its user message.\n")
        return self._generate(req, _blocks(user_msgs[0]) if user_msgs else all_text, model,
                              allow_format_error=self.format_errors)

    @staticmethod
    def _spec_of(texts: list[str]) -> tuple[str, str] | None:
        for t in texts:
            m = SPEC_RE.match(t)
            if m:
                return _unattr(m.group("name")), m.group("text")
        for t in texts:  # tolerate a spec block followed by other text in the same string
            m = re.search(r'<spec name="([^"]*)" hash="[^"]*">\n(.*?)\n</spec>', t, re.S)
            if m:
                return _unattr(m.group(1)), m.group(2)
        return None

    def decision(self, spec: SpecInfo, meta: dict, texts: list[str], model: str) -> dm.Decision:
        seed = _int(meta.get("seed"))
        # A campaign-local draw (the slot a generation fills) keys the randomness when given,
        # so a campaign's outcomes do not depend on global numbering, timing or crashes.
        generation = _int(meta.get("draw", meta.get("generation")))
        attempt = _int(meta.get("attempt"))
        if self.forcing:
            base = dm.decide(spec, seed, generation, 0, model)
            return forced(base, self.force_defects, self.force_habits)
        rc = parse_retry("\n".join(texts))
        if rc is None:
            # no diagnostics: attempt 0, or an uninformed retry (defects persist at random)
            return dm.decide(spec, seed, generation, attempt, model)
        attempt = max(attempt, rc.attempt, 1)
        first = dm.decide(spec, seed, rc.generation if rc.generation is not None else generation, 0, model)
        detected = detect(spec, rc)
        previous = {d for d, v in detected.items() if v} | {
            d for d, v in detected.items() if v is None and d in first.defects
        }
        found = detect_habits(spec, rc)
        previous_habits = {}
        for name, form in found.items():
            if form is None:  # its file was cut from the prompt: re-derive the first attempt
                if name in first.habits:
                    previous_habits[name] = first.habits[name]
            elif form:
                previous_habits[name] = form == "bite"
        named = named_by_diagnostics(rc, previous, previous_habits)
        previous_breeding = {d for d, v in detect_breeding(spec, rc).items()
                             if v or (v is None and d in first.breeding)}
        previous_hidden = {d for d, v in detect_hidden(spec, rc).items()
                           if v or (v is None and d in first.hidden)}
        return dm.decide(spec, seed, generation, attempt, model, previous=previous, named=named,
                         previous_habits=previous_habits, previous_breeding=previous_breeding,
                         previous_hidden=previous_hidden)

    def _generate(self, req: Any, texts: list[str], model: str, allow_format_error: bool) -> str:
        found = self._spec_of(texts)
        if found is None:
            return "(simulated) no <spec> block in the request.\n"
        _, spec_text = found
        meta = dict(getattr(req, "metadata", None) or {})
        if "generation" not in meta:
            for t in texts:
                if t.startswith("<task>"):
                    m = TASK_GEN_RE.search(t)
                    if m:
                        meta["generation"] = int(m.group(1))
        spec = parse_spec_text(spec_text)
        decision = self.decision(spec, meta, texts, model)
        seed, generation = _int(meta.get("seed")), _int(meta.get("generation"))
        key = _int(meta.get("draw", generation))
        files, _ctx = build_files(spec, decision, seed, generation)
        return render_answer(
            files,
            spec,
            generation,
            format_error=allow_format_error
            and dm._uniform("format", seed, key, _int(meta.get("attempt"))) < FORMAT_ERROR_P,
        )

    def _breed(self, req: Any, organism: OrganismPrompt, model: str) -> str:
        """An offspring's own call: the codebase its spec describes, drawn under
        ``breed_key``. Diagnostics in its prompt make it an uninformed retry (its defects
        persist at random); the repair call answers the same codebase, well formed."""
        meta = dict(getattr(req, "metadata", None) or {})
        seed, key = _int(meta.get("seed")), breed_key(meta)
        spec = parse_spec_text(organism.spec)
        attempt = 1 if organism.diagnostics.strip() else 0
        if self.forcing:
            decision = forced(dm.decide(spec, seed, key, 0, model), self.force_defects, self.force_habits)
        else:
            decision = dm.decide(spec, seed, key, attempt, model)
        files, _ctx = build_files(spec, decision, seed, key)
        return render_answer(
            files, spec, None,
            format_error=self.format_errors and not organism.repair
            and dm._uniform("format", seed, key, attempt) < FORMAT_ERROR_P,
        )

    def _mutate(self, req: Any, texts: list[str]) -> str:
        found = self._spec_of(texts)
        m = next((MUTATE_RE.search(t) for t in texts if MUTATE_RE.search(t)), None)
        if m is None:
            return "(simulated) no <mutate> block in the request.\n"
        section = _unattr(m.group("section"))
        instructions = m.group("body")
        spec_text = found[1] if found else ""
        body = ""
        for title, sbody in split_sections(_strip_front(spec_text)).items():
            if title == section or title.casefold() == section.casefold():
                body = sbody
                break
        seed = _int((getattr(req, "metadata", None) or {}).get("seed"))
        new_body = mutate_section(spec_text, body, instructions, seed, section)
        return f"Here is the rewritten section.\n<section name=\"{section}\">\n{new_body}</section:end>\n"


def _strip_front(text: str) -> str:
    m = re.match(r"\A---[ \t]*\n.*?\n---[ \t]*\n", text, re.S)
    return text[m.end():] if m else text


def render_answer(files: dict[str, str], spec: SpecInfo, generation: int | None,
                  format_error: bool = False) -> str:
    """Files as §6.4 blocks, with a line of prose before and after (ignored by the parser).
    ``generation`` None: the request named none (an organism's own call)."""
    what = f"generation {generation} of {spec.name}" if generation is not None else spec.name
    parts = [f"Here is the complete codebase for {what}.", ""]
    items = list(files.items())
    for i, (path, content) in enumerate(items):
        body = content if content.endswith("\n") or not content else content + "\n"
        last = i == len(items) - 1
        parts.append(f'<file path="{path}">\n{body}' + ("" if (format_error and last) else "</file:end>"))
    if not format_error:
        parts.append("")
        parts.append(f"That is every file ({len(items)} in total); run `python -m pytest -q` to check them.")
    return "\n".join(parts) + "\n"

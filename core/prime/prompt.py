"""Prompt assembly (DESIGN §5 step 2). The sim provider parses this layout: keep it exact.

Generate request (:func:`build_generate_request`, ``purpose="generate"``)
-----------------------------------------------------------------------

``system`` — the spec's designated system-prompt section (``Spec.system_prompt``: the body of
the section named by front-matter ``system-prompt-section``, default ``System Prompt``); a spec
without one gets ``core.spec.DEFAULT_SYSTEM_PROMPT`` (a generic "write the complete codebase,
§6.4 blocks" prompt).

``messages`` — exactly one user message whose ``content`` is a list of text blocks
(``{"type": "text", "text": ...}``), in this order:

1. the spec (the stable prefix; ``cache_prefix_blocks=1``, so the anthropic provider marks
   the system block and this block ``cache_control: ephemeral``)::

       <spec name="{name}" hash="sha256:{hex}">
       {the full spec text, exactly}
       </spec>

2. the bounded history digest (:func:`history_digest`)::

       <history>
       generations: {total} ({outcome} {count}, ... sorted by outcome)
       recent (newest first):
       - #{number} {outcome}[ at {failure_stage}][: {one-line summary}]
       ...  (at most 8 lines, each at most 160 characters)
       frequent failures:
       - {count}x {summary}
       ...  (at most 5 lines)
       </history>

   or ``<history>\\nno earlier generations of this spec\\n</history>``. The digest is capped at
   ``HISTORY_MAX_CHARS`` characters whatever the number of generations, so the prompt does not
   grow with history.

3. on retry only (:class:`RetryInfo`)::

       <retry generation="{failed generation}" attempt="{k, 1-based}">
       The previous attempt ... (one fixed sentence)
       stage: {stage}
       summary: {summary}
       exit_code: {code}
       failures:
       - {test}: {error}[ ({file}:{line})]
       stdout_tail:
       {last lines}
       stderr_tail:
       {last lines}
       files of the failed attempt ({shown} of {total}, most relevant first):
       <failed-file path="{path}" truncated="true|false">
       {content}
       </failed-file>
       ...
       [omitted: {paths}]
       </retry>

   Lines that do not apply are left out. Files named by the failures come first, then files
   named in the summary or tails, then other source files, then the rest; the whole block is
   capped at ``RetryInfo.max_chars`` characters (≈ ``max_chars/4`` tokens).

4. the task::

       <task>
       Write the complete codebase for generation {N} of the spec above, from scratch.
       ... output format (§6.4) ...
       </task>

``metadata`` = ``{"seed", "generation", "attempt", "spec_hash", "spec_name"}`` (+
``campaign_id`` when given) — not part of the replay key.

Parse-repair request (:func:`build_repair_request`, ``purpose="repair"``)
-----------------------------------------------------------------------
The original messages, then ``{"role": "assistant", "content": <the bad answer, cut to
max_answer_chars around the error line>}``, then a user message::

    <parse-error line="{L}">{message}</parse-error>
    {instruction to re-emit the whole answer in the format}

The answer excerpt is sized by the caller (``max_answer_chars``) so that the repair fits the
model's context window: a repair never resends more than fits.

Continuation request (:func:`build_continue_request`, ``purpose="continue"``)
---------------------------------------------------------------------------
An answer cut off at the output limit (``stop_reason == "max_tokens"``) is not a format error:
the request that produced it is sent again with the partial answer appended as the final
assistant message (without trailing whitespace), and the model continues it. The provider
turns that into a prefill, vLLM's ``continue_final_message`` or an instruction
(``core.llm.base``). :func:`join_continuation` joins the parts.

Spec-mutation request (:func:`build_mutate_request`, ``purpose="mutate"``)
------------------------------------------------------------------------
``system`` = :data:`MUTATE_SYSTEM_PROMPT`; one user message with blocks ``<spec …>`` (as
above) and ``<mutate section="{Name}">\\n{instructions}\\n</mutate>``. The answer is the new
section body: a line ``<section name="{Name}">``, the body, a line ``</section:end>``
(:func:`parse_section_answer`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

from core.llm.base import LLMRequest

HISTORY_RECENT = 8
HISTORY_TOP_FAILURES = 5
HISTORY_LINE_CHARS = 160
HISTORY_MAX_CHARS = 3000
HISTORY_WINDOW = 200  # generations scanned for frequent failures when the store cannot count them
RETRY_MAX_CHARS = 48_000
TAIL_CHARS = 2_000
MAX_FAILURES = 20
DEFAULT_MAX_TOKENS = 32_000

TASK_TEMPLATE = """\
<task>
Write the complete codebase for generation {generation} of the spec above, from scratch: every \
source file, test and configuration file it needs, each one complete. Nothing from earlier \
generations is kept, so never write "unchanged" or elide code.
Output format: emit every file as a block — a line that is exactly <file path="relative/path">, \
the file's content starting on the next line, then a line that is exactly </file:end>. Paths are \
relative, use '/', and never contain '..', a drive letter, a backslash or a NUL. Do not write \
manifest.json or anything under spec/: Cambrian adds those. No file may contain a line that is \
exactly </file:end> or that starts with <file. Text outside blocks is ignored.
</task>"""

RETRY_INTRO = (
    "The previous attempt was built and tested and was not viable. Fix the causes below and "
    "write the complete codebase again (not a patch)."
)

REPAIR_TEMPLATE = """\
<parse-error line="{line}">{message}</parse-error>
Your answer above could not be parsed{cut}. Emit the whole answer again — every file, complete — \
in the required format: a line that is exactly <file path="relative/path">, the content, then a \
line that is exactly </file:end>, for every file. Do not reply with only the corrected part."""

MUTATE_SYSTEM_PROMPT = """\
You edit specifications for Cambrian, a system that breeds software from specifications. \
The user message holds one specification inside <spec …> and one instruction inside \
<mutate section="Name">. Rewrite the body of that one section as instructed, keeping its \
intent and everything the rest of the specification relies on. Keep every FROZEN block \
(<!-- BEGIN FROZEN: name --> … <!-- END FROZEN: name -->) byte for byte, do not add or \
remove ## headings, and do not include the section's own ## heading.
Answer with the new body only, as a block: a line that is exactly <section name="Name">, the \
body, then a line that is exactly </section:end>. Text outside the block is ignored."""


def _attr(value: Any) -> str:
    return (str(value).replace("&", "&amp;").replace('"', "&quot;")
            .replace("<", "&lt;").replace(">", "&gt;"))


def _one_line(text: Any, limit: int = HISTORY_LINE_CHARS) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _block(text: str) -> dict:
    return {"type": "text", "text": text}


def spec_block(spec: Any) -> str:
    return f'<spec name="{_attr(spec.name)}" hash="{_attr(spec.hash)}">\n{spec.text}\n</spec>'


# --- history ----------------------------------------------------------------------------


def _g(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def history_digest(
    store: Any,
    spec_hash: str,
    *,
    recent: int = HISTORY_RECENT,
    top: int = HISTORY_TOP_FAILURES,
    max_chars: int = HISTORY_MAX_CHARS,
) -> str:
    """A bounded digest of earlier generations of a spec (the body of ``<history>``).

    ``store`` needs ``history(spec_hash, limit)`` (newest terminal generations first) and
    ``outcome_counts(spec_hash)``; ``failure_summaries(spec_hash, limit)`` is used when present,
    else the most frequent reasons among the last ``HISTORY_WINDOW`` generations. Returns ""
    when there is no history."""
    counts = {str(k.value if hasattr(k, "value") else k): int(v)
              for k, v in (store.outcome_counts(spec_hash) or {}).items() if int(v) > 0}
    total = sum(counts.values())
    rows = list(store.history(spec_hash, recent))[:recent]
    if not total and not rows:
        return ""
    lines = [f"generations: {total} (" + ", ".join(f"{k} {counts[k]}" for k in sorted(counts)) + ")"]
    if rows:
        lines.append("recent (newest first):")
        for g in rows:
            outcome = _g(g, "outcome")
            outcome = getattr(outcome, "value", outcome)
            line = f"- #{_g(g, 'number')} {outcome}"
            stage = _g(g, "failure_stage")
            if stage and stage != "none":
                line += f" at {stage}"
            reason = _g(g, "reason")
            if reason:
                line += f": {reason}"
            lines.append(_one_line(line))
    if hasattr(store, "failure_summaries"):
        frequent = [(str(r), int(n)) for r, n in store.failure_summaries(spec_hash, top)][:top]
    else:
        window = list(store.history(spec_hash, HISTORY_WINDOW))
        c = Counter(str(_g(g, "reason")) for g in window
                    if _g(g, "reason") and str(getattr(_g(g, "outcome"), "value", _g(g, "outcome"))) != "promoted")
        frequent = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    if frequent:
        lines.append("frequent failures:")
        lines.extend(_one_line(f"- {n}x {reason}") for reason, n in frequent)
    out: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) + 1 > max_chars:
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


def history_block(digest: str) -> str:
    body = digest.strip("\n") or "no earlier generations of this spec"
    return f"<history>\n{body}\n</history>"


# --- retry --------------------------------------------------------------------------------


@dataclass
class RetryInfo:
    """What an informed retry tells the model about the failed attempt."""

    attempt: int = 1  # 1 for the first retry
    generation: int | None = None  # the failed generation
    diagnostics: Any = None  # rig.schema.Diagnostics, its dict, or None
    files: Mapping[str, Any] = field(default_factory=dict)  # the failed artifact's files
    summary: str | None = None  # when there are no diagnostics
    max_chars: int = RETRY_MAX_CHARS


def _tail(text: Any, limit: int = TAIL_CHARS) -> str:
    s = str(text or "").rstrip("\n")
    return s if len(s) <= limit else "…" + s[-(limit - 1):]


def _text_of(content: Any) -> str:
    if isinstance(content, bytes):
        return content.decode("utf-8", errors="replace")
    return str(content)


def _relevance(files: Mapping[str, Any], failures: list[Any], haystack: str) -> list[str]:
    named = {str(_g(f, "file")) for f in failures if _g(f, "file")}
    for f in failures:
        test = str(_g(f, "test") or "")
        if "::" in test:
            named.add(test.split("::", 1)[0])

    def rank(path: str) -> tuple[int, str]:
        if path in named or any(path.endswith("/" + n) or n.endswith("/" + path) for n in named):
            return 0, path
        if path in haystack:
            return 1, path
        if path.endswith(".py"):
            return 2, path
        return 3, path

    return sorted((p for p in files if p != "manifest.json" and not p.startswith("spec/")), key=rank)


def retry_block(retry: RetryInfo) -> str:
    d = retry.diagnostics
    if d is not None and hasattr(d, "model_dump"):
        d = d.model_dump(mode="json")
    d = d or {}
    gen = "" if retry.generation is None else str(retry.generation)
    lines = [f'<retry generation="{_attr(gen)}" attempt="{int(retry.attempt)}">', RETRY_INTRO]
    if d.get("stage"):
        lines.append(f"stage: {d['stage']}")
    summary = d.get("summary") or retry.summary
    if summary:
        lines.append(f"summary: {_one_line(summary, 1000)}")
    if d.get("exit_code") is not None:
        lines.append(f"exit_code: {d['exit_code']}")
    failures = list(d.get("failures") or [])
    if failures:
        lines.append("failures:")
        for f in failures[:MAX_FAILURES]:
            where = ""
            if _g(f, "file"):
                where = f" ({_g(f, 'file')}" + (f":{_g(f, 'line')}" if _g(f, "line") else "") + ")"
            lines.append(_one_line(f"- {_g(f, 'test')}: {_g(f, 'error')}{where}", 400))
        if len(failures) > MAX_FAILURES:
            lines.append(f"- … and {len(failures) - MAX_FAILURES} more")
    for key in ("stdout_tail", "stderr_tail"):
        if d.get(key):
            lines.append(f"{key}:")
            lines.append(_tail(d[key]))
    head = "\n".join(lines)
    order = _relevance(retry.files, failures, "\n".join([str(summary or ""), str(d.get("stdout_tail", "")),
                                                          str(d.get("stderr_tail", ""))]))
    budget = retry.max_chars - len(head) - 200
    shown: list[str] = []
    omitted: list[str] = []
    for path in order:
        content = _text_of(retry.files[path])
        opening_plain = f'<failed-file path="{_attr(path)}" truncated="false">\n'
        closing = "</failed-file>"
        need = len(opening_plain) + len(content) + len(closing) + 2
        if need <= budget:
            shown.append(f"{opening_plain}{content.rstrip(chr(10))}\n{closing}")
            budget -= need
        elif budget > 600 and not shown:
            keep = budget - len(opening_plain) - len(closing) - 80
            cut = content[:keep]
            more = content[keep:].count("\n")
            shown.append(f'<failed-file path="{_attr(path)}" truncated="true">\n{cut.rstrip(chr(10))}\n'
                         f"… ({more} more lines)\n{closing}")
            budget = 0
        else:
            omitted.append(path)
    parts = [head]
    if order:
        parts.append(f"files of the failed attempt ({len(shown)} of {len(order)}, most relevant first):")
        parts.extend(shown)
        if omitted:
            parts.append(_one_line("[omitted: " + ", ".join(omitted) + "]", 2000))
    parts.append("</retry>")
    return "\n".join(parts)


# --- builders -------------------------------------------------------------------------------


def build_generate_request(
    spec: Any,
    history_digest: str = "",
    retry: RetryInfo | None = None,
    *,
    generation: int = 0,
    model: str,
    seed: int = 0,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    campaign_id: str | None = None,
    draw: int | None = None,
) -> LLMRequest:
    blocks = [_block(spec_block(spec)), _block(history_block(history_digest))]
    if retry is not None:
        blocks.append(_block(retry_block(retry)))
    blocks.append(_block(TASK_TEMPLATE.format(generation=generation)))
    metadata: dict[str, Any] = {
        "seed": seed,
        "generation": generation,
        "attempt": retry.attempt if retry is not None else 0,
        "spec_hash": spec.hash,
        "spec_name": spec.name,
    }
    if campaign_id is not None:
        metadata["campaign_id"] = campaign_id
    if draw is not None:
        # the campaign-local slot: a seeded provider keys its randomness on it, so a
        # campaign's results do not depend on global numbering or on crashes
        metadata["draw"] = draw
    return LLMRequest(
        model=model,
        system=spec.system_prompt,
        messages=[{"role": "user", "content": blocks}],
        max_tokens=max_tokens,
        purpose="generate",
        cache_prefix_blocks=1,
        metadata=metadata,
    )


def _cut_answer(answer: str, line: int, max_chars: int) -> str:
    if len(answer) <= max_chars:
        return answer
    lines = answer.split("\n")
    lo, hi = max(0, line - 31), min(len(lines), line + 10)
    window = "\n".join(lines[lo:hi])[: max_chars // 2]
    head_budget = max_chars - len(window) - 100
    head = "\n".join(lines[:lo])[:head_budget]
    return f"{head}\n[… {len(answer) - len(head) - len(window)} characters omitted …]\n{window}"


def build_repair_request(
    original: LLMRequest,
    bad_answer: str,
    error: Any,
    *,
    model: str | None = None,
    max_answer_chars: int = 60_000,
    stop_reason: str | None = None,
    repair: int = 1,
) -> LLMRequest:
    """Ask the model to re-emit its whole answer after a parse error (``error`` is a
    ``ParseError`` or a ``(line, message)`` pair)."""
    if isinstance(error, tuple):
        line, message = error
    else:
        line, message = getattr(error, "line", 1), getattr(error, "message", str(error))
    answer = _cut_answer(bad_answer, int(line), max_answer_chars).rstrip() or "(empty answer)"
    cut = " (it was cut off at the output token limit — be more concise)" if stop_reason == "max_tokens" else ""
    feedback = REPAIR_TEMPLATE.format(line=int(line), message=_attr(message), cut=cut)
    return LLMRequest(
        model=model or original.model,
        system=original.system,
        messages=[
            *original.messages,
            {"role": "assistant", "content": answer},
            {"role": "user", "content": [_block(feedback)]},
        ],
        max_tokens=original.max_tokens,
        purpose="repair",
        cache_prefix_blocks=original.cache_prefix_blocks,
        metadata={**original.metadata, "repair": repair},
    )


def build_continue_request(
    answering: LLMRequest,
    partial: str,
    *,
    continuation: int,
    max_tokens: int | None = None,
) -> LLMRequest:
    """Ask the model to continue ``partial``, its cut-off answer to ``answering``."""
    return LLMRequest(
        model=answering.model,
        system=answering.system,
        messages=[*answering.messages, {"role": "assistant", "content": partial.rstrip()}],
        max_tokens=max_tokens or answering.max_tokens,
        purpose="continue",
        cache_prefix_blocks=answering.cache_prefix_blocks,
        metadata={**answering.metadata, "continuation": continuation},
    )


def join_continuation(partial: str, more: str) -> str:
    """The partial answer followed by its continuation. The prefix was sent without its
    trailing whitespace; that whitespace goes back in unless the continuation brings its own
    (a model that starts a new line after ``</file:end>`` must not glue two lines together)."""
    head = partial.rstrip()
    gap = partial[len(head):]
    if more[:1].isspace() or not gap:
        return head + more
    return head + gap + more


def build_mutate_request(
    spec: Any,
    section: str,
    instructions: str,
    *,
    model: str,
    seed: int = 0,
    max_tokens: int = 8000,
) -> LLMRequest:
    return LLMRequest(
        model=model,
        system=MUTATE_SYSTEM_PROMPT,
        messages=[{
            "role": "user",
            "content": [
                _block(spec_block(spec)),
                _block(f'<mutate section="{_attr(section)}">\n{instructions.strip(chr(10))}\n</mutate>'),
            ],
        }],
        max_tokens=max_tokens,
        purpose="mutate",
        cache_prefix_blocks=1,
        metadata={"seed": seed, "section": section, "spec_hash": spec.hash, "spec_name": spec.name},
    )


class SectionAnswerError(ValueError):
    pass


def parse_section_answer(text: str, section: str) -> str:
    """The body of ``<section name="{section}">`` … ``</section:end>`` in a mutate answer."""
    lines = text.split("\n")
    opening = f'<section name="{_attr(section)}">'
    start = None
    for i, raw in enumerate(lines):
        line = raw.rstrip("\r")
        if start is None:
            if line == opening:
                start = i + 1
            elif line.startswith("<section"):
                m = re.fullmatch(r'<section name="([^"]*)">', line)
                name = m.group(1) if m else None
                raise SectionAnswerError(
                    f"line {i + 1}: expected {opening!r}, got {line[:80]!r}"
                    + (f" (section {name!r})" if name is not None else "")
                )
        elif line == "</section:end>":
            return "".join(x + "\n" for x in lines[start:i])
    if start is None:
        raise SectionAnswerError(f"no {opening} block in the answer")
    raise SectionAnswerError(f"line {start}: unterminated section block (no </section:end>)")

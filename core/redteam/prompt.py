"""The red team's request: the writer-visible spec, one artifact's source, the probe schema.

Layout (the sim provider reads it; keep it exact)::

    system: REDTEAM_SYSTEM_PROMPT
    user:   <spec name="{name}" hash="{visible hash}">
            {the spec without its sealed-vectors block}
            </spec>
            <artifact generation="{n}" files="{shown}/{total}">
            <file path="...">
            {content}
            </file:end>
            ...
            (cut: {what was left out, when anything was})
            </artifact>
            <redteam max-probes="{N}">
            {one fixed instruction paragraph}
            </redteam>

The artifact leaves out ``manifest.json`` (the rig's) and everything under ``spec/`` (the
spec copy: the spec block above is the spec), and is capped at ``max_chars`` characters of
file content: source files before tests, each group smallest first; a file that
does not fit whole is cut, and the cut line names every file left out or shortened. Both the
request and its repair have ``purpose="redteam"``; ``metadata["redteam_attempt"]`` is 0 or 1.
"""

from __future__ import annotations

from core.examiner.prompt import build_probe_repair, probe_request, probe_schema
from core.llm.base import LLMRequest
from core.spec import Spec

MAX_PROBES = 12
MAX_CHARS = 60_000
PROBES_FENCE = "redteam-probes"

REDTEAM_SYSTEM_PROMPT = """\
You are a red team. You read a specification of an HTTP service and one implementation of it,
and write black-box probes that this implementation FAILS while the specification requires the
behaviour you expect. Look for what the code gets wrong: unhandled methods, missing or empty
fields, wrong status codes, error bodies without required keys, boundary values the text
states. Every expectation must follow from the specification's text — a probe whose
expectation the text does not require is worthless, however the code behaves.

""" + probe_schema(PROBES_FENCE)

REDTEAM_INSTRUCTION = ("Write probes that break this implementation where it departs from the "
                       "specification. Expect only what the text requires; quote, in relies_on, "
                       "the sentence or table row that requires it.")


def artifact_block(files: dict[str, bytes], generation: int, *, max_chars: int = MAX_CHARS) -> str:
    """The artifact's source as the red team reads it (bounded; see the module doc)."""
    shown = {p: d for p, d in files.items() if p != "manifest.json" and not p.startswith("spec/")}
    skipped = sorted(set(files) - set(shown))
    order = sorted(shown, key=lambda p: (p.startswith("tests/") or "/test" in p, len(shown[p]), p))
    parts: list[str] = []
    left_out: list[str] = []
    shortened: list[str] = []
    room = max_chars
    for path in order:
        text = shown[path].decode("utf-8", errors="replace")
        if room <= 0:
            left_out.append(path)
            continue
        if len(text) > room:
            text = text[:room]
            shortened.append(path)
        room -= len(text)
        parts.append(f'<file path="{path}">\n{text.rstrip()}\n</file:end>')
    cut = []
    if skipped:
        cut.append(f"not shown (rig or spec copy): {', '.join(skipped)}")
    if shortened:
        cut.append(f"cut short at the {max_chars}-character cap: {', '.join(shortened)}")
    if left_out:
        cut.append(f"left out at the {max_chars}-character cap: {', '.join(left_out)}")
    lines = [f'<artifact generation="{generation}" files="{len(parts)}/{len(files)}">', *parts]
    if cut:
        lines.append("(cut: " + "; ".join(cut) + ")")
    lines.append("</artifact>")
    return "\n".join(lines)


def build_redteam_request(spec: Spec, files: dict[str, bytes], *, generation: int, model: str,
                          max_tokens: int = 8000, max_probes: int = MAX_PROBES,
                          max_chars: int = MAX_CHARS) -> LLMRequest:
    """The ``redteam`` request for one artifact of ``spec``, which must already be the
    writer-visible spec (:meth:`core.spec.Spec.visible`)."""
    return probe_request(spec, "redteam", REDTEAM_SYSTEM_PROMPT,
                         [artifact_block(files, generation, max_chars=max_chars),
                          f'<redteam max-probes="{max_probes}">\n{REDTEAM_INSTRUCTION}\n</redteam>'],
                         model=model, max_tokens=max_tokens, generation=generation)


def build_redteam_repair(original: LLMRequest, answer: str, problem: str) -> LLMRequest:
    return build_probe_repair(original, answer, problem, PROBES_FENCE)

"""The spec grammar: parsing, checking and FROZEN-safe editing (DESIGN §6.3, §6.5, §9.1).

A spec is a markdown file. This module reads it line by line (``\\n`` is the only line
break; a trailing ``\\r`` is tolerated when matching but kept in every returned text) and
finds:

* optional YAML front matter between two ``---`` lines at the very top;
* the title (first ``#`` heading) and the ``##`` sections, ignoring anything inside code
  fences (``````` or ``~~~``, three or more, closed by the same character repeated at least
  as often);
* FROZEN blocks, ``<!-- BEGIN FROZEN: name -->`` … ``<!-- END FROZEN: name -->``, whose
  bytes no mutation or amendment may change;
* acceptance vectors (fences with info string ``spec-vector``, only inside the FROZEN block
  ``acceptance-vectors``) and optional contracts (``spec-contract`` fences, anywhere), each
  one YAML mapping in the :class:`rig.schema.Contract` schema;
* optional **sealed vectors**: ``spec-vector`` fences inside a second FROZEN block,
  ``sealed-vectors``, that the writer never sees. :func:`strip_sealed` removes that block
  from the text (prompts, the artifact's spec copy); the rig gets them from the engine,
  which reads the stored spec, never the artifact.

``check_spec`` reports every problem it can find, each with a 1-based line number and a
stable ``code``; ``parse_spec`` raises :class:`SpecError` carrying the same list. The
format itself is described for people in ``spec/README.md``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import ValidationError

from rig.hashing import sha256_hex
from rig.schema import Contract, Entry

__all__ = [
    "CONTRACT_INFO",
    "DEFAULT_SYSTEM_PROMPT",
    "DEFAULT_SYSTEM_PROMPT_SECTION",
    "FRONT_MATTER_KEYS",
    "SPEC_FORMAT",
    "SEALED_BLOCK",
    "VECTORS_BLOCK",
    "VECTORS_SECTION",
    "VECTOR_INFO",
    "FrozenBlock",
    "Section",
    "Spec",
    "SpecError",
    "SpecIssue",
    "check_spec",
    "find_frozen",
    "frozen_preserved",
    "insert_into_section",
    "parse_spec",
    "read_spec_text",
    "replace_section",
    "spec_hash",
    "sealed_probes",
    "strip_sealed",
    "validate_variant",
]

SPEC_FORMAT = 1
DEFAULT_SYSTEM_PROMPT_SECTION = "System Prompt"
VECTORS_SECTION = "Acceptance Vectors"
VECTORS_BLOCK = "acceptance-vectors"
SEALED_BLOCK = "sealed-vectors"  # vectors the writer never sees (DESIGN §7, three layers)
VECTOR_INFO = "spec-vector"
CONTRACT_INFO = "spec-contract"
FRONT_MATTER_KEYS = (
    "name",
    "spec-format",
    "port",
    "system-prompt-section",
    "required-sections",
    "entry",
    "rig-timeouts",  # {stage: seconds}: the rig's stage timeouts for this spec
    "reproduce",  # {path, output-env, model-env}: how a viable offspring is asked to breed
)
_ENTRY_KEYS = ("build", "test", "start", "health")
# Keys a vector or contract may carry. `description` is for people; the rig ignores it.
_CONTRACT_KEYS = frozenset(Contract.model_fields) | {"description"}
_EXPECT_KEYS = frozenset(Contract.model_fields["expect"].annotation.model_fields)  # type: ignore[union-attr]

DEFAULT_SYSTEM_PROMPT = """\
You are a careful senior software engineer. The user message holds a specification.
Write the complete codebase it describes, from scratch: every source file, every test,
and every configuration file the project needs to build, test and run. Do not leave
placeholders, TODOs or elided code; nothing you omit will exist.

Emit each file as a block. The first line of a block is exactly
<file path="relative/path">
then the file's content, then a line that is exactly
</file:end>
Paths are relative to the project root, use forward slashes and never contain "..".
Text outside blocks is ignored. Do not write manifest.json or anything under spec/:
the harness adds those itself.

Honour every requirement of the specification, including its HTTP contract and its
acceptance vectors, which are checked mechanically after your code is built and tested.
"""


# --- public data types -----------------------------------------------------------


@dataclass
class SpecIssue:
    """One problem in a spec. ``line`` is 1-based; ``code`` is stable for scripts."""

    line: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class SpecError(ValueError):
    """A spec (or an edit of one) is invalid. ``issues`` lists every problem found."""

    def __init__(self, issues: list[SpecIssue]):
        self.issues = list(issues)
        if not self.issues:
            summary = "invalid spec"
        elif len(self.issues) == 1:
            summary = str(self.issues[0])
        else:
            summary = f"{len(self.issues)} problems; first: {self.issues[0]}"
        super().__init__(summary)


@dataclass
class Section:
    """A ``##`` section. Lines are 1-based; ``body`` is everything after the heading
    line up to (not including) the next heading of level 1 or 2."""

    name: str
    level: int
    start_line: int
    end_line: int
    body: str


@dataclass
class FrozenBlock:
    """A FROZEN block. ``text`` runs from the start of the BEGIN marker line through the
    END marker line, including that line's line break when it has one."""

    name: str
    start_line: int
    end_line: int
    text: str


@dataclass
class Spec:
    text: str
    front_matter: dict[str, Any]
    title: str
    sections: list[Section]
    frozen: list[FrozenBlock]
    vectors: list[Contract]
    contracts: list[Contract]
    hash: str
    sealed: list[Contract] = field(default_factory=list)  # the ``sealed-vectors`` block's

    @property
    def visible_text(self) -> str:
        """The spec as the writer may see it: every ``sealed-vectors`` block removed."""
        return strip_sealed(self.text) if self.sealed or self.frozen_block(SEALED_BLOCK) else self.text

    def visible(self) -> "Spec":
        """This spec without its sealed vectors (itself when it has none)."""
        text = self.visible_text
        return self if text == self.text else parse_spec(text)

    @property
    def name(self) -> str:
        """Front-matter ``name``, else the title, else an empty string."""
        value = self.front_matter.get("name")
        if isinstance(value, str) and value.strip():
            return value.strip()
        return self.title

    def section(self, name: str) -> Section | None:
        """The section with this heading (exact match first, then case-insensitive)."""
        for sec in self.sections:
            if sec.name == name:
                return sec
        wanted = _norm(name)
        for sec in self.sections:
            if _norm(sec.name) == wanted:
                return sec
        return None

    @property
    def section_names(self) -> list[str]:
        return [s.name for s in self.sections]

    @property
    def system_prompt_section(self) -> str:
        return _system_prompt_section_name(self.front_matter)

    @property
    def required_sections(self) -> list[str]:
        return _required_sections(self.front_matter)

    @property
    def system_prompt(self) -> str:
        """Body of the designated system-prompt section with surrounding blank lines
        removed; :data:`DEFAULT_SYSTEM_PROMPT` when the spec has no such section (only
        possible when the spec does not list it as required)."""
        sec = self.section(self.system_prompt_section)
        if sec is None or not sec.body.strip():
            return DEFAULT_SYSTEM_PROMPT
        return sec.body.strip("\r\n")

    @property
    def entry(self) -> Entry | None:
        raw = self.front_matter.get("entry")
        if not isinstance(raw, dict):
            return None
        return Entry.model_validate(raw)

    @property
    def port(self) -> int | None:
        """Front-matter ``port``, else the port of ``entry.health``, else None."""
        value = self.front_matter.get("port")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        entry = self.entry
        return entry.port if entry is not None else None

    def frozen_block(self, name: str) -> FrozenBlock | None:
        return next((b for b in self.frozen if b.name == name), None)


# --- small helpers ------------------------------------------------------------------

_LINE_RE = re.compile(r"[^\n]*\n|[^\n]+\Z")
_FENCE_OPEN_RE = re.compile(r"^[ \t]*(`{3,}|~{3,})(.*)$")
_FENCE_CLOSE_RE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*$")
_HEADING_RE = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_MARKER_RE = re.compile(r"^[ \t]*<!--[ \t]*(BEGIN|END)[ \t]+FROZEN:[ \t]*([a-z0-9-]+)[ \t]*-->[ \t]*$")
_MARKER_LOOSE_RE = re.compile(r"^[ \t]*<!--.*?\b(BEGIN|END)[ \t]*FROZEN\b", re.IGNORECASE)
_FRONT_MATTER_FENCE = "---"


def _split_lines(text: str) -> list[str]:
    """Lines with their ``\\n`` kept; ``\\n`` is the only separator."""
    return _LINE_RE.findall(text)


def _content(line: str) -> str:
    """A line without its line break (``\\n`` or ``\\r\\n``)."""
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    return line


def _norm(name: str) -> str:
    return " ".join(name.split()).casefold()


def _short(text: str, limit: int = 60) -> str:
    text = text.rstrip("\r\n")
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def spec_hash(text: str | bytes) -> str:
    """``sha256:`` + hex digest of the spec's exact UTF-8 bytes."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return sha256_hex(data)


def read_spec_text(path: str | Path) -> str:
    """Read a spec file without newline translation, so its hash is the file's hash."""
    return Path(path).read_bytes().decode("utf-8")


def _system_prompt_section_name(front_matter: dict[str, Any]) -> str:
    value = front_matter.get("system-prompt-section")
    if isinstance(value, str) and value.strip():
        return value.strip()
    return DEFAULT_SYSTEM_PROMPT_SECTION


def _required_sections(front_matter: dict[str, Any]) -> list[str]:
    value = front_matter.get("required-sections")
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value]
    return [_system_prompt_section_name(front_matter), VECTORS_SECTION]


def _yaml_error_line(exc: yaml.YAMLError) -> int | None:
    """0-based line (within the parsed text) of a YAML error, if PyYAML knows it."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line if mark is not None else None


def _yaml_error_text(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    if problem:
        return f"{context} {problem}".strip() if context else str(problem)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _node_lines(node: yaml.Node | None) -> dict[tuple[Any, ...], int]:
    """Map key paths (as pydantic writes ``loc``) to 0-based lines of a composed YAML node."""
    out: dict[tuple[Any, ...], int] = {}

    def walk(n: yaml.Node, prefix: tuple[Any, ...]) -> None:
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                if not isinstance(key, yaml.ScalarNode):
                    continue
                path = prefix + (key.value,)
                out.setdefault(path, key.start_mark.line)
                walk(value, path)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                path = prefix + (i,)
                out.setdefault(path, item.start_mark.line)
                walk(item, path)

    if node is not None:
        walk(node, ())
    return out


def _deepest_line(lines: dict[tuple[Any, ...], int], loc: Iterable[Any]) -> int | None:
    path = tuple(loc)
    for k in range(len(path), 0, -1):
        if path[:k] in lines:
            return lines[path[:k]]
    return None


def _loc_text(loc: Iterable[Any]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _pydantic_problem(err: dict[str, Any]) -> str:
    if err.get("type") == "missing":
        return "is required"
    msg = str(err.get("msg", ""))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"is invalid: {msg[0].lower() + msg[1:]}" if msg else "is invalid"


# --- the scan ---------------------------------------------------------------------


@dataclass
class _Fence:
    start: int  # 0-based index of the opening line
    end: int | None  # 0-based index of the closing line; None when unterminated
    char: str
    length: int
    info: str

    @property
    def kind(self) -> str:
        words = self.info.split()
        return words[0] if words else ""


@dataclass
class _Marker:
    index: int
    kind: str  # "BEGIN" | "END"
    name: str
    fence: _Fence | None  # the fence the marker sits in, if any


@dataclass
class _Heading:
    index: int
    level: int
    text: str


@dataclass
class _Scan:
    text: str
    lines: list[str]
    body_start: int  # index of the first line after the front matter
    front_matter_text: str | None
    fences: list[_Fence] = field(default_factory=list)
    headings: list[_Heading] = field(default_factory=list)
    markers: list[_Marker] = field(default_factory=list)
    frozen: list[FrozenBlock] = field(default_factory=list)
    unclosed: list[_Marker] = field(default_factory=list)  # BEGIN markers never closed
    issues: list[SpecIssue] = field(default_factory=list)

    def add(self, index: int, code: str, message: str) -> None:
        """Record an issue at a 0-based line index."""
        self.issues.append(SpecIssue(index + 1, code, message))


def _scan(text: str) -> _Scan:
    lines = _split_lines(text)
    scan = _Scan(text=text, lines=lines, body_start=0, front_matter_text=None)
    _scan_front_matter(scan)
    _scan_body(scan)
    _pair_markers(scan)
    return scan


def _scan_front_matter(scan: _Scan) -> None:
    lines = scan.lines
    if not lines or _content(lines[0]).lstrip("\ufeff").rstrip() != _FRONT_MATTER_FENCE:
        return
    for i in range(1, len(lines)):
        if _content(lines[i]).rstrip() in (_FRONT_MATTER_FENCE, "..."):
            scan.front_matter_text = "".join(lines[1:i])
            scan.body_start = i + 1
            return
    scan.add(
        0,
        "front-matter-unclosed",
        "front matter opened by '---' on line 1 is never closed by another '---' line",
    )


def _scan_body(scan: _Scan) -> None:
    open_fence: _Fence | None = None
    for i in range(scan.body_start, len(scan.lines)):
        line = _content(scan.lines[i])
        if open_fence is not None:
            close = _FENCE_CLOSE_RE.match(line)
            if close and close.group(1)[0] == open_fence.char and len(close.group(1)) >= open_fence.length:
                open_fence.end = i
                open_fence = None
                continue
            _scan_marker(scan, i, line, open_fence)
            continue
        fence = _FENCE_OPEN_RE.match(line)
        if fence and not (fence.group(1)[0] == "`" and "`" in fence.group(2)):
            open_fence = _Fence(i, None, fence.group(1)[0], len(fence.group(1)), fence.group(2).strip())
            scan.fences.append(open_fence)
            continue
        if _scan_marker(scan, i, line, None):
            continue
        heading = _HEADING_RE.match(line)
        if heading:
            raw = heading.group(2) or ""
            raw = re.sub(r"(?:^|[ \t]+)#+$", "", raw).strip()
            scan.headings.append(_Heading(i, len(heading.group(1)), raw))
    if open_fence is not None:
        scan.add(
            open_fence.start,
            "unterminated-fence",
            f"code fence {open_fence.char * open_fence.length!r} opened on line "
            f"{open_fence.start + 1} is never closed; everything after it is read as code",
        )


def _scan_marker(scan: _Scan, i: int, line: str, fence: _Fence | None) -> bool:
    m = _MARKER_RE.match(line)
    if m:
        scan.markers.append(_Marker(i, m.group(1), m.group(2), fence))
        return True
    if _MARKER_LOOSE_RE.match(line):
        scan.add(
            i,
            "frozen-marker-malformed",
            f"malformed FROZEN marker {_short(line.strip())} on line {i + 1}; write "
            "'<!-- BEGIN FROZEN: name -->' or '<!-- END FROZEN: name -->' on a line of its "
            "own, the name in lowercase letters, digits and '-'",
        )
        return True
    return False


def _pair_markers(scan: _Scan) -> None:
    stack: list[_Marker] = []
    seen: dict[str, int] = {}
    for mk in scan.markers:
        where = f"line {mk.index + 1}"
        if mk.fence is not None:
            scan.add(
                mk.index,
                "frozen-marker-in-fence",
                f"FROZEN marker {mk.kind} '{mk.name}' on {where} is inside the code fence "
                f"opened on line {mk.fence.start + 1}; close the fence before the marker",
            )
        if mk.kind == "BEGIN":
            if stack:
                outer = stack[-1]
                scan.add(
                    mk.index,
                    "frozen-nested",
                    f"BEGIN FROZEN '{mk.name}' on {where} opens inside FROZEN block "
                    f"'{outer.name}' (opened on line {outer.index + 1}); FROZEN blocks cannot nest",
                )
            stack.append(mk)
            continue
        # END marker
        names = [m.name for m in stack]
        if mk.name in names:
            while stack:
                top = stack.pop()
                if top.name == mk.name:
                    _record_block(scan, top, mk, seen)
                    break
                scan.add(
                    top.index,
                    "frozen-unpaired",
                    f"BEGIN FROZEN '{top.name}' on line {top.index + 1} has no matching "
                    f"'<!-- END FROZEN: {top.name} -->' before the END of '{mk.name}' on {where}",
                )
        elif stack:
            top = stack.pop()
            scan.add(
                mk.index,
                "frozen-mismatched",
                f"END FROZEN '{mk.name}' on {where} does not match the open block "
                f"'{top.name}' (BEGIN on line {top.index + 1})",
            )
        else:
            scan.add(
                mk.index,
                "frozen-unpaired",
                f"END FROZEN '{mk.name}' on {where} has no matching BEGIN before it",
            )
    for top in stack:
        scan.unclosed.append(top)
        scan.add(
            top.index,
            "frozen-unpaired",
            f"BEGIN FROZEN '{top.name}' on line {top.index + 1} is never closed by "
            f"'<!-- END FROZEN: {top.name} -->'",
        )


def _record_block(scan: _Scan, begin: _Marker, end: _Marker, seen: dict[str, int]) -> None:
    if begin.name in seen:
        scan.add(
            begin.index,
            "frozen-duplicate-name",
            f"FROZEN block name '{begin.name}' on line {begin.index + 1} is already used by "
            f"the block on line {seen[begin.name]}; names must be unique",
        )
    else:
        seen[begin.name] = begin.index + 1
    scan.frozen.append(
        FrozenBlock(
            name=begin.name,
            start_line=begin.index + 1,
            end_line=end.index + 1,
            text="".join(scan.lines[begin.index : end.index + 1]),
        )
    )


def find_frozen(text: str) -> tuple[list[FrozenBlock], list[SpecIssue]]:
    """The well-paired FROZEN blocks of ``text`` and any marker problems (lenient: the
    rest of the spec need not be valid)."""
    scan = _scan(text)
    marker_issues = [i for i in scan.issues if i.code.startswith("frozen-")]
    return scan.frozen, sorted(marker_issues, key=lambda i: i.line)


def strip_sealed(text: str) -> str:
    """``text`` without its ``sealed-vectors`` blocks: what the writer (and every other LLM
    that writes or edits code from the spec) may see. Each block goes from its BEGIN line
    through its END line, with one of the blank lines around it, so the rest of the spec is
    unchanged byte for byte. Text without such a block comes back as it is.

    Stripping is only trustworthy when the markers are: a spec whose FROZEN markers are
    unpaired, nested, malformed or inside a code fence raises :class:`SpecError` rather than
    risk handing out a sealed byte (such a spec fails ``check_spec`` anyway)."""
    if SEALED_BLOCK not in text and "sealed" not in text.casefold():
        return text
    scan = _scan(text)
    bad = [i for i in scan.issues if i.code.startswith("frozen-") and i.code != "frozen-duplicate-name"]
    if bad:
        raise SpecError(bad)
    lines = list(scan.lines)
    drop: set[int] = set()
    for b in scan.frozen:
        if b.name != SEALED_BLOCK:
            continue
        lo, hi = b.start_line - 1, b.end_line - 1
        drop.update(range(lo, hi + 1))
        after, before = hi + 1, lo - 1
        if after < len(lines) and not lines[after].strip() and (before < 0 or not lines[before].strip()):
            drop.add(after)  # blank, block, blank -> one blank
    kept = [line for i, line in enumerate(lines) if i not in drop]
    if lines and len(lines) - 1 in drop:
        while kept and not kept[-1].strip():
            kept.pop()  # the spec ended with the block: no blank lines left dangling
    return "".join(kept)


# --- full analysis --------------------------------------------------------------------


@dataclass
class _Analysis:
    scan: _Scan
    front_matter: dict[str, Any]
    title: str
    sections: list[Section]
    vectors: list[Contract]
    contracts: list[Contract]
    sealed: list[Contract]

    @property
    def issues(self) -> list[SpecIssue]:
        return sorted(self.scan.issues, key=lambda i: i.line)


def _analyse(text: str) -> _Analysis:
    scan = _scan(text)
    front_matter, fm_lines = _check_front_matter(scan)
    title = next((h.text for h in scan.headings if h.level == 1), "")
    sections = _build_sections(scan)
    _check_headings(scan)
    _check_required(scan, front_matter, fm_lines, sections)
    vectors, contracts, sealed = _check_vectors(scan, front_matter, sections)
    return _Analysis(scan, front_matter, title, sections, vectors, contracts, sealed)


def _check_front_matter(scan: _Scan) -> tuple[dict[str, Any], dict[tuple[Any, ...], int]]:
    """Validate the front matter; returns it (invalid keys dropped) and key → file index."""
    if scan.front_matter_text is None:
        return {}, {}
    base = 1  # front matter text starts on the second line (index 1)
    try:
        data = yaml.safe_load(scan.front_matter_text)
        node = yaml.compose(scan.front_matter_text)
    except yaml.YAMLError as exc:
        rel = _yaml_error_line(exc)
        scan.add(
            base + (rel or 0),
            "front-matter-yaml",
            f"front matter is not valid YAML: {_yaml_error_text(exc)}",
        )
        return {}, {}
    lines = {k: base + v for k, v in _node_lines(node).items()}
    if data is None:
        return {}, lines
    if not isinstance(data, dict):
        scan.add(base, "front-matter-not-mapping", "front matter must be a YAML mapping of keys to values")
        return {}, lines

    fm: dict[str, Any] = {}

    def at(*path: Any) -> int:
        return lines.get(tuple(path), base)

    for key, value in data.items():
        if not isinstance(key, str) or (key not in FRONT_MATTER_KEYS and not key.startswith("x-")):
            scan.add(
                at(key),
                "front-matter-unknown-key",
                f"unknown front-matter key {key!r}; known keys are "
                f"{', '.join(FRONT_MATTER_KEYS)} (prefix your own keys with 'x-')",
            )
            continue
        fm[key] = value

    def bad(key: str, why: str) -> None:
        scan.add(at(key), "front-matter-type", f"front-matter '{key}' {why}")
        fm.pop(key, None)

    if "name" in fm and not (isinstance(fm["name"], str) and fm["name"].strip()):
        bad("name", "must be a non-empty string")
    if "spec-format" in fm:
        v = fm["spec-format"]
        if isinstance(v, bool) or not isinstance(v, int):
            bad("spec-format", "must be an integer")
        elif v != SPEC_FORMAT:
            scan.add(
                at("spec-format"),
                "front-matter-format",
                f"spec-format {v} is not understood; this version reads spec-format {SPEC_FORMAT}",
            )
            fm.pop("spec-format")
    if "port" in fm:
        v = fm["port"]
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 65535:
            bad("port", "must be an integer between 1 and 65535")
    if "system-prompt-section" in fm:
        v = fm["system-prompt-section"]
        if not (isinstance(v, str) and v.strip()):
            bad("system-prompt-section", "must be the non-empty text of a '##' heading")
    if "required-sections" in fm:
        v = fm["required-sections"]
        if not isinstance(v, list) or not all(isinstance(s, str) and s.strip() for s in v):
            bad("required-sections", "must be a list of heading texts")
    if "entry" in fm:
        _check_entry(scan, fm, lines, base)
    if "rig-timeouts" in fm:
        from rig.vectors import spec_timeouts

        _, problems = spec_timeouts("---\n" + yaml.safe_dump({"rig-timeouts": fm["rig-timeouts"]}, sort_keys=False) + "---\n")
        for problem in problems:
            scan.add(at("rig-timeouts"), "front-matter-type", f"front-matter {problem}")
        if problems:
            fm.pop("rig-timeouts", None)
    if "reproduce" in fm:
        _check_reproduce(scan, fm, lines, base)
    return fm, lines


def _check_reproduce(scan: _Scan, fm: dict[str, Any], lines: dict[tuple[Any, ...], int], base: int) -> None:
    """``reproduce`` as the rig reads it (rig.vectors.spec_reproduce): one issue per problem,
    on the line of the sub-key it names when there is one."""
    from rig.vectors import spec_reproduce

    text = "---\n" + yaml.safe_dump({"reproduce": fm["reproduce"]}, sort_keys=False) + "---\n"
    _, problems = spec_reproduce(text)
    for problem in problems:
        m = re.match(r"reproduce(?:\.([\w-]+)|: unknown key '([^']+)')", problem)
        key = (m.group(1) or m.group(2)) if m else None
        line = lines.get(("reproduce", key)) if key else None
        scan.add(line if line is not None else lines.get(("reproduce",), base),
                 "front-matter-reproduce", f"front-matter {problem}")
    if problems:
        fm.pop("reproduce", None)


def _check_entry(scan: _Scan, fm: dict[str, Any], lines: dict[tuple[Any, ...], int], base: int) -> None:
    raw = fm["entry"]
    if not isinstance(raw, dict):
        scan.add(
            lines.get(("entry",), base),
            "front-matter-entry",
            "front-matter 'entry' must be a mapping of build, test, start, health",
        )
        fm.pop("entry")
        return
    ok = True
    for key in raw:
        if key not in _ENTRY_KEYS:
            scan.add(
                lines.get(("entry", key), base),
                "front-matter-unknown-key",
                f"unknown key {key!r} in front-matter 'entry'; expected {', '.join(_ENTRY_KEYS)}",
            )
            ok = False
    try:
        entry = Entry.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ("entry",) + tuple(err["loc"])
            line = _deepest_line(lines, loc)
            scan.add(
                line if line is not None else base,
                "front-matter-entry",
                f"front-matter field '{_loc_text(loc)}' {_pydantic_problem(err)}",
            )
        fm.pop("entry")
        return
    if not ok:
        fm.pop("entry")
        return
    port = fm.get("port")
    if isinstance(port, int) and not isinstance(port, bool) and entry.port != port:
        scan.add(
            lines.get(("entry", "health"), base),
            "health-port-mismatch",
            f"entry.health {entry.health!r} uses port {entry.port} but the front matter "
            f"declares port {port}",
        )


def _build_sections(scan: _Scan) -> list[Section]:
    sections: list[Section] = []
    bounds = [h for h in scan.headings if h.level <= 2]
    for pos, h in enumerate(bounds):
        if h.level != 2:
            continue
        end = bounds[pos + 1].index if pos + 1 < len(bounds) else len(scan.lines)
        sections.append(
            Section(
                name=h.text,
                level=2,
                start_line=h.index + 1,
                end_line=max(end, h.index + 1),
                body="".join(scan.lines[h.index + 1 : end]),
            )
        )
    return sections


def _check_headings(scan: _Scan) -> None:
    first: dict[str, int] = {}
    for h in scan.headings:
        if h.level != 2:
            continue
        if not h.text:
            scan.add(h.index, "empty-heading", f"'##' heading on line {h.index + 1} has no text")
            continue
        key = _norm(h.text)
        if key in first:
            scan.add(
                h.index,
                "duplicate-heading",
                f"heading '## {h.text}' on line {h.index + 1} duplicates the heading on line "
                f"{first[key]}; section headings must be unique",
            )
        else:
            first[key] = h.index + 1


def _check_required(
    scan: _Scan,
    fm: dict[str, Any],
    fm_lines: dict[tuple[Any, ...], int],
    sections: list[Section],
) -> None:
    present = {_norm(s.name) for s in sections}
    prompt_name = _system_prompt_section_name(fm)
    declared = "required-sections" in fm
    for pos, name in enumerate(_required_sections(fm)):
        if _norm(name) in present:
            continue
        if declared:
            index = fm_lines.get(("required-sections", pos), fm_lines.get(("required-sections",), 0))
        else:
            index = 0
        if _norm(name) == _norm(prompt_name):
            scan.add(
                index,
                "missing-system-prompt",
                f"the designated system-prompt section '## {name}' is missing; the LLM's "
                "instructions are read from it",
            )
        else:
            scan.add(index, "missing-section", f"required section '## {name}' is missing")


def _parse_yaml_block(
    scan: _Scan, fence: _Fence, label: str, code_prefix: str
) -> tuple[Contract | None, str | None]:
    """Parse one vector/contract fence. Returns (contract or None, raw name or None)."""
    first = fence.start + 1  # index of the first content line
    body = "".join(scan.lines[first : fence.end])
    where = f"{label} block on line {fence.start + 1}"
    try:
        data = yaml.safe_load(body)
        node = yaml.compose(body)
    except yaml.YAMLError as exc:
        rel = _yaml_error_line(exc)
        index = first + rel if rel is not None else fence.start
        scan.add(index, f"{code_prefix}-yaml", f"{where} is not valid YAML: {_yaml_error_text(exc)}")
        return None, None
    if not isinstance(data, dict):
        scan.add(
            fence.start,
            f"{code_prefix}-not-mapping",
            f"{where} must hold one YAML mapping (name, method, path, body, expect)",
        )
        return None, None
    lines = _node_lines(node)
    raw_name = data.get("name") if isinstance(data.get("name"), str) else None
    tag = f"{label} '{raw_name}'" if raw_name else where
    ok = True
    for key in data:
        if key not in _CONTRACT_KEYS:
            scan.add(
                first + lines.get((key,), 0),
                f"{code_prefix}-schema",
                f"{tag}: unknown field '{key}' (allowed: {', '.join(sorted(_CONTRACT_KEYS))})",
            )
            ok = False
    expect = data.get("expect")
    if isinstance(expect, dict):
        for key in expect:
            if key not in _EXPECT_KEYS:
                scan.add(
                    first + lines.get(("expect", key), 0),
                    f"{code_prefix}-schema",
                    f"{tag}: unknown field 'expect.{key}' (allowed: {', '.join(sorted(_EXPECT_KEYS))})",
                )
                ok = False
    try:
        contract = Contract.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            rel = _deepest_line(lines, err["loc"])
            index = first + rel if rel is not None else fence.start
            scan.add(
                index,
                f"{code_prefix}-schema",
                f"{tag}: field '{_loc_text(err['loc'])}' {_pydantic_problem(err)}",
            )
        return None, raw_name
    return (contract if ok else None), raw_name


def _check_vectors(
    scan: _Scan, fm: dict[str, Any], sections: list[Section]
) -> tuple[list[Contract], list[Contract], list[Contract]]:
    """(visible vectors, contracts, sealed vectors), reporting every problem."""
    vectors: list[Contract] = []
    contracts: list[Contract] = []
    sealed: list[Contract] = []
    # one name space for visible and sealed vectors: a report names each result once
    vector_names: dict[str, int] = {}
    contract_names: dict[str, int] = {}
    blocks = [b for b in scan.frozen if b.name == VECTORS_BLOCK]
    sealed_blocks = [b for b in scan.frozen if b.name == SEALED_BLOCK]

    def within(bs: list[FrozenBlock], start: int, end: int) -> bool:
        return any(b.start_line - 1 < start and end < b.end_line - 1 for b in bs)

    # An unclosed BEGIN is already reported; read it as running to the end of the file
    # rather than piling "outside the block" errors on top.
    open_starts = [m.index for m in scan.unclosed if m.name in (VECTORS_BLOCK, SEALED_BLOCK)]
    in_block_count = 0
    in_sealed = {b.start_line: 0 for b in sealed_blocks}
    for fence in scan.fences:
        kind = fence.kind
        end = fence.end if fence.end is not None else len(scan.lines)
        if within(sealed_blocks, fence.start, end) and kind != VECTOR_INFO:
            scan.add(
                fence.start,
                "sealed-not-vector",
                f"the code fence on line {fence.start + 1} is inside the FROZEN block "
                f"'{SEALED_BLOCK}', which may hold only '{VECTOR_INFO}' blocks (and prose)",
            )
            continue
        if kind not in (VECTOR_INFO, CONTRACT_INFO):
            if kind.startswith("spec-"):
                scan.add(
                    fence.start,
                    "unknown-fence-kind",
                    f"code fence info string '{kind}' on line {fence.start + 1} is not a known "
                    f"kind; use '{VECTOR_INFO}' or '{CONTRACT_INFO}'",
                )
            continue
        if fence.end is None:
            continue  # already reported as an unterminated fence
        is_vector = kind == VECTOR_INFO
        label = "spec-vector" if is_vector else "spec-contract"
        contract, raw_name = _parse_yaml_block(scan, fence, label, "vector" if is_vector else "contract")
        out = contracts
        if is_vector:
            inside = within(blocks, fence.start, fence.end)
            is_sealed = within(sealed_blocks, fence.start, fence.end)
            if not (inside or is_sealed) and any(start < fence.start for start in open_starts):
                continue  # inside an unclosed block: the marker problem is the real one
            if not (inside or is_sealed):
                scan.add(
                    fence.start,
                    "vector-outside-frozen",
                    f"spec-vector block on line {fence.start + 1} is outside the FROZEN blocks "
                    f"'{VECTORS_BLOCK}' and '{SEALED_BLOCK}'; acceptance vectors must be frozen",
                )
            elif is_sealed:
                for b in sealed_blocks:
                    if b.start_line - 1 < fence.start and fence.end < b.end_line - 1:
                        in_sealed[b.start_line] += 1
            else:
                in_block_count += 1
            out = sealed if is_sealed else vectors
        names = vector_names if is_vector else contract_names
        if raw_name is not None:
            if raw_name in names:
                scan.add(
                    fence.start,
                    f"{'vector' if is_vector else 'contract'}-duplicate-name",
                    f"{label} name '{raw_name}' on line {fence.start + 1} is already used on "
                    f"line {names[raw_name]}; names must be unique",
                )
            else:
                names[raw_name] = fence.start + 1
        if contract is not None and (not is_vector or inside or is_sealed):
            out.append(contract)

    for b in sealed_blocks:
        # stripping the block must not take a section with it
        for h in scan.headings:
            if b.start_line - 1 < h.index < b.end_line - 1:
                scan.add(
                    h.index,
                    "sealed-heading",
                    f"heading on line {h.index + 1} is inside the FROZEN block '{SEALED_BLOCK}'; "
                    "the block is removed from what the writer sees, so it may not hold headings",
                )
        if not in_sealed[b.start_line]:
            scan.add(
                b.start_line - 1,
                "no-sealed-vectors",
                f"FROZEN block '{SEALED_BLOCK}' on line {b.start_line} holds no '{VECTOR_INFO}' blocks",
            )

    required = {_norm(n) for n in _required_sections(fm)}
    sec = next((s for s in sections if _norm(s.name) == _norm(VECTORS_SECTION)), None)
    if _norm(VECTORS_SECTION) in required and (sec is not None or blocks):
        # (A missing section is reported as such; no second message about its block.)
        if not blocks:
            if open_starts:
                return vectors, contracts, sealed
            scan.add(
                sec.start_line - 1 if sec else 0,
                "missing-vectors-block",
                f"no FROZEN block '{VECTORS_BLOCK}'; put the spec-vector blocks between "
                f"'<!-- BEGIN FROZEN: {VECTORS_BLOCK} -->' and '<!-- END FROZEN: {VECTORS_BLOCK} -->'",
            )
        elif in_block_count == 0:
            scan.add(
                blocks[0].start_line - 1,
                "no-vectors",
                f"FROZEN block '{VECTORS_BLOCK}' on line {blocks[0].start_line} holds no "
                f"'{VECTOR_INFO}' blocks",
            )
    return vectors, contracts, sealed


# --- public entry points -----------------------------------------------------------


def check_spec(text: str) -> list[SpecIssue]:
    """Every problem in ``text``, sorted by line; ``[]`` when the spec is fine.
    Never raises."""
    try:
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError as exc:
                return [SpecIssue(1, "encoding", f"spec is not valid UTF-8: {exc}")]
        return _analyse(text).issues
    except Exception as exc:  # pragma: no cover - defensive: check_spec must not raise
        return [SpecIssue(1, "internal-error", f"the spec checker failed: {exc!r}")]


def parse_spec(text: str) -> Spec:
    """Parse a spec; raise :class:`SpecError` listing every issue when it is invalid."""
    analysis = _analyse(text)
    issues = analysis.issues
    if issues:
        raise SpecError(issues)
    return Spec(
        text=text,
        front_matter=analysis.front_matter,
        title=analysis.title,
        sections=analysis.sections,
        frozen=list(analysis.scan.frozen),
        vectors=analysis.vectors,
        contracts=analysis.contracts,
        hash=spec_hash(text),
        sealed=analysis.sealed,
    )


def frozen_preserved(old: str, new: str) -> list[SpecIssue]:
    """Problems with ``new``'s FROZEN blocks relative to ``old``: every well-paired block
    of ``old`` must appear in ``new`` byte-identical under the same name, no block may
    appear that ``old`` lacks, and ``new``'s markers must pair. Lines refer to ``new``."""
    old_blocks, _ = find_frozen(old)
    new_blocks, marker_issues = find_frozen(new)
    # A marker that ended up inside a code fence is a grammar problem for check_spec;
    # here only presence, bytes and pairing count.
    issues = [i for i in marker_issues if i.code != "frozen-marker-in-fence"]
    new_by_name: dict[str, list[FrozenBlock]] = {}
    for b in new_blocks:
        new_by_name.setdefault(b.name, []).append(b)
    old_count: Counter[str] = Counter()
    n_new_lines = max(1, len(_split_lines(new)))
    for ob in old_blocks:
        nth = old_count[ob.name]
        old_count[ob.name] += 1
        candidates = new_by_name.get(ob.name, [])
        if nth >= len(candidates):
            issues.append(
                SpecIssue(
                    min(ob.start_line, n_new_lines),
                    "frozen-missing",
                    f"FROZEN block '{ob.name}' (lines {ob.start_line}-{ob.end_line} of the "
                    "original) is missing or its markers were damaged",
                )
            )
            continue
        nb = candidates[nth]
        if nb.text != ob.text:
            line = nb.start_line + _first_difference(ob.text, nb.text)
            issues.append(
                SpecIssue(
                    line,
                    "frozen-changed",
                    f"FROZEN block '{ob.name}' (BEGIN on line {nb.start_line}) was changed at "
                    f"line {line}: {_line_diff(ob.text, nb.text)}; FROZEN text must stay "
                    "byte-identical",
                )
            )
    for name, blocks in new_by_name.items():
        for nb in blocks[old_count.get(name, 0) :]:
            issues.append(
                SpecIssue(
                    nb.start_line,
                    "frozen-added",
                    f"FROZEN block '{name}' on line {nb.start_line} does not exist in the "
                    "original; FROZEN blocks cannot be added by an edit",
                )
            )
    return sorted(issues, key=lambda i: i.line)


def _first_difference(a: str, b: str) -> int:
    """0-based index of the first line where two texts differ."""
    la, lb = _split_lines(a), _split_lines(b)
    for k, (x, y) in enumerate(zip(la, lb)):
        if x != y:
            return k
    return max(0, min(len(la), len(lb) - 1))


def _line_diff(a: str, b: str) -> str:
    """'column C: was …, now …' for the first differing line, centred on the change."""
    la, lb = _split_lines(a), _split_lines(b)
    k = _first_difference(a, b)
    was = la[k] if k < len(la) else ""
    now = lb[k] if k < len(lb) else ""
    col = next((i for i, (x, y) in enumerate(zip(was, now)) if x != y), min(len(was), len(now)))
    lo = max(0, col - 25)

    def window(line: str) -> str:
        piece = line[lo : lo + 50]
        return ("…" if lo else "") + piece + ("…" if len(line) > lo + 50 else "")

    return f"column {col + 1}: was {window(was)!r}, now {window(now)!r}"


# --- FROZEN-safe editing --------------------------------------------------------------


def _find_section(analysis: _Analysis, section: str) -> Section:
    wanted = _norm(section)
    sec = next((s for s in analysis.sections if s.name == section), None)
    sec = sec or next((s for s in analysis.sections if _norm(s.name) == wanted), None)
    if sec is None:
        raise SpecError([SpecIssue(1, "no-such-section", f"there is no section '## {section}'")])
    return sec


def _reject_structure(piece: str, what: str, allow_markers: bool) -> None:
    """Refuse edit text that would add a section or a FROZEN marker."""
    scan = _scan("\n" + piece)  # leading newline: never read as front matter
    problems = [
        SpecIssue(h.index, "edit-adds-heading", f"{what} contains the heading {'#' * h.level} {h.text!r}; it would split the section")
        for h in scan.headings
        if h.level <= 2
    ]
    if not allow_markers:
        problems += [
            SpecIssue(m.index, "edit-touches-frozen", f"{what} contains a FROZEN marker; FROZEN blocks cannot be added or edited")
            for m in scan.markers
        ]
    problems += [
        SpecIssue(f.start, "edit-unterminated-fence", f"{what} opens a code fence it never closes")
        for f in scan.fences
        if f.end is None
    ]
    if problems:
        raise SpecError(problems)


def _check_edit(original: str, result: str) -> str:
    """An edit must keep FROZEN blocks and must not make a valid spec invalid."""
    problems = frozen_preserved(original, result)
    if problems:
        raise SpecError(problems)
    before = Counter(i.code for i in check_spec(original))
    after = check_spec(result)
    added = Counter(i.code for i in after) - before
    if added:
        raise SpecError([i for i in after if i.code in added])
    return result


def replace_section(text: str, section: str, new_body: str) -> str:
    """Replace the body of ``## section`` with ``new_body``.

    Blank lines at the edges of ``new_body`` are normalised: one blank line after the
    heading and, when another heading follows, one before it. A FROZEN block inside the
    section may only be carried over byte-identical; otherwise :class:`SpecError` is
    raised, as it is for a body that adds a heading or breaks the spec."""
    analysis = _analyse(text)
    sec = _find_section(analysis, section)
    _reject_structure(new_body, "the new section body", allow_markers=True)
    lines = analysis.scan.lines
    start = sec.start_line  # index of the first body line
    end = start + len(_split_lines(sec.body))
    core = new_body.strip("\r\n")
    followed = end < len(lines)
    if core:
        body = "\n" + core + "\n" + ("\n" if followed else "")
    else:
        body = "\n" if followed else ""
    head = "".join(lines[:start])
    if not head.endswith("\n"):
        head += "\n"
    result = head + body + "".join(lines[end:])
    return _check_edit(text, result)


def insert_into_section(text: str, section: str, addition: str) -> str:
    """Append ``addition`` as a paragraph at the end of ``## section``: after its last
    text, but before any FROZEN blocks that end the section, never inside one."""
    analysis = _analyse(text)
    sec = _find_section(analysis, section)
    core = addition.strip("\r\n")
    if not core.strip():
        raise SpecError([SpecIssue(sec.start_line, "edit-empty", "the addition is empty")])
    _reject_structure(core, "the addition", allow_markers=False)
    scan = analysis.scan
    lines = list(scan.lines)
    start = sec.start_line  # first body index
    stop = start + len(_split_lines(sec.body))  # exclusive
    # Walk back over trailing blank lines and trailing FROZEN blocks.
    pos = stop
    while True:
        while pos > start and not lines[pos - 1].strip():
            pos -= 1
        block = next((b for b in scan.frozen if b.end_line == pos and b.start_line - 1 >= start), None)
        if block is None:
            break
        pos = block.start_line - 1
    insert_at = pos
    before_blank = insert_at > 0 and lines[insert_at - 1].strip() != ""
    piece = ("\n" if before_blank else "") + core + "\n"
    if insert_at > 0 and not lines[insert_at - 1].endswith("\n"):
        lines[insert_at - 1] += "\n"
    rest = lines[insert_at:]
    if rest and rest[0].strip():
        piece += "\n"  # keep a blank line before the FROZEN block or heading that follows
    result = "".join(lines[:insert_at]) + piece + "".join(rest)
    return _check_edit(text, result)


def validate_variant(base: str, variant: str) -> list[SpecIssue]:
    """DESIGN §9.1: a mutated spec is valid only if it parses, keeps the base's required
    sections, duplicates no heading, keeps every FROZEN block byte-identical and paired,
    and still describes the same contract (vectors, contracts, entry and port).
    Lines refer to the variant."""
    issues: list[SpecIssue] = list(check_spec(variant))
    seen = {(i.line, i.code, i.message) for i in issues}

    def add(found: Iterable[SpecIssue]) -> None:
        for i in found:
            key = (i.line, i.code, i.message)
            if key not in seen:
                seen.add(key)
                issues.append(i)

    add(frozen_preserved(base, variant))
    base_issues = check_spec(base)
    if base_issues:
        add([SpecIssue(1, "base-invalid", f"the base spec is itself invalid ({len(base_issues)} issue(s); first: {base_issues[0]})")])
        return sorted(issues, key=lambda i: i.line)
    b = parse_spec(base)
    va = _analyse(variant)
    present = {_norm(s.name) for s in va.sections}
    for name in b.required_sections:
        already = any(
            i.code in ("missing-section", "missing-system-prompt") and f"'## {name}'" in i.message for i in issues
        )
        if _norm(name) not in present and not already:
            add([SpecIssue(1, "missing-section", f"required section '## {name}' of the base spec is missing")])
    if [v.to_wire() for v in va.vectors] != [v.to_wire() for v in b.vectors]:
        add([SpecIssue(1, "variant-vectors-changed", "the acceptance vectors differ from the base spec's")])
    if [v.to_wire() for v in va.sealed] != [v.to_wire() for v in b.sealed]:
        add([SpecIssue(1, "variant-sealed-changed", "the sealed vectors differ from the base spec's")])
    if [c.to_wire() for c in va.contracts] != [c.to_wire() for c in b.contracts]:
        add([SpecIssue(1, "variant-contracts-changed", "the spec-contract blocks differ from the base spec's")])
    for key in ("entry", "port", "system-prompt-section"):
        if va.front_matter.get(key) != b.front_matter.get(key):
            add([SpecIssue(1, "variant-front-matter-changed", f"front-matter '{key}' differs from the base spec's")])
    return sorted(issues, key=lambda i: i.line)


def sealed_probes(spec_text: str) -> list[dict[str, Any]]:
    """The spec's sealed vectors as the rig's probe dicts ([] when it has none)."""
    try:
        return [v.to_wire() for v in parse_spec(spec_text).sealed]
    except SpecError:
        return []  # an invalid spec never reaches the rig: generate refuses it

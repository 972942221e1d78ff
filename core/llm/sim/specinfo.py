"""What the simulated model "understands" of a spec.

The sim reads a spec the way a careless reader would: the front matter (port,
entry commands), the ``##`` sections, the contract table, the acceptance vectors
and the free prose. It prefers ``core.spec.parse_spec`` when it is importable and
understands the text, and falls back to its own tolerant parser otherwise, so a
half-broken spec variant still gets an answer (a real model would answer too).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

FROZEN_RE = re.compile(
    r"<!--\s*BEGIN FROZEN:\s*(?P<name>[\w.-]+)\s*-->.*?<!--\s*END FROZEN:\s*(?P=name)\s*-->",
    re.S,
)
VECTOR_FENCE_RE = re.compile(r"^```spec-vector[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.S | re.M)
CONTRACT_FENCE_RE = re.compile(r"^```spec-contract[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.S | re.M)
FENCE_RE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
FRONT_RE = re.compile(r"\A---[ \t]*\n(?P<yaml>.*?)\n---[ \t]*(\n|\Z)", re.S)
HEADING_RE = re.compile(r"^##[ \t]+(?P<title>[^\n#][^\n]*?)[ \t]*#*[ \t]*$", re.M)

GENERATION_TOKEN = "$GENERATION"


@dataclass(frozen=True)
class Expect:
    status: int
    body: Any = None
    body_contains: dict[str, Any] | None = None
    body_has_keys: tuple[str, ...] | None = None
    has_body: bool = False  # ``body`` given explicitly (it may be JSON null)


@dataclass(frozen=True)
class Vector:
    name: str
    method: str
    path: str
    body: Any
    expect: Expect
    has_request_body: bool = False


@dataclass(frozen=True)
class ContractRow:
    method: str
    path: str
    status: int
    body: str


@dataclass
class SpecInfo:
    text: str
    name: str = "service"
    port: int = 8080
    entry: dict[str, str] = field(default_factory=dict)
    sections: dict[str, str] = field(default_factory=dict)
    vectors: list[Vector] = field(default_factory=list)
    contracts: list[Vector] = field(default_factory=list)  # ``spec-contract`` blocks
    contract_rows: list[ContractRow] = field(default_factory=list)
    prose: str = ""  # text outside FROZEN blocks, front matter and code fences
    system_prompt: str = ""
    memo: dict = field(default_factory=dict, repr=False, compare=False)  # derived values

    @property
    def package(self) -> str:
        start = self.entry.get("start", "")
        m = re.search(r"-m\s+([A-Za-z_][\w.]*)", start)
        if m:
            return m.group(1).split(".")[0]
        return python_identifier(self.name)

    @property
    def health_path(self) -> str:
        url = self.entry.get("health", "")
        m = re.match(r"^https?://[^/]+(/.*)$", url)
        return m.group(1) if m else "/health"

    def has_section(self, pattern: str) -> bool:
        rx = re.compile(pattern, re.I)
        return any(rx.search(title) for title in self.sections)

    def section(self, pattern: str) -> str | None:
        rx = re.compile(pattern, re.I)
        for title, body in self.sections.items():
            if rx.search(title):
                return body
        return None


def template_kind(spec: SpecInfo) -> str:
    """Which codebase the sim writes: ``prime`` / ``echo`` for those genomes (recognised by
    package and endpoints), ``generic`` (served straight from the vectors) for any other."""
    paths = {v.path.split("?")[0] for v in spec.vectors}
    if spec.package == "prime" and {"/parse", "/manifest"} <= paths:
        return "prime"
    if spec.package == "echo" and {"/echo", "/reverse"} <= paths:
        return "echo"
    return "generic"


def python_identifier(name: str) -> str:
    ident = re.sub(r"\W+", "_", name.strip().lower()).strip("_") or "service"
    if ident[0].isdigit():
        ident = "svc_" + ident
    return ident


def _strip_fences(text: str) -> str:
    return FENCE_RE.sub("", text)


def split_sections(text: str) -> dict[str, str]:
    """``##`` headings outside code fences -> body text (first occurrence wins)."""
    # Blank out fenced code (keeping offsets) so headings inside fences are ignored.
    masked = FENCE_RE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    heads = list(HEADING_RE.finditer(masked))
    out: dict[str, str] = {}
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        out.setdefault(m.group("title").strip(), text[m.end():end].strip("\n"))
    return out


def _expect_from(raw: Any) -> Expect:
    raw = raw if isinstance(raw, dict) else {}
    keys = raw.get("body_has_keys")
    contains = raw.get("body_contains")
    return Expect(
        status=int(raw.get("status", 200)),
        body=raw.get("body"),
        body_contains=contains if isinstance(contains, dict) else None,
        body_has_keys=tuple(str(k) for k in keys) if isinstance(keys, list) else None,
        has_body="body" in raw,
    )


def _vector_from(raw: dict[str, Any], index: int) -> Vector:
    return Vector(
        name=str(raw.get("name") or f"vector-{index}"),
        method=str(raw.get("method", "GET")).upper(),
        path=str(raw.get("path", "/")),
        body=raw.get("body"),
        expect=_expect_from(raw.get("expect")),
        has_request_body="body" in raw,
    )


def parse_vectors(text: str, fence: re.Pattern[str] = VECTOR_FENCE_RE) -> list[Vector]:
    vectors: list[Vector] = []
    for i, m in enumerate(fence.finditer(text)):
        try:
            raw = yaml.safe_load(m.group("body"))
        except yaml.YAMLError:
            continue
        if isinstance(raw, dict):
            vectors.append(_vector_from(raw, i))
        elif isinstance(raw, list):
            vectors.extend(_vector_from(r, i) for r in raw if isinstance(r, dict))
    return vectors


def _cell(s: str) -> str:
    return s.strip().strip("`").strip()


def parse_contract_table(text: str) -> list[ContractRow]:
    """Rows of any markdown table whose header starts ``| method | path | status |``."""
    rows: list[ContractRow] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        head = [c.strip().lower() for c in lines[i].strip().strip("|").split("|")]
        if len(head) >= 3 and head[:3] == ["method", "path", "status"]:
            i += 2  # skip the |---| separator
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = [c for c in lines[i].strip().strip("|").split("|")]
                if len(cells) >= 3:
                    try:
                        status = int(re.sub(r"\D", "", cells[2])[:3])
                    except ValueError:
                        status = 200
                    rows.append(
                        ContractRow(
                            method=_cell(cells[0]).upper(),
                            path=_cell(cells[1]),
                            status=status,
                            body=_cell("|".join(cells[3:])) if len(cells) > 3 else "",
                        )
                    )
                i += 1
            continue
        i += 1
    return rows


def row_body_json(row: ContractRow) -> Any:
    """The body cell as JSON when it is JSON, else None."""
    try:
        return json.loads(row.body)
    except (ValueError, TypeError):
        return None


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    m = FRONT_RE.match(text)
    if not m:
        return {}, text
    try:
        data = yaml.safe_load(m.group("yaml")) or {}
    except yaml.YAMLError:
        data = {}
    return (data if isinstance(data, dict) else {}), text[m.end():]


def _from_core(text: str, attr: str = "vectors") -> list[Vector] | None:
    """Vectors (or contracts) as the project's own spec parser reads them."""
    try:
        from core.spec import parse_spec  # type: ignore[import-not-found]
    except Exception:
        return None
    try:
        spec = parse_spec(text)
    except Exception:
        return None
    raw_vectors = getattr(spec, attr, None)
    if raw_vectors is None:
        return None
    out: list[Vector] = []
    for i, v in enumerate(raw_vectors):
        if hasattr(v, "to_wire"):
            raw = v.to_wire()
        elif hasattr(v, "model_dump"):
            raw = v.model_dump(mode="json", by_alias=True, exclude_unset=True)
        elif isinstance(v, dict):
            raw = v
        else:
            return None
        out.append(_vector_from(raw, i))
    return out


SEALED_RE = re.compile(r"<!--\s*BEGIN FROZEN:\s*sealed-vectors\s*-->.*?<!--\s*END FROZEN:\s*sealed-vectors\s*-->", re.S)


def parse_spec_text(text: str) -> SpecInfo:
    front, body = _front_matter(text)
    entry = front.get("entry") if isinstance(front.get("entry"), dict) else {}
    entry = {str(k): str(v) for k, v in entry.items()}
    port = front.get("port")
    if not isinstance(port, int):
        m = re.search(r"localhost:(\d+)", entry.get("health", ""))
        port = int(m.group(1)) if m else 8080
    sections = split_sections(body)
    vectors = _from_core(text)
    if not vectors:  # the writer never sees sealed vectors (core.spec strips them): nor does the sim
        vectors = parse_vectors(SEALED_RE.sub("", text))
    contracts = _from_core(text, "contracts")
    if contracts is None:
        contracts = parse_vectors(text, CONTRACT_FENCE_RE)
    outside_frozen = FROZEN_RE.sub("", body)
    prose = _strip_fences(outside_frozen)
    system_prompt = ""
    for title, sbody in sections.items():
        if re.search(r"system[- ]prompt", title, re.I):
            system_prompt = sbody
    return SpecInfo(
        text=text,
        name=str(front.get("name") or "service"),
        port=port,
        entry=entry,
        sections=sections,
        vectors=vectors,
        contracts=contracts,
        contract_rows=parse_contract_table(outside_frozen),
        prose=prose,
        system_prompt=system_prompt,
    )

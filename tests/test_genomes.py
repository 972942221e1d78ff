"""The shipped genomes (spec/prime.md, spec/echo.md) are valid and internally consistent."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from core.spec import Spec, check_spec, parse_spec, read_spec_text
from rig.hashing import artifact_hash_of
from rig.schema import Contract

ROOT = Path(__file__).resolve().parents[1]
PRIME_PATH = ROOT / "spec" / "prime.md"
ECHO_PATH = ROOT / "spec" / "echo.md"
REQUIREMENTS = ROOT / "rig" / "organism_requirements.txt"


@pytest.fixture(scope="module")
def prime() -> Spec:
    return parse_spec(read_spec_text(PRIME_PATH))


@pytest.fixture(scope="module")
def echo() -> Spec:
    return parse_spec(read_spec_text(ECHO_PATH))


def vector(spec: Spec, name: str) -> Contract:
    found = [v for v in spec.vectors if v.name == name]
    assert len(found) == 1, f"no single vector {name!r}"
    return found[0]


def pins_in(text: str) -> set[str]:
    return {f"{name.lower()}=={version}" for name, version in re.findall(r"([A-Za-z0-9_.\-]+)==([0-9][0-9A-Za-z.\-]*)", text)}


def required_pins() -> set[str]:
    lines = REQUIREMENTS.read_text(encoding="utf-8").splitlines()
    return {ln.strip().lower() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")}


def contract_table(body: str) -> set[tuple[str, str, int]]:
    """(method, path, status) rows of the first `method | path | status | body` table."""
    rows: set[tuple[str, str, int]] = set()
    lines = body.splitlines()
    start = next(i for i, ln in enumerate(lines) if re.match(r"^\|\s*method\s*\|\s*path\s*\|\s*status\s*\|\s*body\s*\|", ln))
    assert re.match(r"^\|(\s*-+\s*\|){4}$", lines[start + 1])
    for ln in lines[start + 2 :]:
        if not ln.startswith("|"):
            break
        cells = [c.strip() for c in ln.strip().strip("|").split("|")]
        rows.add((cells[0], cells[1], int(cells[2])))
    return rows


# An independent reading of DESIGN §6.4 plus prime.md's "LLM Output Format" rules, used
# to check that the parse vectors agree with the rules the spec states.
def reference_parse(text: str) -> list[dict] | tuple[str, int]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    files: list[dict] = []
    seen: set[str] = set()
    current: str | None = None
    opened = 0
    content: list[str] = []
    for number, line in enumerate(lines, start=1):
        if current is None:
            if not line.startswith("<file"):
                continue
            m = re.fullmatch(r'<file path="([^"]*)">', line)
            if not m:
                return ("malformed-open", number)
            path = m.group(1)
            parts = path.split("/")
            if not path or path.startswith("/") or "\\" in path or "\x00" in path or any(p in ("", ".", "..") for p in parts):
                return ("unsafe-path", number)
            if path == "manifest.json" or parts[0] == "spec":
                return ("reserved-path", number)
            if path in seen:
                return ("duplicate-path", number)
            seen.add(path)
            current, opened, content = path, number, []
        elif line == "</file:end>":
            files.append({"path": current, "content": "".join(c + "\n" for c in content)})
            current = None
        elif line.startswith("<file"):
            return ("nested-block", number)
        else:
            content.append(line)
    if current is not None:
        return ("unterminated-block", opened)
    if not files:
        return ("no-files", 1)
    return files


# --- both genomes --------------------------------------------------------------------


@pytest.mark.parametrize("path", [PRIME_PATH, ECHO_PATH], ids=["prime", "echo"])
def test_genome_checks_clean(path):
    assert check_spec(read_spec_text(path)) == []


@pytest.mark.parametrize("path", [PRIME_PATH, ECHO_PATH], ids=["prime", "echo"])
def test_genome_system_prompt_states_the_output_format(path):
    spec = parse_spec(read_spec_text(path))
    prompt = spec.system_prompt
    assert spec.section("System Prompt") is not None
    assert '`<file path="relative/path">`' in prompt
    assert "`</file:end>`" in prompt
    assert "manifest.json" in prompt and "spec/" in prompt
    assert "3.11" in prompt


@pytest.mark.parametrize("path", [PRIME_PATH, ECHO_PATH], ids=["prime", "echo"])
def test_genome_vectors_are_frozen_and_offline(path):
    spec = parse_spec(read_spec_text(path))
    block = spec.frozen_block("acceptance-vectors")
    assert block is not None
    for v in spec.vectors:
        assert f"name: {v.name}\n" in block.text
        assert v.path != "/generate" or 400 <= v.expect.status < 500, "only validation errors are checkable offline"
    # The health vector probes the manifest's health URL and reports the generation.
    health = vector(spec, "health-reports-generation")
    assert health.path == spec.entry.health_path
    assert health.expect.body_contains == {"status": "ok", "generation": "$GENERATION"}


@pytest.mark.parametrize("path", [PRIME_PATH, ECHO_PATH], ids=["prime", "echo"])
def test_every_vector_matches_a_row_of_the_contract_table(path):
    spec = parse_spec(read_spec_text(path))
    table = contract_table(spec.section("HTTP Contract").body)
    for v in spec.vectors:
        route = urlsplit(v.path).path
        if v.expect.status == 404:
            assert all(route != p for _, p, _ in table), f"{v.name}: 404 probe hits a documented path"
            continue
        assert (v.method, route, v.expect.status) in table, f"{v.name} has no table row"


def test_genome_front_matter(prime, echo):
    assert prime.name == "prime" and prime.port == 8401
    assert prime.entry.to_wire() == {
        "build": "python -m compileall -q .",
        "test": "python -m pytest -q",
        "start": "python -m prime",
        "health": "http://localhost:8401/health",
    }
    assert echo.name == "echo" and echo.port == 8402
    assert echo.entry.start == "python -m echo"
    assert echo.entry.health == "http://localhost:8402/health"
    assert echo.entry.build == prime.entry.build and echo.entry.test == prime.entry.test
    for spec in (prime, echo):
        assert spec.front_matter["spec-format"] == 1
        assert spec.system_prompt_section == "System Prompt"


# --- prime ---------------------------------------------------------------------------


def test_prime_sections(prime):
    expected = [
        "Identity",
        "System Prompt",
        "HTTP Contract",
        "Manifest",
        "Generation Loop",
        "LLM Output Format",
        "Implementation Requirements",
        "Testing",
        "Acceptance Vectors",
    ]
    assert [s.name for s in prime.sections] == expected
    assert prime.required_sections == expected
    assert [b.name for b in prime.frozen] == ["identity-anchor", "acceptance-vectors", "sealed-vectors"]
    # the sealed vectors check rows of the parse error table no visible vector checks
    assert [v.name for v in prime.sealed] == ["parse-rejects-duplicate-path", "parse-rejects-nested-block",
                                             "parse-rejects-backslash"]
    assert "sealed-vectors" not in prime.visible_text
    anchor = prime.frozen_block("identity-anchor")
    ident = prime.section("Identity")
    assert ident.start_line < anchor.start_line <= anchor.end_line <= ident.end_line
    assert "8401" in anchor.text and "manifest.json" in anchor.text


def test_prime_has_enough_distinct_vectors(prime):
    names = [v.name for v in prime.vectors]
    assert len(names) >= 6 and len(set(names)) == len(names)
    assert {v.path for v in prime.vectors} >= {"/health", "/stats", "/parse", "/manifest"}
    assert [c.name for c in prime.contracts] == ["health-is-json"]


def test_prime_pins_equal_the_rig_requirements(prime):
    body = prime.section("Implementation Requirements").body
    assert "Python 3.11" in body
    assert pins_in(body) == required_pins()
    assert len(required_pins()) >= 5


def test_prime_layout_and_environment_are_specified(prime):
    body = prime.section("Implementation Requirements").body
    for needle in ("`prime/`", "__main__.py", "`tests/`", "CAMBRIAN_GENERATION", "ANTHROPIC_API_KEY", "placeholder"):
        assert needle in body, needle
    assert "offline" in prime.section("Testing").body or "without a network" in prime.section("Testing").body


def test_prime_parse_vector_agrees_with_the_stated_rules(prime):
    ok = vector(prime, "parse-extracts-files")
    assert ok.expect.status == 200
    assert reference_parse(ok.body["text"]) == ok.expect.body["files"]
    assert ok.expect.body == {"files": ok.expect.body["files"]}
    for name in ("parse-rejects-parent-path", "parse-rejects-absolute-path", "parse-rejects-manifest", "parse-rejects-unterminated"):
        v = vector(prime, name)
        code, line = reference_parse(v.body["text"])
        assert v.expect.status == 422
        assert v.expect.body_contains == {"error": code, "line": line}, name
    # Every error code the vectors use is documented in the spec's error table.
    table = prime.section("LLM Output Format").body
    for code in ("unsafe-path", "reserved-path", "unterminated-block", "malformed-open", "nested-block", "duplicate-path", "no-files"):
        assert f"`{code}`" in table


def test_prime_manifest_vector_hashes_are_correct(prime):
    v = vector(prime, "manifest-computes-hashes")
    files = {path: text.encode("utf-8") for path, text in v.body["files"].items()}
    expect = v.expect.body_contains
    assert expect["artifact-hash"] == artifact_hash_of(files)
    (spec_copy,) = [p for p in files if p.startswith("spec/") and p.endswith(".md")]
    assert expect["spec-hash"] == "sha256:" + hashlib.sha256(files[spec_copy]).hexdigest()
    assert expect["files"] == sorted([*files, "manifest.json"])
    assert expect["generation"] == v.body["generation"]
    assert expect["parent-generation"] == v.body["parent-generation"]
    assert v.body["entry"] == prime.entry.to_wire()

    bad = vector(prime, "manifest-needs-one-spec-copy")
    assert not [p for p in bad.body["files"] if p.startswith("spec/")]
    assert bad.expect.status == 422


# --- echo ----------------------------------------------------------------------------


def test_echo_sections_and_vectors(echo):
    assert [s.name for s in echo.sections] == [
        "System Prompt",
        "HTTP Contract",
        "Implementation Requirements",
        "Testing",
        "Acceptance Vectors",
    ]
    assert len(echo.vectors) >= 3
    assert echo.contracts == []
    assert pins_in(echo.section("Implementation Requirements").body) <= required_pins()


def test_echo_vectors_are_self_consistent(echo):
    ev = vector(echo, "echo-returns-body")
    assert ev.method == "POST" and ev.expect.body == ev.body and ev.body
    rv = vector(echo, "reverse-text")
    text = parse_qs(urlsplit(rv.path).query)["text"][0]
    assert rv.expect.body == {"text": text, "reversed": text[::-1]}
    assert text != text[::-1]

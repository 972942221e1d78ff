"""The spec grammar: parsing, checks with exact lines, FROZEN safety, editing, hashing."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core.spec import (
    DEFAULT_SYSTEM_PROMPT,
    Spec,
    SpecError,
    SpecIssue,
    check_spec,
    find_frozen,
    frozen_preserved,
    insert_into_section,
    parse_spec,
    read_spec_text,
    replace_section,
    spec_hash,
    validate_variant,
)

ROOT = Path(__file__).resolve().parents[1]
PRIME = read_spec_text(ROOT / "spec" / "prime.md")
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "specs"


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based number of the nth line containing ``needle`` (computed, not hard-coded)."""
    seen = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if needle in line:
            seen += 1
            if seen == nth:
                return number
    raise AssertionError(f"{needle!r} (occurrence {nth}) not found")


def codes(issues: list[SpecIssue]) -> list[str]:
    return [i.code for i in issues]


def only(issues: list[SpecIssue], code: str) -> SpecIssue:
    found = [i for i in issues if i.code == code]
    assert len(found) == 1, f"expected one {code!r}, got {issues}"
    return found[0]


MINIMAL = """\
---
name: tiny
port: 9000
entry:
  build: "true"
  test: "true"
  start: python -m tiny
  health: http://localhost:9000/health
---

# Tiny

Preamble text.

## System Prompt

Write tiny.

### Detail

Still part of the system prompt section.

## Acceptance Vectors

<!-- BEGIN FROZEN: acceptance-vectors -->
```spec-vector
name: health
path: /health
expect:
  status: 200
```
<!-- END FROZEN: acceptance-vectors -->
"""


# --- parsing -------------------------------------------------------------------------


def test_minimal_spec_parses_into_sections_and_vectors():
    spec = parse_spec(MINIMAL)
    assert isinstance(spec, Spec)
    assert spec.title == "Tiny"
    assert spec.name == "tiny"
    assert spec.port == 9000
    assert spec.entry is not None and spec.entry.start == "python -m tiny"
    assert [s.name for s in spec.sections] == ["System Prompt", "Acceptance Vectors"]
    sp = spec.section("System Prompt")
    assert sp is not None and sp.level == 2
    assert sp.start_line == line_of(MINIMAL, "## System Prompt")
    # The ### sub-heading belongs to the section; the section ends before the next ##.
    assert "### Detail" in sp.body and "Still part" in sp.body
    assert sp.end_line == line_of(MINIMAL, "## Acceptance Vectors") - 1
    assert spec.system_prompt.startswith("Write tiny.") and spec.system_prompt.endswith("section.")
    av = spec.section("acceptance vectors")  # case-insensitive lookup
    assert av is not None and av.end_line == len(MINIMAL.splitlines())
    assert [v.name for v in spec.vectors] == ["health"]
    assert spec.vectors[0].method == "GET" and spec.vectors[0].expect.status == 200
    (block,) = spec.frozen
    assert block.name == "acceptance-vectors"
    assert block.start_line == line_of(MINIMAL, "BEGIN FROZEN")
    assert block.end_line == line_of(MINIMAL, "END FROZEN")
    assert block.text.startswith("<!-- BEGIN FROZEN") and block.text.endswith("acceptance-vectors -->\n")
    assert block.text in MINIMAL
    assert spec.section("Nope") is None


def test_section_body_is_exact_text_between_headings():
    text = "# T\n\n## A\nline a1\n\nline a2\n## B\nb\n"
    spec_text = text + "## Acceptance Vectors\n" + MINIMAL.split("## Acceptance Vectors\n", 1)[1]
    spec_text = spec_text.replace("## A\n", "## System Prompt\n")
    spec = parse_spec(spec_text)
    assert spec.section("System Prompt").body == "line a1\n\nline a2\n"
    assert spec.section("B").body == "b\n"
    assert spec.section("B").start_line == spec.section("B").end_line - 1


def test_headings_inside_code_fences_are_ignored():
    fenced = MINIMAL.replace(
        "Preamble text.\n",
        "Preamble text.\n\n```markdown\n## System Prompt\n## Not A Section\n```\n\n"
        "~~~~\n```\n## Still Code\n~~~\n## Still Code Too\n~~~~\n\n"
        "  ```python\n# a comment, not a title\n## indented fence content\n  ```\n",
    )
    assert check_spec(fenced) == []
    spec = parse_spec(fenced)
    assert [s.name for s in spec.sections] == ["System Prompt", "Acceptance Vectors"]
    assert spec.title == "Tiny"


def test_system_prompt_section_can_be_renamed_and_falls_back_when_optional():
    renamed = MINIMAL.replace("port: 9000\n", "port: 9000\nsystem-prompt-section: Brief\n").replace(
        "## System Prompt", "## Brief"
    )
    assert parse_spec(renamed).system_prompt.startswith("Write tiny.")

    optional = MINIMAL.replace("port: 9000\n", "port: 9000\nrequired-sections: [Acceptance Vectors]\n")
    optional = optional.replace("## System Prompt", "## Notes")
    spec = parse_spec(optional)
    assert spec.section("System Prompt") is None
    assert spec.system_prompt == DEFAULT_SYSTEM_PROMPT
    assert "</file:end>" in DEFAULT_SYSTEM_PROMPT and '<file path="relative/path">' in DEFAULT_SYSTEM_PROMPT


def test_spec_without_front_matter_uses_defaults():
    text = MINIMAL.split("---\n", 2)[2]
    spec = parse_spec(text)
    assert spec.front_matter == {}
    assert spec.name == "Tiny"  # falls back to the title
    assert spec.entry is None and spec.port is None
    assert spec.required_sections == ["System Prompt", "Acceptance Vectors"]


def test_contracts_are_collected_from_anywhere():
    text = MINIMAL.replace(
        "Write tiny.\n",
        "Write tiny.\n\n```spec-contract\nname: stats\nmethod: GET\npath: /stats\n"
        "expect:\n  status: 200\n  body_has_keys: [uptime]\n```\n",
    )
    spec = parse_spec(text)
    assert [c.name for c in spec.contracts] == ["stats"]
    assert spec.contracts[0].expect.body_has_keys == ["uptime"]
    assert [v.name for v in spec.vectors] == ["health"]  # contracts are not vectors


def test_crlf_spec_parses_and_keeps_bytes():
    crlf = MINIMAL.replace("\n", "\r\n")
    spec = parse_spec(crlf)
    assert [s.name for s in spec.sections] == ["System Prompt", "Acceptance Vectors"]
    assert spec.frozen[0].text.endswith("-->\r\n")
    assert spec.hash != parse_spec(MINIMAL).hash


# --- hashing -------------------------------------------------------------------------


def test_spec_hash_is_sha256_of_utf8_bytes():
    text = MINIMAL + "ünïcödé ✓\n"
    expected = "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert spec_hash(text) == expected
    assert spec_hash(text.encode("utf-8")) == expected
    assert parse_spec(text).hash == expected
    assert spec_hash(text + " ") != expected
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", expected)


def test_read_spec_text_does_not_translate_newlines(tmp_path):
    raw = MINIMAL.replace("\n", "\r\n").encode("utf-8")
    path = tmp_path / "s.md"
    path.write_bytes(raw)
    text = read_spec_text(path)
    assert spec_hash(text) == "sha256:" + hashlib.sha256(raw).hexdigest()


# --- check_spec: each problem at its exact line --------------------------------------


def test_prime_copy_with_unpaired_begin_marker():
    broken = PRIME.replace("<!-- END FROZEN: identity-anchor -->\n", "")
    issues = check_spec(broken)
    issue = only(issues, "frozen-unpaired")
    assert issue.line == line_of(broken, "BEGIN FROZEN: identity-anchor")
    assert "identity-anchor" in issue.message and "never closed" in issue.message
    assert str(issue).startswith(f"line {issue.line}: ")
    with pytest.raises(SpecError) as err:
        parse_spec(broken)
    assert any(i.code == "frozen-unpaired" for i in err.value.issues)


def test_unpaired_end_and_mismatched_markers():
    stray = MINIMAL.replace("Preamble text.\n", "Preamble text.\n<!-- END FROZEN: ghost -->\n")
    issue = only(check_spec(stray), "frozen-unpaired")
    assert issue.line == line_of(stray, "END FROZEN: ghost")
    assert "no matching BEGIN" in issue.message

    mismatched = MINIMAL.replace("<!-- END FROZEN: acceptance-vectors -->", "<!-- END FROZEN: acceptance-vector -->")
    issue = only(check_spec(mismatched), "frozen-mismatched")
    assert issue.line == line_of(mismatched, "END FROZEN: acceptance-vector ")
    assert "acceptance-vectors" in issue.message


def test_nested_and_duplicate_frozen_blocks():
    nested = MINIMAL.replace(
        "```spec-vector\n", "<!-- BEGIN FROZEN: inner -->\nx\n<!-- END FROZEN: inner -->\n```spec-vector\n"
    )
    issue = only(check_spec(nested), "frozen-nested")
    assert issue.line == line_of(nested, "BEGIN FROZEN: inner")

    dup = MINIMAL.replace(
        "Preamble text.\n", "<!-- BEGIN FROZEN: acceptance-vectors -->\nold\n<!-- END FROZEN: acceptance-vectors -->\n"
    )
    issue = only(check_spec(dup), "frozen-duplicate-name")
    assert issue.line == line_of(dup, "BEGIN FROZEN: acceptance-vectors", nth=2)


def test_malformed_marker_and_marker_inside_fence():
    bad = MINIMAL.replace("Preamble text.\n", "<!-- BEGIN FROZEN: Not_Valid -->\n")
    issue = only(check_spec(bad), "frozen-marker-malformed")
    assert issue.line == line_of(bad, "Not_Valid")

    fenced = MINIMAL.replace("```\n<!-- END FROZEN", "<!-- END FROZEN").replace(
        "acceptance-vectors -->\n", "acceptance-vectors -->\n```\n"
    ).replace("<!-- BEGIN FROZEN: acceptance-vectors -->\n```\n", "<!-- BEGIN FROZEN: acceptance-vectors -->\n")
    issue = only(check_spec(fenced), "frozen-marker-in-fence")
    assert issue.line == line_of(fenced, "END FROZEN: acceptance-vectors")


def test_prime_copy_with_duplicated_heading():
    dup = PRIME.replace("## Testing\n", "## Testing\n\nMore.\n\n## testing\n", 1)
    issue = only(check_spec(dup), "duplicate-heading")
    assert issue.line == line_of(dup, "## testing")
    assert f"line {line_of(dup, '## Testing')}" in issue.message


def test_prime_copy_with_missing_required_section():
    missing = PRIME.replace("## Generation Loop\n", "### Generation Loop\n")
    issue = only(check_spec(missing), "missing-section")
    # prime.md declares required-sections, so the issue points at the list item.
    assert issue.line == line_of(missing, "  - Generation Loop")
    assert "Generation Loop" in issue.message


def test_missing_section_defaults_to_line_one_and_system_prompt_has_its_own_code():
    no_prompt = MINIMAL.replace("## System Prompt", "## Something Else")
    issue = only(check_spec(no_prompt), "missing-system-prompt")
    assert issue.line == 1 and "System Prompt" in issue.message

    no_vectors_section = MINIMAL.replace("## Acceptance Vectors", "## Checks")
    issue = only(check_spec(no_vectors_section), "missing-section")
    assert issue.line == 1 and "Acceptance Vectors" in issue.message


def test_prime_copy_with_unparseable_spec_vector_yaml():
    bad = PRIME.replace("name: stats-has-counters\nmethod: GET\n", "name: stats-has-counters\nmethod: [GET\n", 1)
    issue = only(check_spec(bad), "vector-yaml")
    fence = line_of(bad, "method: [GET") - 2  # ```spec-vector line
    assert bad.split("\n")[fence - 1] == "```spec-vector"
    # PyYAML reports the unclosed flow sequence where it gives up: the next line.
    assert issue.line == line_of(bad, "method: [GET") + 1
    assert f"block on line {fence}" in issue.message


def test_prime_copy_with_vector_missing_expect_status():
    bad = PRIME.replace("name: unknown-path-is-404\nmethod: GET\npath: /no-such-endpoint\nexpect:\n  status: 404\n",
                        "name: unknown-path-is-404\nmethod: GET\npath: /no-such-endpoint\nexpect:\n  body_has_keys: [x]\n")
    assert bad != PRIME
    issue = only(check_spec(bad), "vector-schema")
    assert issue.line == line_of(bad, "name: unknown-path-is-404") + 3  # the `expect:` line
    assert "expect.status" in issue.message and "unknown-path-is-404" in issue.message
    assert "required" in issue.message


def test_vector_schema_errors_point_at_the_field_or_the_block():
    no_path = MINIMAL.replace("path: /health\n", "")
    issue = only(check_spec(no_path), "vector-schema")
    assert issue.line == line_of(no_path, "```spec-vector") and "'path'" in issue.message

    bad_method = MINIMAL.replace("path: /health\n", "method: FETCH\npath: /health\n")
    issue = only(check_spec(bad_method), "vector-schema")
    assert issue.line == line_of(bad_method, "method: FETCH") and "'method'" in issue.message

    typo = MINIMAL.replace("  status: 200\n", "  status: 200\n  body_contain: {a: 1}\n")
    issue = only(check_spec(typo), "vector-schema")
    assert issue.line == line_of(typo, "body_contain:") and "expect.body_contain" in issue.message

    relative = MINIMAL.replace("path: /health", "path: health")
    issue = only(check_spec(relative), "vector-schema")
    assert issue.line == line_of(relative, "path: health") and "start with '/'" in issue.message

    not_mapping = MINIMAL.replace("name: health\npath: /health\nexpect:\n  status: 200\n", "- a\n- b\n")
    issue = only(check_spec(not_mapping), "vector-not-mapping")
    assert issue.line == line_of(not_mapping, "```spec-vector")


def test_vector_outside_frozen_block_and_duplicate_names():
    outside = MINIMAL.replace(
        "Write tiny.\n", "Write tiny.\n\n```spec-vector\nname: loose\npath: /x\nexpect:\n  status: 200\n```\n"
    )
    issue = only(check_spec(outside), "vector-outside-frozen")
    assert issue.line == line_of(outside, "```spec-vector", nth=1)

    dup = MINIMAL.replace(
        "```\n<!-- END FROZEN", "```\n\n```spec-vector\nname: health\npath: /h2\nexpect:\n  status: 200\n```\n<!-- END FROZEN"
    )
    issue = only(check_spec(dup), "vector-duplicate-name")
    assert issue.line == line_of(dup, "```spec-vector", nth=2)


def test_acceptance_vectors_block_must_exist_and_hold_vectors():
    no_block = MINIMAL.replace("<!-- BEGIN FROZEN: acceptance-vectors -->\n", "").replace(
        "<!-- END FROZEN: acceptance-vectors -->\n", ""
    )
    issues = check_spec(no_block)
    assert only(issues, "missing-vectors-block").line == line_of(no_block, "## Acceptance Vectors")
    assert only(issues, "vector-outside-frozen").line == line_of(no_block, "```spec-vector")

    empty = re.sub(r"```spec-vector\n.*?```\n", "", MINIMAL, flags=re.S)
    assert only(check_spec(empty), "no-vectors").line == line_of(empty, "BEGIN FROZEN")


def test_unterminated_fence():
    bad = MINIMAL.replace("Write tiny.\n", "Write tiny.\n\n````python\nprint()\n```\n")
    issues = check_spec(bad)
    issue = only(issues, "unterminated-fence")
    assert issue.line == line_of(bad, "````python")
    assert "never closed" in issue.message


def test_rig_timeouts_front_matter():
    good = MINIMAL.replace("port: 9000\n", "port: 9000\nrig-timeouts: {test: 120, build: 300}\n")
    assert check_spec(good) == []
    bad = MINIMAL.replace("port: 9000\n", "port: 9000\nrig-timeouts: {tests: 120, build: -1}\n")
    issues = [i for i in check_spec(bad) if i.code == "front-matter-type"]
    assert len(issues) == 2 and all(i.line == line_of(bad, "rig-timeouts") for i in issues)
    assert "unknown stage 'tests'" in issues[0].message and "1 to 3600" in issues[1].message


def test_reproduce_front_matter():
    good = MINIMAL.replace("port: 9000\n", "port: 9000\nreproduce: {path: /generate, output-env: OUT_DIR, "
                                          "model-env: MODEL, spec: self}\n")
    assert check_spec(good) == []
    assert parse_spec(good).front_matter["reproduce"]["path"] == "/generate"
    block = ("reproduce:\n  path: generate\n  output-env: OUT_DIR\n  colour: red\n")
    bad = MINIMAL.replace("port: 9000\n", "port: 9000\n" + block)
    issues = check_spec(bad)
    assert [i.code for i in issues] == ["front-matter-reproduce"] * 2, issues
    by_line = {i.line: i.message for i in issues}
    assert "reproduce.path: must start with '/'" in by_line[line_of(bad, "path: generate")]
    assert "unknown key 'colour'" in by_line[line_of(bad, "colour: red")]
    missing = MINIMAL.replace("port: 9000\n", "port: 9000\nreproduce: {path: /generate}\n")
    (issue,) = check_spec(missing)
    assert issue.line == line_of(missing, "reproduce:") and "reproduce.output-env: required" in issue.message
    (issue,) = check_spec(MINIMAL.replace("port: 9000\n", "port: 9000\nreproduce: yes\n"))
    assert "must be a mapping" in issue.message
    with pytest.raises(SpecError):
        parse_spec(bad)


def test_front_matter_problems():
    bad_yaml = MINIMAL.replace("port: 9000\n", "port: [9000\n")
    issue = only(check_spec(bad_yaml), "front-matter-yaml")
    assert issue.line == line_of(bad_yaml, "entry:")  # where PyYAML notices the unclosed list

    mismatch = MINIMAL.replace("port: 9000\n", "port: 9001\n")
    issue = only(check_spec(mismatch), "health-port-mismatch")
    assert issue.line == line_of(mismatch, "health: http://localhost:9000")
    assert "9001" in issue.message and "9000" in issue.message

    unknown = MINIMAL.replace("port: 9000\n", "port: 9000\nrequried-sections: []\nx-owner: me\n")
    issue = only(check_spec(unknown), "front-matter-unknown-key")
    assert issue.line == line_of(unknown, "requried-sections")

    bad_health = MINIMAL.replace("health: http://localhost:9000/health", "health: localhost:9000")
    issue = only(check_spec(bad_health), "front-matter-entry")
    assert issue.line == line_of(bad_health, "health: localhost") and "entry.health" in issue.message

    no_start = MINIMAL.replace("  start: python -m tiny\n", "")
    issue = only(check_spec(no_start), "front-matter-entry")
    assert issue.line == line_of(no_start, "entry:") and "entry.start" in issue.message

    bad_port = MINIMAL.replace("port: 9000", "port: '9000'")
    assert only(check_spec(bad_port), "front-matter-type").line == line_of(bad_port, "port: '9000'")

    unclosed = MINIMAL.replace("---\n\n# Tiny", "\n# Tiny", 1)
    assert only(check_spec(unclosed), "front-matter-unclosed").line == 1


def test_check_spec_reports_every_problem_and_parse_spec_raises_them_all():
    bad = MINIMAL.replace("port: 9000\n", "port: 9001\n").replace("## Acceptance Vectors", "## System Prompt")
    issues = check_spec(bad)
    assert {"health-port-mismatch", "duplicate-heading", "missing-section"} <= set(codes(issues))
    assert [i.line for i in issues] == sorted(i.line for i in issues)
    with pytest.raises(SpecError) as err:
        parse_spec(bad)
    assert codes(err.value.issues) == codes(issues)
    assert isinstance(err.value, ValueError)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab#`~-:<>!\n []{}'\"\tBEGINFROZENspec-vector")), max_size=400))
def test_check_spec_never_raises_on_arbitrary_text(text):
    issues = check_spec(text)
    assert isinstance(issues, list)
    assert all(isinstance(i, SpecIssue) and i.line >= 1 for i in issues)
    assert not any(i.code == "internal-error" for i in issues)


def test_bad_fixture_files_fail_with_their_expected_code():
    fixtures = sorted(FIXTURES.glob("*.md"))
    assert fixtures, "no fixtures found"
    for path in fixtures:
        text = read_spec_text(path)
        want = re.search(r"<!-- expect: ([a-z-]+) at line (\d+) -->", text)
        assert want, f"{path.name} must declare its expected issue"
        issues = check_spec(text)
        assert any(i.code == want.group(1) and i.line == int(want.group(2)) for i in issues), (path.name, issues)


# --- FROZEN preservation -------------------------------------------------------------


def test_one_changed_byte_inside_a_frozen_block_is_caught_at_its_line():
    target = "   computes hashes and writes `manifest.json`."
    assert target in PRIME
    changed = PRIME.replace(target, target.replace("computes", "compute5"), 1)
    assert len(changed) == len(PRIME)
    issue = only(frozen_preserved(PRIME, changed), "frozen-changed")
    assert issue.line == line_of(changed, "compute5 hashes")
    assert "identity-anchor" in issue.message
    assert "computes" in issue.message and "compute5" in issue.message  # shows before/after
    variant_issues = validate_variant(PRIME, changed)
    assert only(variant_issues, "frozen-changed").line == issue.line
    assert check_spec(changed) == []  # the grammar alone cannot see it: the comparison does


def test_vector_change_is_frozen_change_and_contract_change():
    changed = PRIME.replace("    line: 2\n", "    line: 3\n", 1)
    issues = validate_variant(PRIME, changed)
    assert only(issues, "frozen-changed").line == line_of(changed, "    line: 3")
    assert "variant-vectors-changed" in codes(issues)


def test_removed_added_and_broken_frozen_blocks():
    removed = PRIME.replace("<!-- BEGIN FROZEN: identity-anchor -->\n", "").replace(
        "<!-- END FROZEN: identity-anchor -->\n", ""
    )
    assert "frozen-missing" in codes(frozen_preserved(PRIME, removed))

    added = PRIME.replace("## Testing\n", "## Testing\n\n<!-- BEGIN FROZEN: extra -->\nnew\n<!-- END FROZEN: extra -->\n")
    issue = only(frozen_preserved(PRIME, added), "frozen-added")
    assert issue.line == line_of(added, "BEGIN FROZEN: extra")

    unpaired = PRIME.replace("<!-- END FROZEN: acceptance-vectors -->\n", "")
    found = codes(frozen_preserved(PRIME, unpaired))
    assert "frozen-unpaired" in found and "frozen-missing" in found

    assert frozen_preserved(PRIME, PRIME) == []


# --- editing -------------------------------------------------------------------------


def test_replace_section_rewrites_body_and_keeps_frozen():
    result = replace_section(PRIME, "Testing", "Write thorough tests.\nThen more tests.")
    assert check_spec(result) == []
    spec = parse_spec(result)
    assert spec.section("Testing").body.strip() == "Write thorough tests.\nThen more tests."
    assert [b.text for b in spec.frozen] == [b.text for b in parse_spec(PRIME).frozen]
    assert frozen_preserved(PRIME, result) == []
    # Everything outside the replaced section is untouched.
    before, after = PRIME.split("## Testing\n")[0], result.split("## Testing\n")[0]
    assert before == after
    assert result.split("## Acceptance Vectors\n")[1] == PRIME.split("## Acceptance Vectors\n")[1]


def test_replace_section_refuses_to_change_a_frozen_block():
    with pytest.raises(SpecError) as err:
        replace_section(PRIME, "Identity", "Prime is something else now.")
    assert "frozen-missing" in codes(err.value.issues)
    block = parse_spec(PRIME).frozen_block("identity-anchor")
    tampered = block.text.replace("HTTP service", "HTTP server")
    with pytest.raises(SpecError) as err:
        replace_section(PRIME, "Identity", "Intro.\n\n" + tampered)
    assert "frozen-changed" in codes(err.value.issues)
    # Carrying the block over byte-identical is allowed.
    ok = replace_section(PRIME, "Identity", "Who Prime is.\n\n" + block.text)
    assert frozen_preserved(PRIME, ok) == [] and check_spec(ok) == []
    assert parse_spec(ok).section("Identity").body.startswith("\nWho Prime is.\n\n<!-- BEGIN FROZEN")


def test_replace_section_refuses_structure_changes():
    with pytest.raises(SpecError) as err:
        replace_section(PRIME, "Testing", "ok\n\n## Sneaky\n")
    assert codes(err.value.issues) == ["edit-adds-heading"]
    with pytest.raises(SpecError):
        replace_section(PRIME, "Testing", "```\nunclosed\n")
    with pytest.raises(SpecError) as err:
        replace_section(PRIME, "No Such Section", "x")
    assert codes(err.value.issues) == ["no-such-section"]


def test_insert_into_section_goes_before_trailing_frozen_blocks():
    result = insert_into_section(PRIME, "Acceptance Vectors", "A new remark about the vectors.")
    assert check_spec(result) == [] and frozen_preserved(PRIME, result) == []
    remark = line_of(result, "A new remark")
    begin = line_of(result, "BEGIN FROZEN: acceptance-vectors")
    assert remark < begin
    assert result.split("\n")[remark - 2] == "" and result.split("\n")[remark] == ""  # its own paragraph
    assert remark > line_of(result, "before running any of the artifact's code")

    result = insert_into_section(PRIME, "Identity", "Note on identity.")
    assert line_of(result, "Note on identity.") < line_of(result, "BEGIN FROZEN: identity-anchor")
    assert line_of(result, "Note on identity.") > line_of(result, "## Identity")
    assert check_spec(result) == []


def test_insert_into_section_appends_after_last_paragraph():
    result = insert_into_section(PRIME, "Testing", "- Tests name the behaviour they check.")
    spec = parse_spec(result)
    body = spec.section("Testing").body
    assert body.rstrip().endswith("- Tests name the behaviour they check.")
    assert body.endswith("\n\n")  # blank line kept before the next heading
    assert result.replace("\n- Tests name the behaviour they check.\n", "", 1) == PRIME

    last = insert_into_section(MINIMAL.rstrip("\n"), "Acceptance Vectors", "Tail note.")
    assert check_spec(last) == []
    assert line_of(last, "Tail note.") < line_of(last, "BEGIN FROZEN")


def test_insert_into_section_refuses_frozen_markers_and_headings():
    with pytest.raises(SpecError) as err:
        insert_into_section(PRIME, "Testing", "<!-- BEGIN FROZEN: mine -->\nx\n<!-- END FROZEN: mine -->")
    assert "edit-touches-frozen" in codes(err.value.issues)
    with pytest.raises(SpecError):
        insert_into_section(PRIME, "Testing", "## New Section")
    with pytest.raises(SpecError):
        insert_into_section(PRIME, "Testing", "   \n")


# --- variants (§9.1) ----------------------------------------------------------------


def test_validate_variant_accepts_a_legitimate_mutation():
    variant = replace_section(PRIME, "Testing", "Test every endpoint, offline, quickly.")
    assert validate_variant(PRIME, variant) == []
    assert validate_variant(PRIME, PRIME) == []


def test_validate_variant_rejects_each_kind_of_bad_mutation():
    no_section = PRIME.replace("## Manifest\n", "### Manifest\n")
    assert codes(validate_variant(PRIME, no_section)) == ["missing-section"]

    # Dropping the section from required-sections does not help: the base's list counts.
    sneaky = no_section.replace("  - Manifest\n", "")
    assert check_spec(sneaky) == []
    assert codes(validate_variant(PRIME, sneaky)) == ["missing-section"]

    dup = PRIME.replace("## Testing\n", "## Testing\n\n## Manifest\n")
    assert "duplicate-heading" in codes(validate_variant(PRIME, dup))

    contract = PRIME.replace("  body_has_keys: [status, generation]", "  body_has_keys: [status]")
    assert codes(validate_variant(PRIME, contract)) == ["variant-contracts-changed"]

    entry = PRIME.replace("start: python -m prime", "start: python -m prime.main", 1)
    assert codes(validate_variant(PRIME, entry)) == ["variant-front-matter-changed"]

    assert "base-invalid" in codes(validate_variant("## only\n", PRIME))


# --- property: FROZEN safety under random edits --------------------------------------

_BLOCKS, _ = find_frozen(PRIME)
_OFFSETS: list[int] = [0]
for _line in PRIME.split("\n")[:-1]:
    _OFFSETS.append(_OFFSETS[-1] + len(_line) + 1)
# Character spans [start, end) of each block: BEGIN line start through END line break.
_SPANS = [(_OFFSETS[b.start_line - 1], _OFFSETS[b.end_line]) for b in _BLOCKS]
assert [PRIME[s:e] for s, e in _SPANS] == [b.text for b in _BLOCKS]
# Editable gaps outside blocks. A gap followed by a block keeps its final line break, so
# the BEGIN marker stays at the start of its line.
_GAPS: list[tuple[int, int]] = []
# after the front matter: cutting its closing `---` and writing one further down turns
# whatever lies between (a FROZEN block too) into YAML -- rightly reported as damage
_cursor = PRIME.index("\n---\n", 4) + len("\n---\n")
for _s, _e in _SPANS:
    _GAPS.append((_cursor, _s - 1))
    _cursor = _e
_GAPS.append((_cursor, len(PRIME)))

_EDIT_TEXT = st.text(alphabet=st.sampled_from(list("abcxyz019 \n\t#`~-<>!:*|_{}[]\"'")), max_size=40).filter(
    lambda s: "frozen" not in s.lower()
)


@st.composite
def _outside_edits(draw):
    count = draw(st.integers(1, 4))
    edits = []
    for _ in range(count):
        lo, hi = _GAPS[draw(st.integers(0, len(_GAPS) - 1))]
        a = draw(st.integers(lo, hi))
        b = draw(st.integers(a, min(hi, a + 200)))
        edits.append((a, b, draw(_EDIT_TEXT)))
    return edits


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    # Apply from the end so earlier offsets stay valid; skip overlapping edits.
    out, limit = text, len(text) + 1
    for a, b, s in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        if b > limit:
            continue
        out = out[:a] + s + out[b:]
        limit = a
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_outside_edits())
def test_edits_outside_frozen_blocks_never_break_frozen_preservation(edits):
    new = _apply(PRIME, edits)
    assert frozen_preserved(PRIME, new) == []


@st.composite
def _inside_edit(draw):
    start, end = _SPANS[draw(st.integers(0, len(_SPANS) - 1))]
    kind = draw(st.sampled_from(["substitute", "insert", "delete"]))
    if kind == "substitute":
        p = draw(st.integers(start, end - 1))
        c = draw(st.sampled_from(list("aZ0 \n-<>!:\t#")).filter(lambda ch: ch != PRIME[p]))
        return (p, p + 1, c)
    if kind == "insert":
        p = draw(st.integers(start + 1, end - 1))  # strictly inside the block
        return (p, p, draw(_EDIT_TEXT.filter(bool)))
    a = draw(st.integers(start, end - 1))
    b = draw(st.integers(a + 1, min(end, a + 300)))
    return (a, b, "")


def _changed_ranges(old: str, new: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """Leftmost and rightmost ranges of ``old`` that an edit turning it into ``new`` can
    occupy. Deleting one of two equal neighbouring characters, for instance, is the same
    edit whichever of them is named."""
    n = min(len(old), len(new))
    prefix = 0
    while prefix < n and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < n and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    left_suffix = min(suffix, len(old) - prefix, len(new) - prefix)
    right_prefix = min(prefix, len(old) - suffix, len(new) - suffix)
    return (prefix, len(old) - left_suffix), (right_prefix, len(old) - suffix)


def _inside(rng: tuple[int, int], span: tuple[int, int]) -> bool:
    (x, y), (start, end) = rng, span
    return start < x < end if x == y else (x < end and y > start)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_inside_edit())
def test_any_edit_inside_a_frozen_block_is_reported(edit):
    a, b, s = edit
    new = PRIME[:a] + s + PRIME[b:]
    assume(new != PRIME)
    # Only edits that cannot equally be read as an edit just outside the block.
    span = next(sp for sp in _SPANS if sp[0] <= a < sp[1])
    assume(all(_inside(rng, span) for rng in _changed_ranges(PRIME, new)))
    issues = frozen_preserved(PRIME, new)
    assert issues, f"edit {edit!r} went unnoticed"
    assert {i.code for i in issues} & {"frozen-changed", "frozen-missing", "frozen-unpaired", "frozen-mismatched",
                                       "frozen-marker-malformed", "frozen-nested", "frozen-added"}

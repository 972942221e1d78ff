"""Sealed vectors without Docker: the grammar (parsing, checking), stripping (hostile cases
included), what reaches an LLM (the writer's prompt, the mutator's), the verdict's rule and
withheld output, and the campaign's generalisation gap."""

from __future__ import annotations

import asyncio
import json

import pytest

from core.home import REPO_ROOT
from core.spec import (SEALED_BLOCK, SpecError, check_spec, parse_spec, spec_hash, strip_sealed,
                       validate_variant)

ECHO = (REPO_ROOT / "spec" / "echo.md").read_bytes().decode()
MARK = "QX-SEALED-7731"

BASE = """\
---
name: tiny
required-sections: [System Prompt, Acceptance Vectors]
---

# Tiny

## System Prompt

Write it.

## Acceptance Vectors

Every vector is checked by a machine.

<!-- BEGIN FROZEN: acceptance-vectors -->
```spec-vector
name: health
method: GET
path: /health
expect:
  status: 200
```
<!-- END FROZEN: acceptance-vectors -->
"""

SEALED = f"""\
<!-- BEGIN FROZEN: sealed-vectors -->
```spec-vector
name: {MARK}-counts
description: "the counter counts ({MARK})"
method: GET
path: /count
expect:
  status: 200
  body: {{count: 1}}
```
<!-- END FROZEN: sealed-vectors -->
"""


def codes(text: str) -> list[str]:
    return [i.code for i in check_spec(text)]


# --- grammar ---------------------------------------------------------------------------------


def test_sealed_vectors_parse_apart_from_the_visible_ones():
    spec = parse_spec(BASE + "\n" + SEALED)
    assert [v.name for v in spec.vectors] == ["health"]
    assert [v.name for v in spec.sealed] == [f"{MARK}-counts"]
    assert spec.sealed[0].to_wire()["expect"] == {"status": 200, "body": {"count": 1}}
    assert parse_spec(BASE).sealed == []


def test_the_shipped_echo_spec_seals_three_vectors_of_its_prose():
    spec = parse_spec(ECHO)
    assert len(spec.vectors) == 5
    assert [v.name for v in spec.sealed] == ["wrong-method-is-405", "reverse-counts-code-points",
                                             "reverse-empty-text"]
    visible = {(v.method, v.path) for v in spec.vectors}
    assert not visible & {(v.method, v.path) for v in spec.sealed}  # none repeats a visible check


def test_sealed_vectors_are_checked_like_visible_ones():
    bad = SEALED.replace("status: 200\n  body", "status: two hundred\n  body")
    assert "vector-schema" in codes(BASE + "\n" + bad)
    dup = SEALED.replace(f"{MARK}-counts", "health")
    assert "vector-duplicate-name" in codes(BASE + "\n" + dup)  # one name space for both
    empty = "<!-- BEGIN FROZEN: sealed-vectors -->\nnothing here\n<!-- END FROZEN: sealed-vectors -->\n"
    assert codes(BASE + "\n" + empty) == ["no-sealed-vectors"]
    contract = SEALED.replace("```spec-vector", "```spec-contract")
    assert "sealed-not-vector" in codes(BASE + "\n" + contract)
    heading = SEALED.replace("```spec-vector", "## Hidden\n\n```spec-vector", 1)
    assert "sealed-heading" in codes(BASE + "\n" + heading)
    # outside both frozen blocks: the message names both
    loose = "\n```spec-vector\nname: x\nmethod: GET\npath: /x\nexpect: {status: 200}\n```\n"
    issues = check_spec(BASE + loose)
    assert [i.code for i in issues] == ["vector-outside-frozen"] and SEALED_BLOCK in issues[0].message


def test_a_variant_must_keep_the_sealed_vectors():
    base = BASE + "\n" + SEALED
    changed = base.replace("count: 1", "count: 2")
    found = {i.code for i in validate_variant(base, changed)}
    assert {"frozen-changed", "variant-sealed-changed"} <= found
    assert "frozen-missing" in {i.code for i in validate_variant(base, strip_sealed(base))}


# --- stripping -------------------------------------------------------------------------------


def test_stripping_leaves_every_other_byte():
    assert strip_sealed(BASE + "\n" + SEALED) == BASE
    assert strip_sealed(BASE) == BASE  # nothing sealed: unchanged
    # in the middle of a section, between blank lines: one blank line stays
    mid = BASE.replace("Every vector is checked by a machine.\n",
                       "Every vector is checked by a machine.\n\n" + SEALED + "\nMore prose.\n")
    out = strip_sealed(mid)
    assert MARK not in out and "machine.\n\nMore prose.\n" in out
    assert strip_sealed(mid.replace("\n", "\r\n")).replace("\r\n", "\n") == out  # CRLF too
    spec = parse_spec(BASE + "\n" + SEALED)
    assert spec.visible_text == BASE and spec.visible().hash == spec_hash(BASE)
    assert spec.visible().sealed == []


def test_two_sealed_blocks_are_both_stripped_and_the_spec_is_refused():
    second = SEALED.replace(f"{MARK}-counts", "second-one")
    text = BASE + "\n" + SEALED + "\n" + second
    assert "frozen-duplicate-name" in codes(text)
    out = strip_sealed(text)
    assert MARK not in out and "second-one" not in out and out == BASE


def test_hostile_marker_layouts_refuse_to_strip_rather_than_leak():
    # a sealed block nested inside the visible one
    nested = BASE.replace("<!-- END FROZEN: acceptance-vectors -->\n",
                          SEALED + "<!-- END FROZEN: acceptance-vectors -->\n")
    assert "frozen-nested" in codes(nested)
    with pytest.raises(SpecError):
        strip_sealed(nested)
    with pytest.raises(SpecError):
        parse_spec(nested)
    # the markers inside a code fence (a fence opened before BEGIN, closed after END)
    fenced = BASE + "\n````text\n" + SEALED + "````\n"
    assert "frozen-marker-in-fence" in codes(fenced)
    with pytest.raises(SpecError):
        strip_sealed(fenced)
    # an END that never comes: nothing after BEGIN may be handed out
    unclosed = BASE + "\n" + SEALED.replace("<!-- END FROZEN: sealed-vectors -->\n", "")
    with pytest.raises(SpecError):
        strip_sealed(unclosed)
    # a misspelt marker (uppercase) is malformed, not a block: refused, never sent as prose
    shouty = BASE + "\n" + SEALED.replace("FROZEN: sealed-vectors", "FROZEN: Sealed-Vectors")
    assert "frozen-marker-malformed" in codes(shouty)
    with pytest.raises(SpecError):
        strip_sealed(shouty)


def test_a_marker_mentioned_inside_a_line_of_prose_is_prose():
    text = BASE + "\nWrite `<!-- BEGIN FROZEN: sealed-vectors -->` blocks for hidden checks.\n"
    assert check_spec(text) == [] and strip_sealed(text) == text


# --- what reaches an LLM ------------------------------------------------------------------------


class Recorder:
    """Wraps a provider and keeps every request it is asked, as JSON (the request body)."""

    def __init__(self, inner):
        self.inner = inner
        self.simulated = getattr(inner, "simulated", False)
        self.bodies: list[str] = []

    async def complete(self, req, on_delta=None):
        self.bodies.append(json.dumps({"system": req.system, "messages": req.messages,
                                       "metadata": req.metadata, "purpose": req.purpose}))
        return await self.inner.complete(req, on_delta)


def _sealed_echo() -> str:
    return ECHO.replace("name: wrong-method-is-405", f"name: wrong-method-is-405-{MARK}")


def test_the_writer_sees_no_sealed_byte_and_the_copy_holds_none(tmp_path):
    from core.llm.sim import SimProvider
    from core.prime.generate import generate
    from core.prime.prompt import RetryInfo

    text = _sealed_echo()
    rec = Recorder(SimProvider(force_defects=[], force_habits={}, format_errors=False))
    res = asyncio.run(generate(text, tmp_path / "a", rec, model="sim-1"))
    assert res.ok, res.error
    # a retry after a sealed failure: the rig's diagnostics say only how many failed
    diag = {"stage": "health", "summary": "health: 1 sealed check(s) failed (withheld from the writer) "
                                           "[rule: sealed_vectors]",
            "failures": [{"test": "sealed:#1", "error": "a hidden probe failed"}]}
    res2 = asyncio.run(generate(text, tmp_path / "b", rec, model="sim-1", generation=1,
                                retry=RetryInfo(attempt=1, generation=0, diagnostics=diag,
                                                files=res.artifact)))
    assert res2.ok, res2.error
    assert len(rec.bodies) == 2 and "<retry" in rec.bodies[1]
    for body in rec.bodies:
        assert MARK not in body and SEALED_BLOCK not in body and "reverse-counts-code-points" not in body
    for out in (tmp_path / "a", tmp_path / "b"):
        for f in out.rglob("*"):
            if f.is_file():
                assert MARK.encode() not in f.read_bytes(), f
    visible = strip_sealed(text)
    assert res.manifest.spec_hash == spec_hash(visible) != spec_hash(text)
    assert (tmp_path / "a" / "spec" / "echo.md").read_text() == visible


def test_the_mutator_sees_no_sealed_byte_and_the_variant_keeps_them():
    from core.evolution.operators import LLMRewriter, Parent, make_variant
    from core.llm.sim import SimProvider

    text = BASE.replace("<!-- END FROZEN: acceptance-vectors -->\n",
                        "<!-- END FROZEN: acceptance-vectors -->\n\n" + SEALED)
    rec = Recorder(SimProvider())
    v = asyncio.run(make_variant({"operator": "rewrite", "section": "Acceptance Vectors", "intent": "add"},
                                 Parent(text, "sim-1"), system_section="System Prompt", hats={},
                                 amendments=[], donors=[], rewrite=LLMRewriter(rec, "sim-1"), seed=3))
    assert rec.bodies and all(MARK not in b for b in rec.bodies)
    assert v.ok, v.rejected_reason
    assert validate_variant(text, v.text) == []
    assert parse_spec(v.text).sealed == parse_spec(text).sealed


# --- the campaign's figures ------------------------------------------------------------------------


def test_generalisation_gap_pools_every_vector_of_the_generations_that_ran_them():
    from core.engine.summary import generalisation

    assert generalisation([]) is None
    rows = [(1.0, 5, 2 / 3, 3), (0.8, 5, 1 / 3, 3), (1.0, 5, 1.0, 3), (None, None, None, None)]
    g = generalisation(rows)
    assert g["generations"] == 3 and g["visible"] == [14, 15] and g["sealed"] == [6, 9]
    assert g["visible_pass_rate"] == round(14 / 15, 4) and g["sealed_pass_rate"] == round(6 / 9, 4)
    assert g["gap"] == round(14 / 15 - 6 / 9, 4) and g["all_sealed_passed"] == 1

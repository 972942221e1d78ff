"""Mutation operators, hats and the grammar gate, including a 600-mutation FROZEN property test."""

from __future__ import annotations

import functools
import random

import pytest

from core.evolution.hats import load_hats, parse_hat
from core.evolution.operators import (
    INTENTS,
    AmendmentRef,
    Donor,
    LLMRewriter,
    Parent,
    check_variant,
    make_variant,
    mutable_sections,
)
from core.llm.sim import SimProvider
from core.spec import find_frozen, frozen_preserved, parse_spec, validate_variant
from tests.evolution.conftest import ECHO, PRIME

HATS = load_hats()
N_MUT = 520
SYS = "System Prompt"


def point(**kw):
    base = {"operator": "rewrite", "section": "Testing", "intent": "add", "hat": "tester",
            "model": "sim-1", "amendment": 0, "donor": 0}
    base.update(kw)
    return base


async def variant(p, parent, *, rewrite=None, donors=(), amendments=(), seed=1, base=ECHO):
    v = await make_variant(p, parent, system_section=SYS, hats=HATS, amendments=list(amendments),
                           donors=list(donors), rewrite=rewrite, seed=seed)
    return check_variant(base, parent, v)


# --- hats --------------------------------------------------------------------------------------


def test_shipped_hats_parse_and_are_between_four_and_six():
    assert 4 <= len(HATS) <= 6
    assert {"tester", "minimalist", "defensive", "spec-lawyer"} <= set(HATS)
    for h in HATS.values():
        assert h.description and h.fragment.strip()
        assert "#" not in h.fragment.split("\n")[0]


def test_hat_parser_refuses_headings_and_frozen_text():
    with pytest.raises(ValueError, match="heading"):
        parse_hat("bad", "## Heading\nx\n")
    with pytest.raises(ValueError, match="FROZEN"):
        parse_hat("bad", "<!-- BEGIN FROZEN: x -->\n")
    with pytest.raises(ValueError, match="name"):
        parse_hat("Bad Name", "text\n")
    with pytest.raises(ValueError, match="no fragment"):
        parse_hat("empty", "---\ndescription: d\n---\n\n")


# --- operators ----------------------------------------------------------------------------------


def test_mutable_sections():
    assert mutable_sections(ECHO) == ["System Prompt", "HTTP Contract", "Implementation Requirements", "Testing"]
    prime = mutable_sections(PRIME)
    assert "Identity" not in prime  # only FROZEN text there
    assert "Acceptance Vectors" not in mutable_sections(ECHO)
    assert {"System Prompt", "HTTP Contract", "Testing"} <= set(prime)


async def test_hat_appends_to_the_system_prompt_section_and_is_a_plain_spec():
    parent = Parent(ECHO, "sim-1")
    v = await variant(point(operator="hat", hat="tester"), parent)
    assert v.ok, v.rejected_reason
    assert HATS["tester"].fragment.strip() in parse_spec(v.text).section(SYS).body
    assert validate_variant(ECHO, v.text) == []
    # wearing it twice is a no-op, recorded as such
    again = await variant(point(operator="hat", hat="tester"), Parent(v.text, "sim-1"))
    assert not again.ok and again.noop and again.rejected_reason.startswith("no-op: ")


async def test_model_operator_keeps_the_spec():
    parent = Parent(ECHO, "sim-1")
    v = await variant(point(operator="model", model="sim-1-pro"), parent)
    assert v.ok and v.text == ECHO and v.model == "sim-1-pro"
    same = await variant(point(operator="model", model="sim-1"), parent)
    assert same.noop and "identical" in same.rejected_reason


async def test_rewrite_through_the_sim_provider_and_ledger_free_rewriter():
    rewriter = LLMRewriter(SimProvider(), "sim-1")
    parent = Parent(ECHO, "sim-1")
    v = await variant(point(section="Testing", intent="add"), parent, rewrite=rewriter, seed=5)
    assert v.ok, v.rejected_reason
    before = parse_spec(ECHO).section("Testing").body
    after = parse_spec(v.text).section("Testing").body
    assert after != before and len(after) > len(before)
    # deterministic in (parent, section, intent, seed)
    w = await variant(point(section="Testing", intent="add"), parent, rewrite=rewriter, seed=5)
    assert w.text == v.text


async def test_rewrite_failures_are_rejections_with_reasons():
    parent = Parent(ECHO, "sim-1")

    async def boom(*a):
        raise RuntimeError("provider down")

    v = await variant(point(), parent, rewrite=boom)
    assert not v.ok and "provider down" in v.rejected_reason
    v = await variant(point(), parent, rewrite=None)
    assert not v.ok and "no LLM provider" in v.rejected_reason
    v = await variant(point(), parent, rewrite=lambda *a: "## Sneaky\nnew heading\n")
    assert not v.ok and "edit refused" in v.rejected_reason and "heading" in v.rejected_reason


async def test_amend_inserts_an_accepted_amendment_once():
    parent = Parent(ECHO, "sim-1")
    am = [AmendmentRef(7, "Implementation Requirements", "Annotate every function with type hints.")]
    v = await variant(point(operator="amend", amendment=0), parent, amendments=am)
    assert v.ok and "type hints" in parse_spec(v.text).section("Implementation Requirements").body
    assert "amendment 7" in v.detail
    again = await variant(point(operator="amend", amendment=0), Parent(v.text, "sim-1"), amendments=am)
    assert again.noop
    none = await variant(point(operator="amend", amendment=0), parent, amendments=[])
    assert not none.ok and "no accepted amendment" in none.rejected_reason
    bad = await variant(point(operator="amend", amendment=0), parent,
                        amendments=[AmendmentRef(1, "No Such Section", "x")])
    assert not bad.ok and "no-such-section" not in (bad.rejected_reason or "") or "no section" in bad.rejected_reason


async def test_crossover_copies_a_whole_section_from_a_donor():
    parent = Parent(ECHO, "sim-1")
    hatted = await variant(point(operator="hat", hat="defensive"), parent)
    donors = [Donor(hatted.text, 0.9, 3)]
    # asked for 'Testing' (identical in both): takes the first differing section instead
    v = await variant(point(operator="crossover", section="Testing", donor=0), parent, donors=donors)
    assert v.ok and v.text == hatted.text and "observation 3" in v.detail
    last = await variant(point(operator="crossover", donor=2), parent, donors=donors)
    assert last.ok and last.text == hatted.text  # fewer donors than ranks: the last one
    missing = await variant(point(operator="crossover", donor=0), parent, donors=[])
    assert not missing.ok and "no donor yet" in missing.rejected_reason
    same = await variant(point(operator="crossover", donor=0), parent, donors=[Donor(ECHO, 0.5, 1)])
    assert same.noop


# --- the property: no accepted variant changes a FROZEN byte ------------------------------------------

_JUNK = ["Be careful.", "<!-- BEGIN FROZEN: extra -->", "<!-- END FROZEN: acceptance-vectors -->",
         "## Injected Heading", "```", "status: 201", "name: tampered", "- new bullet", "",
         "---", "~~~spec-vector", "Prime is a self-replicating generator.", "expect:", "  status: 500"]


def _garble(body: str, rng: random.Random) -> str:
    """An adversarial 'LLM answer' for a section: random line edits that may land inside a
    FROZEN block, a fence, or add structure."""
    lines = body.split("\n")
    for _ in range(rng.randint(1, 3)):
        k = rng.randrange(len(lines) + 1)
        op = rng.random()
        if op < 0.35:
            lines.insert(k, rng.choice(_JUNK))
        elif op < 0.6 and lines:
            del lines[min(k, len(lines) - 1)]
        elif op < 0.8 and lines:
            j = min(k, len(lines) - 1)
            s = lines[j]
            if s:
                c = rng.randrange(len(s))
                lines[j] = s[:c] + rng.choice("xyz 0:") + s[c + 1:]
        else:
            pass  # keep
    return "\n".join(lines)


@functools.lru_cache(maxsize=256)
def _parse(text: str):
    return parse_spec(text)


def _naive_splice(text: str, section: str, new_body: str) -> str:
    """What a careless implementation would produce: the body pasted in, no checks."""
    old = _parse(text).section(section).body
    return text.replace(old, new_body if new_body.endswith("\n") else new_body + "\n", 1)


def _all_sections(text: str) -> list[str]:
    return [s.name for s in _parse(text).sections]


async def test_property_no_accepted_variant_touches_a_frozen_byte():
    rng = random.Random(20240611)
    sim = LLMRewriter(SimProvider(), "sim-1")
    bases = {"echo": ECHO, "prime": PRIME}
    pools = {name: [text] for name, text in bases.items()}  # valid variants to climb from
    stats = {"total": 0, "accepted": 0, "rejected": 0, "frozen_would_change": 0, "frozen_rejected": 0}
    for n in range(N_MUT):
        name = "prime" if rng.random() < 0.4 else "echo"
        base = bases[name]
        parent = Parent(rng.choice(pools[name][-6:]), "sim-1")
        op = rng.choice(["rewrite", "rewrite", "rewrite", "amend", "crossover", "hat", "model"])
        section = rng.choice(_all_sections(base))  # every section, FROZEN-only ones included
        p = point(operator=op, section=section, intent=rng.choice(sorted(INTENTS)),
                  hat=rng.choice(sorted(HATS) + ["no-such-hat"]),
                  model=rng.choice(["sim-1", "sim-1-pro"]), amendment=rng.randrange(3), donor=rng.randrange(3))
        naive = None
        if op == "rewrite" and rng.random() < 0.75:
            body = _garble(_parse(parent.text).section(section).body, rng)
            naive = _naive_splice(parent.text, section, body)
            rewrite = (lambda b: (lambda *a: b))(body)
        else:
            rewrite = sim
        amendments = [AmendmentRef(i, rng.choice(_all_sections(base)), rng.choice(_JUNK[:4] + ["Use type hints."]))
                      for i in range(3)]
        donors = []
        for k in range(3):
            d = rng.choice(pools[name])
            if rng.random() < 0.3:  # a corrupted donor: crossover must not import its damage
                sec = rng.choice(_all_sections(base))
                d = _naive_splice(d, sec, _garble(_parse(d).section(sec).body, rng))
            donors.append(Donor(d, 0.5, k))
        v = await variant(p, parent, rewrite=rewrite, donors=donors, amendments=amendments,
                          seed=n, base=base)
        stats["total"] += 1
        if naive is not None and frozen_preserved(base, naive):
            stats["frozen_would_change"] += 1
            assert not v.ok, f"#{n}: a FROZEN-changing rewrite was accepted"
            assert v.rejected_reason
            stats["frozen_rejected"] += 1
        if v.ok:
            stats["accepted"] += 1
            assert frozen_preserved(base, v.text) == [], f"#{n} {v.detail}"
            assert validate_variant(base, v.text) == []
            assert [b.text for b in find_frozen(v.text)[0]] == [b.text for b in find_frozen(base)[0]]
            if v.text != parent.text:
                pools[name].append(v.text)
        else:
            stats["rejected"] += 1
            assert isinstance(v.rejected_reason, str) and v.rejected_reason.strip()
    print(stats)
    assert stats["total"] >= 500
    assert stats["accepted"] >= 100 and stats["rejected"] >= 100
    assert stats["frozen_would_change"] >= 30 and stats["frozen_rejected"] == stats["frozen_would_change"]

"""A campaign-local draw, when given, keys the sim's randomness instead of the generation."""

from __future__ import annotations

from core.home import REPO_ROOT
from core.llm.sim import SimProvider
from core.prime.prompt import build_generate_request
from core.spec import parse_spec

SPEC = parse_spec((REPO_ROOT / "spec" / "prime.md").read_text())


def defects(generation: int, draw: int | None, seed: int = 3) -> frozenset:
    req = build_generate_request(SPEC, "", None, generation=generation, model="sim-1", seed=seed, draw=draw)
    texts = [b["text"] if isinstance(b, dict) else b for b in req.messages[0]["content"]]
    return frozenset(SimProvider().decision(parse_spec_info(), req.metadata, texts, "sim-1").defects)


def parse_spec_info():
    from core.llm.sim.specinfo import parse_spec_text

    return parse_spec_text(SPEC.text)


def test_same_draw_same_defects_whatever_the_generation_number():
    for draw in range(12):
        assert defects(100 + draw, draw) == defects(5000 + 7 * draw, draw)


def test_draws_differ_and_no_draw_falls_back_to_the_generation():
    assert len({defects(0, d) for d in range(30)}) > 1
    assert defects(17, None) == defects(99, 17)

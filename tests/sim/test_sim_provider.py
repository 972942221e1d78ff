"""The sim provider without Docker: protocol, determinism, format, defect model, retries,
repair and mutation. The real rig runs its artifacts in ``test_sim_rig.py``."""

from __future__ import annotations

import ast
import asyncio
import math
import re
from collections import Counter
from pathlib import Path

import pytest

from core.llm.base import LLMRequest, LLMResponse, Provider, make_provider
from core.llm.sim import SimProvider
from core.llm.sim import defects as dm
from core.llm.sim.build import build_files, files_for, template_name
from core.llm.sim.provider import render_answer
from core.llm.sim.retry import RetryContext, detect
from core.llm.sim.specinfo import parse_spec_text
from core.llm.sim.style import choose_style
from core.prime.parser import ParseError, parse_files
from core.prime.prompt import (
    RetryInfo,
    build_generate_request,
    build_mutate_request,
    build_repair_request,
    parse_section_answer,
)
from core.spec import parse_spec, replace_section, validate_variant
from tests.sim.readme import readme_row

ROOT = Path(__file__).resolve().parents[2]
PRIME = (ROOT / "spec" / "prime.md").read_text(encoding="utf-8")
ECHO = (ROOT / "spec" / "echo.md").read_text(encoding="utf-8")
TALLY = (Path(__file__).parent / "counter_spec.md").read_text(encoding="utf-8")
N_STAT = 3000  # seeds for the statistical tests (decisions only: fast)


def drop_section(text: str, title: str) -> str:
    out = re.sub(rf"^## {re.escape(title)}\n.*?(?=^## )", "", text, flags=re.S | re.M)
    assert out != text, title
    return out


def gen_request(spec_text: str, seed: int = 0, generation: int = 1, retry: RetryInfo | None = None,
                model: str = "sim-1") -> LLMRequest:
    return build_generate_request(parse_spec(spec_text), "", retry, generation=generation, model=model, seed=seed)


def answer(spec_text: str, seed: int = 0, generation: int = 1, **kw) -> str:
    sim = SimProvider(**kw)
    return asyncio.run(sim.complete(gen_request(spec_text, seed, generation))).text


# --- protocol --------------------------------------------------------------------------


async def test_protocol_and_labels():
    sim = make_provider("sim")
    assert isinstance(sim, SimProvider)
    assert isinstance(sim, Provider)
    assert sim.name == "sim" and sim.simulated is True
    req = gen_request(ECHO, seed=4)
    chunks: list[str] = []
    resp = await sim.complete(req, chunks.append)
    assert isinstance(resp, LLMResponse)
    assert resp.model == "sim-1"
    assert resp.request_id.startswith("sim-") and len(resp.request_id) > 10
    assert resp.cost_usd == 0.0 and resp.attempts == 1 and resp.stop_reason == "end_turn"
    assert resp.usage_raw["simulated"] is True
    assert resp.output_tokens == math.ceil(len(resp.text) / 4)
    assert resp.input_tokens == math.ceil(req.prompt_chars() / 4)
    assert "".join(chunks) == resp.text
    assert 24 <= len(chunks) <= 40


async def test_async_on_delta_and_latency():
    sim = SimProvider(latency_ms=60, chunks=12)
    got: list[str] = []

    async def on_delta(chunk: str) -> None:
        got.append(chunk)

    resp = await sim.complete(gen_request(ECHO, seed=1), on_delta)
    assert "".join(got) == resp.text
    assert len(got) == 12
    assert resp.latency_ms >= 50


async def test_model_names():
    sim = SimProvider()
    resp = await sim.complete(gen_request(ECHO, model="sim-1-pro"))
    assert resp.model == "sim-1-pro"
    other = await sim.complete(gen_request(ECHO, model="claude-sonnet-4-6"))
    assert other.model == "sim-1"  # never pretends to be a real model


# --- determinism and format ------------------------------------------------------------


def test_same_seed_same_text_different_seeds_vary():
    a = answer(PRIME, seed=11, generation=2)
    assert a == answer(PRIME, seed=11, generation=2)
    texts = {answer(PRIME, seed=s, generation=2) for s in range(8)}
    assert len(texts) == 8
    assert answer(PRIME, seed=11, generation=3) != a


@pytest.mark.parametrize("spec_text", [PRIME, ECHO, TALLY], ids=["prime", "echo", "generic"])
def test_answers_parse_in_the_output_format(spec_text):
    parsed = 0
    for seed in range(12):
        text = answer(spec_text, seed=seed, format_errors=False)
        files = parse_files(text)
        paths = [f.path for f in files]
        assert "manifest.json" not in paths
        assert not any(p.startswith("spec/") for p in paths)
        assert "pytest.ini" in paths and any(p.startswith("tests/test_") for p in paths)
        pkg = parse_spec_text(spec_text).package
        assert f"{pkg}/__main__.py" in paths and f"{pkg}/app.py" in paths
        decision = dm.decide(parse_spec_text(spec_text), seed, 1)
        for f in files:
            if f.path.endswith(".py") and "syntax_error" not in decision.defects:
                ast.parse(f.content, f.path)
        parsed += 1
    assert parsed == 12


def test_templates_are_chosen_by_spec():
    assert template_name(parse_spec_text(PRIME)) == "prime"
    assert template_name(parse_spec_text(ECHO)) == "echo"
    assert template_name(parse_spec_text(TALLY)) == "generic"


def test_defect_free_code_really_works_offline(tmp_path):
    """Without Docker: the defect-free generic service answers its own vectors (in-process)."""
    from aiohttp.test_utils import TestClient, TestServer

    spec = parse_spec_text(TALLY)
    # a seed whose answer logs with the standard library (structlog is an organism package)
    seed = next(s for s in range(100) if choose_style(spec, s, 1, dm.decide_careless(spec, s, 1)).logger == "logging")
    files = files_for(TALLY, seed=seed, generation=1, defects=set())
    for path, content in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(content)
    import importlib
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        for mod in [m for m in sys.modules if m == "tally" or m.startswith("tally.")]:
            del sys.modules[mod]
        app_mod = importlib.import_module("tally.app")
        config = importlib.import_module("tally.config")
    finally:  # the seed's answer needs only host packages (stdlib logging, aiohttp)
        sys.path.remove(str(tmp_path))

    async def probe():
        app = app_mod.make_app(config.Settings(port=8433, generation=5))
        async with TestClient(TestServer(app)) as client:
            out = []
            for v in parse_spec_text(TALLY).vectors:
                kw = {"json": v.body} if v.has_request_body else {}
                resp = await client.request(v.method, v.path, **kw)
                out.append((v, resp.status, await resp.json() if resp.status != 404 else None))
            return out

    for v, status, body in asyncio.run(probe()):
        assert status == v.expect.status, v.name
        for k, val in (v.expect.body_contains or {}).items():
            assert body[k] == (5 if val == "$GENERATION" else val), v.name
        if v.expect.has_body:
            assert body == v.expect.body, v.name


# --- the defect model ------------------------------------------------------------------


def test_every_defect_kind_is_reachable_and_visible_in_the_code():
    spec = parse_spec_text(PRIME)
    bare = parse_spec_text(drop_section(drop_section(PRIME, "Implementation Requirements"), "HTTP Contract"))
    seen = Counter()
    for seed in range(400):
        for s in (spec, bare):
            seen.update(dm.decide(s, seed, 1).defects)
    assert set(seen) == set(dm.KINDS), f"never drawn: {set(dm.KINDS) - set(seen)}"
    # each kind, forced alone, is visible to the detector (and nothing else is)
    for kind in dm.KINDS:
        files = files_for(PRIME, seed=5, generation=2, defects={kind})
        found = detect(spec, RetryContext(None, 1, "", "", files=files))
        present = {k for k, v in found.items() if v}
        if kind == "failing_test":
            assert present == set()  # a wrong expected value is not statically visible
        else:
            assert present == {kind}, (kind, present)


def test_defect_free_files_show_no_defect():
    spec = parse_spec_text(PRIME)
    for seed in range(6):
        files = files_for(PRIME, seed=seed, generation=1, defects=set())
        found = detect(spec, RetryContext(None, 1, "", "", files=files))
        assert not any(found.values()), (seed, found)


def _rate(spec_text: str, kind: str, model: str = "sim-1") -> float:
    spec = parse_spec_text(spec_text)
    return sum(kind in dm.decide(spec, s, 1, 0, model).defects for s in range(N_STAT)) / N_STAT


def _viable_rate(spec_text: str) -> float:
    spec = parse_spec_text(spec_text)
    return sum(dm.decide(spec, s, 1).viable for s in range(N_STAT)) / N_STAT


def test_probabilities_respond_to_the_spec():
    no_impl = drop_section(PRIME, "Implementation Requirements")
    no_contract = drop_section(PRIME, "HTTP Contract")
    no_testing = drop_section(PRIME, "Testing")
    # a removed section raises the defects it was guarding against, clearly
    assert _rate(no_impl, "missing_package") > 4 * _rate(PRIME, "missing_package")
    assert _rate(no_impl, "async_test_config") > 5 * _rate(PRIME, "async_test_config")
    assert _rate(no_contract, "missing_keys") > 3 * _rate(PRIME, "missing_keys")
    assert _rate(no_testing, "failing_test") > 1.8 * _rate(PRIME, "failing_test")
    # and leaves unrelated ones alone (common random numbers: identical counts)
    assert _rate(no_testing, "wrong_port") == _rate(PRIME, "wrong_port")
    # a phrase: CAMBRIAN_GENERATION named in the prose divides the generation defect by ~5
    without_phrase = PRIME.replace("CAMBRIAN_GENERATION", "the generation variable")
    assert "CAMBRIAN_GENERATION" in PRIME.split("<!-- BEGIN FROZEN: acceptance")[0]
    assert _rate(without_phrase, "health_generation") > 3.5 * _rate(PRIME, "health_generation")
    # models
    assert _rate(PRIME, "wrong_port", "sim-1-lite") > _rate(PRIME, "wrong_port") > _rate(PRIME, "wrong_port", "sim-1-pro")


def test_viability_calibration():
    """Decision counts match the closed form, and the genomes land where they should."""
    for text in (PRIME, ECHO, drop_section(PRIME, "Implementation Requirements")):
        assert abs(_viable_rate(text) - dm.expected_viability(parse_spec_text(text))) < 0.03
    # habits (swallowed exceptions above all) make Prime fail more often than Echo
    assert 0.25 <= _viable_rate(PRIME) <= 0.45
    assert _viable_rate(drop_section(PRIME, "Implementation Requirements")) < _viable_rate(PRIME) - 0.08
    assert _viable_rate(drop_section(PRIME, "HTTP Contract")) < _viable_rate(PRIME) - 0.06
    assert _viable_rate(ECHO) > 0.7 > _viable_rate(PRIME)


def test_common_random_numbers_are_monotone():
    """With the same seeds, a worse spec keeps every defect of a better one."""
    good, worse = parse_spec_text(PRIME), parse_spec_text(drop_section(PRIME, "Implementation Requirements"))
    for seed in range(500):
        a, b = dm.decide(good, seed, 2), dm.decide(worse, seed, 2)
        assert a.careless == b.careless
        for kind in a.defects:
            if dm.raw_probability(dm.KINDS[kind], worse) >= dm.raw_probability(dm.KINDS[kind], good):
                assert kind in b.defects


def test_diligence_phrases_lower_carelessness_and_shape_style():
    spec = parse_spec_text(PRIME)
    careful_text = PRIME.replace(
        "## Testing",
        "Annotate every function with type hints. Catch specific exceptions. Use time.monotonic().\n\n## Testing",
    )
    assert dm.careless_probability(parse_spec_text(careful_text)) < dm.careless_probability(spec)
    assert dm.expected_viability(parse_spec_text(careful_text)) > dm.expected_viability(spec)
    # style follows the latent: bare excepts and wall clocks go with carelessness
    by = {True: Counter(), False: Counter()}
    for seed in range(600):
        careless = dm.decide_careless(spec, seed, 1)
        st = choose_style(spec, seed, 1, careless)
        by[careless].update({"bare": st.excepts == "bare", "time": st.clock == "time", "untyped": not st.typed,
                             "n": 1, "structlog": st.logger == "structlog"})
    frac = {c: {k: by[c][k] / by[c]["n"] for k in ("bare", "time", "untyped", "structlog")} for c in by}
    for feature in ("bare", "time", "untyped"):
        assert frac[True][feature] > frac[False][feature] + 0.2, feature
    assert abs(frac[True]["structlog"] - frac[False]["structlog"]) < 0.12  # noise feature


def test_style_varies_across_seeds_in_the_code():
    texts = [answer(PRIME, seed=s, format_errors=False) for s in range(16)]
    joined = "\n".join(texts)
    for marker in ("time.monotonic()", "time.time()", "except:", "except Exception", "-> None", "structlog",
                   "aiohttp_client", "TestClient(TestServer", "with_retry", "BaseModel", "@dataclass",
                   "web.AppRunner", "web.run_app"):
        assert marker in joined, marker
    assert any("-> " not in t.split('<file path="prime/parser.py">')[1].split("</file:end>")[0] for t in texts)


def test_readme_documents_every_defect():
    for kind in dm.CATALOGUE:
        row = readme_row(kind.name)
        assert row is not None, kind.name
        assert f"| {kind.base:.2f} | {kind.stage} |" in row, kind.name


# --- retries, repair, mutation ---------------------------------------------------------


def _first_defective(spec_text: str, start: int = 0):
    spec = parse_spec_text(spec_text)
    seed = start
    while True:
        d = dm.decide(spec, seed, 1)
        if d.defects:
            return seed, d
        seed += 1


def test_informed_retry_fixes_the_named_defect():
    spec = parse_spec(PRIME)
    info = parse_spec_text(PRIME)
    sim = SimProvider()
    fixed = kept_uninformed = total = 0
    seed = 0
    while total < 30:
        seed, first = _first_defective(PRIME, seed + 1)
        culprit = dm.first_failure(first.defects)
        stage = dm.KINDS[culprit].stage
        files = files_for(PRIME, seed=seed, generation=1)
        diag = {"stage": stage, "summary": f"{stage} failed", "failures": []}
        req = gen_request(PRIME, seed, 2, RetryInfo(attempt=1, generation=1, diagnostics=diag, files=files))
        req.metadata["generation"] = 1  # same lineage key as the failed attempt
        texts = [b["text"] for b in req.messages[0]["content"]]
        after = sim.decision(info, req.metadata, texts, "sim-1")
        fixed += culprit not in after.defects
        blind = dm.decide(info, seed, 1, 1)  # a retry without diagnostics
        kept_uninformed += culprit in blind.defects
        total += 1
    assert fixed / total >= 0.8
    assert kept_uninformed / total >= 0.5
    assert spec is not None


def test_retry_answer_is_code_and_differs():
    seed, first = _first_defective(PRIME)
    files = files_for(PRIME, seed=seed, generation=1)
    culprit = dm.first_failure(first.defects)
    diag = {"stage": dm.KINDS[culprit].stage, "summary": "failed", "failures": []}
    req = gen_request(PRIME, seed, 1, RetryInfo(attempt=1, generation=1, diagnostics=diag, files=files))
    resp = asyncio.run(SimProvider(format_errors=False).complete(req))
    assert parse_files(resp.text)
    assert resp.text != answer(PRIME, seed=seed, generation=1, format_errors=False)


def test_format_error_and_repair():
    sim = SimProvider()
    seed = next(s for s in range(2000) if dm._uniform("format", s, 1, 0) < 0.02)
    req = gen_request(ECHO, seed, 1)
    bad = asyncio.run(sim.complete(req)).text
    with pytest.raises(ParseError) as info:
        parse_files(bad)
    repair = build_repair_request(req, bad, info.value)
    good = asyncio.run(sim.complete(repair)).text
    files = parse_files(good)
    assert files and good == answer(ECHO, seed, 1, format_errors=False)


async def test_generate_end_to_end_with_repair(tmp_path):
    from core.prime.generate import generate

    seed = next(s for s in range(2000) if dm._uniform("format", s, 3, 0) < 0.02)
    res = await generate(ECHO, tmp_path / "a", SimProvider(), generation=3, seed=seed, model="sim-1")
    assert res.ok, res.error
    assert res.repairs == 1 and res.simulated
    assert res.manifest.producer_model == "sim-1"
    assert (tmp_path / "a" / "manifest.json").exists()
    assert (tmp_path / "a" / "echo" / "app.py").exists()


@pytest.mark.parametrize("section", ["Implementation Requirements", "HTTP Contract", "Testing", "System Prompt"])
async def test_mutation_is_valid_and_spec_sensitive(section):
    sim = SimProvider()
    spec = parse_spec(PRIME)
    base_v = dm.expected_viability(parse_spec_text(PRIME))
    changed, moved = 0, 0
    for seed in range(12):
        instructions = ["Rewrite this section to make the generated code more reliable.",
                        "Add guidance.", "Shorten this section.", "Rephrase for clarity."][seed % 4]
        req = build_mutate_request(spec, section, instructions, model="sim-1", seed=seed)
        text = (await sim.complete(req)).text
        body = parse_section_answer(text, section)
        variant = replace_section(PRIME, section, body)
        issues = validate_variant(PRIME, variant)
        assert not issues, [str(i) for i in issues]
        changed += variant != PRIME
        moved += abs(dm.expected_viability(parse_spec_text(variant)) - base_v) > 1e-9
        again = (await sim.complete(req)).text
        assert again == text  # deterministic
    assert changed >= 10
    assert moved >= 3


def test_render_answer_shape():
    spec = parse_spec_text(ECHO)
    text = render_answer({"a.py": "x = 1\n", "empty.txt": ""}, spec, 4)
    assert [f.path for f in parse_files(text)] == ["a.py", "empty.txt"]
    assert [f.content for f in parse_files(text)] == ["x = 1\n", ""]
    with pytest.raises(ParseError):
        parse_files(render_answer({"a.py": "x = 1\n"}, spec, 4, format_error=True))


def test_build_files_is_pure():
    spec = parse_spec_text(PRIME)
    d = dm.decide(spec, 9, 4)
    a, _ = build_files(spec, d, 9, 4)
    b, _ = build_files(spec, d, 9, 4)
    assert a == b


# --- habits ------------------------------------------------------------------------------

from core.distill.amend import TEXTS  # noqa: E402
from core.distill.features import generation_features  # noqa: E402
from core.llm.sim import habits as hb  # noqa: E402
from core.llm.sim.retry import detect_habits  # noqa: E402


def _features(files: dict[str, str]) -> dict[str, bool]:
    return generation_features(1, {p: c.encode() for p, c in files.items()}).values


@pytest.mark.parametrize("spec_text", [PRIME, ECHO, TALLY], ids=["prime", "echo", "generic"])
def test_every_habit_shows_in_the_distillers_feature(spec_text):
    """Each habit, biting or harmless, turns its feature on; without it the feature is off."""
    for seed in (0, 1):
        clean = _features(files_for(spec_text, seed=seed, defects=set(), habits={}))
        for habit in hb.CATALOGUE:
            assert clean[habit.feature] is False, (habit.name, seed)
            for bites in (True, False):
                files = files_for(spec_text, seed=seed, defects=set(), habits={habit.name: bites})
                assert _features(files)[habit.feature] is True, (habit.name, bites, seed)
                form = detect_habits(parse_spec_text(spec_text), RetryContext(None, 1, "", "", files=files))
                want = "bite" if bites and habit.can_bite(parse_spec_text(spec_text)) else "harmless"
                assert form[habit.name] == want, (habit.name, bites, form)


def test_habit_draws_match_the_closed_form():
    spec = parse_spec_text(PRIME)
    seen, bit = Counter(), Counter()
    for s in range(N_STAT):
        d = dm.decide(spec, s, 1)
        seen.update(list(d.habits))
        bit.update(d.bites)
    for habit in hb.CATALOGUE:
        p = hb.probability(habit, spec)
        assert abs(seen[habit.name] / N_STAT - p) < 0.03, habit.name
        assert abs(bit[habit.name] / N_STAT - hb.bite_probability(habit, spec)) < 0.03, habit.name


def test_naming_a_habit_lowers_it_and_keeps_a_subset():
    """The distiller's guideline for each habit's feature fires the habit's rule; with the
    same seeds the named spec's occurrences are a subset of the unnamed one's."""
    base = parse_spec_text(PRIME)
    for habit in hb.CATALOGUE:
        text = TEXTS[habit.feature]["hurts"]
        named = parse_spec_text(PRIME.replace("## Testing", text + "\n\n## Testing"))
        assert hb.probability(habit, named) <= hb.probability(habit, base)
        if hb.probability(habit, base) > 0.1:
            assert hb.probability(habit, named) < 0.3 * hb.probability(habit, base), habit.name
        for s in range(300):
            if habit.name in dm.decide(named, s, 1).habits:
                assert habit.name in dm.decide(base, s, 1).habits
    # the dominant habit of Prime: its guideline is worth a large, measurable gain
    named = parse_spec_text(PRIME.replace("## Testing", TEXTS["swallowed_exception"]["hurts"] + "\n\n## Testing"))
    assert dm.expected_viability(named) > dm.expected_viability(base) + 0.3


def test_readme_documents_every_habit():
    for habit in hb.CATALOGUE:
        row = readme_row(habit.name)
        assert row is not None, habit.name
        assert f"`{habit.feature}`" in row and f"| {habit.base:.2f} |" in row and f"| {habit.stage} |" in row
        assert f"| {habit.bite:.2f}" in row, habit.name


def test_informed_retry_fixes_a_biting_habit():
    info = parse_spec_text(PRIME)
    sim = SimProvider()
    fixed = total = 0
    for seed in range(400):
        first = dm.decide(info, seed, 1)
        if first.defects or first.bites != {"swallowed_exception"}:
            continue
        files = files_for(PRIME, seed=seed, generation=1)
        diag = {"stage": "health", "summary": "health: 4 check(s) failed; first: parse-rejects-parent-path: "
                "status 200, expected 422", "failures": []}
        req = gen_request(PRIME, seed, 2, RetryInfo(attempt=1, generation=1, diagnostics=diag, files=files))
        req.metadata["generation"] = 1
        texts = [b["text"] for b in req.messages[0]["content"]]
        after = sim.decision(info, req.metadata, texts, "sim-1")
        fixed += "swallowed_exception" not in after.habits
        total += 1
        if total >= 30:
            break
    assert total >= 20 and fixed / total >= 0.8

"""The sim's artifacts in the real rig (Docker): defect-free ones are viable, and every
defect kind — every variant of it — fails at the stage the defect model says.

Skipped when Docker is unreachable, unless CAMBRIAN_REQUIRE_DOCKER=1 (then they fail).
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import pytest

from core.llm.sim import SimProvider
from core.llm.sim import defects as dm
from core.llm.sim.build import build_files
from core.llm.sim.specinfo import parse_spec_text

pytestmark = [pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]
PRIME = (ROOT / "spec" / "prime.md").read_text(encoding="utf-8")
ECHO = (ROOT / "spec" / "echo.md").read_text(encoding="utf-8")
TALLY = (Path(__file__).parent / "counter_spec.md").read_text(encoding="utf-8")
GENERATION = 3


def make_artifact(spec_text: str, out: Path, seed: int, force: set[str] | None = None,
                  habits: dict[str, bool] | None = None) -> Path:
    from core.prime.generate import generate

    provider = SimProvider(format_errors=False, force_defects=force, force_habits=habits)
    res = asyncio.run(generate(spec_text, out, provider, generation=GENERATION, parent=GENERATION - 1,
                               seed=seed, model="sim-1"))
    assert res.ok, res.error
    return out


def rig(path: Path, start_timeout: float = 12.0):
    from rig.api import StageTimeouts, run_artifact

    for _ in range(3):  # a rig error (e.g. a container killed from outside) is no verdict
        res = run_artifact(path, backend="docker", generation=GENERATION,
                           timeouts=StageTimeouts(start=start_timeout))
        if not res.rig_error:
            return res
    pytest.fail(f"the rig failed three times: {res.rig_error}")


def clean_seed(spec_text: str) -> int:
    spec = parse_spec_text(spec_text)
    return next(s for s in range(1000) if dm.decide(spec, s, GENERATION).viable)


@pytest.mark.parametrize("spec_text,min_tests", [(PRIME, 30), (ECHO, 12), (TALLY, 8)],
                         ids=["prime", "echo", "generic"])
def test_defect_free_artifact_is_viable(rig_ready, tmp_path, spec_text, min_tests):
    seed = clean_seed(spec_text)
    res = rig(make_artifact(spec_text, tmp_path / "a", seed))
    report = res.report
    assert report.status == "viable", report.diagnostics
    test = report.checks["test"]
    assert test.tests_run >= min_tests and test.tests_passed == test.tests_run
    assert all(v.passed for v in report.checks["health"].vectors or [])


def test_drawn_defects_predict_the_verdict(rig_ready, tmp_path):
    """Unforced first attempts: the verdict is exactly what the decision implies."""
    spec = parse_spec_text(PRIME)
    for seed in range(3):
        decision = dm.decide(spec, seed, GENERATION)
        first = dm.first_failure(decision.failures)
        report = rig(make_artifact(PRIME, tmp_path / str(seed), seed)).report
        assert report.failure_stage == (dm.failure_stage(first) if first else "none"), (seed, decision.failures)


@functools.lru_cache(maxsize=1)
def variant_cases() -> list[tuple[str, str, int]]:
    """(kind, variant, seed): one prime artifact per variant of every defect kind."""
    spec = parse_spec_text(PRIME)
    cases: dict[tuple[str, str], int] = {}
    for kind in dm.KINDS:
        for seed in range(16):
            if sum(1 for (k, _v) in cases if k == kind) >= 3:
                break
            base = dm.decide(spec, seed, GENERATION)
            decision = dm.Decision(base.careless, frozenset({kind}))
            _files, ctx = build_files(spec, decision, seed, GENERATION)
            variant = {
                "health_generation": ctx.variants.get("generation", ""),
                "missing_package": ctx.variants.get("missing_package", ""),
            }.get(kind, ctx.variants.get(kind, ""))
            cases.setdefault((kind, variant), seed)
    return [(k, v, s) for (k, v), s in sorted(cases.items())]


@pytest.mark.parametrize("kind", sorted(dm.KINDS))
def test_each_defect_fails_at_its_stage(rig_ready, tmp_path, kind):
    seed = 1
    res = rig(make_artifact(PRIME, tmp_path / "a", seed, {kind}))
    report = res.report
    assert report.status == "non-viable"
    assert report.failure_stage == dm.KINDS[kind].stage, report.diagnostics
    diag = report.diagnostics
    text = " ".join([diag.summary, diag.stdout_tail, diag.stderr_tail] + [f.error for f in diag.failures])
    expected_words = {
        "syntax_error": "syntax",
        "missing_package": "No module named",
        "wrong_port": "8401",
        "blocking_startup": "timeout",
    }
    if kind in expected_words:
        assert expected_words[kind].lower() in text.lower(), text[:500]


@pytest.mark.slow
def test_every_variant_fails_at_its_stage(rig_ready, tmp_path):
    def one(case):
        kind, variant, seed = case
        out = make_artifact(PRIME, tmp_path / f"{kind}-{variant or 'x'}", seed, {kind})
        return case, rig(out, start_timeout=8.0).report

    # sequential: the rig's in-process ast.parse is not thread-safe in CPython 3.11
    results = [one(case) for case in variant_cases()]
    wrong = [(case, r.failure_stage) for case, r in results if r.failure_stage != dm.KINDS[case[0]].stage]
    assert not wrong, wrong
    assert len(results) >= 2 * len(dm.KINDS)


HABITS = sorted(["swallowed_exception", "unchecked_env", "blocking_async", "hardcoded_path", "unchecked_input"])


@pytest.mark.parametrize("habit", HABITS)
def test_each_habit_bites_at_its_stage(rig_ready, tmp_path, habit):
    """A habit in its biting form fails the rig where the habit table says, for the reason
    it documents; the distiller's feature sees it in the same files."""
    from core.distill.features import generation_features
    from core.llm.sim.habits import HABITS as TABLE

    out = make_artifact(PRIME, tmp_path / "a", 1, habits={habit: True})
    report = rig(out).report
    assert report.status == "non-viable"
    assert report.failure_stage == TABLE[habit].stage, report.diagnostics
    diag = report.diagnostics
    text = " ".join([diag.summary, diag.stdout_tail, diag.stderr_tail] + [f.error for f in diag.failures])
    expected = {
        "swallowed_exception": "status 200, expected 422",
        "unchecked_env": "KeyError: 'PORT'",
        "blocking_async": "URLError",
        "hardcoded_path": "/var/lib/prime",
        "unchecked_input": "answered 500",
    }[habit]
    assert expected.lower() in text.lower(), text[:800]
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert generation_features(1, files).values[TABLE[habit].feature]


@pytest.mark.parametrize("spec_text", [PRIME, ECHO, TALLY], ids=["prime", "echo", "generic"])
def test_harmless_habits_are_viable(rig_ready, tmp_path, spec_text):
    """Every habit at once in its harmless form: visible in the code, and viable."""
    seed = clean_seed(spec_text)
    res = rig(make_artifact(spec_text, tmp_path / "a", seed, habits={h: False for h in HABITS}))
    assert res.report.status == "viable", res.report.diagnostics

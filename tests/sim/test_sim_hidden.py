"""The sim's hidden violations (core/llm/sim/hidden.py): Prime answers that pass Layer 1 (own
tests, every visible vector) and break a sentence of the spec that only one hidden layer
looks at — checked offline (rates, files, retries) and in the real rig, each judged by every
layer the way the engine does (tests/hidden_layers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.llm.sim import defects as dm
from core.llm.sim import hidden as hd
from core.llm.sim.build import files_for
from core.llm.sim.examine import derive_probes
from core.llm.sim.retry import RetryContext, detect_hidden
from core.llm.sim.specinfo import parse_spec_text
from core.spec import parse_spec
from tests.hidden_layers import LAYER_NAMES, caught_by, judge, open_layers
from tests.sim.readme import readme_row

ROOT = Path(__file__).resolve().parents[2]
PRIME = (ROOT / "spec" / "prime.md").read_text(encoding="utf-8")
ECHO = (ROOT / "spec" / "echo.md").read_text(encoding="utf-8")
N_STAT = 3000


def test_readme_documents_every_hidden_violation():
    for kind in hd.CATALOGUE:
        row = readme_row(kind.name)
        assert row is not None, kind.name
        assert f"| {kind.base:.2f} | {kind.layer} | `{kind.caught_by}` |" in row, (kind.name, row)
    assert {k.layer for k in hd.CATALOGUE} == {"sealed", "examiner", "redteam"}


def test_rates_follow_the_spec_and_never_change_viability():
    prime = parse_spec_text(PRIME)
    assert hd.probabilities(prime) == pytest.approx({"duplicate_path_kept": 0.2, "bare_parse_400": 0.2,
                                                     "text_coerced": 0.2})
    assert hd.probabilities(parse_spec_text(ECHO)) == {k: 0.0 for k in hd.KINDS}
    # each rule moves its rate: prime asks for every parse error code tested and a 400 for a
    # non-string text; without those sentences the rates double
    unsaid = PRIME.replace("including every parse error code", "including the parse error codes").replace(
        "A missing or non-string `text`", "A missing `text`")
    assert hd.probabilities(parse_spec_text(unsaid))["duplicate_path_kept"] == pytest.approx(0.4)
    assert hd.probabilities(parse_spec_text(unsaid))["text_coerced"] == pytest.approx(0.4)
    seen = {k: 0 for k in hd.KINDS}
    for seed in range(N_STAT):
        d = dm.decide(prime, seed, 1)
        assert d.viable == (not d.defects and not d.bites)
        for name in d.hidden:
            seen[name] += 1
    for name, count in seen.items():
        assert abs(count / N_STAT - 0.2) < 4 * (0.2 * 0.8 / N_STAT) ** 0.5, (name, count)


@pytest.mark.parametrize("name", list(hd.KINDS))
def test_a_hidden_violation_changes_only_its_module_and_the_tests_that_would_see_it(name):
    clean = files_for(PRIME, seed=2, defects=set(), habits={})
    bad = files_for(PRIME, seed=2, defects={name}, habits={})
    changed = sorted(p for p in bad if bad[p] != clean.get(p))
    where = f"prime/{hd.KINDS[name].where}"
    assert where in changed and set(changed) <= {where, "tests/test_api.py", "tests/test_parser.py"}
    compile(bad[where], where, "exec")
    spec = parse_spec_text(PRIME)
    assert detect_hidden(spec, RetryContext(None, 1, "health", "", files=bad)) == {
        k: k == name for k in hd.KINDS}
    assert not any(detect_hidden(spec, RetryContext(None, 1, "health", "", files=clean)).values())


def test_a_retry_keeps_a_hidden_violation_at_random_never_by_name():
    spec = parse_spec_text(PRIME)
    kept = sum("text_coerced" in dm.decide(spec, seed, 1, attempt=1, previous=set(), named={"text_coerced"},
                                          previous_hidden={"text_coerced"}).hidden for seed in range(N_STAT))
    assert abs(kept / N_STAT - dm.P_KEEP_OTHER) < 0.03


@pytest.fixture(scope="module")
def layers(tmp_path_factory):
    with open_layers(tmp_path_factory.mktemp("hidden-home"), PRIME) as lay:
        yield lay


@pytest.mark.docker
@pytest.mark.parametrize("name", [None, *hd.KINDS])
def test_in_the_rig_each_hidden_violation_is_caught_by_its_layer_alone(name, layers, rig_ready, tmp_path):
    from tests.sim.test_sim_rig import clean_seed, make_artifact

    art = make_artifact(PRIME, tmp_path / "a", clean_seed(PRIME), force={name} if name else set())
    judged = judge(art, layers)
    rep = judged.report
    assert rep["status"] == "viable", rep["diagnostics"]
    assert all(v["passed"] for v in rep["checks"]["health"]["vectors"])
    assert len(rep["checks"]["health"]["vectors"]) == len(parse_spec(PRIME).vectors)
    # the sim examiner's own mistakes (drawn at its documented rate) fail every artifact:
    # they are what the suspect rule finds; they say nothing about this one
    derived = {p["name"]: p["expect"]["status"] for p in derive_probes(parse_spec(PRIME).visible_text)}
    wrong = {p["name"] for p in layers.examiner if p["expect"]["status"] != derived[p["name"]]}
    assert wrong and wrong <= set(judged.failed["examiner"])
    judged.failed["examiner"] = [n for n in judged.failed["examiner"] if n not in wrong]
    layer = hd.KINDS[name].layer if name else None
    assert caught_by(judged) == {ln: ln == layer for ln in LAYER_NAMES}, judged.failed
    if name:
        assert judged.failed[layer] == [hd.KINDS[name].caught_by]

"""The verification layers' corpus (tests/layers_corpus/): artifacts of one small spec that
pass their own tests and every visible vector, yet each break one sentence of the spec that
only one hidden layer looks at — a sealed vector, an examiner probe or a red-team probe —
plus a conformant one that no layer fails.

The hidden layers come from the production paths and run as the engine runs them
(tests/hidden_layers.py): the sealed vectors from the stored spec, the examiner's probes from
``ensure_probes`` (a real store, the sim provider through the ledger: one ``examine`` call for
the whole corpus), the red team's from ``propose`` on each artifact's files, in a second run.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from core.llm.sim.examine import WRONG_P, _draw, derive_probes
from core.spec import parse_spec
from rig.api import run_artifact
from tests.hidden_layers import LAYER_NAMES, caught_by, judge, open_layers

TESTS = Path(__file__).resolve().parents[1]
LAYERS = TESTS / "layers_corpus"
SPEC_TEXT = (LAYERS / "spec.md").read_text(encoding="utf-8")
SPEC = parse_spec(SPEC_TEXT)


def _build():
    name = "cambrian_corpus_build"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TESTS / "corpus" / "build.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


build = _build()
ARTIFACTS = build.list_artifacts(LAYERS)


def materialise(name: str, dest: Path) -> Path:
    # the artifact's spec copy is the writer's: no sealed vector in it
    return build.materialise(name, dest, corpus_dir=LAYERS, spec_path="spec/tally.md",
                             spec_bytes=SPEC.visible_text.encode("utf-8"))


def test_the_corpus_is_what_it_says_without_a_sandbox(tmp_path):
    """Every hidden layer is meant for exactly one artifact, and one artifact is for none;
    the artifacts' spec copies hold no sealed byte; the examiner's set has no wrong probe."""
    meant = sorted(str(build.load_expected(n, LAYERS)["caught_by"]) for n in ARTIFACTS)
    assert meant == ["None", "examiner", "redteam", "sealed"]
    assert [v.name for v in SPEC.sealed] == ["tally-counts-this-request", "shout-by-unicode-rules"]
    for name in ARTIFACTS:
        art = materialise(name, tmp_path / name)
        copy = (art / "spec/tally.md").read_text(encoding="utf-8")
        assert "sealed" not in copy.lower() and "sealed-first" not in copy
        assert (art / "app/server.py").read_bytes() != b""
    # each variant is the conformant artifact with its few lines changed, nothing else
    base = build._source_files("conformant", corpus_dir=LAYERS)
    for name in set(ARTIFACTS) - {"conformant"}:
        files = build._source_files(name, corpus_dir=LAYERS)
        assert files.keys() == base.keys() and [p for p in files if files[p] != base[p]] == ["app/server.py"]


def test_a_replace_that_no_longer_matches_its_base_is_refused(tmp_path):
    """A variant says only what it changes: when the base moves under it, materialising
    fails with the reason instead of building the base unchanged."""
    import json
    import shutil

    shutil.copytree(LAYERS / "conformant", tmp_path / "conformant")
    (tmp_path / "drifted").mkdir()
    (tmp_path / "drifted" / "expected.json").write_text(json.dumps({
        "status": "viable", "failure_stage": "none", "inherit": "conformant",
        "replace": [{"file": "app/server.py", "old": "a line the base no longer has", "new": "x"}]}))
    with pytest.raises(ValueError, match="exactly one 'a line the base no longer has' in app/server.py, found 0"):
        build.materialise("drifted", tmp_path / "out", corpus_dir=tmp_path, spec_path="spec/tally.md",
                          spec_bytes=b"spec")
    # the sim examiner draws wrong probes at a documented rate; this spec's text draws none
    # for sim-1, so a failed examiner probe here means the artifact, not the examiner
    assert not [p["name"] for p in derive_probes(SPEC.visible_text)
                if _draw("sim-1", SPEC.visible_text, p["name"]) < WRONG_P]


@pytest.fixture(scope="module")
def hidden_layers(tmp_path_factory):
    with open_layers(tmp_path_factory.mktemp("layers-home"), SPEC_TEXT) as layers:
        yield layers


@pytest.mark.docker
@pytest.mark.parametrize("name", ARTIFACTS)
def test_each_artifact_is_caught_by_exactly_the_layer_meant_for_it(name, tmp_path, rig_image, hidden_layers):
    expected = build.load_expected(name, LAYERS)
    art = materialise(name, tmp_path / name)
    h = hidden_layers
    calls_before = h.sim.calls
    judged = judge(art, h)
    assert h.sim.calls == calls_before + 1  # one redteam call; the examiner's set was made once

    # Layer 1 (the hidden layers only scoring): viable, its own tests and every visible vector pass
    rep = judged.report
    assert rep["status"] == "viable", rep["diagnostics"]
    test = rep["checks"]["test"]
    assert test["passed"] and test["tests_run"] == test["tests_passed"] == 4
    health = rep["checks"]["health"]
    assert [(v["name"], v["passed"]) for v in health["vectors"]] == [(v.name, True) for v in SPEC.vectors]
    assert rep["fitness"]["vector_pass_rate"] == 1.0
    assert len(health["sealed"]) == 2 and len(health["examiner"]) == len(h.examiner) == 7
    assert judged.redteam["proposed"] == 10 and judged.redteam["confirmed"] == len(judged.failed["redteam"])

    # exactly the layer meant for it fails, and only with the probes it names
    caught = expected["caught_by"]
    assert caught_by(judged) == {layer: layer == caught for layer in LAYER_NAMES}, judged.failed
    if caught:
        assert judged.failed[caught] == expected["fails"]
    # the scores say the same thing
    assert (rep["fitness"]["sealed_pass_rate"] < 1.0) == (caught == "sealed")
    assert (rep["fitness"]["examiner_pass_rate"] < 1.0) == (caught == "examiner")
    assert (judged.redteam["score"] < 1.0) == (caught == "redteam")

    # gating on the layer that caught it turns the verdict; the diagnostics never name the probe
    if caught in ("sealed", "examiner"):
        gated = run_artifact(art, probes={"sealed": h.sealed, "examiner": h.examiner},
                             gate=[caught]).report.to_wire()
        assert gated["status"] == "non-viable" and gated["failure_stage"] == "health"
        assert not any(f in str(gated["diagnostics"]) for f in judged.failed[caught])


def test_the_examiner_was_asked_once_for_the_whole_corpus(hidden_layers):
    calls = hidden_layers.store.llm_calls(campaign_id=hidden_layers.cid)
    assert [c.purpose for c in calls].count("examine") == 1

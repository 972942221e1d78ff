"""The verification layers' corpus (tests/layers_corpus/): artifacts of one small spec that
pass their own tests and every visible vector, yet each break one sentence of the spec that
only one hidden layer looks at — a sealed vector, an examiner probe or a red-team probe —
plus a conformant one that no layer fails.

The hidden layers come from the production paths: the sealed vectors from the stored spec
(``sealed_probes``, as the engine reads them), the examiner's probes from
``ensure_probes`` (a real store, the sim provider through the ledger: one ``examine`` call
for the whole corpus), the red team's from ``propose`` on each artifact's files. The rig runs
them as the engine does: sealed and examiner probes in the generation's run, the red team's
in a second, fresh run, scored by ``score_block``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest

from core.engine.launch import create_campaign
from core.engine.runner import sealed_probes
from core.examiner.service import ensure_probes, rig_layer as examiner_layer
from core.home import db_path
from core.llm.ledger import LedgeredProvider
from core.llm.sim import SimProvider
from core.llm.sim.examine import derive_probes
from core.models import CampaignSettings
from core.redteam.service import propose, rig_layer as redteam_layer, score_block
from core.spec import parse_spec
from core.store import Store
from rig.api import run_artifact

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
LAYER_NAMES = ("sealed", "examiner", "redteam")


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
    # the sim examiner draws wrong probes at a documented rate; this spec's text draws none
    # for sim-1, so a failed examiner probe here means the artifact, not the examiner
    from core.llm.sim.examine import _draw, WRONG_P

    assert not [p["name"] for p in derive_probes(SPEC.visible_text)
                if _draw("sim-1", SPEC.visible_text, p["name"]) < WRONG_P]


@pytest.fixture(scope="module")
def hidden_layers(tmp_path_factory):
    """A real store holding the spec, and the examiner's probe set made through the ledger."""
    home = tmp_path_factory.mktemp("layers-home")
    store = Store.open(db_path(home))
    cid = create_campaign(store, CampaignSettings(spec_hash="-", provider="sim", model="sim-1",
                                                  examiner="score", redteam="every"), SPEC_TEXT)
    spec_hash = store.campaign(cid)["spec_hash"]
    sim = SimProvider()
    ps = asyncio.run(ensure_probes(store, SPEC_TEXT, spec_hash, LedgeredProvider(sim, store, campaign_id=cid),
                                   "sim-1", campaign_id=cid))
    assert ps.state == "ready"
    yield {"store": store, "cid": cid, "sim": sim, "examiner": examiner_layer(ps),
           "sealed": sealed_probes(SPEC_TEXT)}
    store.close()


@pytest.mark.docker
@pytest.mark.parametrize("name", ARTIFACTS)
def test_each_artifact_is_caught_by_exactly_the_layer_meant_for_it(name, tmp_path, rig_image, hidden_layers):
    expected = build.load_expected(name, LAYERS)
    art = materialise(name, tmp_path / name)
    h = hidden_layers

    # Layer 1 with the sealed vectors and the examiner's probes, all scoring only
    res = run_artifact(art, probes={"sealed": h["sealed"], "examiner": h["examiner"]}, gate=[])
    rep = res.report.to_wire()
    assert rep["status"] == "viable", rep["diagnostics"]
    test = rep["checks"]["test"]
    assert test["passed"] and test["tests_run"] == test["tests_passed"] == 4
    health = rep["checks"]["health"]
    assert [(v["name"], v["passed"]) for v in health["vectors"]] == [(v.name, True) for v in SPEC.vectors]
    assert rep["fitness"]["vector_pass_rate"] == 1.0

    failed = {"sealed": [r["name"] for r in health["sealed"] if not r["passed"]],
              "examiner": [r["name"] for r in health["examiner"] if not r["passed"]]}
    assert len(health["sealed"]) == 2 and len(health["examiner"]) == len(h["examiner"]) == 7

    # Layer 3: the red team's call on this artifact's files, its probes in a fresh run
    files = {p.relative_to(art).as_posix(): p.read_bytes() for p in art.rglob("*") if p.is_file()}
    calls_before = h["sim"].calls
    attack = asyncio.run(propose(SPEC_TEXT, files, LedgeredProvider(h["sim"], h["store"], campaign_id=h["cid"]),
                                 "sim-1", generation=1, campaign_id=h["cid"]))
    assert attack.unavailable is None and h["sim"].calls == calls_before + 1 and len(attack.probes) == 10
    rt = run_artifact(art, probes={"redteam": redteam_layer(attack)}).report.to_wire()
    block = score_block(attack, rt, None)
    failed["redteam"] = [p["name"] for p in block["probes"] if not p["passed"]]
    assert block["confirmed"] == len(failed["redteam"])

    caught = expected["caught_by"]
    assert {layer: bool(failed[layer]) for layer in LAYER_NAMES} == {
        layer: layer == caught for layer in LAYER_NAMES}, failed
    if caught:
        assert failed[caught] == expected["fails"]
    # the scores say the same thing
    assert (rep["fitness"]["sealed_pass_rate"] < 1.0) == (caught == "sealed")
    assert (rep["fitness"]["examiner_pass_rate"] < 1.0) == (caught == "examiner")
    assert (block["score"] < 1.0) == (caught == "redteam")

    # gating on the layer that caught it turns the verdict; the diagnostics never name it
    if caught in ("sealed", "examiner"):
        gated = run_artifact(art, probes={"sealed": h["sealed"], "examiner": h["examiner"]},
                             gate=[caught]).report.to_wire()
        assert gated["status"] == "non-viable" and gated["failure_stage"] == "health"
        assert not any(f in str(gated["diagnostics"]) for f in failed[caught])


def test_the_examiner_was_asked_once_for_the_whole_corpus(hidden_layers):
    calls = [c for c in hidden_layers["store"].llm_calls(campaign_id=hidden_layers["cid"])]
    assert [c.purpose for c in calls].count("examine") == 1

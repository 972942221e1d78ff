"""The offline reproduction loop on the shipped Prime: a sim campaign on spec/prime.md with
reproduction on, the real Docker rig, real SQLite. The sim writes the Prime; the promoted
Prime's own model calls reach the sim through the engine's LLM gateway (its real anthropic
client, its real generation loop, its real PRIME_OUTPUT_DIR), and what it wrote is judged as
a generation of its own.

* unforced: a seed the sim's own model says gives a viable Prime with no breeding defect and
  a viable grand-offspring -> fertile, with the Prime's calls in the ledger;
* forced breeding defects (``breeding.py``): the Prime is viable — its tests and vectors
  cannot see them — and infertile, with the stage and the reason recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.engine.launch import create_campaign
from core.engine.main import run_campaign
from core.engine.summary import fertility
from core.home import db_path
from core.llm.sim import SimProvider
from core.llm.sim import defects as dm
from core.llm.sim.provider import breed_key
from core.llm.sim.specinfo import parse_spec_text
from core.models import CampaignSettings, Outcome
from core.store import Store
from tests.engine.test_reproduction_engine import assert_nothing_left, reproduction_calls

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
PRIME = (ROOT / "spec" / "prime.md").read_text(encoding="utf-8")


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    return h


def new_campaign(home: Path, seed: int, **kw) -> str:
    s = dict(spec_hash="sha256:" + "0" * 64, generations=1, parallelism=1, provider="sim",
             model="sim-1", seed=seed, max_retries=0, backend="docker", reproduction="every")
    s.update(kw)
    with Store.open(db_path(home)) as store:
        return create_campaign(store, CampaignSettings(**s).model_dump(), PRIME, label="sim-breed")


def fertile_seed() -> int:
    """A seed whose first draw (0) is a viable Prime without breeding defects or hidden
    violations (hidden.py) and whose grand-offspring (drawn under the breeder's key) is viable
    too — by the sim's own model."""
    spec = parse_spec_text(PRIME)
    key = breed_key({"draw": 0})
    for seed in range(2000):
        first = dm.decide(spec, seed, 0)
        # no hidden violation either: prime's sealed vectors gate (the default) the breeder and,
        # in reproduction's judging, its grand-offspring
        grand = dm.decide(spec, seed, key)
        if first.viable and not first.breeding and not first.hidden and grand.viable and not grand.hidden:
            return seed
    raise AssertionError("no fertile seed in 2000: the sim's landscape changed")


def test_an_unforced_sim_prime_breeds_a_viable_grand_offspring(home, rig_ready):
    seed = fertile_seed()
    cid = new_campaign(home, seed)
    sim = SimProvider(format_errors=False)
    assert run_campaign(home, cid, provider_factory=lambda _s: sim) == "completed"
    with Store.open(db_path(home)) as s:
        (parent,) = s.generations(cid)
        assert parent.outcome is Outcome.PROMOTED, parent.reason
        r = s.reproduction(parent.number)
        assert r["status"] == "fertile", (r["stage"], r["reason"], r["request"])
        (bred,) = s.bred_generations(campaign_id=cid)
        assert r["offspring"] == bred.number and s.bred_by(bred.number) == parent.number
        assert bred.outcome is Outcome.PROMOTED and bred.campaign_id is None
        report = s.report(bred.number)
        assert report["status"] == "viable"
        assert report["checks"]["test"]["tests_run"] >= 30  # a whole Prime, not a stub
        # the Prime wrote it: its own manifest, its own spec copy (the breeder's, byte for byte)
        files = s.artifact_files(bred.artifact_hash)
        manifest = json.loads(files["manifest.json"])
        parent_files = s.artifact_files(parent.artifact_hash)
        assert files["spec/prime.md"] == parent_files["spec/prime.md"]
        assert manifest["producer-model"] == "sim-1" and manifest["token-usage"]["output"] > 1000
        assert files["prime/app.py"] != parent_files["prime/app.py"] or \
            files["prime/config.py"] != parent_files["prime/config.py"]  # a fresh answer, not a copy
        # its call went through the gateway into the ledger, as reproduction, for this campaign
        (call,) = reproduction_calls(s, parent.number)
        assert call.campaign_id == cid and call.model == "sim-1" and call.output_tokens > 1000
        assert [c["status"] for c in r["gateway"]["calls"]] == [200]
        assert r["request"]["response"]["repair-calls"] == 0
        f = fertility(s, cid)
        assert (f["tested"], f["fertile"], f["infertile"], f["errors"]) == (1, 1, 0, 0)
        assert f["rig_ms_median"] > 0
    assert_nothing_left(home, cid)


@pytest.mark.parametrize("defect,stage,reason", [
    # the Prime's client sends the spec as the system prompt: the model is asked for nothing
    # it can build, the repair call too, and /generate answers 422
    ("swapped_roles", "reproduce", "/generate answered 422"),
    # it writes the spec copy without its front matter: the grand-offspring's hash is wrong
    ("wrong_spec_copy", "offspring:manifest", "artifact hash mismatch"),
], ids=["swapped_roles", "wrong_spec_copy"])
def test_a_breeding_defect_makes_a_viable_but_infertile_prime(home, rig_ready, defect, stage, reason):
    cid = new_campaign(home, seed=1)
    sim = SimProvider(format_errors=False, force_defects={defect})
    assert run_campaign(home, cid, provider_factory=lambda _s: sim) == "completed"
    with Store.open(db_path(home)) as s:
        (parent,) = s.generations(cid)
        # viable: its build, its 30-odd tests and every vector pass
        assert parent.outcome is Outcome.PROMOTED, parent.reason
        assert s.report(parent.number)["status"] == "viable"
        r = s.reproduction(parent.number)
        assert r["status"] == "infertile", r
        assert r["stage"] == stage and reason in (r["reason"] or ""), (r["stage"], r["reason"])
        calls = reproduction_calls(s, parent.number)
        assert calls and all(c.campaign_id == cid for c in calls)
        if defect == "swapped_roles":
            # the generate call and its one repair call, each answered with prose
            assert len(calls) == 2 and r["offspring"] is None
            assert s.bred_generations(campaign_id=cid) == []
        else:
            (bred,) = s.bred_generations(campaign_id=cid)
            assert r["offspring"] == bred.number and bred.outcome is Outcome.FAILED
            assert s.report(bred.number)["failure_stage"] == "manifest"
        f = fertility(s, cid)
        assert (f["tested"], f["fertile"], f["infertile"]) == (1, 0, 1)
        assert f["infertile_stages"] == {stage: 1}
    assert_nothing_left(home, cid)

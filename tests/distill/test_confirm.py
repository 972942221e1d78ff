"""Confirmation campaigns: the distill loop closed (campaign → distill → accept → the same
campaign on the amended spec → before/after), offline: the real sim writes the code, the
fake rig (tests/evolution/conftest.py) judges it as the sim's model says the real rig does
(tests/sim/test_sim_rig.py checks that in Docker)."""

from __future__ import annotations

import json

import pytest
from scipy.stats import fisher_exact

from core.distill import accept_amendment, distill_campaign
from core.distill.cli import amendments_main
from core.distill.confirm import (
    ConfirmRefused,
    compare,
    confirmation_report,
    confirmation_settings,
    confirmations,
    newcombe_interval,
    start_confirmation,
)
from core.engine.launch import create_campaign
from core.engine.main import run_campaign
from core.home import db_path
from core.models import Amendment, AmendmentStatus
from core.store import Store
from tests.evolution.conftest import PRIME, make_fake_rig

SETTINGS = dict(spec_hash="sha256:" + "0" * 64, generations=30, parallelism=2, provider="sim", model="sim-1",
                seed=1, max_retries=0, backend="none")


@pytest.mark.slow
def test_the_loop_closes_offline(tmp_path, capsys):
    home = tmp_path
    with Store.open(db_path(home)) as store:
        original = create_campaign(store, SETTINGS, PRIME)
    assert run_campaign(home, original, rig_fn=make_fake_rig(home)) == "completed"
    with Store.open(db_path(home)) as store:
        report = distill_campaign(store, original)
        [a] = [a for a in report.amendments if a.feature == "swallowed_exception"]
        assert a.evidence["direction"] == "hurts" and a.evidence["p"] < 0.001 and a.evidence["q"] < 0.05
        assert a.evidence["examples"] and all("except" in ex["code"] for ex in a.evidence["examples"])
        with pytest.raises(ConfirmRefused, match="accept it first"):
            confirmation_settings(store, a.id)
        version = accept_amendment(store, a.id)
        settings = confirmation_settings(store, a.id)
        before = store.campaign(original)["settings"]
        assert settings == {**before, "spec_hash": version.hash}  # same settings and seed schedule
    confirm = start_confirmation(home, a.id, spawn=False)
    assert run_campaign(home, confirm, rig_fn=make_fake_rig(home)) == "completed"
    with Store.open(db_path(home)) as store:
        assert confirmations(store, a.id) == [confirm]
        c = confirmation_report(store, a.id)
    assert c["before"]["campaign"] == original and c["after"]["campaign"] == confirm
    assert c["before"]["judged"] == c["after"]["judged"] == 30
    assert c["after"]["viable"] > c["before"]["viable"] + 5
    assert c["fisher"]["p"] < 0.05 and c["difference"]["interval"][0] > 0
    # the same seed schedule: no first attempt gets worse, several get fixed
    assert c["paired"]["pairs"] == 30 and c["paired"]["only_before"] == 0 and c["paired"]["only_after"] >= 6
    assert c["paired"]["p"] < 0.05
    assert c["complete"] and "more viable" in c["verdict"]
    # the CLI reads the same comparison
    assert amendments_main(home, "compare", [a.id], True) == 0
    assert json.loads(capsys.readouterr().out)["after"]["viable"] == c["after"]["viable"]
    assert amendments_main(home, "show", [a.id], False) == 0
    out = capsys.readouterr().out
    assert "Confirmation of amendment" in out and "McNemar" in out and "Fisher" in out


def _campaign(store: Store, cid: str, spec_hash: str, outcomes: list[bool], seed: int = 3) -> None:
    store.create_campaign(cid, spec_hash, {**SETTINGS, "spec_hash": spec_hash, "generations": len(outcomes),
                                           "seed": seed})
    for ok in outcomes:
        g = store.create_generation(spec_hash=spec_hash, campaign_id=cid, draw=store.next_draw(cid))
        store.record_report(g.number, {"status": "viable" if ok else "non-viable",
                                       "failure_stage": "none" if ok else "health"})
        store.set_outcome(g.number, "promoted" if ok else "failed")
    store.set_campaign_state(cid, "completed", "done")


def test_compare_counts_intervals_and_tests(tmp_path):
    with Store.open(db_path(tmp_path)) as store:
        h = store.add_spec(PRIME).hash
        before = [i % 3 == 0 for i in range(30)]  # 10/30
        after = [b or i % 3 == 1 for i, b in enumerate(before)]  # 20/30, every draw at least as good
        _campaign(store, "c-before", h, before)
        _campaign(store, "c-after", h, after)
        c = compare(store, "c-before", "c-after")
    assert (c["before"]["viable"], c["after"]["viable"]) == (10, 20)
    assert c["difference"]["value"] == pytest.approx(1 / 3, abs=1e-4)
    lo, hi = newcombe_interval(10, 30, 20, 30)
    assert c["difference"]["interval"] == [round(lo, 4), round(hi, 4)]
    assert 0.08 < lo < 0.12 and 0.50 < hi < 0.56  # Newcombe (1998), method 10, for 10/30 vs 20/30
    assert c["fisher"]["p"] == pytest.approx(fisher_exact([[20, 10], [10, 20]]).pvalue)
    assert c["paired"] == {**c["paired"], "pairs": 30, "only_after": 10, "only_before": 0,
                           "both_viable": 10, "neither": 10}
    assert c["paired"]["p"] == pytest.approx(2 * 0.5 ** 10)


def test_confirmation_is_refused_with_a_reason(tmp_path):
    home = tmp_path
    with Store.open(db_path(home)) as store:
        h = store.add_spec(PRIME).hash
        _campaign(store, "c-orig", h, [True, False])
        pending = store.add_amendment(Amendment(campaign_id="c-orig", spec_hash=h, section="Testing",
                                                text="Every test asserts exact values.", feature="weak_asserts",
                                                evidence={}, status=AmendmentStatus.PENDING))
        orphan = store.add_amendment(Amendment(campaign_id=None, spec_hash=h, section="Testing",
                                               text="Tests never sleep at all.", feature="weak_asserts",
                                               evidence={}, status=AmendmentStatus.PENDING))
        accept_amendment(store, orphan)
        with pytest.raises(ConfirmRefused, match="accept it first"):
            confirmation_settings(store, pending)
        with pytest.raises(ConfirmRefused, match="not distilled from a campaign"):
            confirmation_settings(store, orphan)
        accept_amendment(store, pending)
        with pytest.raises(ConfirmRefused, match="at least one generation"):
            confirmation_settings(store, pending, generations=-1)
        assert confirmation_settings(store, pending, generations=7)["generations"] == 7
        assert confirmation_settings(store, pending)["generations"] == 2
        assert confirmation_report(store, pending) is None
    # the CLI: usage errors, and a refusal that names its reason
    assert amendments_main(home, "accept", [pending, orphan], False, confirm=0) == 2
    assert amendments_main(home, "compare", [pending], False) == 1
    assert amendments_main(home, "confirm", [orphan], True) == 1
    with Store.open(db_path(home)) as store:
        assert [c["id"] for c in store.campaigns()] == ["c-orig"]  # nothing was created


@pytest.mark.docker
def test_accept_confirm_wait_from_the_command_line(tmp_path, rig_ready):
    """`cambrian amendments accept ID --confirm N --wait --json` with the real rig: the
    amendment is accepted, a detached engine runs the amended spec with the original's
    settings and seed, and the JSON carries the before/after comparison."""
    import subprocess
    import sys

    from core.engine.cli import control_main
    from core.home import REPO_ROOT

    home = tmp_path / "home"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cambrian_tui.cli", "--home", str(home), *args],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)

    try:
        res = cli("campaign", "start", "--spec", str(REPO_ROOT / "spec" / "echo.md"), "-n", "3", "-p", "2",
                  "--provider", "sim", "--seed", "7", "--max-retries", "0", "--wait", "--json")
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        original = json.loads(res.stdout[res.stdout.index("{"):])["id"]
        with Store.open(db_path(home)) as store:
            spec_hash = store.campaign(original)["spec_hash"]
            aid = store.add_amendment(Amendment(campaign_id=original, spec_hash=spec_hash, section="Testing",
                                                text="Assert exact expected values in every test.",
                                                feature="weak_asserts", evidence={"p": 0.01, "q": 0.04},
                                                status=AmendmentStatus.PENDING))
        res = cli("amendments", "accept", str(aid), "--confirm", "2", "--wait", "--json")
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        out = json.loads(res.stdout)
        assert out["amendments"][0]["ok"] and out["amendments"][0]["status"] == "accepted"
        conf = out["confirmation"]
        assert conf["ok"] and conf["original"] == original and conf["generations"] == 2 and conf["seed"] == 7
        assert conf["state"] == "completed"
        c = conf["comparison"]
        assert c["before"]["campaign"] == original and c["before"]["judged"] == 3
        assert c["after"]["campaign"] == conf["campaign"] and c["after"]["judged"] == 2
        assert c["after"]["spec_hash"] == out["amendments"][0]["spec_hash"]
        assert "fisher" in c and "paired" in c and c["paired"]["pairs"] == 2
        with Store.open(db_path(home)) as store:
            settings = store.campaign(conf["campaign"])["settings"]
            before = store.campaign(original)["settings"]
        assert {k: v for k, v in settings.items() if k not in ("spec_hash", "generations")} == \
               {k: v for k, v in before.items() if k not in ("spec_hash", "generations")}
        res = cli("amendments", "compare", str(aid))
        assert res.returncode == 0 and "Confirmation of amendment" in res.stdout and "McNemar" in res.stdout
    finally:
        with Store.open(db_path(home)) as store:
            live = [c["id"] for c in store.campaigns() if store.lease_alive(c["id"])]
        for cid in live:  # a failed assertion must not leave an engine running
            control_main(home, cid, "abort", True)

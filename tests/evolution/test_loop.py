"""The loop in-process with a fake rig: records, climbing, exact resume after crashes,
control commands, budgets, and the CLI functions' shapes."""

from __future__ import annotations

import json
import math
import random
import threading
import time

import pytest

from core.evolution import records as rec
from core.evolution.cli import evolve_best_main, evolve_control_main, evolve_status_main
from core.evolution.runs import create_run, run_status
from core.evolution.loop import run_evolution
from core.evolution.optimizer import ReplayMismatch
from core.home import db_path
from core.models import Amendment, AmendmentStatus
from core.store import Store
from core.llm.sim import SimProvider
from tests.evolution.conftest import ECHO, PRIME, make_fake_rig

RUN = "e-test-run"
# random initial points, so that short runs reach rewrites and GP asks (new runs default to the
# sweep design: 8 model and hat choices first; it has its own tests below)
SMALL = dict(budget_generations=200, seed=5, screen_generations=2, full_generations=4, parallelism=2,
             backend="none", n_initial_points=3, initial_design="random")


class Crash(BaseException):
    """A simulated hard crash (not an Exception: nothing in the engine swallows it)."""


def make_run(home, **kw) -> str:
    with Store.open(db_path(home)) as s:
        return create_run(s, ECHO, run_id=RUN, **{**SMALL, **kw})


def run(home, *, rig=None, **kw) -> str:
    return run_evolution(home, RUN, runner_kw={"rig_fn": rig or make_fake_rig(home)}, **kw)


def fingerprint(home) -> list[tuple]:
    with Store.open(db_path(home)) as s:
        return [(o.index, json.dumps(o.params, sort_keys=True), o.spec_hash, o.parent_spec_hash, o.campaign_id,
                 o.viability_rate, o.interval, o.generations, o.accepted, o.rejected_reason)
                for o in s.observations(RUN)]


def test_a_run_records_every_observation_and_climbs(home):
    make_run(home, max_observations=12)
    assert run(home) == "completed"
    with Store.open(db_path(home)) as s:
        obs = s.observations(RUN)
        assert [o.index for o in obs] == list(range(12))
        row = s.campaign(RUN)
        assert row["kind"] == "evolution" and row["state"] == "completed" and "12 observations" in row["reason"]
        children = rec.child_campaigns(s, RUN)
        assert children[0]["id"] == f"{RUN}-base"
        for c in children:
            assert c["settings"]["max_retries"] == 0 and c["state"] == "completed"
            assert c["kind"] in ("screen", "evolution-campaign")
        for o in obs:
            if o.rejected_reason:
                assert o.campaign_id is None and o.viability_rate is None and not o.accepted
                assert not rec.campaign_exists(s, rec.screen_campaign_id(RUN, o.index))
            else:
                assert rec.campaign_exists(s, rec.screen_campaign_id(RUN, o.index))
                assert o.spec_hash and o.parent_spec_hash and o.interval is not None
                assert s.spec_version(o.spec_hash).origin.value in ("mutation", "human")
        st = run_status(s, RUN)
    # the documented JSON shape (keys may be added, never renamed)
    assert {"id", "state", "observations", "best"} <= set(st)
    assert {"spec_hash", "viability_rate", "viability_interval"} <= set(st["best"])
    assert len(st["observations"]) == 12
    # the loop climbs from the incumbent: every parent is the incumbent of its time
    inc = st["base"]["spec_hash"]
    for r in st["observations"]:
        assert r["parent_spec_hash"] == inc
        if r["accepted"]:
            inc = r["spec_hash"]
    assert st["best"]["spec_hash"] == inc
    assert st["trajectory"][0]["after"] == -1 and len(st["trajectory"]) == 13


def test_acceptance_is_only_after_a_full_campaign_and_needs_the_probability(home):
    make_run(home, max_observations=14, seed=11)
    run(home)
    with Store.open(db_path(home)) as s:
        st = run_status(s, RUN)
    for r in st["observations"]:
        if r["accepted"]:
            assert r["full_campaign_id"] and r["p_better"] >= 0.9
        if r["full_campaign_id"]:
            assert r["promising"] and r["campaign_id"] == r["full_campaign_id"]
        elif not r["rejected_reason"]:
            assert r["campaign_id"] == r["screen_campaign_id"]


def test_generation_budget_stops_the_run_deterministically(home):
    make_run(home, budget_generations=14)
    assert run(home) == "completed"
    with Store.open(db_path(home)) as s:
        assert "generation budget used" in s.campaign(RUN)["reason"]
        assert rec.planned_generations(s, RUN) <= 14
        assert rec.counted_generations(s, RUN) == rec.planned_generations(s, RUN)


def _crashing_rig(home, points: set[int]):
    fake_rig = make_fake_rig(home)
    calls = {"n": 0}
    lock = threading.Lock()

    def rig(*a, **kw):
        with lock:
            calls["n"] += 1
            n = calls["n"]
        if n in points:
            raise Crash(f"rig call {n}")
        return fake_rig(*a, **kw)

    return rig


@pytest.mark.parametrize("design,n", [("random", 10), ("sweep", 12)])
def test_exact_resume_after_crashes_anywhere(tmp_path, design, n):
    """Crashes inside campaigns, inside mutations and between an observation and its tell:
    the resumed run's observations equal an uninterrupted run's (with the sweep design, the
    last 4 observations are GP asks)."""
    ref_home, home = tmp_path / "ref", tmp_path / "crashy"
    for h in (ref_home, home):
        h.mkdir()
        make_run(h, max_observations=n, initial_design=design)
    assert run(ref_home) == "completed"
    reference = fingerprint(ref_home)
    if design == "sweep":
        from core.evolution.settings import EvolutionSettings, search_space, sweep_points

        with Store.open(db_path(ref_home)) as s:
            settings = EvolutionSettings(**s.campaign(RUN)["settings"])
        assert len(sweep_points(settings, search_space(settings))) == n - 4

    rng = random.Random(99)
    rig_points = set(rng.sample(range(2, 60), 8))
    mutate_calls = {"n": 0}
    step_calls = {"n": 0}

    def mutation_provider():
        mutate_calls["n"] += 1
        if mutate_calls["n"] in (2, 5):
            raise Crash("mutation")
        return SimProvider()

    def on_step(obs):
        step_calls["n"] += 1
        if step_calls["n"] in (3, 8):
            raise Crash("after the observation, before tell")

    rig = _crashing_rig(home, rig_points)
    crashes = 0
    for _ in range(40):
        try:
            state = run(home, rig=rig, mutation_provider_factory=mutation_provider, on_step=on_step)
            break
        except Crash:
            crashes += 1
    assert state == "completed"
    assert crashes >= 8
    assert fingerprint(home) == reference
    with Store.open(db_path(home)) as s:
        assert s.campaign(RUN)["state"] == "completed"
        interrupted = [g for c in rec.child_campaigns(s, RUN) for g in s.generations(c["id"])
                       if g.outcome.value == "interrupted"]
        assert interrupted  # crashes really hit campaigns mid-way


def test_edited_history_is_detected_on_resume(home):
    make_run(home, max_observations=4)
    run(home)
    with Store.open(db_path(home)) as s:
        s.conn.execute("UPDATE observations SET params_json=? WHERE run_id=? AND idx=0",
                       (json.dumps({**s.observations(RUN)[0].params, "intent": "zzz"}), RUN))
        s.conn.execute("UPDATE campaigns SET state='stopped' WHERE id=?", (RUN,))
        s.conn.execute("UPDATE campaigns SET settings_json=json_set(settings_json, '$.max_observations', 6) "
                       "WHERE id=?", (RUN,))
    with pytest.raises(ReplayMismatch):
        run(home)


def _wait(pred, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_pause_resume_and_abort_through_the_commands_table(home):
    make_run(home, max_observations=50)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("state", run(home, rig=make_fake_rig(home, delay=0.15))))
    t.start()
    s = Store.open(db_path(home))
    try:
        _wait(lambda: s.lease_alive(RUN) and rec.campaign_exists(s, f"{RUN}-base"))
        s.send_command(RUN, "pause")
        _wait(lambda: s.campaign(RUN)["state"] == "paused")
        # the running campaign pauses too (or, between campaigns, the next one waits)
        _wait(lambda: all(c["state"] != "running" for c in rec.child_campaigns(s, RUN)))

        def finished() -> int:
            return sum(1 for c in rec.child_campaigns(s, RUN) for g in s.generations(c["id"])
                       if g.outcome.terminal)

        time.sleep(0.5)  # in-flight generations (at most P=2) may still finish
        n = finished()
        time.sleep(1.0)
        assert finished() == n
        s.send_command(RUN, "resume")
        _wait(lambda: s.campaign(RUN)["state"] == "running")
        _wait(lambda: len(s.observations(RUN)) >= 1)
        s.send_command(RUN, "abort")
        t.join(60)
        assert result["state"] == "aborted"
        assert s.campaign(RUN)["state"] == "aborted"
        assert all(c["state"] in ("completed", "aborted") for c in rec.child_campaigns(s, RUN))
        assert not s.lease_alive(RUN)
        assert s.in_progress() == []
        assert run(home) == "aborted"  # an aborted run does not restart
    finally:
        s.close()
        t.join(5)


def test_halt_file_stops_the_run_and_resume_continues(home):
    make_run(home, max_observations=3)
    (home / "HALT").write_text("stop")
    assert run(home) == "stopped"
    (home / "HALT").unlink()
    assert run(home) == "completed"
    with Store.open(db_path(home)) as s:
        assert len(s.observations(RUN)) == 3


def test_a_full_disk_stops_the_run_and_resume_gives_the_same_observations(tmp_path):
    """A real ENOSPC (a write to /dev/full) in the 5th rig call: the campaign stops, the run
    stops saying so, and once resumed it records what an undisturbed run records."""
    ref_home, home = tmp_path / "ref", tmp_path / "full"
    for h in (ref_home, home):
        h.mkdir()
        make_run(h, max_observations=4)
    assert run(ref_home) == "completed"
    fake, calls = make_fake_rig(home), []

    def rig(*a, **kw):
        calls.append(1)
        if len(calls) == 5:
            with open("/dev/full", "wb", buffering=0) as fh:
                fh.write(b"x")
        return fake(*a, **kw)

    assert run(home, rig=rig) == "stopped"
    with Store.open(db_path(home)) as s:
        reason = s.campaign(RUN)["reason"]
        assert "out of disk space" in reason and "[Errno 28]" in reason
    assert run(home) == "completed"
    with Store.open(db_path(home)) as s:
        assert s.campaign(RUN)["reason"] != reason  # not the stale disk-full reason
    assert fingerprint(home) == fingerprint(ref_home)


def test_a_run_that_dies_of_a_full_disk_is_stopped_not_crashed(home, monkeypatch):
    import sqlite3

    from core.evolution.loop import EvolutionLoop

    make_run(home, max_observations=2)

    def full(self, settings):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(EvolutionLoop, "_loop", full)
    with pytest.raises(sqlite3.OperationalError):
        run(home)
    with Store.open(db_path(home)) as s:
        c = s.campaign(RUN)
        assert c["state"] == "stopped" and c["reason"].startswith("out of disk space")
        assert c["reason"].endswith("then resume the run")
    monkeypatch.undo()
    assert run(home) == "completed"


def test_amendments_are_frozen_into_the_run_and_used(home):
    with Store.open(db_path(home)) as s:
        spec = s.add_spec(ECHO)
        aid = s.add_amendment(Amendment(spec_hash=spec.hash, section="Implementation Requirements",
                                        text="Measure durations with `time.monotonic()`."))
        s.set_amendment_status(aid, AmendmentStatus.ACCEPTED)
        pid = s.add_amendment(Amendment(spec_hash=spec.hash, section="Testing", text="pending one",
                                        feature="weak_asserts", evidence={"feature": "weak_asserts", "p": 0.001,
                                                                          "q": 0.01, "direction": "hurts"}))
        s.add_amendment(Amendment(spec_hash=spec.hash, section="No Such Section", text="nowhere to go"))
        rid = create_run(s, ECHO, run_id=RUN, **SMALL)
        settings = s.campaign(rid)["settings"]
    # accepted ones first; a proposal nobody reviewed is a candidate too, with its evidence
    assert [(a["id"], a["status"]) for a in settings["amendments"]] == [(aid, "accepted"), (pid, "pending")]
    assert settings["amendments"][1]["evidence"]["q"] == 0.01
    assert "amend" in [d for d in __import__("core.evolution.settings", fromlist=["x"]).EvolutionSettings(
        **settings).operators()]
    assert set(settings["hats"]) >= {"tester", "minimalist"}


def test_a_distiller_proposal_is_screened_and_recorded_with_its_evidence(home):
    """Proposals not yet accepted are candidate mutations: the sweep screens each one like
    any other variant, and the run records what was inserted and the evidence behind it.
    Nothing about the proposal's review changes: it stays pending."""
    from core.distill.amend import TEXTS

    text = TEXTS["swallowed_exception"]["hurts"]
    evidence = {"feature": "swallowed_exception", "direction": "hurts", "comparison": "viable_vs_failed",
                "p": 0.0003, "q": 0.004, "groups": {"viable": {"n": 14, "present": 1}},
                "examples": [{"generation": 3, "code": "..."}]}
    with Store.open(db_path(home)) as s:
        spec = s.add_spec(PRIME)
        pid = s.add_amendment(Amendment(spec_hash=spec.hash, campaign_id="c-x", section="Implementation Requirements",
                                        text=text, feature="swallowed_exception", evidence=evidence))
        create_run(s, PRIME, run_id=RUN, **{**SMALL, "initial_design": "sweep", "models": ["sim-1"],
                                            "hats": {}, "max_observations": 1})
    assert run(home) == "completed"
    with Store.open(db_path(home)) as s:
        [obs] = s.observations(RUN)
        [ev] = [e for e in s.events(campaign_id=RUN) if e["kind"] == rec.EV_OBSERVATION]
        assert obs.params["operator"] == "amend" and obs.rejected_reason is None and obs.campaign_id
        assert text in s.spec_text(obs.spec_hash) and text not in PRIME
        rec_ = ev["data"]["amendment"]
        assert rec_["id"] == pid and rec_["status"] == "pending"
        assert rec_["evidence"]["feature"] == "swallowed_exception" and rec_["evidence"]["q"] == 0.004
        assert "examples" not in rec_["evidence"] and rec_["evidence"]["campaign"] == "c-x"
        assert f"proposal {pid}: swallowed_exception hurts" in ev["data"]["detail"]
        assert s.amendment(pid).status == AmendmentStatus.PENDING
        # the screen ran the amended spec: the habit the proposal names is rarer there
        assert obs.viability_rate is not None


def test_cli_status_best_export_and_control(home, capsys, tmp_path):
    make_run(home, max_observations=5)
    run(home)
    assert evolve_status_main(home, RUN, True) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["id"] == RUN and st["state"] == "completed" and len(st["observations"]) == 5
    assert evolve_status_main(home, RUN, False) == 0
    text = capsys.readouterr().out
    assert RUN in text
    from core.evolution.describe import outcome_label

    # one line per observation, each saying what became of it (as the TUI does)
    for r in st["observations"]:
        line = next(x for x in text.splitlines() if x.strip().startswith(f"#{r['index']} "))
        assert outcome_label(r)[:40] in line
        if r["p_better"] is not None:
            assert f"P(better)={r['p_better']:.2f}" in line
    assert outcome_label({"accepted": False, "rejected_reason": None, "full_campaign_id": None,
                          "promising": False}) == "screened out"
    full = {"accepted": False, "rejected_reason": None, "full_campaign_id": "c-x", "promising": True}
    assert outcome_label({**full, "gain": -0.1}) == "full: no gain"
    assert outcome_label({**full, "gain": 0.0}) == "full: no gain"
    assert outcome_label({**full, "gain": 0.05}) == "full: gain within noise"
    out = tmp_path / "export" / "best.md"
    assert evolve_best_main(home, RUN, True, export=str(out)) == 0
    meta = json.loads(capsys.readouterr().out)
    assert out.exists() and out.with_suffix(".json").exists()
    assert meta["spec_hash"] == st["best"]["spec_hash"]
    from core.spec import spec_hash

    assert spec_hash(out.read_bytes()) == meta["spec_hash"]
    assert json.loads(out.with_suffix(".json").read_text())["run"] == RUN
    assert evolve_best_main(home, RUN, False, export=str(tmp_path)) == 0
    assert (tmp_path / f"{RUN}-best.md").exists()
    capsys.readouterr()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert evolve_best_main(home, RUN, False, export=str(blocker / "best.md")) == 1
    assert "cannot export" in capsys.readouterr().err
    assert evolve_status_main(home, "nope", True) == 1
    assert evolve_control_main(home, RUN, "pause") == 1  # nothing runs it
    assert evolve_control_main(home, RUN, "bogus") == 2


def test_abort_without_a_process(home):
    make_run(home)
    assert evolve_control_main(home, RUN, "abort", as_json=True) == 0
    with Store.open(db_path(home)) as s:
        assert s.campaign(RUN)["state"] == "aborted"


def _settings(**kw):
    from core.evolution.settings import EvolutionSettings

    base = dict(base_spec_hash="x" * 64, models=["sim-1", "sim-1-lite", "sim-1-pro"], sections=["A", "B"],
                hats={"h1": {"fragment": "one"}, "h2": {"fragment": "two"}, "h3": {"fragment": "three"}},
                amendments=[{"id": 7, "section": "A", "text": "t"}])
    return EvolutionSettings(**{**base, **kw})


def test_sweep_design_tries_every_one_shot_choice_once_in_a_seeded_order():
    from core.evolution.settings import canonical, search_space, sweep_points

    s = _settings(seed=3)
    dims = search_space(s)
    pts = sweep_points(s, dims)
    used = {"model": "model", "hat": "hat", "amend": "amendment"}
    moves = [(p["operator"], p[used[p["operator"]]]) for p in pts]
    assert sorted(moves, key=str) == sorted([("model", "sim-1-lite"), ("model", "sim-1-pro"), ("hat", "h1"),
                                             ("hat", "h2"), ("hat", "h3"), ("amend", 0)], key=str)
    assert all(canonical(p, dims) == p for p in pts)
    assert sweep_points(_settings(seed=3), dims) == pts  # fixed by the seed: replayable
    orders = {tuple(map(str, sweep_points(_settings(seed=k), dims))) for k in range(6)}
    assert len(orders) > 1  # ... and not one fixed order for every run
    # nothing one-shot: no design (the optimizer then uses random initial points)
    assert sweep_points(_settings(models=["sim-1"], hats={}, amendments=[]), dims) == []


def test_new_runs_use_the_sweep_design_and_stored_runs_keep_theirs(home):
    from core.evolution.settings import EvolutionSettings, search_space, sweep_points

    old = _settings().model_dump()
    del old["initial_design"], old["objective"]  # a run stored before the settings existed
    assert EvolutionSettings(**old).initial_design == "random"
    assert EvolutionSettings(**old).objective_scale is None  # told the gain as it is
    n = 9
    defaults = {k: v for k, v in SMALL.items() if k not in ("initial_design", "objective")}
    with Store.open(db_path(home)) as s:
        create_run(s, ECHO, run_id=RUN, **defaults, max_observations=n)
    run(home)
    with Store.open(db_path(home)) as s:
        settings = EvolutionSettings(**s.campaign(RUN)["settings"])
        obs = s.observations(RUN)
    assert settings.initial_design == "sweep"
    design = sweep_points(settings, search_space(settings))
    assert 0 < len(design) < n
    assert [o.params for o in obs[: len(design)]] == design
    assert settings.objective == "log-gain" and settings.objective_scale == settings.gain_scale


def test_a_run_whose_prior_defers_choices_sweeps_only_the_others(home):
    """The frozen prior's deferred hats and model are not in the run's first observations
    (its sweep), and status names them."""
    from core.evolution.prior import learn_prior
    from core.evolution.settings import EvolutionSettings, search_space, sweep_points

    hats = {"h1": {"fragment": "one"}, "h2": {"fragment": "two"}, "h3": {"fragment": "three"}}
    never = [({"operator": "hat", "hat": "h2"}, 0.0), ({"operator": "model", "model": "sim-1-lite"}, 0.0),
             ({"operator": "hat", "hat": "h1"}, -1.0)]
    prior = learn_prior({f"e-{k}": never for k in range(3)})
    defaults = {k: v for k, v in SMALL.items() if k != "initial_design"}
    with Store.open(db_path(home)) as s:
        create_run(s, ECHO, run_id=RUN, **defaults, hats=hats, prior=prior.model_dump(), max_observations=4)
    run(home)
    with Store.open(db_path(home)) as s:
        settings = EvolutionSettings(**s.campaign(RUN)["settings"])
        obs = s.observations(RUN)
        st = run_status(s, RUN)
    design = sweep_points(settings, search_space(settings))
    moves = sorted((p["operator"], p["hat"] if p["operator"] == "hat" else p["model"]) for p in design)
    assert moves == [("hat", "h1"), ("hat", "h3"), ("model", "sim-1-pro")]
    assert [o.params for o in obs[: len(design)]] == design
    assert st["prior"]["deferred"] == ["hat h2", "model sim-1-lite"]


def test_a_new_run_tells_the_optimizer_the_log_of_its_gains(home):
    """What status reports as "objective" is what the optimizer was told: -log(1 + gain /
    gain_scale) for an evaluated variant (the prime spec at seed 1 has gains and losses)."""
    with Store.open(db_path(home)) as s:
        create_run(s, PRIME, run_id=RUN, **{**SMALL, "seed": 1, "max_observations": 8})
    run(home)
    with Store.open(db_path(home)) as s:
        settings = s.campaign(RUN)["settings"]
        st = run_status(s, RUN)
    assert settings["objective"] == "log-gain"
    ran = [r for r in st["observations"] if r["rejected_reason"] is None]
    for r in ran:
        assert r["objective"] == round(-math.log1p(max(0.0, r["gain"]) / settings["gain_scale"]), 6)
    assert any(r["gain"] > 0 for r in ran) and any(r["gain"] < 0 for r in ran)


def test_log_gain_objective_keeps_the_order_of_gains_and_lifts_small_ones():
    from core.evolution.state import objective, rejected_objective

    gains = [0.0, 0.001, 0.002, 0.01, 0.1, 0.5]
    for scale in (None, 0.01):
        told = [objective(0.4 + g, 0.4, scale) for g in gains]
        assert told == sorted(told, reverse=True)  # a bigger gain is always better (smaller y)
        assert objective(0.3, 0.4, scale) == 0.0  # a loss is worth nothing, as no change
    # raw, a 0.002 gain is 1/50 of a 0.1 gain; on the log scale (0.01) more than 1/14
    assert objective(0.402, 0.4) / objective(0.5, 0.4) == pytest.approx(0.02)
    assert objective(0.402, 0.4, 0.01) / objective(0.5, 0.4, 0.01) > 1 / 14
    assert rejected_objective("duplicate: seen", 0.5, 0.4, scale=0.01) == objective(0.5, 0.4, 0.01)
    assert rejected_objective("grammar: FROZEN changed", None, 0.4, scale=0.01) > 0


def test_status_names_the_step_in_progress(home):
    """`current`: the base campaign before anything ran, the screening or full campaign of the
    variant whose observation is not written yet after a crash, nothing once the run is over."""
    make_run(home, max_observations=6, parallelism=1)
    with Store.open(db_path(home)) as s:
        cur = run_status(s, RUN)["current"]
    assert cur == {"phase": "base", "campaign_id": f"{RUN}-base", "done": 0, "planned": 4, "index": None,
                   "detail": "the base spec", "model": "sim-1"}
    # the base is 4 rig calls, the first variant's screening 2 more: crash inside that screen
    with pytest.raises(Crash):
        run(home, rig=_crashing_rig(home, {6}))
    with Store.open(db_path(home)) as s:
        st = run_status(s, RUN)
    cur = st["current"]
    assert st["observations"] == [] and cur["phase"] == "screen" and cur["index"] == 0
    assert cur["campaign_id"] == rec.screen_campaign_id(RUN, 0) and (cur["done"], cur["planned"]) == (1, 2)
    assert cur["detail"] and cur["model"]
    from core.evolution.describe import current_line

    assert current_line(cur).startswith("now: screening #0 ") and current_line(cur).endswith("1/2 generations judged")
    assert current_line(cur, alive=st["engine_alive"]).startswith("left off in: screening #0 ")
    assert run(home) == "completed"
    with Store.open(db_path(home)) as s:
        assert run_status(s, RUN)["current"] is None


# --- the prior learned from earlier runs in the home ---------------------------------------------

def test_a_new_run_starts_from_what_earlier_runs_in_the_home_learned(tmp_path, capsys):
    """A finished run's climbing rewrites become the next BO run's prior, frozen into its
    settings; a random-search run, ``learn=False`` and an empty home start cold; and a run
    with a prior resumes after crashes exactly like one that never crashed."""
    from core.evolution.cli import print_status
    from core.evolution.settings import EvolutionSettings

    home = tmp_path / "home"
    home.mkdir()
    earlier = dict(SMALL, seed=1, max_observations=12)
    with Store.open(db_path(home)) as s:
        create_run(s, PRIME, run_id="e-earlier", **earlier)
        assert EvolutionSettings(**s.campaign("e-earlier")["settings"]).prior is None  # nothing to learn from yet
    assert run_evolution(home, "e-earlier", runner_kw={"rig_fn": make_fake_rig(home)}) == "completed"
    later = dict(SMALL, seed=6, max_observations=8)  # a seed whose run climbs, trying a hat, on the sim landscape
    with Store.open(db_path(home)) as s:
        create_run(s, PRIME, run_id=RUN, **later)
        create_run(s, PRIME, run_id="e-cold", learn=False, **later)
        create_run(s, PRIME, run_id="e-random", **{**later, "optimizer": "random"})
        prior = EvolutionSettings(**s.campaign(RUN)["settings"]).prior
        assert EvolutionSettings(**s.campaign("e-cold")["settings"]).prior is None
        assert EvolutionSettings(**s.campaign("e-random")["settings"]).prior is None
        repeatable = [o for o in s.observations("e-earlier") if o.params["operator"] in ("rewrite", "crossover")]
    assert prior is not None and prior.runs == ["e-earlier"]
    assert 0 < prior.observations <= len(repeatable)  # the climbing part only
    assert any(k.startswith("rewrite ") for k in prior.by_operator())
    assert any(v < 0 for v in prior.by_operator().values())  # some rewrite gained

    # crash twice between an observation and its tell; the reference is the same run (same
    # frozen prior) in a home where nothing crashes
    ref = tmp_path / "ref"
    ref.mkdir()
    with Store.open(db_path(ref)) as s:
        create_run(s, PRIME, run_id=RUN, **later, prior=prior.model_dump())
    assert run(ref) == "completed"
    steps = {"n": 0}

    def on_step(obs):
        steps["n"] += 1
        if steps["n"] in (3, 6):
            raise Crash("after the observation, before tell")

    crashes = 0
    for _ in range(5):
        try:
            state = run(home, on_step=on_step)
            break
        except Crash:
            crashes += 1
    assert state == "completed" and crashes == 2
    assert fingerprint(home) == fingerprint(ref)
    with Store.open(db_path(home)) as s:
        st = run_status(s, RUN)
    assert st["prior"]["runs"] == ["e-earlier"] and st["prior"]["observations"] == prior.observations
    assert "prior" not in st["settings"]
    print_status(st)
    out = capsys.readouterr().out
    assert f"prior: {prior.observations} observations of 1 earlier run (" in out
    # the next run would learn from both finished runs, newest first; runs that never ran
    # (e-cold, e-random) teach nothing; max_runs keeps the newest
    from core.evolution.prior import home_prior

    kw = dict(provider="sim", objective="log-gain", gain_scale=prior_scale(home))
    with Store.open(db_path(home)) as s:
        assert home_prior(s, **kw).runs == [RUN, "e-earlier"]
        assert home_prior(s, **kw, max_runs=1).runs == [RUN]
        assert home_prior(s, **{**kw, "provider": "anthropic"}) is None
        assert home_prior(s, **{**kw, "gain_scale": 0.01}) is None
        # one-shot evidence: each finished run tried some hats while climbing; two runs are
        # fewer than MIN_DEFER_RUNS, so nothing is deferred yet; model choices count only
        # from runs that started from the same model
        both = home_prior(s, **kw, model="sim-1")
        assert both.one_shot and both.deferred_names() == []
        assert all(e.tried <= 2 for e in both.one_shot)
        assert all(e.operator != "model" for e in home_prior(s, **kw, model="sim-1-pro").one_shot)


def prior_scale(home) -> float:
    with Store.open(db_path(home)) as s:
        return s.campaign(RUN)["settings"]["gain_scale"]

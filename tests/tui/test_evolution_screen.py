"""Pilot tests of the Evolution screen on a home with a finished evolution run (fake rig)."""

from __future__ import annotations

import shutil

import pytest
from textual.widgets import DataTable, Static

from cambrian_tui.app import CambrianApp
from cambrian_tui.nav import target_of_hit
from cambrian_tui.screens.evolution import EvolutionScreen
from cambrian_tui.screens.main import MainScreen
from cambrian_tui.widgets.charts import PlotextPlot
from cambrian_tui.widgets.side_diff import SideBySideDiff
from core.evolution.runs import create_run, run_status
from core.evolution.loop import run_evolution
from core.home import db_path
from core.store import Store
from tests.evolution.conftest import ECHO, make_fake_rig
from tests.tui.conftest import SIZE, settle

pytestmark = pytest.mark.timeout(180)
RUN = "e-tui-run"


@pytest.fixture(scope="module")
def _evolved(tmp_path_factory):
    home = tmp_path_factory.mktemp("evo-tui") / "home"
    home.mkdir()
    with Store.open(db_path(home)) as s:
        create_run(s, ECHO, run_id=RUN, budget_generations=200, seed=3, screen_generations=2,
                   full_generations=4, parallelism=2, backend="none", n_initial_points=3, max_observations=8)
    assert run_evolution(home, RUN, runner_kw={"rig_fn": make_fake_rig(home)}) == "completed"
    with Store.open(db_path(home)) as s:
        status = run_status(s, RUN)
    return home, status


@pytest.fixture
def evolved(tmp_path, _evolved):
    src, status = _evolved
    home = tmp_path / "home"
    shutil.copytree(src, home)
    return home, status


def make_app(home, spec_dir, **kw) -> CambrianApp:
    kw.setdefault("live", False)
    return CambrianApp(home, spec_dir=spec_dir, theme="textual-dark", show_home=False, **kw)


def cells(table: DataTable, row: int) -> list[str]:
    return [str(c) for c in table.get_row_at(row)]


async def open_evolution(pilot) -> EvolutionScreen:
    await settle(pilot)
    await pilot.press("f5")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, EvolutionScreen)
    return screen


async def test_shows_runs_observations_best_and_operators(evolved, empty_spec_dir):
    home, status = evolved
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evolution(pilot)
        runs = screen.query_one("#evo-runs", DataTable)
        assert runs.row_count == 1 and cells(runs, 0)[0] == RUN
        obs = screen.query_one("#evo-obs", DataTable)
        assert obs.row_count == len(status["observations"]) == 8
        for r in status["observations"]:
            row = cells(obs, r["index"])
            assert row[0] == str(r["index"]) and row[6] == str(r["generations"])
            if r["accepted"]:
                assert row[7].startswith("ACCEPTED")
            elif r["rejected_reason"]:
                assert row[7] == r["rejected_reason"] and row[3] == "-"
        # the highlighted row's whole outcome is on the table's bottom border (the result
        # column is cut on narrow terminals), and follows the cursor
        from core.evolution.describe import outcome_label

        obs.focus()
        for r in (status["observations"][0], status["observations"][-1]):
            obs.move_cursor(row=r["index"], animate=False)
            await pilot.pause()
            assert str(obs.border_subtitle).startswith(f"#{r['index']} {outcome_label(r)}")
        headline = str(screen.query_one("#evo-headline", Static).render())
        assert RUN in headline and "SIMULATED" in headline and "best" in headline
        ops = screen.query_one("#evo-ops", DataTable)
        assert {cells(ops, i)[0] for i in range(ops.row_count)} == set(status["operators"])
        # the best-so-far chart has the incumbent line, its interval and the variants
        plot = screen.query_one("#evo-chart", PlotextPlot)
        assert plot.version >= 1
        assert len(status["trajectory"]) == 9


async def test_the_headline_says_what_a_run_learned_from_earlier_runs(evolved, empty_spec_dir):
    """A run created with a prior names it (observations, runs, per-operator means); a cold
    start (the fixture's run) shows no prior line."""
    from core.evolution.prior import learn_prior

    home, _ = evolved
    rw = lambda intent: {"operator": "rewrite", "intent": intent, "section": "Behaviour"}  # noqa: E731
    prior = learn_prior({RUN: [(rw("add"), -1.5), (rw("remove"), 0.0), (rw("add"), -0.4)]})
    # three runs that tried the minimalist hat while climbing, never with a gain
    hat = lambda name: {"operator": "hat", "hat": name}  # noqa: E731
    deferring = learn_prior({f"e-{k}": [(hat("minimalist"), 0.0), (hat("operator"), -1.0)] for k in range(3)})
    with Store.open(db_path(home)) as s:
        create_run(s, ECHO, run_id="e-tui-warm", budget_generations=20, backend="none", prior=prior.model_dump())
        create_run(s, ECHO, run_id="e-tui-defer", budget_generations=20, backend="none",
                   prior=deferring.model_dump())
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evolution(pilot)
        for rid, shown in (("e-tui-warm", True), (RUN, False), ("e-tui-defer", False)):
            screen.select_run(rid)
            await settle(pilot, 2)
            assert screen.status is not None and screen.status.id == rid
            headline = str(screen.query_one("#evo-headline", Static).render())
            assert ("prior: 3 observations of 1 earlier run (rewrite add -0.47, rewrite remove +0.00)"
                    in headline) is shown, headline
            assert ("not swept (never paid): hat minimalist" in headline) is (rid == "e-tui-defer"), headline


async def test_jump_from_an_observation_to_its_campaign(evolved, empty_spec_dir):
    home, status = evolved
    target = next(r for r in status["observations"] if r["campaign_id"])
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evolution(pilot)
        obs = screen.query_one("#evo-obs", DataTable)
        obs.focus()
        obs.move_cursor(row=target["index"], animate=False)
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        assert main.campaign_id == target["campaign_id"]
        # back, and to its screening campaign with `s`
        await pilot.press("f5")
        await settle(pilot)
        screen = app.screen
        screen.query_one("#evo-obs", DataTable).move_cursor(row=target["index"], animate=False)
        await pilot.pause()
        await pilot.press("s")
        await settle(pilot)
        assert app.screen.campaign_id == target["screen_campaign_id"]


async def test_spec_diff_against_the_parent(evolved, empty_spec_dir):
    home, status = evolved
    target = next(r for r in status["observations"]
                  if r["spec_hash"] and r["spec_hash"] != r["parent_spec_hash"])
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evolution(pilot)
        obs = screen.query_one("#evo-obs", DataTable)
        obs.focus()
        obs.move_cursor(row=target["index"], animate=False)
        await pilot.pause()
        assert not screen.query_one("#evo-diff-pane").display
        await pilot.press("d")
        await settle(pilot)
        assert screen.query_one("#evo-diff-pane").display
        diff = screen.query_one(SideBySideDiff)
        assert diff.model is not None and diff.model.added + diff.model.removed > 0
        assert diff.model.frozen_touched == []
        header = str(screen.query_one("#evo-diff-header", Static).render())
        assert f"#{target['index']}" in header and "FROZEN intact" in header
        assert f"parent {target['parent_spec_hash'].removeprefix('sha256:')[:8]}" in header  # hash first
        # moving the cursor follows with the diff
        other = next(r for r in status["observations"] if r["index"] != target["index"])
        obs.move_cursor(row=other["index"], animate=False)
        await settle(pilot)
        assert screen.diff_index == other["index"]
        await pilot.press("d")
        assert not screen.query_one("#evo-diff-pane").display
        # `o` opens the variant in the Specs screen
        obs.move_cursor(row=target["index"], animate=False)
        await pilot.pause()
        await pilot.press("o")
        await settle(pilot)
        assert app.current_mode == "spec"


async def test_number_keys_focus_the_panels(evolved, empty_spec_dir):
    home, _ = evolved
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evolution(pilot)
        for key, wid in (("1", "evo-runs"), ("2", "evo-obs"), ("1", "evo-runs")):
            await pilot.press(key)
            await pilot.pause()
            assert app.focused is not None and app.focused.id == wid, key
        await pilot.press("2", "d")  # the diff pane shows the highlighted observation
        await settle(pilot)
        await pilot.press("3")
        await pilot.pause()
        assert app.focused is screen.query_one("#evo-diff")


async def test_control_keys_follow_the_run_state(evolved, empty_spec_dir):
    home, _ = evolved
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evolution(pilot)
        # a completed run with no process: nothing to pause, resume or abort
        assert screen.check_action("control", ("pause",)) is False
        assert screen.check_action("control", ("resume",)) is False
        assert screen.check_action("control", ("abort",)) is False


async def test_empty_home_says_how_to_start(tmp_path, empty_spec_dir):
    home = tmp_path / "empty"
    home.mkdir()
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evolution(pilot)
        assert screen.query_one("#evo-runs", DataTable).row_count == 0
        assert "cambrian evolve start" in str(screen.query_one("#evo-headline", Static).render())


async def test_new_run_form_validates_then_starts_a_real_detached_run(evolved, empty_spec_dir):
    """`n` opens the form with the selected run's base spec; a bad field is refused with a
    message and nothing stored; a good form starts a real detached run (sim, backend none)
    that the screen then selects."""
    import asyncio
    import time

    from textual.widgets import Select

    from cambrian_tui.screens.new_evolution import NewEvolutionScreen
    from core.spec import spec_hash

    home, status = evolved
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evolution(pilot)
        await pilot.press("n")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, NewEvolutionScreen)
        assert form.query_one("#nc-spec", Select).value == status["base"]["spec_hash"] == spec_hash(ECHO)
        # the acceptance rule is stated where the campaign sizes are chosen, with the run's threshold
        note = str(form.query_one("#nc-note", Static).render())
        assert f"P(better) ≥ {status['settings']['accept_probability']:.2f}" in note and "Full gens" in note
        form.query_one("#nc-screen_generations").value = "0"
        await pilot.press("ctrl+s")
        await settle(pilot, 1)
        assert "Screen gens: must be at least 1" in str(form.query_one("#nc-error", Static).render())
        assert form.query_one("#nc-screen_generations").border_subtitle == "must be at least 1"
        with Store.open(db_path(home)) as s:
            assert [r["id"] for r in s.campaigns(kind="evolution")] == [RUN]
        for key, value in (("screen_generations", "1"), ("full_generations", "2"), ("budget_generations", "6"),
                           ("max_observations", "2"), ("seed", "11"), ("models", "sim-1, sim-1-pro")):
            form.query_one(f"#nc-{key}").value = value
        form.query_one("#nc-backend", Select).value = "none"
        form.query_one("#nc-optimizer", Select).value = "random"
        await pilot.press("ctrl+s")
        deadline = time.monotonic() + 60
        while isinstance(app.screen, NewEvolutionScreen) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert app.screen is screen, str(form.query_one("#nc-error", Static).render())
        with Store.open(db_path(home)) as s:
            new = [r for r in s.campaigns(kind="evolution") if r["id"] != RUN]
        assert len(new) == 1
        rid = new[0]["id"]
        st = new[0]["settings"]
        assert (st["seed"], st["screen_generations"], st["full_generations"], st["budget_generations"],
                st["max_observations"], st["backend"], st["optimizer"], st["models"]) == (
            11, 1, 2, 6, 2, "none", "random", ["sim-1", "sim-1-pro"])
        while time.monotonic() < deadline:  # the detached process runs to its end on its own
            with Store.open(db_path(home)) as s:
                if run_status(s, rid)["state"] == "completed":
                    break
            await asyncio.sleep(0.3)
        screen.reload()
        await settle(pilot, 2)
        assert screen.run_id == rid
        assert cells(screen.query_one("#evo-runs", DataTable), 0)[0] == rid
        assert screen.status is not None and screen.status.state == "completed"
        assert screen.query_one("#evo-obs", DataTable).row_count == 2


async def test_a_killed_process_is_noticed_without_a_database_write(tmp_path, empty_spec_dir):
    """A run held by a process that is then SIGKILLed: the live screen drops "running●" for
    "stalled" by itself (nothing writes to the database any more), says so, and offers resume."""
    import asyncio
    import subprocess
    import time

    home = tmp_path / "home"
    home.mkdir()
    holder = subprocess.Popen(["sleep", "600"])
    try:
        with Store.open(db_path(home)) as s:
            create_run(s, ECHO, run_id=RUN, budget_generations=20, backend="none")
            s.set_campaign_state(RUN, "running")
            assert s.acquire_lease(RUN, pid=holder.pid)
        app = make_app(home, empty_spec_dir, live=True)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_evolution(pilot)
            runs = screen.query_one("#evo-runs", DataTable)
            deadline = time.monotonic() + 20
            while cells(runs, 0)[1] != "running●" and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert cells(runs, 0)[1] == "running●"
            assert screen.check_action("control", ("pause",)) and not screen.check_action("control", ("resume",))
            holder.kill()
            holder.wait(30)  # SIGKILLed: bounded anyway, never unbounded
            deadline = time.monotonic() + 20
            while cells(runs, 0)[1] != "stalled" and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert cells(runs, 0)[1] == "stalled"
            await settle(pilot, 1)
            assert "no process runs it" in str(screen.query_one("#evo-headline", Static).render())
            assert screen.check_action("control", ("resume",)) and not screen.check_action("control", ("pause",))
    finally:
        holder.kill()
        holder.wait(30)  # SIGKILLed: bounded anyway, never unbounded


async def test_search_finds_a_run_and_opens_it_on_the_evolution_screen(evolved, empty_spec_dir):
    """Runs are not campaigns: the campaign list leaves them out, search names them as
    evolution runs, and picking one opens the Evolution screen on it."""
    home, _ = evolved
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        assert RUN not in [c.id for c in main.campaigns]
        assert f"{RUN}-base" in [c.id for c in main.campaigns]  # its campaigns are campaigns
        hits = app.cam.reads.search(RUN[2:])
        run_hits = [h for h in hits if h.key == RUN]
        assert [h.kind for h in run_hits] == ["evolution"] and "evolution run" in run_hits[0].detail
        app.navigate(target_of_hit(run_hits[0].kind, run_hits[0].key))
        await settle(pilot, 2)
        assert isinstance(app.screen, EvolutionScreen) and app.screen.run_id == RUN
        assert app.screen.status is not None and app.screen.status.id == RUN


async def test_export_best_writes_the_incumbent_and_its_metadata(evolved, empty_spec_dir):
    import json

    from core.spec import spec_hash

    home, status = evolved
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        await open_evolution(pilot)
        await pilot.press("x")
        await settle(pilot, 2)
    spec = home / "exports" / f"{RUN}-best.md"
    meta = json.loads(spec.with_suffix(".json").read_text())
    assert spec_hash(spec.read_bytes()) == status["best"]["spec_hash"] == meta["spec_hash"]
    assert meta["run"] == RUN and meta["model"] == status["best"]["model"]


async def test_an_evolution_campaign_is_not_controlled_from_the_campaign_screen(evolved, empty_spec_dir):
    """A stalled screening campaign of a run: `r` on the campaign screen would run it outside
    its evolution, so pause/resume/abort are off there (the run resumes it); a plain campaign
    in the same state can be resumed."""
    from core.engine.launch import create_campaign
    from core.evolution import records as rec
    from core.models import CampaignSettings

    home, status = evolved
    child = next(r["screen_campaign_id"] for r in status["observations"] if r["screen_campaign_id"])
    with Store.open(db_path(home)) as s:
        s.set_campaign_state(child, "running")
        create_campaign(s, CampaignSettings(spec_hash="sha256:" + "0" * 64, generations=2, provider="sim",
                                            model="sim-1", seed=1, backend="none").model_dump(),
                        ECHO, campaign_id="c-plain")
        s.set_campaign_state("c-plain", "running")
        assert s.campaign(child)["kind"] in rec.CHILD_KINDS
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        main = app.screen
        for cid, expected in ((child, False), ("c-plain", True)):
            main.select_campaign(cid)
            await settle(pilot)
            assert main.campaign_id == cid
            assert bool(main.check_action("resume", ())) is expected, cid
            if cid == child:
                assert not main.check_action("pause", ()) and not main.check_action("abort", ())


async def test_every_declared_key_on_every_screen_leaves_the_app_running(evolved, empty_spec_dir):
    """Each key a screen or its widgets declare (what F1 lists), pressed on each screen of a
    home with campaigns and an evolution run, then escape to close whatever it opened: no
    key may stop the app (the Evolution screen's number keys once did)."""
    from cambrian_tui.screens import MODE_REGISTRY
    from cambrian_tui.screens.help import own_bindings

    home, _ = evolved
    app = make_app(home, empty_spec_dir)
    skip = {"q", "ctrl+c", "ctrl+q"}  # quitting is the one key meant to stop it
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pressed = 0
        for mode in MODE_REGISTRY.values():
            await pilot.press(mode.key)
            await settle(pilot)
            screen = app.screen
            nodes = [screen] + [w for w in screen.walk_children() if own_bindings(w)]
            keys = {k.strip() for n in nodes for b in own_bindings(n) for k in b.key.split(",")}
            for key in sorted(keys - skip):
                await pilot.press(key)
                await settle(pilot, 2)
                while app.screen is not screen and len(app.screen_stack) > 1 and app.current_mode == mode.name:
                    await pilot.press("escape")
                    await settle(pilot, 2)
                assert app.is_running, f"{mode.name}: {key!r} stopped the app"
                pressed += 1
                if app.current_mode != mode.name:  # a key that jumps to another screen
                    await pilot.press(mode.key)
                    await settle(pilot, 2)
        assert pressed > 40


def test_a_run_that_is_still_starting_is_not_called_stalled():
    from datetime import datetime, timedelta, timezone

    from cambrian_tui.screens.evolution import SPAWN_GRACE_S, _orphaned, _state_cell

    def ago(s: float) -> str:
        return (datetime.now(timezone.utc) - timedelta(seconds=s)).isoformat().replace("+00:00", "Z")

    assert _state_cell("pending", False, ago(1)) == "pending"  # its process is taking the lease
    assert _state_cell("pending", False, ago(SPAWN_GRACE_S + 5)) == "stalled"  # it never started
    assert _state_cell("running", False, ago(1)) == "stalled"  # a running run without a process
    assert _state_cell("running", True, ago(1)) == "running●"
    assert not _orphaned("completed", False, ago(99))
    assert _orphaned("pending", False, None)  # no creation time: do not hide a dead run


def test_the_form_chooses_between_a_learning_and_a_cold_bo():
    from cambrian_tui.screens.new_evolution import optimizer_choice

    for choice, optimizer, learn in (("bo", "bo", True), ("bo-cold", "bo", False), ("random", "random", False)):
        assert optimizer_choice(choice) == (optimizer, learn), choice

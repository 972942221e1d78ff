"""Reproduction in the TUI (issue 23): a campaign's tree holds the generations its offspring
bred, under their breeders, with their own mark; breeders show their fertility; the
inspector's Reproduction tab shows the request, the gateway's calls and the bred verdict.

The store is written with the calls the engine makes (create_generation with bred_by,
record_report, record_reproduction); no engine, no Docker."""

from __future__ import annotations

import contextlib

from pathlib import Path

import pytest
from textual.widgets import Static, TabbedContent

from cambrian_tui.screens.inspector import InspectorScreen
from cambrian_tui.widgets.lineage_tree import BRED_GLYPH, GenerationTree
from core.app.reads import Reader
from core.home import db_path
from core.store import Store
from tests.tui.conftest import settle
from tests.tui.pilot import SIZES, make_app, plain, until
from tests.tui.seed import SPEC_V1, _report

pytestmark = pytest.mark.timeout(180)

CID = "c-breed"


def _gateway(calls: int, cut: str | None = None) -> dict:
    return {"calls": [{"index": i + 1, "asked_model": "claude-sonnet-4-5", "model": "sim-1", "stream": True,
                       "status": 200, "input_tokens": 900 + i, "output_tokens": 4000 + i, "ms": 1200,
                       "error": None, "forwarded": True} for i in range(calls)],
            "cut_off": cut, "tokens": calls * 4900}


def _judged(st: Store, n: int, broken: str | None) -> None:
    """As the engine does: the report (-> tested), then the outcome."""
    st.record_report(n, _report(n, broken))
    if broken:
        st.set_outcome(n, "failed", f"{broken} stage failed", failure_stage=broken)
    else:
        st.set_outcome(n, "promoted", "viable")


def breeding_home(root: Path) -> dict:
    """#0 viable and fertile (bred #3, viable); #1 viable, infertile (its bred #4 failed
    at test); #2 viable, infertile before anything was bred (answered 422)."""
    home = root / "home"
    with Store.open(db_path(home)) as st:
        spec = st.add_spec(SPEC_V1, label="tally").hash
        st.create_campaign(CID, spec, {"spec_hash": spec, "generations": 3, "parallelism": 1,
                                       "provider": "sim", "model": "sim-1", "reproduction": "every"})
        for _ in range(3):
            g = st.create_generation(spec_hash=spec, campaign_id=CID)
            _judged(st, g.number, None)
        bred_ok = st.create_generation(spec_hash=spec, campaign_id=None, parent=0, bred_by=0)
        _judged(st, bred_ok.number, None)
        bred_bad = st.create_generation(spec_hash=spec, campaign_id=None, parent=1, bred_by=1)
        _judged(st, bred_bad.number, "test")
        req = {"path": "/generate", "generation": 0, "status": 200, "ms": 5300, "error": None, "why": None,
               "files": ["prime/__init__.py", "manifest.json"], "response": {"generation": 0}}
        st.record_reproduction(0, campaign_id=CID, status="fertile", stage=None, reason=None,
                               offspring=bred_ok.number, request=req, gateway=_gateway(1), tokens=4900,
                               cost_usd=0.0, rig_ms=9100)
        st.record_reproduction(1, campaign_id=CID, status="infertile", stage="offspring:test",
                               reason="test stage failed", offspring=bred_bad.number, request=req,
                               gateway=_gateway(2), tokens=9800, cost_usd=0.0, rig_ms=11200)
        refused = dict(req, status=422, files=[], why="/generate answered 422: no-files at line 1")
        st.record_reproduction(2, campaign_id=CID, status="infertile", stage="reproduce",
                               reason="/generate answered 422: no-files at line 1", offspring=None,
                               request=refused, gateway=_gateway(2), tokens=9800, cost_usd=0.0, rig_ms=4000)
    return {"home": home, "bred_ok": bred_ok.number, "bred_bad": bred_bad.number}


@contextlib.asynccontextmanager
async def campaign_shown(tmp_path, spec_dir, size):
    """The breeding home in the app, its campaign selected: (app, pilot, facts)."""
    facts = breeding_home(tmp_path)
    app = make_app(facts["home"], spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        app.screen.select_campaign(CID)
        await settle(pilot)
        yield app, pilot, facts


async def open_campaign_form(app, pilot):
    from cambrian_tui.screens.new_campaign import NewCampaignScreen

    await settle(pilot)
    await pilot.press("n")
    await until(pilot, lambda: isinstance(app.screen, NewCampaignScreen) and app.screen.specs_loaded, "the form")
    return app.screen


def test_the_campaign_lineage_holds_its_bred_generations_outside_its_counts(tmp_path):
    facts = breeding_home(tmp_path)
    m = Reader(facts["home"]).lineage(CID)
    assert m.numbers == [0, 1, 2, facts["bred_ok"], facts["bred_bad"]]
    assert m.bred == {facts["bred_ok"]: 0, facts["bred_bad"]: 1}
    assert m.fertility == {0: "fertile", 1: "infertile", 2: "infertile"}
    # bred generations nest under their breeders and never continue the line
    assert facts["bred_ok"] in m.offspring(0) and facts["bred_bad"] in m.offspring(1)
    assert facts["bred_ok"] not in m.spine and facts["bred_bad"] not in m.spine
    assert m.counts["promoted"] == 3 and m.counts["failed"] == 0  # the campaign's own
    assert facts["bred_bad"] not in m.failed


def test_a_new_bred_generation_changes_the_campaign_signature(tmp_path):
    facts = breeding_home(tmp_path)
    reads = Reader(facts["home"])
    before = reads.generation_signature(CID)
    with Store.open(db_path(facts["home"])) as st:
        st.create_generation(spec_hash=st.generation(0).spec_hash, campaign_id=None, parent=2, bred_by=2)
    assert reads.generation_signature(CID) != before


@pytest.mark.parametrize("size", SIZES)
async def test_tree_marks_bred_generations_and_fertility(tmp_path, empty_spec_dir, size):
    async with campaign_shown(tmp_path, empty_spec_dir, size) as (app, pilot, facts):
        tree = app.screen.query_one(GenerationTree)
        await until(pilot, lambda: tree.model is not None and tree.model.campaign_id == CID, "the campaign's tree")
        assert tree.reveal(facts["bred_bad"])
        await settle(pilot)
        labels = {n: tree.gen_label(n).plain for n in tree.model.numbers}
        assert f"{BRED_GLYPH}bred" in labels[facts["bred_bad"]]
        assert "failed@test" in labels[facts["bred_bad"]]
        assert f"{BRED_GLYPH}fertile" in labels[0]
        assert f"{BRED_GLYPH}infertile" in labels[1] and f"{BRED_GLYPH}infertile" in labels[2]
        assert BRED_GLYPH not in labels[facts["bred_ok"]].replace(f"{BRED_GLYPH}bred", "")
        assert tree.selected_generation == facts["bred_bad"]
        assert str(tree.border_title) == "Generations 3 ✓3 +2✿"  # its own count; what they bred after
        assert f"{BRED_GLYPH}bred" in tree.cursor_node.label.plain  # the node on screen, not only the model


@pytest.mark.parametrize("size", SIZES)
async def test_inspector_reproduction_tab(tmp_path, empty_spec_dir, size):
    async with campaign_shown(tmp_path, empty_spec_dir, size) as (app, pilot, facts):
        app.screen.open_inspector(1)
        await until(pilot, lambda: isinstance(app.screen, InspectorScreen) and app.screen.detail is not None,
                    "the inspector")
        insp = app.screen
        await pilot.press("7")
        await settle(pilot)
        assert insp.query_one("#insp-tabs", TabbedContent).active == "tab-repro"
        text = plain(insp.query_one("#repro", Static))
        assert "Fertility test of #1: INFERTILE" in text
        assert "offspring:test" in text and "POST /generate" in text
        assert "Calls through the LLM gateway: 2" in text
        assert f"Bred offspring: #{facts['bred_bad']}  failed@test" in text
        # b opens what it bred; that one says who bred it; u goes back to the breeder
        await pilot.press("b")
        await until(pilot, lambda: insp.detail is not None and insp.detail.number == facts["bred_bad"],
                    "the bred generation")
        await settle(pilot)
        text = plain(insp.query_one("#repro", Static))
        assert f"was bred by the running offspring #1" in text
        await pilot.press("u")
        await until(pilot, lambda: insp.detail is not None and insp.detail.number == 1, "the breeder")
        # a breeder that wrote nothing judged: b says so
        insp.load(2)
        await until(pilot, lambda: insp.detail is not None and insp.detail.number == 2, "#2")
        await settle(pilot)
        text = plain(insp.query_one("#repro", Static))
        assert "answer  422" in text and "Bred offspring: none" in text
        await pilot.press("b")
        await settle(pilot)
        assert insp.detail.number == 2


def test_summary_counts_fertility_like_campaign_status(tmp_path):
    from core.engine.summary import fertility

    facts = breeding_home(tmp_path)
    s = Reader(facts["home"]).summary(CID)
    with Store.open(db_path(facts["home"])) as st:
        status = fertility(st, CID)
    assert (s.fertile, s.fertility_tested) == (status["fertile"], status["fertile"] + status["infertile"]) == (1, 3)
    assert [round(p.rate, 3) for p in s.fertility_trend] == [1.0, 0.5, 0.333]
    assert s.viable == 3  # the campaign's own; the bred ones are not in its count


@pytest.mark.parametrize("size", SIZES)
async def test_fitness_pane_shows_fertility(tmp_path, empty_spec_dir, size):
    from cambrian_tui.widgets.charts import FitnessCharts

    async with campaign_shown(tmp_path, empty_spec_dir, size) as (app, pilot, facts):
        charts = app.screen.query_one(FitnessCharts)
        await until(pilot, lambda: charts.summary is not None and charts.summary.campaign_id == CID, "the summary")
        assert "fertility 1/3" in plain(charts.query_one("#headline", Static))


# --- the new-campaign form ------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_the_form_refuses_reproduction_for_a_spec_that_cannot_breed_at_its_field(tmp_path, size):
    from textual.widgets import Select

    from cambrian_tui.screens.new_campaign import NewCampaignScreen
    from core.home import REPO_ROOT

    specs = tmp_path / "spec"
    specs.mkdir()
    (specs / "echo.md").write_bytes((REPO_ROOT / "spec" / "echo.md").read_bytes())
    home = tmp_path / "home"
    app = make_app(home, specs)
    async with app.run_test(size=size) as pilot:
        form = await open_campaign_form(app, pilot)
        form.query_one("#nc-provider", Select).value = "sim"
        form.query_one("#nc-backend", Select).value = "none"
        form.query_one("#nc-reproduction", Select).value = "every"
        await settle(pilot, 1)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "reproduction" in form.errors, "the refusal")
        assert "declares no `reproduce`" in form.errors["reproduction"]
        assert "declares no `reproduce`" in plain(form.query_one("#nc-error", Static))
        assert isinstance(app.screen, NewCampaignScreen)
        assert Reader(home).campaigns() == []  # nothing stored


@pytest.mark.parametrize("size", SIZES)
async def test_the_form_sends_reproduction_and_the_verification_policy(tmp_path, monkeypatch, size):
    from textual.widgets import Input, Select

    from core.home import REPO_ROOT
    from tests.tui.test_defects import refuse_starts

    seen = refuse_starts(monkeypatch)
    app = make_app(tmp_path / "home", tmp_path)
    async with app.run_test(size=size) as pilot:
        form = await open_campaign_form(app, pilot)
        form.query_one("#nc-spec_path", Input).value = str(REPO_ROOT / "spec" / "prime.md")
        form.query_one("#nc-reproduction", Select).value = "sample"
        form.query_one("#nc-sealed", Select).value = "score"
        form.query_one("#nc-examiner", Select).value = "gate"
        form.query_one("#nc-redteam", Select).value = "every"
        await settle(pilot, 1)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: bool(seen), "the start command")
        cmd = seen[-1]
        assert (cmd.reproduction, cmd.sealed_vectors, cmd.examiner, cmd.redteam) == ("sample", "score", "gate", "every")

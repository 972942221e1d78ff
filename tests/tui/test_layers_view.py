"""The verification layers in the TUI (issue 24): the inspector's Layers tab lists every
hidden probe that judged a generation (sealed vectors, the examiner's probes, the red team's)
with expected vs actual; a suspect examiner probe is marked and dismissed from there with a
reason; the fitness pane charts the layers and names the suspects.

The examiner's probe set is made by the real service with the sim's examiner (one ledgered
`examine` call); the reports are written with the engine's calls (record_report,
set_outcome) in the shape the rig gives them — no engine, no Docker (the Docker campaigns
in tests/engine/test_examiner_campaign.py and test_redteam_campaign.py check the same views
on real rig reports)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from textual.widgets import DataTable, Input, Static, TabbedContent

from cambrian_tui.screens.dialogs import TextDialog
from cambrian_tui.screens.inspector import InspectorScreen
from core.app.reads import Reader
from core.engine.launch import create_campaign
from core.examiner import records
from core.examiner.service import ensure_probes
from core.home import REPO_ROOT, db_path
from core.llm.ledger import LedgeredProvider
from core.llm.sim import SimProvider
from core.models import CampaignSettings, Outcome
from core.spec import parse_spec
from core.store import Store
from tests.tui.conftest import settle
from tests.tui.pilot import SIZES, make_app, plain, until

pytestmark = pytest.mark.timeout(180)

ECHO = (REPO_ROOT / "spec" / "echo.md").read_text(encoding="utf-8")
WRONG = "echo-wrong-method-405"  # the sim-1 examiner expects 404 here (core/llm/sim/README.md)


def _report(n: int, examiner: list[dict], sealed: list[dict], redteam: dict | None = None) -> dict:
    def rate(rs):
        return round(sum(r["passed"] for r in rs) / len(rs), 4)

    visible = [{"name": "v1", "passed": True, "status": 200, "error": None, "ms": 3, "kind": "vector"}]
    rep = {"generation": n, "status": "viable", "failure_stage": "none",
           "checks": {"health": {"passed": True, "duration_ms": 40, "vectors": visible, "contracts": [],
                                 "sealed": sealed, "examiner": examiner}},
           "fitness": {"vector_pass_rate": 1.0, "vectors_total": 1, "sealed_pass_rate": rate(sealed),
                       "sealed_total": len(sealed), "examiner_pass_rate": rate(examiner),
                       "examiner_total": len(examiner)},
           "completed_at": "2026-12-06T10:00:00+00:00",
           "layers": {"sealed": {"gate": True, "probes": len(sealed)}, "examiner": {"gate": False,
                                                                                   "probes": len(examiner)}},
           "examiner_set": {"model": "sim-1", "probes": len(examiner), "gate": False},
           "verification": {"sealed": "gate", "examiner": "score", "redteam": "every", "redteam_threshold": None}}
    if redteam is not None:
        rep["redteam"] = redteam
        rep["fitness"]["redteam_score"] = redteam["score"]
    return rep


def layers_home(root) -> dict:
    """An echo campaign of 5 viable generations: the sim examiner's wrong probe fails on all
    of them (suspect); #3 also misses a sealed vector; #4 was red-teamed (one confirmed)."""
    home = root / "home"
    home.mkdir()
    with Store.open(db_path(home)) as s:
        cid = create_campaign(s, CampaignSettings(spec_hash="-", generations=5, provider="sim", model="sim-1",
                                                  examiner="score", redteam="every"), ECHO)
        spec_hash = s.campaign(cid)["spec_hash"]
        ps = asyncio.run(ensure_probes(s, ECHO, spec_hash, LedgeredProvider(SimProvider(), s, campaign_id=cid),
                                       "sim-1", campaign_id=cid))
        sealed_names = [v.name for v in parse_spec(ECHO).sealed]
        numbers = []
        for i in range(5):
            g = s.create_generation(spec_hash=spec_hash, campaign_id=cid, parent=None, attempt=0)
            examiner = [{"name": p["name"], "passed": p["name"] != WRONG, "kind": "examiner", "ms": 2,
                         "status": 405 if p["name"] == WRONG else p["expect"]["status"],
                         "error": "status 405, expected 404" if p["name"] == WRONG else None}
                        for p in ps.probes]
            sealed = [{"name": name, "passed": not (i == 3 and j == 0), "kind": "sealed", "ms": 2,
                       "status": 200, "error": "body_contains: key 'reversed'" if i == 3 and j == 0 else None}
                      for j, name in enumerate(sealed_names)]
            red = None
            if i == 4:
                red = {"proposed": 2, "confirmed": 1, "score": 0.5, "unavailable": False, "why": None,
                       "probes": [
                           {"name": "count-grows", "method": "GET", "path": "/stats", "body": None,
                            "expected": {"status": 200, "body_contains": {"requests": 2}},
                            "actual": {"status": 200, "body_excerpt": '{"requests": 0}',
                                       "error": "body_contains: requests 0 != 2"},
                            "passed": False, "relies_on": "GET /stats counts every request"},
                           {"name": "health-ok", "method": "GET", "path": "/health", "body": None,
                            "expected": {"status": 200}, "actual": {"status": 200}, "passed": True,
                            "relies_on": "GET /health answers 200"}]}
            with s.write():
                s.record_report(g.number, _report(g.number, examiner, sealed, red))
                s.set_outcome(g.number, Outcome.PROMOTED, "viable")
            numbers.append(g.number)
    return {"home": home, "cid": cid, "spec_hash": spec_hash, "numbers": numbers, "sealed": sealed_names,
            "probes": [p["name"] for p in ps.probes]}


def test_the_detail_and_summary_carry_every_layer(tmp_path):
    f = layers_home(tmp_path)
    reads = Reader(f["home"])
    d = reads.generation_detail(f["numbers"][3])
    assert [(v.kind, v.mode) for v in d.layers] == [("sealed", "gate"), ("examiner", "score")]
    sealed, exam = d.layers
    assert (sealed.passed, sealed.total) == (len(f["sealed"]) - 1, len(f["sealed"]))
    miss = next(p for p in sealed.probes if not p.passed)
    spec_vector = parse_spec(ECHO).sealed[0].to_wire()
    assert miss.name == spec_vector["name"] and miss.request.startswith(spec_vector["method"])
    assert miss.expected.startswith(str(spec_vector["expect"]["status"]))  # the spec's own expectation
    wrong = next(p for p in exam.probes if p.name == WRONG)
    assert wrong.suspect and not wrong.dismissed and "SUSPECT — failed 5/5" in wrong.note
    assert (wrong.expected, wrong.actual) == ("404", "405")
    red = {v.kind: v for v in reads.generation_detail(f["numbers"][4]).layers}["redteam"]
    assert red.note.startswith("score 0.50") and [p.passed for p in red.probes] == [False, True]
    s = reads.summary(f["cid"])
    assert set(s.layer_series) == {"visible", "sealed", "examiner", "redteam"}
    assert s.layer_series["redteam"] == ([f["numbers"][4]], [0.5])
    assert s.layer_series["examiner"][0] == f["numbers"]
    assert [x["name"] for x in s.examiner["suspects"]] == [WRONG]


@contextlib.asynccontextmanager
async def inspector_on(tmp_path, spec_dir, size, number_index: int):
    f = await asyncio.to_thread(layers_home, tmp_path)  # it runs its own event loop
    app = make_app(f["home"], spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        app.screen.select_campaign(f["cid"])
        await settle(pilot)
        app.screen.open_inspector(f["numbers"][number_index])
        await until(pilot, lambda: isinstance(app.screen, InspectorScreen) and app.screen.detail is not None,
                    "the inspector")
        yield app, pilot, f


@pytest.mark.parametrize("size", SIZES)
async def test_layers_tab_shows_expected_vs_actual_and_dismisses_a_suspect(tmp_path, empty_spec_dir, size):
    async with inspector_on(tmp_path, empty_spec_dir, size, 3) as (app, pilot, f):
        insp = app.screen
        await pilot.press("8")
        await settle(pilot)
        assert insp.query_one("#insp-tabs", TabbedContent).active == "tab-layers"
        table = insp.query_one("#layers", DataTable)
        assert table.row_count == len(f["sealed"]) + len(f["probes"])
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert [r[1] for r in rows] == ["sealed"] * len(f["sealed"]) + ["examiner"] * len(f["probes"])
        assert any(r[2] == f"⚠ {WRONG}" and r[4] == "404" and r[5] == "405" for r in rows)
        # d on a sealed vector: refused, nothing asked
        table.move_cursor(row=0)
        await pilot.press("d")
        await settle(pilot)
        assert not isinstance(app.screen, TextDialog)
        # d on the suspect examiner probe: a reason, then it is dismissed (evidence kept)
        row = next(i for i, r in enumerate(rows) if WRONG in r[2])
        table.move_cursor(row=row)
        await settle(pilot)
        assert "SUSPECT — failed 5/5" in plain(insp.query_one("#layer-detail", Static))
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, TextDialog), "the reason dialog")
        await pilot.press("enter")  # an empty reason is refused in the dialog
        await settle(pilot)
        assert isinstance(app.screen, TextDialog)
        app.screen.query_one("#text-input", Input).value = "the spec says 405"
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is insp, "back to the inspector")

        def dismissed():
            with Store.open(db_path(f["home"])) as s:
                return records.load(s, f["spec_hash"], "sim-1").dismissed.get(WRONG)

        await until(pilot, lambda: dismissed() is not None, "the dismissal")
        assert dismissed()["reason"] == "the spec says 405" and dismissed()["evidence"] == {"ran": 5, "failed": 5}
        await until(pilot, lambda: any(p.name == WRONG and p.dismissed for p in insp.layer_probes), "the reload")
        await settle(pilot)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert f"⊘ {WRONG}" in [r[2] for r in rows]
        assert f"{len(f['probes']) - 1}/{len(f['probes']) - 1}" in str(insp.query_one("#layer-box").border_title)


@pytest.mark.parametrize("size", SIZES)
async def test_fitness_pane_charts_the_layers_and_names_suspects(tmp_path, empty_spec_dir, size):
    from cambrian_tui.widgets.charts import FitnessCharts

    f = await asyncio.to_thread(layers_home, tmp_path)
    app = make_app(f["home"], empty_spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        app.screen.select_campaign(f["cid"])
        charts = app.screen.query_one(FitnessCharts)
        await until(pilot, lambda: charts.summary is not None and charts.summary.campaign_id == f["cid"],
                    "the summary")
        head = plain(charts.query_one("#headline", Static))
        assert "⚠1 suspect" in head and "red team 0.50" in head and "sealed" in head
        while charts.query_one(TabbedContent).active != "chart-layers":
            charts.cycle()
        await settle(pilot)
        plot = charts.query_one("#plot-layers")
        text = plot.plt.build()
        for label in ("visible", "sealed", "examiner", "red team"):
            assert label in text

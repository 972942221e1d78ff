"""Pilot tests of the Amendments screen on a seeded database (no engine, no Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Static, TextArea

from cambrian_tui.app import CambrianApp
from cambrian_tui.screens.amendments import AmendmentsScreen, EditAmendment
from cambrian_tui.widgets.side_diff import SideBySideDiff
from core.home import db_path
from core.models import Amendment
from core.store import Store
from tests.tui.conftest import settle

pytestmark = pytest.mark.timeout(120)

PRIME = Path(__file__).resolve().parents[2] / "spec" / "prime.md"
SIZE = (160, 48)

TEXT_IMPL = "Measure every duration and deadline with `time.monotonic()`; never with `time.time()`."
TEXT_TEST = "Each test checks its outcome with at least two meaningful assertions."
TEXT_EDIT = "Do not call `print()` in library code; use the logging module."
TEXT_EDITED = "Library code logs through the `logging` module and never calls `print()`."
TEXT_FROZEN = "Add a vector that checks the health endpoint twice."


def _evidence(feature: str, p: float, q: float) -> dict:
    return {
        "feature": feature, "description": f"{feature} (test)", "direction": "helps",
        "comparison": "viable_vs_failed",
        "groups": {"viable": {"n": 12, "present": 10, "rate": 0.833},
                   "failed": {"n": 12, "present": 2, "rate": 0.167}},
        "p": p, "q": q, "odds_ratio": 25.0, "odds_ratio_haldane": 17.9,
        "examples": [{"generation": 7, "file": "prime/clock.py", "line": 12,
                      "code": "  11 | def elapsed(t0):\n  12 |     return time.monotonic() - t0\n  13 | "}],
        "examples_from": "viable",
    }


def seed(home: Path) -> dict:
    home.mkdir(parents=True, exist_ok=True)
    st = Store.open(db_path(home))
    try:
        spec = st.add_spec(PRIME.read_text(encoding="utf-8"), label="prime")
        ids = {}
        for name, section, text, feature in (
            ("accept", "Implementation Requirements", TEXT_IMPL, "monotonic_clock"),
            ("reject", "Testing", TEXT_TEST, "dense_asserts"),
            ("edit", "Implementation Requirements", TEXT_EDIT, "print_in_library"),
            ("frozen", "Acceptance Vectors", TEXT_FROZEN, "trivial_asserts"),
        ):
            ids[name] = st.add_amendment(Amendment(campaign_id="c-test", spec_hash=spec.hash, section=section,
                                                   text=text, feature=feature,
                                                   evidence=_evidence(feature, 0.001, 0.004)))
        return {"spec": spec.hash, **ids}
    finally:
        st.close()


def make_app(home: Path, tmp_path: Path) -> CambrianApp:
    spec_dir = tmp_path / "no-specs"
    spec_dir.mkdir(exist_ok=True)
    return CambrianApp(home, spec_dir=spec_dir, live=False, theme="textual-dark", show_home=False,
                       initial_mode="amendments")


def read(home: Path, amendment_id: int):
    st = Store.open(db_path(home))
    try:
        a = st.amendment(amendment_id)
        result = st.spec_text(a.result_spec_hash) if a.result_spec_hash else None
        version = next((v for v in st.spec_versions() if v.hash == a.result_spec_hash), None)
        return a, result, version
    finally:
        st.close()


async def select(pilot, amendment_id: int) -> AmendmentsScreen:
    screen = pilot.app.screen
    assert isinstance(screen, AmendmentsScreen)
    table = screen.query_one(DataTable)
    ids = [r.id for r in screen.visible_rows()]
    table.move_cursor(row=ids.index(amendment_id), animate=False)
    await settle(pilot)
    assert screen.selected == amendment_id
    return screen


def notes(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_lists_pending_first_with_evidence_examples_and_preview(tmp_path):
    home = tmp_path / "home"
    ids = seed(home)
    app = make_app(home, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AmendmentsScreen)
        assert [r.status for r in screen.rows] == ["pending"] * 4
        assert screen.query_one(DataTable).row_count == 4
        screen = await select(pilot, ids["accept"])
        evidence = str(screen.query_one("#amend-evidence", Static).render())
        assert "monotonic_clock" in evidence and "Implementation Requirements" in evidence
        assert "83% (10/12)" in evidence and "17% (2/12)" in evidence
        assert "0.004" in evidence and "25" in evidence
        examples = str(screen.query_one("#amend-examples", Static).render())
        assert "gen 7" in examples and "prime/clock.py" in examples and "time.monotonic() - t0" in examples
        diff = screen.query_one(SideBySideDiff)
        assert diff.model is not None and diff.model.added >= 1
        assert diff.model.changed_sections == ["Implementation Requirements"]
        assert diff.model.frozen_touched == []
        # d hides and shows the preview
        await pilot.press("d")
        assert not screen.query_one("#amend-preview").display
        await pilot.press("d")
        await settle(pilot)
        assert screen.query_one("#amend-preview").display
        # the FROZEN-targeting one shows why it cannot apply
        await select(pilot, ids["frozen"])
        header = str(screen.query_one("#amend-diff-header", Static).render())
        assert "cannot apply" in header and "FROZEN" in header


async def test_accept_reject_edit_and_refusal(tmp_path):
    home = tmp_path / "home"
    ids = seed(home)
    app = make_app(home, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)

        # accept: a new spec version holding the text, status accepted
        await select(pilot, ids["accept"])
        await pilot.press("a")
        await settle(pilot)
        a, result, version = read(home, ids["accept"])
        assert a.status.value == "accepted"
        assert version is not None and version.parent_hash == ids["spec"] and version.origin.value == "amendment"
        assert TEXT_IMPL in result
        assert any("accepted" in n for n in notes(app))
        screen = app.screen
        assert screen.by_id[ids["accept"]].status == "accepted"

        # reject
        await select(pilot, ids["reject"])
        await pilot.press("r")
        await settle(pilot)
        a, result, _ = read(home, ids["reject"])
        assert a.status.value == "rejected" and a.result_spec_hash is None

        # edit, keep the edit (ctrl+s), then accept: status edited, the result holds the edited text
        await select(pilot, ids["edit"])
        await pilot.press("e")
        await settle(pilot)
        assert isinstance(app.screen, EditAmendment)
        area = app.screen.query_one(TextArea)
        assert area.text == TEXT_EDIT
        area.text = TEXT_EDITED
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is screen and screen.edits[ids["edit"]] == TEXT_EDITED
        assert "edited text" in str(screen.query_one("#amend-evidence", Static).render())
        a, _, _ = read(home, ids["edit"])
        assert a.status.value == "pending"  # nothing stored until accepted
        await pilot.press("a")
        await settle(pilot)
        a, result, version = read(home, ids["edit"])
        assert a.status.value == "edited" and a.text == TEXT_EDITED
        assert version is not None and TEXT_EDITED in result and TEXT_EDIT not in result

        # refused: a FROZEN-holding section; stays pending, the notification gives the reason
        await select(pilot, ids["frozen"])
        before = len(read(home, ids["frozen"])[0].text)
        await pilot.press("a")
        await settle(pilot)
        a, result, _ = read(home, ids["frozen"])
        assert a.status.value == "pending" and result is None and len(a.text) == before
        refusal = [n for n in notes(app) if f"#{ids['frozen']}" in n]
        assert refusal and "FROZEN" in refusal[-1] and "Acceptance Vectors" in refusal[-1]

        # the list shows the new states (pending first) and the filter narrows it
        assert [(r.id, r.status) for r in screen.rows][0] == (ids["frozen"], "pending")
        await pilot.press("f")  # pending only
        await settle(pilot)
        assert [r.id for r in screen.visible_rows()] == [ids["frozen"]]
        await pilot.press("f")  # accepted
        assert [r.id for r in screen.visible_rows()] == [ids["accept"]]
        await pilot.press("f")  # edited
        assert [r.id for r in screen.visible_rows()] == [ids["edit"]]
        assert screen.query_one(DataTable).row_count == 1


async def test_escape_cancels_an_edit_and_non_pending_cannot_be_accepted(tmp_path):
    home = tmp_path / "home"
    ids = seed(home)
    app = make_app(home, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await select(pilot, ids["reject"])
        await pilot.press("e")
        await settle(pilot)
        app.screen.query_one(TextArea).text = "something else"
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen and ids["reject"] not in screen.edits
        await pilot.press("r")
        await settle(pilot)
        assert read(home, ids["reject"])[0].status.value == "rejected"
        await pilot.press("a")
        await settle(pilot)
        assert read(home, ids["reject"])[0].status.value == "rejected"
        assert any("only pending" in n for n in notes(app))


async def test_distill_from_the_campaigns_screen_then_review(tmp_path):
    """`D` on the Campaigns screen runs the distiller on the selected campaign (real libcst
    over the campaign's stored artifacts), says what came of it, and F4 lists the result."""
    from cambrian_tui.screens.main import MainScreen
    from tests.distill.synth import planted_campaign

    home = tmp_path / "home"
    home.mkdir()
    with Store.open(db_path(home)) as st:
        spec_hash, _ = planted_campaign(st)
        st.create_campaign("c-empty", spec_hash, {"generations": 4})
    spec_dir = tmp_path / "no-specs"
    spec_dir.mkdir()
    app = CambrianApp(home, spec_dir=spec_dir, live=False, theme="textual-dark", show_home=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        main.select_campaign("c-planted")
        await settle(pilot)
        await pilot.press("D")
        await settle(pilot)
        with Store.open(db_path(home)) as st:
            [a] = st.amendments()
        assert a.campaign_id == "c-planted" and a.status.value == "pending"
        assert any("1 amendment(s) proposed" in n and "Review them here" in n for n in notes(app))
        # ... and the user is taken to the proposal, its evidence beside it
        screen = app.screen
        assert isinstance(screen, AmendmentsScreen) and screen.filter == "pending"
        assert screen.current() is not None and screen.current().id == a.id
        await pilot.press("f2")
        await settle(pilot)
        assert app.screen is main
        # a second run proposes nothing new, and says why
        await pilot.press("D")
        await settle(pilot)
        with Store.open(db_path(home)) as st:
            assert len(st.amendments()) == 1
        assert any("no new amendment" in n and "already pending" in n for n in notes(app))
        # a campaign with nothing judged yet: said so, nothing written
        main.select_campaign("c-empty")
        await settle(pilot)
        await pilot.press("D")
        await settle(pilot)
        assert any("nothing to analyse yet" in n for n in notes(app))
        await pilot.press("f4")
        await settle(pilot)
        assert app.screen is screen
        assert [r.id for r in screen.visible_rows()] == [a.id]

"""The application layer's reads and pure builders: lineage shape, summaries, diffs, report rows."""

from __future__ import annotations

import threading
import time

from cambrian_tui.widgets.side_diff import build_diff, wrap_points
from core.app.lineage import build_lineage, downsample
from core.app.reads import Reader
from core.app.reports import check_rows, file_diffs
from core.app.specdoc import make_spec_doc
from tests.tui.seed import SPEC_V1, SPEC_V2


def test_lineage_flattens_lines_of_descent_and_nests_the_rest():
    rows = [(0, None, "promoted", None), (1, 0, "failed", "test"), (2, 0, "promoted", None),
            (3, 2, "failed", "build"), (4, 3, "promoted", None),  # retry of a failed attempt
            (5, 4, "in_progress", None), (6, 2, "timeout", None)]
    m = build_lineage("c", rows)
    assert m.spine == [0, 2, 3, 4]  # 4 continues the line through its failed parent 3
    assert m.offspring(0) == [1]
    assert m.offspring(2) == [6]
    assert m.offspring(4) == [5]
    assert m.path_to(5) == [4, 5]
    assert m.path_to(6) == [2, 6]
    assert m.spine_position(6) == 1
    assert m.counts["promoted"] == 3


def test_lineage_handles_foreign_parents_and_many_roots():
    rows = [(10, 3, "promoted", None), (11, 10, "failed", "test"), (12, None, "promoted", None)]
    m = build_lineage(None, rows)
    assert m.spine == [10, 12]
    assert m.offspring(10) == [11]


def test_lineage_of_ten_thousand(bulk_home):
    home, facts = bulk_home
    m = Reader(home).lineage(facts["campaign"])
    assert len(m.numbers) == 10_000
    assert set(m.spine) <= set(m.numbers)
    # every generation is reachable from the spine
    for n in (0, 1, 4999, 9999):
        assert m.path_to(n)[-1] == n
    assert m.failed and all(m.outcome[n] == "failed" for n in m.failed)


def test_summary_agrees_with_the_engine(seeded):
    from core.engine.summary import campaign_summary

    home, facts = seeded
    ds = Reader(home)
    s = ds.summary(facts["campaign"])
    c = ds.campaign(facts["campaign"])
    assert s.progress == c.progress == "40/40"
    e = campaign_summary(ds.store(), facts["campaign"])
    assert s.viability_rate == e["viability_rate"]
    assert [round(x, 4) for x in s.viability_interval] == e["viability_interval"]
    assert s.failure_stages == e["failure_stages"]
    assert (s.tokens, round(s.cost_usd, 6)) == (e["tokens"], e["cost_usd"])
    assert s.trend[-1].rate == e["trend"][-1]
    assert s.tests_x and max(s.tests_run) == 3


def test_campaign_list_counts_as_the_engine_does(tmp_path):
    """The campaign list's rate is the engine's (promoted over generations with a rig
    verdict), and its progress leaves out interrupted generations, which the engine redoes."""
    from core.engine.summary import campaign_summary
    from core.home import db_path
    from core.store import Store

    home = tmp_path / "home"
    home.mkdir()
    with Store.open(db_path(home)) as st:
        h = st.add_spec(SPEC_V1, label="v1").hash
        st.create_campaign("c-mixed", h, {"generations": 8, "provider": "sim"})
        plan = ([("promoted", True)] * 3 + [("failed", True)] * 2 + [("failed", False), ("timeout", False)]
                + [("interrupted", False)] * 2)
        for outcome, judged in plan:
            g = st.create_generation(spec_hash=h, campaign_id="c-mixed")
            if judged:
                st.record_report(g.number, {"generation": g.number, "failure_stage": "none" if outcome == "promoted"
                                            else "test", "status": "viable" if outcome == "promoted" else "non-viable"})
            st.set_outcome(g.number, outcome)
        engine = campaign_summary(st, "c-mixed")
    [c] = Reader(home).campaigns()
    assert c.judged == engine["judged"] == 5
    assert c.viability == engine["viability_rate"] == 3 / 5
    assert c.progress == "7/8" and c.finished == 9
    s = Reader(home).summary("c-mixed")
    assert s.progress == c.progress  # the Fitness pane says what the list says
    assert s.failure_stages == engine["failure_stages"]


def test_one_store_per_thread(seeded):
    home, _ = seeded
    ds = Reader(home)
    seen = []

    def grab():
        seen.append(ds.store())
        seen.append(ds.store())

    threads = [threading.Thread(target=grab) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(s) for s in seen}) == 3
    assert seen[0] is seen[1]
    ds.close()


def test_generation_detail_and_log(seeded):
    home, facts = seeded
    ds = Reader(home)
    n = facts["failed"][0]
    d = ds.generation_detail(n)
    assert d.outcome == "failed" and d.report is not None and d.report_problem is None
    assert d.report.status == "non-viable" and d.report_raw["status"] == "non-viable"
    assert d.files and d.parent_files and list(d.failed_numbers) == facts["failed"]
    assert "tally/server.py" in d.files
    assert d.simulated
    lines, last = ds.log_tail(n)
    assert any(stream == "stderr" for stream, _ in lines) and last > 0
    more, last2 = ds.log_tail(n, after_id=last)
    assert more == [] and last2 == last


def test_search_finds_numbers_reasons_campaigns_and_specs(seeded):
    home, facts = seeded
    ds = Reader(home)
    assert ds.search("13")[0].key == "13"
    assert any(h.kind == "campaign" for h in ds.search("tally-001"))
    assert any(h.kind == "spec" for h in ds.search("tally-v2"))
    assert any(h.kind == "generation" and int(h.key) in facts["failed"] for h in ds.search("build"))


def test_file_diffs_order_and_counts():
    old = {"a.py": b"x = 1\ny = 2\n", "gone.py": b"1\n", "same.py": b"s\n"}
    new = {"a.py": b"x = 1\ny = 3\n", "new.py": b"n\n", "same.py": b"s\n"}
    diffs = file_diffs(old, new)
    assert [(d.path, d.status) for d in diffs] == [("a.py", "modified"), ("new.py", "added"),
                                                   ("gone.py", "removed"), ("same.py", "same")]
    assert (diffs[0].added, diffs[0].removed) == (1, 1)


def test_report_rows_nest_failures_under_their_stage():
    from tests.tui.seed import _report

    rep = _report(7, "test")
    rows = check_rows(rep)
    names = [r.name for r in rows]
    assert names[:3] == ["manifest", "build", "test"]
    assert rows[3].depth == 1 and rows[3].location == "tests/test_server.py:5"
    assert rows[-1].name == "health" and rows[-1].passed is None
    health = check_rows(_report(8, "health"))
    assert any(r.name == "vector health-ok" and r.failed for r in health)


def test_spec_doc_marks_sections_and_frozen_blocks():
    doc = make_spec_doc("h", "v1", SPEC_V1)
    assert "Testing" in doc.section_starts.values()
    assert doc.frozen and doc.frozen[0][2] == "acceptance-vectors"
    start, end, _ = doc.frozen[0]
    assert doc.lines[start].startswith("<!-- BEGIN FROZEN") and doc.lines[end].startswith("<!-- END FROZEN")


def test_side_by_side_diff_alignment_sections_and_folding():
    a, b = make_spec_doc("a", "v1", SPEC_V1), make_spec_doc("b", "v2", SPEC_V2)
    m = build_diff(a, b, context=3)
    assert (m.added, m.removed) == (3, 1)
    assert m.changed_sections == ["Implementation Requirements", "Testing"]
    assert m.frozen_touched == []
    assert len(m.hunks) == 2
    kinds = {r.kind for r in m.rows}
    assert {"fold", "section", "equal", "insert", "replace"} <= kinds
    full = build_diff(a, b, context=None)
    assert not any(r.kind == "fold" for r in full.rows)
    # every line of both sides appears exactly once in the full view
    assert sorted(r.left_no for r in full.rows if r.left_no is not None) == list(range(len(a.lines)))
    assert sorted(r.right_no for r in full.rows if r.right_no is not None) == list(range(len(b.lines)))


def test_diff_flags_a_changed_frozen_block():
    broken = SPEC_V1.replace("status: ok", "status: fine")
    m = build_diff(make_spec_doc("a", "a", SPEC_V1), make_spec_doc("b", "b", broken))
    assert m.frozen_touched == ["acceptance-vectors"]


def test_wrap_points_cover_the_text():
    text = "alpha beta gamma delta epsilon " * 5
    pts = wrap_points(text, 17)
    assert pts[0][0] == 0 and pts[-1][1] == len(text)
    assert all(e - s <= 17 for s, e in pts)
    assert all(pts[i][1] == pts[i + 1][0] for i in range(len(pts) - 1))
    assert wrap_points("x" * 40, 10) == [(0, 10), (10, 20), (20, 30), (30, 40)]


def test_downsample_keeps_ends():
    seq = list(range(1000))
    out = downsample(seq, 50)
    assert len(out) == 50 and out[0] == 0 and out[-1] == 999
    assert downsample([1, 2], 50) == [1, 2]


def test_closing_while_a_worker_thread_is_in_a_query_interrupts_it_instead_of_crashing(seeded):
    """The app closes its Reader on unmount while load workers may still be querying;
    closing a connection under a running statement segfaulted the TUI (found by hand)."""
    import sqlite3

    home, _ = seeded
    data = Reader(home)
    started, outcome = threading.Event(), {}

    def slow_query():
        conn = data.store().conn
        started.set()
        try:  # an unbounded recursion: it never ends unless interrupted
            conn.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
                         "SELECT count(*) FROM n WHERE i < 1e12").fetchone()
            outcome["result"] = "finished"
        except sqlite3.OperationalError as exc:
            outcome["result"] = str(exc)

    t = threading.Thread(target=slow_query, daemon=True)  # if it failed, never block exit
    t.start()
    assert started.wait(10)
    time.sleep(0.2)  # let the statement start
    data.close()
    t.join(30)
    assert not t.is_alive() and outcome["result"] == "interrupted"
    data.close()  # idempotent; the main thread's own store (if any) is closed here

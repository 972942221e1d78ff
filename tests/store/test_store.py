"""The store: WAL + BEGIN IMMEDIATE under concurrent processes, crash safety, history rules."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from core.models import Amendment, IllegalTransition, LLMCall, Observation, Outcome, RigRun
from core.schema_sql import MIGRATIONS
from core.store import LOG_CAP_BYTES, Store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "c.db")
    yield s
    s.close()


def _spawn(children, db: Path, worker: int, n: int, slow: bool = False):
    """A writer process (tests.childproc.Child: its output is read by a thread, so no read
    can block, and the fixture stops it in teardown, also on failure)."""
    args = [sys.executable, "-m", "tests.store.worker", str(db), str(worker), str(n)]
    if slow:
        args.append("--slow")
    return children(args, cwd=ROOT, new_session=False)


def _consistent(db: Path) -> dict:
    """Invariants that hold only if every transaction was all-or-nothing."""
    s = Store.open(db)
    try:
        assert s.integrity_check() == "ok"
        c = s.conn
        gens = c.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
        created = c.execute("SELECT COUNT(*) FROM events WHERE kind='generation_created'").fetchone()[0]
        reports = c.execute("SELECT COUNT(*) FROM events WHERE kind='report'").fetchone()[0]
        assert gens == created == reports, (gens, created, reports)
        # every generation has both its log streams and a report (written in the same transaction)
        assert c.execute("SELECT COUNT(*) FROM generations WHERE report_json IS NULL").fetchone()[0] == 0
        missing_logs = c.execute(
            "SELECT COUNT(*) FROM generations g WHERE (SELECT COUNT(*) FROM log_chunks l "
            "WHERE l.generation = g.number) <> 2").fetchone()[0]
        assert missing_logs == 0
        nums = [r[0] for r in c.execute("SELECT number FROM generations ORDER BY number")]
        assert len(nums) == len(set(nums))
        return {"generations": gens, "tested_left": c.execute(
            "SELECT COUNT(*) FROM generations WHERE outcome='tested'").fetchone()[0]}
    finally:
        s.close()


def test_pragmas(store):
    c = store.conn
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert c.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert c.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert c.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert store.schema_version == len(MIGRATIONS)


def test_write_transactions_are_immediate(store, tmp_path):
    # While one connection holds a write transaction, another cannot even start one.
    other = sqlite3.connect(tmp_path / "c.db", timeout=0.1, isolation_level=None)
    with store.write():
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    other.close()


def test_migrations_are_versioned_and_idempotent(tmp_path):
    db = tmp_path / "m.db"
    Store.open(db).close()
    s = Store.open(db)
    assert s.schema_version == len(MIGRATIONS)
    s.conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    s.close()
    with pytest.raises(Exception, match="newer than this Cambrian"):
        Store.open(db)


def test_blobs_are_content_addressed_and_deduplicated(store):
    h1 = store.put_blob(b"same bytes")
    h2 = store.put_blob(b"same bytes")
    assert h1 == h2
    assert store.get_blob(h1) == b"same bytes"
    assert store.conn.execute("SELECT COUNT(*) FROM blobs").fetchone()[0] == 1
    spec = store.add_spec("# s\n")
    g = store.create_generation(spec_hash=spec.hash)
    files = {"a.py": b"x = 1\n", "b.py": b"x = 1\n", "spec/s.md": b"# s\n"}
    ahash = store.record_artifact(g.number, files)
    assert store.artifact_files(ahash) == files
    # "same bytes", the spec (shared with spec/s.md) and one blob shared by a.py and b.py
    assert store.conn.execute("SELECT COUNT(*) FROM blobs").fetchone()[0] == 3


def test_outcome_state_machine(store):
    spec = store.add_spec("# s\n")
    g = store.create_generation(spec_hash=spec.hash)
    with pytest.raises(IllegalTransition):
        store.set_outcome(g.number, Outcome.PROMOTED)  # must be tested first
    store.record_report(g.number, {"status": "viable", "failure_stage": "none"})
    assert store.generation(g.number).outcome is Outcome.TESTED
    store.set_outcome(g.number, Outcome.PROMOTED)
    with pytest.raises(IllegalTransition):
        store.set_outcome(g.number, Outcome.FAILED)


def test_terminal_generation_cannot_be_changed_or_deleted(store):
    spec = store.add_spec("# s\n")
    g = store.create_generation(spec_hash=spec.hash)
    store.set_outcome(g.number, Outcome.TIMEOUT, reason="engine died")
    raw = store.conn  # go around the Python checks: the trigger must still fire
    with pytest.raises(sqlite3.IntegrityError, match="terminal"):
        raw.execute("UPDATE generations SET outcome='promoted' WHERE number=?", (g.number,))
    with pytest.raises(sqlite3.IntegrityError, match="terminal"):
        raw.execute("UPDATE generations SET reason='rewritten' WHERE number=?", (g.number,))
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        raw.execute("DELETE FROM generations WHERE number=?", (g.number,))
    assert store.generation(g.number).reason == "engine died"


def test_illegal_transition_refused_by_trigger(store):
    spec = store.add_spec("# s\n")
    g = store.create_generation(spec_hash=spec.hash)
    with pytest.raises(sqlite3.IntegrityError, match="illegal outcome transition"):
        store.conn.execute("UPDATE generations SET outcome='promoted' WHERE number=?", (g.number,))


def test_event_log_is_append_only(store):
    store.add_event("hello", data={"x": 1})
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("UPDATE events SET kind='bye'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("DELETE FROM events")
    assert [e["kind"] for e in store.events()] == ["hello"]


def test_numbering_never_reuses(store):
    spec = store.add_spec("# s\n")
    nums = [store.create_generation(spec_hash=spec.hash).number for _ in range(5)]
    assert nums == list(range(5))
    # a failed transaction does not leave a hole that is later filled twice
    with pytest.raises(RuntimeError):
        with store.write():
            store.create_generation(spec_hash=spec.hash)
            raise RuntimeError("boom")
    assert store.create_generation(spec_hash=spec.hash).number == 5
    imported = store.create_generation(spec_hash=spec.hash, number=100)
    assert imported.number == 100
    assert store.create_generation(spec_hash=spec.hash).number == 101


def test_log_chunks_bounded(store):
    spec = store.add_spec("# s\n")
    g = store.create_generation(spec_hash=spec.hash)
    line = "x" * 999
    seqs = [store.append_log(g.number, "stdout", [line] * 100) for _ in range(30)]
    assert seqs[0] == 0 and seqs[-1] == -1
    total = sum(len(c["text"]) for c in store.log_chunks(g.number, limit=10_000))
    assert LOG_CAP_BYTES <= total < LOG_CAP_BYTES + 200
    assert "capped" in store.log_chunks(g.number, limit=10_000)[-1]["text"]
    # the other stream has its own budget
    assert store.append_log(g.number, "stderr", ["still here"]) == 0


def test_commands_are_taken_exactly_once(store):
    store.send_command("camp-1", "pause")
    store.send_command("camp-1", "abort", {"why": "test"})
    store.send_command("camp-2", "pause")
    got = store.take_commands("camp-1")
    assert [c["command"] for c in got] == ["pause", "abort"]
    assert got[1]["args"] == {"why": "test"}
    assert store.take_commands("camp-1") == []
    assert [c["command"] for c in store.take_commands("camp-2")] == ["pause"]


def test_lease(store, tmp_path):
    assert store.acquire_lease("camp-1")
    assert store.lease_alive("camp-1")
    other = Store.open(tmp_path / "c.db")
    # a different live pid cannot take it
    assert not other.acquire_lease("camp-1", pid=os.getppid())
    # a dead pid's lease is taken over
    store.conn.execute("UPDATE engine_leases SET pid=999999999 WHERE owner='camp-1'")
    assert not store.lease_alive("camp-1")
    assert other.acquire_lease("camp-1", pid=os.getppid())
    # a stale heartbeat is dead even if the pid lives
    store.conn.execute("UPDATE engine_leases SET heartbeat=0 WHERE owner='camp-1'")
    assert not store.lease_alive("camp-1")
    other.close()


def test_ledger_rig_runs_amendments_observations(store):
    spec = store.add_spec("# s\n")
    store.create_campaign("c1", spec.hash, {"n": 1})
    cid = store.record_llm_call(LLMCall(campaign_id="c1", provider="sim", model="sim-1", input_tokens=10,
                                        output_tokens=5, cost_usd=0.25, simulated=True))
    assert cid == 1
    assert store.llm_calls(campaign_id="c1")[0].simulated is True
    assert store.spend("c1") == (15, 0.25)
    store.record_rig_run(RigRun(generation=0, run_id="r1", backend="docker", stage_ms={"build": 5}))
    assert store.rig_runs(0)[0].stage_ms == {"build": 5}
    aid = store.add_amendment(Amendment(spec_hash=spec.hash, section="Testing", text="Use monotonic clocks.",
                                        evidence={"p": 0.001}))
    assert store.set_amendment_status(aid, "accepted").status.value == "accepted"
    store.add_observation(Observation(run_id="e1", index=0, params={"op": "rewrite"}, viability_rate=0.5,
                                      interval=(0.2, 0.8)))
    assert store.observations("e1")[0].interval == (0.2, 0.8)


def test_concurrent_writer_processes(tmp_path, children):
    db = tmp_path / "conc.db"
    Store.open(db).close()
    workers, n = 6, 60
    procs = [_spawn(children, db, w, n) for w in range(workers)]
    errors = []
    for p in procs:
        if p.wait(300) != 0:  # killed and failed with its output when it overruns
            errors.append(p.output())
    assert errors == [], errors[0][-2000:]  # 0 busy errors
    stats = _consistent(db)
    assert stats["generations"] == workers * n  # 0 lost rows
    assert stats["tested_left"] == 0
    s = Store.open(db)
    ticks = s.conn.execute("SELECT COUNT(*) FROM events WHERE kind='worker_tick'").fetchone()[0]
    chunks = s.conn.execute("SELECT COUNT(*) FROM log_chunks").fetchone()[0]
    s.close()
    assert ticks == workers * n
    assert chunks == 2 * workers * n


def test_sigkill_mid_transaction_leaves_no_partial_rows(tmp_path, children):
    db = tmp_path / "crash.db"
    Store.open(db).close()
    rng = random.Random(20261121)
    kills = 0
    def count() -> int:
        with sqlite3.connect(db, timeout=30) as c:
            return c.execute("SELECT COUNT(*) FROM generations").fetchone()[0]

    for _ in range(20):
        before = count()
        p = _spawn(children, db, 0, 100_000, slow=True)
        # kill once the worker is writing (not after a fixed time: a loaded machine starts
        # Python slowly), at a random moment within its stream of transactions
        deadline = time.monotonic() + 60
        while count() <= before and time.monotonic() < deadline and p.proc.poll() is None:
            time.sleep(0.02)
        time.sleep(rng.random() * 0.1)
        assert p.proc.poll() is None, p.output()[-2000:]  # what it said so far, never a blocking read
        p.proc.send_signal(signal.SIGKILL)
        p.wait(30)
        kills += 1
        _consistent(db)  # opens, integrity ok, no partial generation
    stats = _consistent(db)
    assert kills == 20
    assert stats["generations"] > 20  # work did happen between kills

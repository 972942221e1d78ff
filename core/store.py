"""The SQLite store: single source of truth and the IPC channel (DESIGN §3).

Rules that keep it crash-safe under several writer processes:
- WAL, synchronous=FULL, foreign keys, a busy timeout;
- every write transaction starts with BEGIN IMMEDIATE (a deferred transaction that
  reads and then writes can fail with SQLITE_BUSY under concurrent writers);
- terminal generations and the event log are protected by triggers, so even a buggy
  caller cannot rewrite history.

sqlite-utils provides schema creation and queries; transactions use our own
connection in autocommit mode so that nothing commits behind our back.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import sqlite_utils

from core.models import (
    TERMINAL,
    Amendment,
    AmendmentStatus,
    Generation,
    LLMCall,
    Observation,
    Outcome,
    RigRun,
    SpecOrigin,
    SpecVersion,
    check_transition,
    utcnow,
)
from core.schema_sql import MIGRATIONS
from rig.hashing import sha256_hex

LOG_CAP_BYTES = 2_000_000  # per generation and stream; beyond it one marker, then silence
BUSY_TIMEOUT_MS = 30_000


class StoreError(RuntimeError):
    pass


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise StoreError(f"could not switch {path} to WAL (got {mode})")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class Store:
    """One connection; use one Store per thread or process."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = _connect(self.path)
        self.db = sqlite_utils.Database(self.conn)
        self._lock = threading.RLock()
        self._migrate()

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> "Store":
        return cls(path)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transactions ---------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; rollback on any exception."""
        with self._lock:
            if self.conn.in_transaction:  # nested: join the outer transaction
                yield self.conn
                return
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self.write() as c:
            c.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            current = int(row[0]) if row else 0
            if current > len(MIGRATIONS):
                raise StoreError(
                    f"{self.path} has schema version {current}, newer than this Cambrian "
                    f"({len(MIGRATIONS)}); upgrade Cambrian"
                )
            for version, script in enumerate(MIGRATIONS, start=1):
                if version <= current:
                    continue
                for stmt in _split_sql(script):
                    c.execute(stmt)
                c.execute(
                    "INSERT INTO meta(key, value) VALUES('schema_version', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (str(version),),
                )

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])

    # --- blobs ----------------------------------------------------------------------

    def put_blob(self, data: bytes) -> str:
        h = sha256_hex(data)
        with self.write() as c:
            c.execute(
                "INSERT OR IGNORE INTO blobs(hash, size, data) VALUES (?, ?, ?)", (h, len(data), data)
            )
        return h

    def get_blob(self, h: str) -> bytes:
        row = self.conn.execute("SELECT data FROM blobs WHERE hash=?", (h,)).fetchone()
        if row is None:
            raise KeyError(h)
        return bytes(row[0])

    # --- specs ----------------------------------------------------------------------

    def add_spec(
        self,
        text: str,
        *,
        parent_hash: str | None = None,
        origin: SpecOrigin | str = SpecOrigin.HUMAN,
        label: str = "",
    ) -> SpecVersion:
        data = text.encode("utf-8")
        h = sha256_hex(data)
        with self.write() as c:
            c.execute("INSERT OR IGNORE INTO blobs(hash, size, data) VALUES (?, ?, ?)", (h, len(data), data))
            c.execute(
                "INSERT OR IGNORE INTO spec_versions(hash, parent_hash, origin, label, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (h, parent_hash, SpecOrigin(origin).value, label, utcnow()),
            )
        return self.spec_version(h)

    def spec_version(self, h: str) -> SpecVersion:
        row = self.conn.execute("SELECT * FROM spec_versions WHERE hash=?", (h,)).fetchone()
        if row is None:
            raise KeyError(h)
        return SpecVersion(**dict(row))

    def spec_text(self, h: str) -> str:
        return self.get_blob(h).decode("utf-8")

    def spec_versions(self) -> list[SpecVersion]:
        rows = self.conn.execute("SELECT * FROM spec_versions ORDER BY created_at, hash").fetchall()
        return [SpecVersion(**dict(r)) for r in rows]

    def resolve_spec(self, ref: str) -> str:
        """A full hash, a unique hex prefix, or a label."""
        ref = ref.strip()
        if ref.startswith("sha256:") and len(ref) == 71:
            self.spec_version(ref)
            return ref
        prefix = ref.removeprefix("sha256:")
        rows = self.conn.execute(
            "SELECT hash FROM spec_versions WHERE hash LIKE ? OR label = ?", (f"sha256:{prefix}%", ref)
        ).fetchall()
        if len(rows) == 1:
            return rows[0][0]
        if not rows:
            raise KeyError(f"no spec version matches {ref!r}")
        raise KeyError(f"{ref!r} is ambiguous ({len(rows)} spec versions match)")

    # --- campaigns ------------------------------------------------------------------

    def create_campaign(self, campaign_id: str, spec_hash: str, settings: dict[str, Any], kind: str = "campaign") -> None:
        now = utcnow()
        with self.write() as c:
            c.execute(
                "INSERT INTO campaigns(id, kind, spec_hash, settings_json, state, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                (campaign_id, kind, spec_hash, json.dumps(settings, sort_keys=True), now, now),
            )
            self._event(c, "campaign_created", campaign_id=campaign_id, data={"spec_hash": spec_hash})

    def campaign(self, campaign_id: str) -> dict[str, Any]:
        row = self.conn.execute("SELECT * FROM campaigns WHERE id=?", (campaign_id,)).fetchone()
        if row is None:
            raise KeyError(f"no campaign {campaign_id!r}")
        d = dict(row)
        d["settings"] = json.loads(d.pop("settings_json"))
        return d

    def campaigns(self, kind: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT id FROM campaigns" + (" WHERE kind=?" if kind else "") + " ORDER BY created_at DESC, rowid DESC"
        return [self.campaign(r[0]) for r in self.conn.execute(q, (kind,) if kind else ())]

    def set_campaign_state(self, campaign_id: str, state: str, reason: str | None = None) -> None:
        with self.write() as c:
            c.execute(
                "UPDATE campaigns SET state=?, reason=COALESCE(?, reason), updated_at=? WHERE id=?",
                (state, reason, utcnow(), campaign_id),
            )
            self._event(c, "campaign_state", campaign_id=campaign_id, data={"state": state, "reason": reason})

    # --- generations ----------------------------------------------------------------

    def create_generation(
        self,
        *,
        spec_hash: str,
        campaign_id: str | None = None,
        parent: int | None = None,
        attempt: int = 0,
        number: int | None = None,
        draw: int | None = None,
        redo_of: int | None = None,
        bred_by: int | None = None,
    ) -> Generation:
        """Allocate the next number and write the in_progress row, atomically."""
        now = utcnow()
        with self.write() as c:
            if number is None:
                number = self.next_generation_number()
            c.execute(
                "INSERT INTO generations(number, parent, campaign_id, spec_hash, outcome, attempt, draw, "
                "redo_of, bred_by, artifact_hash, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, 'in_progress', ?, ?, ?, ?, "
                "(SELECT artifact_hash FROM generations WHERE number=?), ?, ?)",
                (number, parent, campaign_id, spec_hash, attempt, draw, redo_of, bred_by, redo_of,
                 now, now),
            )
            c.execute(
                "INSERT INTO meta(key, value) VALUES('generation_hw', ?) ON CONFLICT(key) DO UPDATE "
                "SET value=MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                (str(number),),
            )
            self._event(c, "generation_created", generation=number, campaign_id=campaign_id,
                        data={"parent": parent, "attempt": attempt}
                        | ({"redo_of": redo_of} if redo_of is not None else {}))
        return self.generation(number)

    def next_generation_number(self) -> int:
        """The number the next generation gets; call it inside a write transaction so that
        nobody else takes it first. Deleted-then-reused numbers can't happen (deletes are
        refused); the high-water mark also covers explicitly numbered (imported) rows."""
        row = self.conn.execute("SELECT COALESCE(MAX(number), -1) + 1 FROM generations").fetchone()
        hw = self.conn.execute("SELECT value FROM meta WHERE key='generation_hw'").fetchone()
        return max(int(row[0]), int(hw[0]) + 1 if hw else 0)

    def bulk_insert_generations(self, rows: list[dict[str, Any]]) -> int:
        """Insert finished generations (import, fixtures) in one transaction.

        Each row: number, spec_hash, outcome, and optionally parent, campaign_id,
        report (dict), artifact_hash, reason, attempt, created_at.
        """
        now = utcnow()
        gen_rows, ev_rows = [], []
        for r in rows:
            report = r.get("report")
            outcome = Outcome(r["outcome"]).value
            gen_rows.append((
                r["number"], r.get("parent"), r.get("campaign_id"), r["spec_hash"], outcome,
                r.get("artifact_hash"),
                report.get("status") if report else None, report.get("failure_stage") if report else None,
                json.dumps(report, sort_keys=True) if report else None,
                json.dumps((report or {}).get("fitness") or {}, sort_keys=True) if report else None,
                r.get("reason"), r.get("attempt", 0), r.get("created_at", now), now,
            ))
            ev_rows.append((now, "generation_imported", r["number"], r.get("campaign_id"),
                            json.dumps({"outcome": outcome})))
        with self.write() as c:
            c.executemany(
                "INSERT INTO generations(number, parent, campaign_id, spec_hash, outcome, artifact_hash, "
                "status, failure_stage, report_json, fitness_json, reason, attempt, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                gen_rows,
            )
            c.executemany("INSERT INTO events(ts, kind, generation, campaign_id, data_json) VALUES (?, ?, ?, ?, ?)",
                          ev_rows)
            if rows:
                top = max(r["number"] for r in rows)
                c.execute(
                    "INSERT INTO meta(key, value) VALUES('generation_hw', ?) ON CONFLICT(key) DO UPDATE "
                    "SET value=MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                    (str(top),),
                )
        return len(rows)

    def generation(self, number: int) -> Generation:
        row = self.conn.execute(
            "SELECT number, parent, campaign_id, spec_hash, outcome, artifact_hash, status, "
            "failure_stage, reason, attempt, created_at, updated_at FROM generations WHERE number=?",
            (number,),
        ).fetchone()
        if row is None:
            raise KeyError(f"no generation {number}")
        return Generation(**dict(row))

    def generations(self, campaign_id: str | None = None, *, limit: int | None = None,
                    offset: int = 0) -> list[Generation]:
        q = ("SELECT number, parent, campaign_id, spec_hash, outcome, artifact_hash, status, "
             "failure_stage, reason, attempt, created_at, updated_at FROM generations")
        args: list[Any] = []
        if campaign_id is not None:
            q += " WHERE campaign_id=?"
            args.append(campaign_id)
        q += " ORDER BY number"
        if limit is not None:
            q += " LIMIT ? OFFSET ?"
            args += [limit, offset]
        return [Generation(**dict(r)) for r in self.conn.execute(q, args)]

    def lineage(self, campaign_id: str | None = None) -> list[tuple[int, int | None, str]]:
        """(number, parent, outcome) rows: cheap enough for 10k+ generations."""
        if campaign_id is None:
            cur = self.conn.execute("SELECT number, parent, outcome FROM generations ORDER BY number")
        else:
            cur = self.conn.execute(
                "SELECT number, parent, outcome FROM generations WHERE campaign_id=? ORDER BY number",
                (campaign_id,),
            )
        return [tuple(r) for r in cur]  # type: ignore[misc]

    def set_outcome(self, number: int, outcome: Outcome | str, reason: str | None = None,
                    failure_stage: str | None = None) -> Generation:
        outcome = Outcome(outcome)
        with self.write() as c:
            row = c.execute("SELECT outcome, campaign_id FROM generations WHERE number=?", (number,)).fetchone()
            if row is None:
                raise KeyError(f"no generation {number}")
            check_transition(row[0], outcome)
            c.execute(
                "UPDATE generations SET outcome=?, reason=COALESCE(?, reason), "
                "failure_stage=COALESCE(?, failure_stage), updated_at=? WHERE number=?",
                (outcome.value, reason, failure_stage, utcnow(), number),
            )
            self._event(c, "outcome", generation=number, campaign_id=row[1],
                        data={"from": row[0], "to": outcome.value, "reason": reason})
        return self.generation(number)

    def record_artifact(self, number: int, files: dict[str, bytes]) -> str:
        """Store the artifact's files (deduplicated blobs) and link them to the generation."""
        with self.write() as c:
            ahash = self.put_artifact_files(files)
            c.execute("UPDATE generations SET artifact_hash=?, updated_at=? WHERE number=?",
                      (ahash, utcnow(), number))
        return ahash

    def put_artifact_files(self, files: dict[str, bytes]) -> str:
        """Store an artifact's files (deduplicated blobs) under its artifact hash, linked to
        no generation yet (an import writes the files before its finished rows)."""
        from rig.hashing import artifact_hash_of

        ahash = artifact_hash_of(files)
        with self.write() as c:
            for path, data in sorted(files.items()):
                h = sha256_hex(data)
                c.execute("INSERT OR IGNORE INTO blobs(hash, size, data) VALUES (?, ?, ?)", (h, len(data), data))
                c.execute(
                    "INSERT OR IGNORE INTO artifact_files(artifact_hash, path, blob_hash) VALUES (?, ?, ?)",
                    (ahash, path, h),
                )
        return ahash

    def generations_with_artifact(self, artifact_hash: str) -> list[int]:
        return [r[0] for r in self.conn.execute(
            "SELECT number FROM generations WHERE artifact_hash=? ORDER BY number", (artifact_hash,))]

    def artifact_files(self, artifact_hash: str) -> dict[str, bytes]:
        rows = self.conn.execute(
            "SELECT f.path, b.data FROM artifact_files f JOIN blobs b ON b.hash=f.blob_hash "
            "WHERE f.artifact_hash=? ORDER BY f.path",
            (artifact_hash,),
        ).fetchall()
        return {r[0]: bytes(r[1]) for r in rows}

    def record_report(self, number: int, report: dict[str, Any], *, outcome: Outcome | str | None = None,
                      reason: str | None = None) -> Generation:
        """Store the viability report; by default moves in_progress -> tested."""
        fitness = report.get("fitness") or {}
        with self.write() as c:
            row = c.execute("SELECT outcome, campaign_id FROM generations WHERE number=?", (number,)).fetchone()
            if row is None:
                raise KeyError(f"no generation {number}")
            target = Outcome(outcome) if outcome else Outcome.TESTED
            check_transition(row[0], target)
            c.execute(
                "UPDATE generations SET report_json=?, fitness_json=?, status=?, failure_stage=?, "
                "outcome=?, reason=COALESCE(?, reason), updated_at=? WHERE number=?",
                (json.dumps(report, sort_keys=True), json.dumps(fitness, sort_keys=True),
                 report.get("status"), report.get("failure_stage"), target.value, reason, utcnow(), number),
            )
            self._event(c, "report", generation=number, campaign_id=row[1],
                        data={"status": report.get("status"), "failure_stage": report.get("failure_stage")})
        return self.generation(number)

    def report(self, number: int) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT report_json FROM generations WHERE number=?", (number,)).fetchone()
        if row is None:
            raise KeyError(f"no generation {number}")
        return json.loads(row[0]) if row[0] else None

    def history(self, spec_hash: str, limit: int) -> list[Generation]:
        """Newest terminal generations of a spec, for the bounded history digest."""
        rows = self.conn.execute(
            "SELECT number, parent, campaign_id, spec_hash, outcome, artifact_hash, status, "
            "failure_stage, reason, attempt, created_at, updated_at FROM generations "
            "WHERE spec_hash=? AND outcome IN ('promoted','failed','timeout','interrupted') "
            "ORDER BY number DESC LIMIT ?",
            (spec_hash, limit),
        )
        return [Generation(**dict(r)) for r in rows]

    def outcome_counts(self, spec_hash: str | None = None, campaign_id: str | None = None) -> dict[str, int]:
        q, args = "SELECT outcome, COUNT(*) FROM generations", []
        conds = []
        if spec_hash:
            conds.append("spec_hash=?")
            args.append(spec_hash)
        if campaign_id:
            conds.append("campaign_id=?")
            args.append(campaign_id)
        if conds:
            q += " WHERE " + " AND ".join(conds)
        q += " GROUP BY outcome"
        return {r[0]: r[1] for r in self.conn.execute(q, args)}

    def failure_summaries(self, spec_hash: str, limit: int = 5) -> list[tuple[str, int]]:
        rows = self.conn.execute(
            "SELECT reason, COUNT(*) n FROM generations WHERE spec_hash=? AND reason IS NOT NULL "
            "AND outcome IN ('failed','timeout') GROUP BY reason ORDER BY n DESC, reason LIMIT ?",
            (spec_hash, limit),
        )
        return [(r[0], r[1]) for r in rows]

    def next_draw(self, campaign_id: str) -> int:
        """Smallest draw not held by a live or finished (non-interrupted) generation."""
        used = {r[0] for r in self.conn.execute(
            "SELECT draw FROM generations WHERE campaign_id=? AND draw IS NOT NULL "
            "AND outcome <> 'interrupted'", (campaign_id,))}
        d = 0
        while d in used:
            d += 1
        return d

    def redo_candidates(self, campaign_id: str) -> list[Generation]:
        """Interrupted generations of the campaign whose artifact was written (the LLM was
        paid) and that nothing has redone yet: their draw is free and no generation re-judges
        them. Oldest first."""
        rows = self.conn.execute(
            "SELECT g.number FROM generations g WHERE g.campaign_id=? AND g.outcome='interrupted' "
            "AND g.artifact_hash IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM generations r WHERE r.redo_of=g.number) "
            "AND (g.draw IS NULL OR NOT EXISTS (SELECT 1 FROM generations d WHERE "
            "d.campaign_id=g.campaign_id AND d.draw=g.draw AND d.outcome <> 'interrupted')) "
            "ORDER BY g.number", (campaign_id,)).fetchall()
        return [self.generation(r[0]) for r in rows]

    # --- reproduction -----------------------------------------------------------------

    def record_reproduction(self, generation: int, *, campaign_id: str | None, status: str,
                            stage: str | None, reason: str | None, offspring: int | None,
                            request: dict[str, Any], gateway: dict[str, Any], tokens: int,
                            cost_usd: float, rig_ms: int | None) -> None:
        with self.write() as c:
            c.execute(
                "INSERT OR REPLACE INTO reproductions(generation, campaign_id, status, stage, reason, "
                "offspring, request_json, gateway_json, tokens, cost_usd, rig_ms, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (generation, campaign_id, status, stage, (reason or "")[:1000] or None, offspring,
                 json.dumps(request, default=str), json.dumps(gateway, default=str), tokens,
                 cost_usd, rig_ms, utcnow()))
            self._event(c, "reproduction", generation=generation, campaign_id=campaign_id,
                        data={"status": status, "stage": stage, "offspring": offspring})

    def reproduction(self, generation: int) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM reproductions WHERE generation=?", (generation,)).fetchone()
        return _reproduction_row(row) if row else None

    def reproductions(self, campaign_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM reproductions WHERE campaign_id=? ORDER BY generation",
                                 (campaign_id,)).fetchall()
        return [_reproduction_row(r) for r in rows]

    def bred_generations(self, parents: list[int] | None = None,
                         campaign_id: str | None = None) -> list[Generation]:
        """Generations bred by offspring (not by the engine), of these parents or of a
        campaign's generations."""
        if campaign_id is not None:
            q = ("SELECT number FROM generations WHERE bred_by IN "
                 "(SELECT number FROM generations WHERE campaign_id=?) ORDER BY number")
            rows = self.conn.execute(q, (campaign_id,)).fetchall()
        else:
            marks = ",".join("?" * len(parents or []))
            rows = self.conn.execute(f"SELECT number FROM generations WHERE bred_by IN ({marks}) "
                                     "ORDER BY number", tuple(parents or [])).fetchall() if parents else []
        return [self.generation(r[0]) for r in rows]

    def bred_by(self, number: int) -> int | None:
        row = self.conn.execute("SELECT bred_by FROM generations WHERE number=?", (number,)).fetchone()
        return row[0] if row else None

    def redo_of(self, number: int) -> int | None:
        row = self.conn.execute("SELECT redo_of FROM generations WHERE number=?", (number,)).fetchone()
        return row[0] if row else None

    def tested(self, campaign_id: str) -> list[int]:
        return [r[0] for r in self.conn.execute(
            "SELECT number FROM generations WHERE outcome='tested' AND campaign_id=? ORDER BY number",
            (campaign_id,))]

    def in_progress(self, campaign_id: str | None = None) -> list[int]:
        q = "SELECT number FROM generations WHERE outcome='in_progress'"
        args: tuple = ()
        if campaign_id:
            q += " AND campaign_id=?"
            args = (campaign_id,)
        return [r[0] for r in self.conn.execute(q + " ORDER BY number", args)]

    # --- events ---------------------------------------------------------------------

    @staticmethod
    def _event(c: sqlite3.Connection, kind: str, *, generation: int | None = None,
               campaign_id: str | None = None, data: Any = None) -> None:
        c.execute(
            "INSERT INTO events(ts, kind, generation, campaign_id, data_json) VALUES (?, ?, ?, ?, ?)",
            (utcnow(), kind, generation, campaign_id, json.dumps(data, sort_keys=True, default=str)),
        )

    def add_event(self, kind: str, *, generation: int | None = None, campaign_id: str | None = None,
                  data: Any = None) -> None:
        with self.write() as c:
            self._event(c, kind, generation=generation, campaign_id=campaign_id, data=data)

    def events(self, *, generation: int | None = None, campaign_id: str | None = None,
               after_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        q, args = "SELECT * FROM events WHERE id > ?", [after_id]
        if generation is not None:
            q += " AND generation=?"
            args.append(generation)
        if campaign_id is not None:
            q += " AND campaign_id=?"
            args.append(campaign_id)
        rows = self.conn.execute(q + " ORDER BY id LIMIT ?", args + [limit]).fetchall()
        return [dict(r) | {"data": json.loads(r["data_json"] or "null")} for r in rows]

    # --- live rig output --------------------------------------------------------------

    def append_log(self, generation: int, stream: str, lines: Iterable[str]) -> int:
        """Append lines as one chunk; returns the chunk's seq, or -1 when capped."""
        text = "".join(l if l.endswith("\n") else l + "\n" for l in lines)
        if not text:
            return -1
        with self.write() as c:
            row = c.execute(
                "SELECT COALESCE(MAX(seq), -1), COALESCE(SUM(LENGTH(text)), 0), "
                "COALESCE(MAX(capped), 0) FROM log_chunks WHERE generation=? AND stream=?",
                (generation, stream),
            ).fetchone()
            seq, used, capped = int(row[0]) + 1, int(row[1]), int(row[2])
            if capped:
                return -1
            if used + len(text) > LOG_CAP_BYTES:
                room = max(0, LOG_CAP_BYTES - used)
                text = text[:room] + f"\n[cambrian: {stream} log capped at {LOG_CAP_BYTES} bytes]\n"
                capped = 1
            c.execute(
                "INSERT INTO log_chunks(generation, stream, seq, text, ts, capped) VALUES (?, ?, ?, ?, ?, ?)",
                (generation, stream, seq, text, utcnow(), capped),
            )
        return seq

    def log_chunks(self, generation: int, after_id: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, stream, seq, text FROM log_chunks WHERE generation=? AND id > ? ORDER BY id LIMIT ?",
            (generation, after_id, limit),
        ).fetchall()
        return [dict(r) for r in rows]

    # --- commands (UI -> engine) ------------------------------------------------------

    def send_command(self, target: str, command: str, args: dict[str, Any] | None = None) -> int:
        with self.write() as c:
            cur = c.execute(
                "INSERT INTO commands(target, command, args_json, created_at) VALUES (?, ?, ?, ?)",
                (target, command, json.dumps(args or {}), utcnow()),
            )
            return int(cur.lastrowid)

    def take_commands(self, target: str) -> list[dict[str, Any]]:
        """Claim unconsumed commands for target, oldest first (exactly once)."""
        with self.write() as c:
            rows = c.execute(
                "SELECT id, command, args_json FROM commands WHERE target=? AND consumed_at IS NULL ORDER BY id",
                (target,),
            ).fetchall()
            now = utcnow()
            for r in rows:
                c.execute("UPDATE commands SET consumed_at=? WHERE id=?", (now, r[0]))
        return [{"id": r[0], "command": r[1], "args": json.loads(r[2])} for r in rows]

    # --- engine lease -----------------------------------------------------------------

    def acquire_lease(self, owner: str, pid: int | None = None, *, stale_after_s: float = 30.0) -> bool:
        """Take the lease for owner unless a live engine holds it (fresh heartbeat)."""
        pid = pid or os.getpid()
        host = socket.gethostname()
        now = time.time()
        with self.write() as c:
            row = c.execute("SELECT pid, host, heartbeat FROM engine_leases WHERE owner=?", (owner,)).fetchone()
            if row is not None and row[0] != pid:
                fresh = now - float(row[2]) < stale_after_s
                alive = row[1] != host or _pid_alive(int(row[0]))
                if fresh and alive:
                    return False
            c.execute(
                "INSERT INTO engine_leases(owner, pid, host, started_at, heartbeat) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(owner) DO UPDATE SET pid=excluded.pid, host=excluded.host, "
                "started_at=excluded.started_at, heartbeat=excluded.heartbeat",
                (owner, pid, host, utcnow(), now),
            )
        return True

    def heartbeat(self, owner: str, pid: int | None = None) -> None:
        with self.write() as c:
            c.execute("UPDATE engine_leases SET heartbeat=? WHERE owner=? AND pid=?",
                      (time.time(), owner, pid or os.getpid()))

    def holds_lease(self, owner: str, pid: int | None = None) -> bool:
        row = self.conn.execute("SELECT pid, host FROM engine_leases WHERE owner=?", (owner,)).fetchone()
        return row is not None and row[0] == (pid or os.getpid()) and row[1] == socket.gethostname()

    def set_campaign_runtime(self, campaign_id: str, *, wall_used_s: float | None = None,
                             engine_pid: int | None = None) -> None:
        with self.write() as c:
            c.execute("UPDATE campaigns SET wall_used_s=COALESCE(?, wall_used_s), "
                      "engine_pid=COALESCE(?, engine_pid), updated_at=? WHERE id=?",
                      (wall_used_s, engine_pid, utcnow(), campaign_id))

    def release_lease(self, owner: str, pid: int | None = None) -> None:
        with self.write() as c:
            c.execute("DELETE FROM engine_leases WHERE owner=? AND pid=?", (owner, pid or os.getpid()))

    def lease(self, owner: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM engine_leases WHERE owner=?", (owner,)).fetchone()
        return dict(row) if row else None

    def lease_alive(self, owner: str, stale_after_s: float = 30.0) -> bool:
        lease = self.lease(owner)
        if lease is None:
            return False
        if time.time() - float(lease["heartbeat"]) > stale_after_s:
            return False
        return lease["host"] != socket.gethostname() or _pid_alive(int(lease["pid"]))

    # --- LLM ledger, rig runs ---------------------------------------------------------

    def record_llm_call(self, call: LLMCall) -> int:
        data = call.model_dump(exclude={"id"})
        data["simulated"] = int(data["simulated"])
        data["usage_estimated"] = int(data["usage_estimated"])
        cols = ", ".join(data)
        marks = ", ".join("?" for _ in data)
        with self.write() as c:
            cur = c.execute(f"INSERT INTO llm_calls({cols}) VALUES ({marks})", list(data.values()))
            return int(cur.lastrowid)

    def llm_calls(self, generation: int | None = None, campaign_id: str | None = None) -> list[LLMCall]:
        q, args = "SELECT * FROM llm_calls WHERE 1=1", []
        if generation is not None:
            q += " AND generation=?"
            args.append(generation)
        if campaign_id is not None:
            q += " AND campaign_id=?"
            args.append(campaign_id)
        rows = self.conn.execute(q + " ORDER BY id", args).fetchall()
        return [LLMCall(**(dict(r) | {"simulated": bool(r["simulated"]),
                                      "usage_estimated": bool(r["usage_estimated"])})) for r in rows]

    def spend(self, campaign_id: str) -> tuple[int, float]:
        """(tokens, dollars) recorded for a campaign."""
        row = self.conn.execute(
            "SELECT COALESCE(SUM(input_tokens + output_tokens + cache_creation_input_tokens + "
            "cache_read_input_tokens), 0), COALESCE(SUM(cost_usd), 0) FROM llm_calls WHERE campaign_id=?",
            (campaign_id,),
        ).fetchone()
        return int(row[0]), float(row[1])

    def unpriced_calls(self, campaign_id: str | None) -> int:
        """Calls of a campaign (None: of every campaign) whose price is unknown (their cost_usd
        of 0 means "unknown")."""
        q, args = "SELECT COUNT(*) FROM llm_calls WHERE price_source='unknown'", []
        if campaign_id is not None:
            q += " AND campaign_id=?"
            args.append(campaign_id)
        return int(self.conn.execute(q, args).fetchone()[0])

    def record_rig_run(self, run: RigRun) -> None:
        data = run.model_dump()
        data["stage_ms"] = json.dumps(data["stage_ms"])
        data["oom_killed"] = int(data["oom_killed"])
        cols = ", ".join(data)
        with self.write() as c:
            c.execute(f"INSERT OR REPLACE INTO rig_runs({cols}) VALUES ({', '.join('?' for _ in data)})",
                      list(data.values()))

    def rig_runs(self, generation: int | None = None) -> list[RigRun]:
        q, args = "SELECT * FROM rig_runs", []
        if generation is not None:
            q += " WHERE generation=?"
            args.append(generation)
        out = []
        for r in self.conn.execute(q + " ORDER BY started_at", args):
            d = dict(r)
            d["stage_ms"] = json.loads(d["stage_ms"] or "{}")
            d["oom_killed"] = bool(d["oom_killed"])
            out.append(RigRun(**d))
        return out

    # --- imported history ---------------------------------------------------------------

    IMPORTED_COLUMNS = ("key", "generation", "campaign_id", "source", "original_campaign",
                        "original_generation", "has_artifact", "model", "input_tokens", "output_tokens")

    def add_imported(self, row: dict[str, Any]) -> None:
        """Remember where an imported generation came from (``key``: its artifact hash)."""
        cols = self.IMPORTED_COLUMNS + ("imported_at",)
        values = [int(row[k]) if k == "has_artifact" else row.get(k) for k in self.IMPORTED_COLUMNS]
        with self.write() as c:
            c.execute(f"INSERT INTO imported_generations({', '.join(cols)}) VALUES "
                      f"({', '.join('?' for _ in cols)})", values + [utcnow()])

    def imported_generations(self, campaign_id: str | None = None) -> list[dict[str, Any]]:
        q, args = "SELECT * FROM imported_generations", []
        if campaign_id is not None:
            q += " WHERE campaign_id=?"
            args.append(campaign_id)
        rows = self.conn.execute(q + " ORDER BY generation", args).fetchall()
        return [dict(r) | {"has_artifact": bool(r["has_artifact"])} for r in rows]

    def imported_generation(self, number: int) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM imported_generations WHERE generation=?", (number,)).fetchone()
        return dict(row) | {"has_artifact": bool(row["has_artifact"])} if row else None

    def imported_tokens(self, campaign_id: str) -> int:
        """Token usage the original system recorded for a campaign's imported generations
        (no LLM call was made here, so it is not in the ledger nor in ``spend``)."""
        row = self.conn.execute(
            "SELECT COALESCE(SUM(input_tokens + output_tokens), 0) FROM imported_generations "
            "WHERE campaign_id=?", (campaign_id,)).fetchone()
        return int(row[0])

    # --- amendments, observations -------------------------------------------------------

    @staticmethod
    def _insert_amendment(c: sqlite3.Connection, a: Amendment) -> int:
        cur = c.execute(
            "INSERT INTO amendments(campaign_id, spec_hash, section, text, feature, evidence_json, "
            "status, result_spec_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (a.campaign_id, a.spec_hash, a.section, a.text, a.feature, json.dumps(a.evidence, default=str),
             a.status.value, a.result_spec_hash, a.created_at),
        )
        return int(cur.lastrowid)

    def add_amendment(self, a: Amendment) -> int:
        with self.write() as c:
            return self._insert_amendment(c, a)

    def add_amendment_once(self, a: Amendment) -> tuple[int, Amendment | None]:
        """Insert ``a`` unless an amendment for the same spec and feature exists; the check and
        the insert share one write transaction, so two distillers racing on one campaign
        cannot both propose it. Returns (id, None) when inserted, (prior id, prior) if not."""
        with self.write() as c:
            row = c.execute("SELECT * FROM amendments WHERE spec_hash=? AND feature=? ORDER BY id DESC LIMIT 1",
                            (a.spec_hash, a.feature)).fetchone()
            if row is not None:
                prior = self._amendment(row)
                return int(prior.id), prior  # type: ignore[arg-type]
            return self._insert_amendment(c, a), None

    def amendments(self, status: str | None = None, campaign_id: str | None = None) -> list[Amendment]:
        q, args = "SELECT * FROM amendments WHERE 1=1", []
        if status:
            q += " AND status=?"
            args.append(status)
        if campaign_id:
            q += " AND campaign_id=?"
            args.append(campaign_id)
        return [self._amendment(r) for r in self.conn.execute(q + " ORDER BY id", args)]

    def amendment(self, amendment_id: int) -> Amendment:
        row = self.conn.execute("SELECT * FROM amendments WHERE id=?", (amendment_id,)).fetchone()
        if row is None:
            raise KeyError(f"no amendment {amendment_id}")
        return self._amendment(row)

    @staticmethod
    def _amendment(r: sqlite3.Row) -> Amendment:
        d = dict(r)
        d["evidence"] = json.loads(d.pop("evidence_json") or "{}")
        return Amendment(**d)

    def set_amendment_status(self, amendment_id: int, status: AmendmentStatus | str, *,
                             text: str | None = None, result_spec_hash: str | None = None) -> Amendment:
        with self.write() as c:
            c.execute(
                "UPDATE amendments SET status=?, text=COALESCE(?, text), "
                "result_spec_hash=COALESCE(?, result_spec_hash) WHERE id=?",
                (AmendmentStatus(status).value, text, result_spec_hash, amendment_id),
            )
        return self.amendment(amendment_id)

    def add_observation(self, o: Observation) -> None:
        with self.write() as c:
            c.execute(
                "INSERT INTO observations(run_id, idx, params_json, spec_hash, parent_spec_hash, campaign_id, "
                "viability_rate, interval_json, generations, accepted, rejected_reason, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (o.run_id, o.index, json.dumps(o.params, sort_keys=True), o.spec_hash, o.parent_spec_hash,
                 o.campaign_id, o.viability_rate, json.dumps(o.interval), o.generations, int(o.accepted),
                 o.rejected_reason, o.created_at),
            )

    def observations(self, run_id: str) -> list[Observation]:
        out = []
        for r in self.conn.execute("SELECT * FROM observations WHERE run_id=? ORDER BY idx", (run_id,)):
            d = dict(r)
            out.append(Observation(
                run_id=d["run_id"], index=d["idx"], params=json.loads(d["params_json"]),
                spec_hash=d["spec_hash"], parent_spec_hash=d["parent_spec_hash"], campaign_id=d["campaign_id"],
                viability_rate=d["viability_rate"],
                interval=tuple(json.loads(d["interval_json"])) if d["interval_json"] not in (None, "null") else None,
                generations=d["generations"], accepted=bool(d["accepted"]),
                rejected_reason=d["rejected_reason"], created_at=d["created_at"]))
        return out

    # --- reads for the application layer (core.app.reads) ---------------------------------

    @staticmethod
    def _where_campaign(campaign_id: str | None, prefix: str = "WHERE") -> tuple[str, tuple]:
        return (f" {prefix} campaign_id=?", (campaign_id,)) if campaign_id is not None else ("", ())

    def generation_fingerprint(self, campaign_id: str | None) -> tuple:
        """(count, max number, last update) of a campaign's generations — the ones its
        offspring bred and its fertility tests included: equal means unchanged."""
        where, args = self._where_campaign(campaign_id)
        row = self.conn.execute(f"SELECT COUNT(*), MAX(number), MAX(updated_at) FROM generations{where}",
                                args).fetchone()
        if campaign_id is None:
            bred = self.conn.execute("SELECT COUNT(*), MAX(created_at) FROM reproductions").fetchone()
        else:
            bred = self.conn.execute(
                "SELECT COUNT(*), MAX(g.updated_at) FROM generations g WHERE g.bred_by IN "
                "(SELECT number FROM generations WHERE campaign_id=?)", (campaign_id,)).fetchone()
            tests = self.conn.execute("SELECT COUNT(*) FROM reproductions WHERE campaign_id=?",
                                      (campaign_id,)).fetchone()
            bred = (*bred, tests[0])
        return (row[0], row[1], row[2], *bred)

    def lineage_rows(self, campaign_id: str | None) -> list[tuple]:
        """(number, parent, outcome, failure_stage, status, bred_by) ascending: the tree's
        input. A campaign's rows include the generations its offspring bred (their own
        campaign_id is NULL: they are not in its count, but they are in its tree)."""
        cols = "number, parent, outcome, failure_stage, status, bred_by"
        if campaign_id is None:
            cur = self.conn.execute(f"SELECT {cols} FROM generations ORDER BY number")
        else:
            cur = self.conn.execute(
                f"SELECT {cols} FROM generations WHERE campaign_id=? UNION ALL "
                f"SELECT {cols} FROM generations WHERE bred_by IN "
                "(SELECT number FROM generations WHERE campaign_id=?) ORDER BY number",
                (campaign_id, campaign_id))
        return [tuple(r) for r in cur]

    def fertility_statuses(self, campaign_id: str | None) -> dict[int, str]:
        """generation -> fertile | infertile | error, for the offspring that were asked to breed."""
        if campaign_id is None:
            cur = self.conn.execute("SELECT generation, status FROM reproductions")
        else:
            cur = self.conn.execute("SELECT generation, status FROM reproductions WHERE campaign_id=?",
                                    (campaign_id,))
        return {int(r[0]): str(r[1]) for r in cur}

    def summary_rows(self, campaign_id: str | None) -> list[tuple]:
        """(number, outcome, failure_stage, status, tests_run, tests_passed) ascending."""
        where, args = self._where_campaign(campaign_id)
        cur = self.conn.execute(
            "SELECT number, outcome, failure_stage, status, json_extract(report_json, '$.checks.test.tests_run'), "
            f"json_extract(report_json, '$.checks.test.tests_passed') FROM generations{where} ORDER BY number",
            args)
        return [tuple(r) for r in cur]

    def sealed_rows(self, campaign_id: str | None) -> list[tuple]:
        """(vector_pass_rate, vectors_total, sealed_pass_rate, sealed_total) of the judged
        generations whose report ran sealed vectors, ascending by number."""
        where, args = self._where_campaign(campaign_id, "AND")
        cur = self.conn.execute(
            "SELECT json_extract(fitness_json, '$.vector_pass_rate'), json_extract(fitness_json, "
            "'$.vectors_total'), json_extract(fitness_json, '$.sealed_pass_rate'), "
            "json_extract(fitness_json, '$.sealed_total') FROM generations "
            f"WHERE json_extract(fitness_json, '$.sealed_total') IS NOT NULL{where} ORDER BY number", args)
        return [tuple(r) for r in cur]

    def layer_rows(self, campaign_id: str | None) -> list[tuple]:
        """(number, vector_pass_rate, sealed_pass_rate, redteam_score) of the generations
        whose report ran visible vectors, sealed vectors or a red team, ascending by number."""
        where, args = self._where_campaign(campaign_id, "AND")
        cur = self.conn.execute(
            "SELECT number, json_extract(fitness_json, '$.vector_pass_rate'), "
            "json_extract(fitness_json, '$.sealed_pass_rate'), json_extract(fitness_json, '$.redteam_score') "
            "FROM generations WHERE (json_extract(fitness_json, '$.vector_pass_rate') IS NOT NULL OR "
            "json_extract(fitness_json, '$.sealed_pass_rate') IS NOT NULL OR "
            f"json_extract(fitness_json, '$.redteam_score') IS NOT NULL){where} ORDER BY number", args)
        return [tuple(r) for r in cur]

    def spend_by_generation(self, campaign_id: str | None) -> dict[int | None, tuple[int, float]]:
        where, args = self._where_campaign(campaign_id)
        rows = self.conn.execute(
            "SELECT generation, SUM(input_tokens + output_tokens + cache_creation_input_tokens + "
            f"cache_read_input_tokens), SUM(cost_usd) FROM llm_calls{where} GROUP BY generation", args).fetchall()
        return {r[0]: (int(r[1] or 0), float(r[2] or 0.0)) for r in rows}

    def spend_fingerprint(self, campaign_id: str | None) -> tuple[int, float]:
        where, args = self._where_campaign(campaign_id)
        row = self.conn.execute(f"SELECT COUNT(*), TOTAL(cost_usd) FROM llm_calls{where}", args).fetchone()
        return int(row[0]), float(row[1] or 0.0)

    def verdict_counts(self, campaign_id: str) -> dict[str, int]:
        """Outcomes of generations that carry a rig verdict (status set)."""
        rows = self.conn.execute(
            "SELECT outcome, COUNT(*) FROM generations WHERE campaign_id=? AND status IS NOT NULL "
            "GROUP BY outcome", (campaign_id,)).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def any_simulated_call(self, campaign_id: str | None) -> bool:
        where, args = self._where_campaign(campaign_id, "AND")
        return self.conn.execute(f"SELECT 1 FROM llm_calls WHERE simulated=1{where} LIMIT 1",
                                 args).fetchone() is not None

    def log_chunk_count(self, generation: int) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM log_chunks WHERE generation=?",
                                     (generation,)).fetchone()[0])

    def find_campaigns(self, text: str, *, run_kind: str, limit: int = 10) -> list[tuple[str, str, str]]:
        """(id, state, kind) of campaigns and runs whose id contains ``text`` (runs first)."""
        rows = self.conn.execute(
            "SELECT id, state, kind FROM campaigns WHERE id LIKE ? ORDER BY kind = ? DESC, created_at DESC "
            "LIMIT ?", (f"%{text}%", run_kind, limit)).fetchall()
        return [tuple(r) for r in rows]  # type: ignore[misc]

    def find_specs(self, text: str, limit: int = 10) -> list[tuple[str, str, str]]:
        """(hash, label, origin) of spec versions by label or hash prefix."""
        rows = self.conn.execute(
            "SELECT hash, label, origin FROM spec_versions WHERE label LIKE ? OR hash LIKE ? LIMIT ?",
            (f"%{text}%", f"sha256:{text}%", limit)).fetchall()
        return [tuple(r) for r in rows]  # type: ignore[misc]

    def find_generations(self, text: str, limit: int = 50) -> list[tuple[int, str, str | None, str | None]]:
        """(number, outcome, failure_stage, reason) of generations by reason text or stage, newest first."""
        rows = self.conn.execute(
            "SELECT number, outcome, failure_stage, reason FROM generations WHERE reason LIKE ? "
            "OR failure_stage = ? ORDER BY number DESC LIMIT ?", (f"%{text}%", text, limit)).fetchall()
        return [tuple(r) for r in rows]  # type: ignore[misc]

    # --- the change signal (schema M6) -----------------------------------------------------

    def commit_version(self) -> int:
        """Moves whenever *another* connection commits (PRAGMA data_version): free to poll."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def data_versions(self) -> dict[str, int]:
        """topic -> counter, bumped by triggers in the same transaction as the change."""
        return {r[0]: int(r[1]) for r in self.conn.execute("SELECT topic, version FROM data_versions")}

    # --- maintenance ----------------------------------------------------------------------

    def integrity_check(self) -> str:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]

    def info(self) -> dict[str, Any]:
        counts = {t: self.db[t].count for t in self.db.table_names() if t != "sqlite_sequence"}
        return {
            "path": str(self.path),
            "schema_version": self.schema_version,
            "journal_mode": self.conn.execute("PRAGMA journal_mode").fetchone()[0],
            "size_bytes": self.path.stat().st_size if self.path.exists() else 0,
            "tables": counts,
            "outcomes": self.outcome_counts(),
            "integrity": self.integrity_check(),
        }


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def _split_sql(script: str) -> list[str]:
    """Split on ';' at statement ends, keeping trigger bodies (BEGIN ... END;) whole."""
    stmts, buf, depth = [], [], 0
    for line in script.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        buf.append(line)
        upper = stripped.upper()
        if upper.endswith("BEGIN"):
            depth += 1
        if upper.startswith("END;") or upper == "END;":
            depth -= 1
        if stripped.endswith(";") and depth == 0:
            stmts.append("\n".join(buf))
            buf = []
    if buf:
        stmts.append("\n".join(buf))
    return stmts


def _reproduction_row(row: Any) -> dict[str, Any]:
    d = dict(row)
    d["request"] = json.loads(d.pop("request_json") or "{}")
    d["gateway"] = json.loads(d.pop("gateway_json") or "{}")
    return d

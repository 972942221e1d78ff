"""Every store read the TUI makes, in one place.

Rules (DESIGN §3, §11):
- Nothing here runs on the UI thread. Screens call these functions from thread workers
  and post the results back as messages.
- A ``Store`` (one SQLite connection) belongs to one thread. ``DataSource.store()`` keeps
  one per worker thread (Textual runs thread workers on a reused executor pool), so a
  read costs a query, not a connection plus a migration check.
- Results are plain immutable-ish values (dataclasses, tuples, dicts) that the UI thread
  may read freely once posted; the worker never touches them again.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from core.evolution.records import RUN_KIND
from core.home import db_path

if TYPE_CHECKING:
    from core.store import Store

BAD_OUTCOMES = ("failed", "timeout", "interrupted")
FINISHED_OUTCOMES = ("promoted", "failed", "timeout", "interrupted")
STAGES = ("manifest", "build", "test", "start", "health")
LIVE_STATES = ("pending", "running", "paused")
DEFAULT_MODEL = {"sim": "sim-1", "anthropic": "claude-sonnet-4-5", "replay": "replay"}


# --- small helpers --------------------------------------------------------------------


from core.engine.stats import wilson_interval as wilson  # noqa: E402  (one definition)


def short_hash(h: str | None, n: int = 12) -> str:
    if not h:
        return "-"
    return h.removeprefix("sha256:")[:n]


def human_tokens(n: int | float | None) -> str:
    if n is None:
        return "-"
    n = float(n)
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return f"{int(n)}"


def human_ms(ms: int | float | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{int(ms)} ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f} s"
    return f"{int(s // 60)}m{int(s % 60):02d}s"


# --- value objects ------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignInfo:
    id: str
    kind: str
    state: str
    reason: str | None
    spec_hash: str
    settings: dict[str, Any]
    created_at: str
    updated_at: str
    counts: dict[str, int]
    engine_alive: bool
    engine_pid: int | None
    tokens: int
    cost_usd: float
    spec_label: str = ""
    judged: int = 0  # promoted or failed with a rig verdict: the rate's denominator (core's)

    @property
    def provider(self) -> str:
        return str(self.settings.get("provider", "?"))

    @property
    def model(self) -> str:
        return str(self.settings.get("model", "?"))

    @property
    def target(self) -> int:
        return int(self.settings.get("generations") or 0)

    @property
    def finished(self) -> int:
        return sum(self.counts.get(o, 0) for o in FINISHED_OUTCOMES)

    @property
    def done(self) -> int:
        """Generations that count towards the target: the engine redoes interrupted ones."""
        return self.finished - self.counts.get("interrupted", 0)

    @property
    def progress(self) -> str:
        """"done/target" as the engine counts (interrupted generations are redone)."""
        return f"{self.done}/{self.target}" if self.target else f"{self.finished}/{self.total}"

    @property
    def viability(self) -> float | None:
        """The campaign's viability rate as ``cambrian campaign status`` reports it."""
        return self.viable / self.judged if self.judged else None

    @property
    def viable(self) -> int:
        return self.counts.get("promoted", 0)

    @property
    def failed(self) -> int:
        return sum(self.counts.get(o, 0) for o in BAD_OUTCOMES)

    @property
    def running(self) -> int:
        return self.counts.get("in_progress", 0) + self.counts.get("tested", 0)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def simulated(self) -> bool:
        return self.provider == "sim"

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES


@dataclass
class LineageModel:
    """The generation tree of one campaign (or of everything), built off the UI thread.

    The display flattens each line of descent: a generation's *heir* (the child that
    continues the longest promoted line) is shown as its next sibling, not nested, so a
    10k-generation campaign does not indent 6000 levels deep. The other children (failed
    attempts, side branches) nest under their parent.
    """

    campaign_id: str | None
    numbers: list[int]
    parent: dict[int, int | None]
    outcome: dict[int, str]
    stage: dict[int, str | None]
    children: dict[int, list[int]]
    heir: dict[int, int]
    spine: list[int]
    signature: tuple
    counts: Counter = field(default_factory=Counter)

    def offspring(self, n: int) -> list[int]:
        """Children shown nested under n (everything but its heir)."""
        h = self.heir.get(n)
        return [c for c in self.children.get(n, ()) if c != h]

    def spine_position(self, n: int) -> int | None:
        """Index in the flattened top-level list of the ancestor on it (or n itself)."""
        idx = self._spine_index
        seen = 0
        while n is not None and seen < 1_000_000:
            if n in idx:
                return idx[n]
            n = self.parent.get(n)
            seen += 1
        return None

    def path_to(self, n: int) -> list[int]:
        """Generations from the spine ancestor down to n (inclusive, spine first)."""
        out: list[int] = []
        cur: int | None = n
        while cur is not None and cur in self.parent:
            out.append(cur)
            if cur in self._spine_index:
                break
            cur = self.parent.get(cur)
        return list(reversed(out))

    @property
    def _spine_index(self) -> dict[int, int]:
        idx = self.__dict__.get("_spine_idx")
        if idx is None:
            idx = {n: i for i, n in enumerate(self.spine)}
            self.__dict__["_spine_idx"] = idx
        return idx


@dataclass(frozen=True)
class SeriesPoint:
    number: int
    rate: float
    lo: float
    hi: float


@dataclass
class CampaignSummary:
    campaign_id: str | None
    viability_rate: float | None
    viability_interval: tuple[float, float] | None
    generations: int
    finished: int
    viable: int
    failed: int
    running: int
    tokens: int
    cost_usd: float
    failure_stages: dict[str, int]
    cost_per_viable: float | None
    # chart series (downsampled): x = generation number
    trend: list[SeriesPoint]
    cost_x: list[int]
    cost_cum: list[float]
    tokens_cum: list[int]
    tests_x: list[int]
    tests_run: list[int]
    tests_passed: list[int]
    signature: tuple = ()


@dataclass(frozen=True)
class StatusInfo:
    campaign: CampaignInfo | None
    engines_alive: int
    any_simulated: bool
    home: str


@dataclass
class GenerationDetail:
    number: int
    parent: int | None
    campaign_id: str | None
    spec_hash: str
    outcome: str
    status: str | None
    failure_stage: str | None
    reason: str | None
    attempt: int
    artifact_hash: str | None
    created_at: str
    updated_at: str
    report: dict[str, Any] | None
    files: dict[str, bytes]
    parent_artifact: str | None
    parent_files: dict[str, bytes] | None
    llm_calls: list[dict[str, Any]]
    log_lines: int = 0
    diffs: list["FileDiff"] | None = None  # against the parent's artifact (None: no parent artifact)

    @property
    def diagnostics(self) -> dict[str, Any]:
        return (self.report or {}).get("diagnostics") or {}

    @property
    def simulated(self) -> bool:
        return any(c.get("simulated") for c in self.llm_calls)


@dataclass(frozen=True)
class FileDiff:
    path: str
    status: str  # added | removed | modified | same
    added: int
    removed: int
    lines: tuple[str, ...]  # unified diff lines (without trailing newlines)


@dataclass(frozen=True)
class SpecVersionInfo:
    hash: str
    parent_hash: str | None
    origin: str
    label: str
    created_at: str
    shipped_path: str | None = None

    @property
    def title(self) -> str:
        if self.label:
            return self.label
        if self.shipped_path:
            return Path(self.shipped_path).stem
        return short_hash(self.hash)


@dataclass(frozen=True)
class SpecDoc:
    """A spec text with the structure the diff view marks."""

    hash: str
    title: str
    text: str
    lines: tuple[str, ...]
    # 0-based line index -> section name for the line that starts a section
    section_starts: dict[int, str]
    # 0-based line index -> section name, for every line
    section_of: tuple[str, ...]
    # 0-based (start, end) inclusive ranges with the FROZEN block name
    frozen: tuple[tuple[int, int, str], ...]


@dataclass(frozen=True)
class SearchHit:
    kind: str  # generation | campaign | spec | evolution
    key: str
    label: str
    detail: str


# --- the data source ---------------------------------------------------------------------


class DataSource:
    """Thread-safe access to one Cambrian home. Call from worker threads only."""

    def __init__(self, home: Path, spec_dir: Path | None = None):
        self.home = Path(home)
        self.db = db_path(self.home)
        self.spec_dir = spec_dir
        self._local = threading.local()
        self._stores: list[tuple[threading.Thread, "Store"]] = []
        self._lock = threading.Lock()
        self._artifact_cache: dict[str, dict[str, bytes]] = {}

    # connections ---------------------------------------------------------------------

    def store(self) -> "Store":
        st = getattr(self._local, "store", None)
        if st is None:
            # imported here, on a worker thread: core.store pulls in pydantic and
            # sqlite-utils (~0.4 s) which must not delay the first frame
            from core.store import Store

            st = Store.open(self.db)
            self._local.store = st
            with self._lock:
                self._stores.append((threading.current_thread(), st))
        return st

    def close(self) -> None:
        """Close every connection no other thread is using. A worker thread may still be in
        a query when the app unmounts, and closing a connection under a running statement
        crashes the interpreter (sqlite3, Python 3.11): those are interrupted instead (the
        query fails, the worker reports it) and closed when their thread ends."""
        with self._lock:
            stores, self._stores = self._stores, []
        me = threading.current_thread()
        for thread, st in stores:
            try:
                if thread is me or not thread.is_alive():
                    st.close()
                else:
                    st.conn.interrupt()
            except Exception:
                pass

    def data_version(self) -> int:
        """Changes whenever another connection commits (cheap; for polling)."""
        return int(self.store().conn.execute("PRAGMA data_version").fetchone()[0])

    # campaigns ----------------------------------------------------------------------------

    def campaigns(self) -> list[CampaignInfo]:
        st = self.store()
        labels = {v.hash: v.label for v in st.spec_versions()}
        # the rate's denominator, as core.engine.summary counts it: one query for every campaign
        judged = dict(st.conn.execute(
            "SELECT campaign_id, COUNT(*) FROM generations WHERE status IS NOT NULL "
            "AND outcome IN ('promoted','failed') GROUP BY campaign_id").fetchall())
        out = []
        for c in st.campaigns():
            if c["kind"] == RUN_KIND:
                continue  # an evolution run is not a campaign (the Evolution screen lists them)
            lease = st.lease(c["id"])
            alive = st.lease_alive(c["id"])
            tokens, dollars = st.spend(c["id"])
            out.append(CampaignInfo(
                id=c["id"], kind=c["kind"], state=c["state"], reason=c.get("reason"),
                spec_hash=c["spec_hash"], settings=c["settings"], created_at=c["created_at"],
                updated_at=c["updated_at"], counts=st.outcome_counts(campaign_id=c["id"]),
                engine_alive=alive, engine_pid=int(lease["pid"]) if (lease and alive) else None,
                tokens=tokens, cost_usd=dollars, spec_label=labels.get(c["spec_hash"], ""),
                judged=judged.get(c["id"], 0),
            ))
        return out

    def campaign(self, campaign_id: str) -> CampaignInfo | None:
        for c in self.campaigns():
            if c.id == campaign_id:
                return c
        return None

    def status(self, campaign_id: str | None) -> StatusInfo:
        st = self.store()
        camps = self.campaigns()
        alive = sum(1 for c in camps if c.engine_alive)
        current = next((c for c in camps if c.id == campaign_id), None)
        if current is not None:
            simulated = current.simulated or bool(st.conn.execute(
                "SELECT 1 FROM llm_calls WHERE campaign_id=? AND simulated=1 LIMIT 1", (current.id,)).fetchone())
        else:
            simulated = bool(st.conn.execute("SELECT 1 FROM llm_calls WHERE simulated=1 LIMIT 1").fetchone()) or any(
                c.simulated for c in camps)
        return StatusInfo(campaign=current, engines_alive=alive, any_simulated=simulated, home=str(self.home))

    def send_command(self, campaign_id: str, command: str) -> int:
        if command not in ("pause", "resume", "abort"):
            raise ValueError(f"unknown command {command!r}")
        return self.store().send_command(campaign_id, command)

    # lineage --------------------------------------------------------------------------------

    def generation_signature(self, campaign_id: str | None) -> tuple:
        """Cheap fingerprint of the generations of a campaign: skip reloads when equal."""
        conn = self.store().conn
        if campaign_id is None:
            row = conn.execute("SELECT COUNT(*), MAX(number), MAX(updated_at) FROM generations").fetchone()
        else:
            row = conn.execute(
                "SELECT COUNT(*), MAX(number), MAX(updated_at) FROM generations WHERE campaign_id=?",
                (campaign_id,)).fetchone()
        return (campaign_id, row[0], row[1], row[2])

    def lineage(self, campaign_id: str | None) -> LineageModel:
        conn = self.store().conn
        sig = self.generation_signature(campaign_id)
        if campaign_id is None:
            cur = conn.execute("SELECT number, parent, outcome, failure_stage FROM generations ORDER BY number")
        else:
            cur = conn.execute(
                "SELECT number, parent, outcome, failure_stage FROM generations WHERE campaign_id=? "
                "ORDER BY number", (campaign_id,))
        rows = cur.fetchall()
        return build_lineage(campaign_id, [tuple(r) for r in rows], sig)

    def failed_numbers(self, campaign_id: str | None) -> list[int]:
        conn = self.store().conn
        q = ("SELECT number FROM generations WHERE (outcome IN ('failed','timeout','interrupted') "
             "OR status='non-viable')")
        args: tuple = ()
        if campaign_id is not None:
            q += " AND campaign_id=?"
            args = (campaign_id,)
        return [r[0] for r in conn.execute(q + " ORDER BY number", args)]

    def latest_running(self, campaign_id: str | None) -> int | None:
        conn = self.store().conn
        q = "SELECT MAX(number) FROM generations WHERE outcome IN ('in_progress','tested')"
        args: tuple = ()
        if campaign_id is not None:
            q += " AND campaign_id=?"
            args = (campaign_id,)
        row = conn.execute(q, args).fetchone()
        if row and row[0] is not None:
            return int(row[0])
        return None

    def generation_campaign(self, number: int) -> str | None:
        row = self.store().conn.execute("SELECT campaign_id FROM generations WHERE number=?", (number,)).fetchone()
        if row is None:
            raise KeyError(f"no generation {number}")
        return row[0]

    def generation_updated_at(self, number: int) -> str | None:
        row = self.store().conn.execute("SELECT updated_at FROM generations WHERE number=?", (number,)).fetchone()
        return row[0] if row else None

    def generation_exists(self, number: int) -> bool:
        return self.store().conn.execute("SELECT 1 FROM generations WHERE number=?", (number,)).fetchone() is not None

    # summary and charts ------------------------------------------------------------------------

    def summary_signature(self, campaign_id: str | None) -> tuple:
        conn = self.store().conn
        if campaign_id is None:
            row = conn.execute("SELECT COUNT(*), TOTAL(cost_usd) FROM llm_calls").fetchone()
        else:
            row = conn.execute("SELECT COUNT(*), TOTAL(cost_usd) FROM llm_calls WHERE campaign_id=?",
                               (campaign_id,)).fetchone()
        return self.generation_signature(campaign_id) + (row[0], round(float(row[1] or 0), 6))

    def summary(self, campaign_id: str | None, max_points: int = 240) -> CampaignSummary:
        """Headline figures and chart series. The viability rate follows the engine's
        definition (core.engine.summary): judged = promoted or failed with a rig verdict."""
        st = self.store()
        conn = st.conn
        signature = self.summary_signature(campaign_id)
        where, args = ("WHERE campaign_id=?", (campaign_id,)) if campaign_id is not None else ("", ())
        rows = conn.execute(
            "SELECT number, outcome, failure_stage, status, json_extract(report_json, '$.checks.test.tests_run'), "
            f"json_extract(report_json, '$.checks.test.tests_passed') FROM generations {where} ORDER BY number",
            args).fetchall()
        spend_rows = conn.execute(
            "SELECT generation, SUM(input_tokens + output_tokens + cache_creation_input_tokens + "
            "cache_read_input_tokens), SUM(cost_usd) FROM llm_calls "
            + ("WHERE campaign_id=? " if campaign_id is not None else "") + "GROUP BY generation",
            args).fetchall()
        per_gen_spend = {r[0]: (int(r[1] or 0), float(r[2] or 0.0)) for r in spend_rows}
        tokens = sum(v[0] for v in per_gen_spend.values())
        cost = sum(v[1] for v in per_gen_spend.values())

        judged = viable = failed = running = finished = 0
        stages: Counter = Counter()
        trend: list[SeriesPoint] = []
        cost_x: list[int] = []
        cost_cum: list[float] = []
        tokens_cum: list[int] = []
        tests_x: list[int] = []
        tests_run: list[int] = []
        tests_passed: list[int] = []
        c_cost, c_tok = 0.0, 0
        for number, outcome, stage, status, t_run, t_pass in rows:
            if outcome in FINISHED_OUTCOMES:
                finished += 1
                if outcome != "promoted":
                    failed += 1
                    if outcome in ("failed", "timeout"):
                        stages[stage or "unknown"] += 1
                if outcome in ("promoted", "failed") and status is not None:
                    judged += 1
                    viable += outcome == "promoted"
                    lo, hi = wilson(viable, judged)
                    trend.append(SeriesPoint(number, viable / judged, lo, hi))
            else:
                running += 1
            tk, dl = per_gen_spend.get(number, (0, 0.0))
            c_tok += tk
            c_cost += dl
            cost_x.append(number)
            cost_cum.append(c_cost)
            tokens_cum.append(c_tok)
            if t_run is not None:
                tests_x.append(number)
                tests_run.append(int(t_run))
                tests_passed.append(int(t_pass or 0))
        promoted = sum(1 for r in rows if r[1] == "promoted")
        return CampaignSummary(
            campaign_id=campaign_id, viability_rate=(viable / judged) if judged else None,
            viability_interval=wilson(viable, judged) if judged else None,
            generations=len(rows), finished=finished, viable=promoted, failed=failed, running=running,
            tokens=tokens, cost_usd=cost, failure_stages=dict(stages.most_common()),
            cost_per_viable=(cost / promoted) if promoted else None,
            trend=downsample(trend, max_points),
            cost_x=downsample(cost_x, max_points), cost_cum=downsample(cost_cum, max_points),
            tokens_cum=downsample(tokens_cum, max_points),
            tests_x=downsample(tests_x, max_points), tests_run=downsample(tests_run, max_points),
            tests_passed=downsample(tests_passed, max_points),
            signature=signature,
        )

    # one generation ----------------------------------------------------------------------------

    def artifact_files(self, artifact_hash: str | None) -> dict[str, bytes]:
        if not artifact_hash:
            return {}
        with self._lock:
            cached = self._artifact_cache.get(artifact_hash)
        if cached is not None:
            return cached
        files = self.store().artifact_files(artifact_hash)
        with self._lock:
            if len(self._artifact_cache) > 16:
                self._artifact_cache.pop(next(iter(self._artifact_cache)))
            self._artifact_cache[artifact_hash] = files
        return files

    def generation_detail(self, number: int) -> GenerationDetail:
        st = self.store()
        g = st.generation(number)
        report = st.report(number)
        files = self.artifact_files(g.artifact_hash)
        parent_artifact = None
        parent_files = None
        if g.parent is not None:
            try:
                parent_artifact = st.generation(g.parent).artifact_hash
            except KeyError:
                parent_artifact = None
            if parent_artifact:
                parent_files = self.artifact_files(parent_artifact)
        calls = [c.model_dump() for c in st.llm_calls(generation=number)]
        nlog = st.conn.execute("SELECT COUNT(*) FROM log_chunks WHERE generation=?", (number,)).fetchone()[0]
        return GenerationDetail(
            number=g.number, parent=g.parent, campaign_id=g.campaign_id, spec_hash=g.spec_hash,
            outcome=g.outcome.value, status=g.status, failure_stage=g.failure_stage, reason=g.reason,
            attempt=g.attempt, artifact_hash=g.artifact_hash, created_at=g.created_at, updated_at=g.updated_at,
            report=report, files=files, parent_artifact=parent_artifact, parent_files=parent_files,
            llm_calls=calls, log_lines=int(nlog),
            diffs=file_diffs(parent_files, files) if parent_files is not None else None,
        )

    def log_chunks(self, number: int, after_id: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        return self.store().log_chunks(number, after_id=after_id, limit=limit)

    def log_tail(self, number: int, after_id: int = 0, max_chunks: int = 4000) -> tuple[list[tuple[str, str]], int]:
        """(stream, line) pairs of every chunk after ``after_id`` (bounded), and the last id."""
        st = self.store()
        lines: list[tuple[str, str]] = []
        last = after_id
        fetched = 0
        while fetched < max_chunks:
            chunks = st.log_chunks(number, after_id=last, limit=500)
            if not chunks:
                break
            for ch in chunks:
                stream = ch["stream"]
                for line in ch["text"].splitlines():
                    lines.append((stream, line))
                last = ch["id"]
            fetched += len(chunks)
            if len(chunks) < 500:
                break
        return lines, last

    # specs -------------------------------------------------------------------------------------

    def spec_versions(self) -> list[SpecVersionInfo]:
        out = [SpecVersionInfo(v.hash, v.parent_hash, v.origin.value, v.label, v.created_at)
               for v in self.store().spec_versions()]
        known = {v.hash for v in out}
        for path in self.shipped_specs():
            from rig.hashing import sha256_hex

            h = sha256_hex(path.read_bytes())
            if h not in known:
                out.append(SpecVersionInfo(h, None, "shipped", path.stem, "", shipped_path=str(path)))
        return out

    def shipped_specs(self) -> list[Path]:
        if self.spec_dir is None or not self.spec_dir.is_dir():
            return []
        return sorted(p for p in self.spec_dir.glob("*.md") if p.name.lower() != "readme.md")

    def spec_text(self, version: SpecVersionInfo | str) -> str:
        if isinstance(version, SpecVersionInfo) and version.shipped_path:
            return Path(version.shipped_path).read_text(encoding="utf-8")
        h = version.hash if isinstance(version, SpecVersionInfo) else version
        return self.store().spec_text(h)

    def spec_doc(self, version: SpecVersionInfo) -> SpecDoc:
        return make_spec_doc(version.hash, version.title, self.spec_text(version))

    # search -------------------------------------------------------------------------------------

    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        q = query.strip()
        if not q:
            return []
        conn = self.store().conn
        hits: list[SearchHit] = []
        m = re.fullmatch(r"#?\s*(\d+)", q)
        if m:
            n = int(m.group(1))
            row = conn.execute("SELECT number, outcome, campaign_id FROM generations WHERE number=?", (n,)).fetchone()
            if row:
                hits.append(SearchHit("generation", str(n), f"#{n}", f"{row[1]} · {row[2] or 'no campaign'}"))
        like = f"%{q}%"
        # runs before their (many) campaigns, which share the run's id as a prefix
        for r in conn.execute("SELECT id, state, kind FROM campaigns WHERE id LIKE ? "
                              "ORDER BY kind = ? DESC, created_at DESC LIMIT 10", (like, RUN_KIND)):
            if r[2] == RUN_KIND:
                hits.append(SearchHit("evolution", r[0], r[0], f"evolution run · {r[1]}"))
            else:
                hits.append(SearchHit("campaign", r[0], r[0], f"campaign · {r[1]}"))
        for r in conn.execute("SELECT hash, label, origin FROM spec_versions WHERE label LIKE ? OR hash LIKE ? "
                              "LIMIT 10", (like, f"sha256:{q}%")):
            hits.append(SearchHit("spec", r[0], r[1] or short_hash(r[0]), f"spec · {r[2]} · {short_hash(r[0])}"))
        for r in conn.execute(
                "SELECT number, outcome, failure_stage, reason FROM generations WHERE reason LIKE ? OR failure_stage = ? "
                "ORDER BY number DESC LIMIT ?", (like, q, limit)):
            hits.append(SearchHit("generation", str(r[0]), f"#{r[0]}",
                                  f"{r[1]} · {r[2] or '-'} · {(r[3] or '')[:60]}"))
        seen: set[tuple[str, str]] = set()
        out = []
        for h in hits:
            if (h.kind, h.key) not in seen:
                seen.add((h.kind, h.key))
                out.append(h)
        return out[:limit]


# --- pure functions (testable without a database) ----------------------------------------


def pick_campaign(campaigns: list[CampaignInfo]) -> str | None:
    """What the TUI attaches to on start: a campaign whose engine runs, else the newest."""
    live = [c for c in campaigns if c.engine_alive] or [c for c in campaigns if c.state == "running"]
    if live:
        return live[0].id
    return campaigns[0].id if campaigns else None


def downsample(seq: list, max_points: int) -> list:
    n = len(seq)
    if n <= max_points or max_points < 2:
        return list(seq)
    step = (n - 1) / (max_points - 1)
    return [seq[round(i * step)] for i in range(max_points)]


def build_lineage(campaign_id: str | None, rows: list[tuple], signature: tuple = ()) -> LineageModel:
    """rows: (number, parent, outcome, failure_stage) ascending by number."""
    numbers = [r[0] for r in rows]
    parent: dict[int, int | None] = {}
    outcome: dict[int, str] = {}
    stage: dict[int, str | None] = {}
    intern: dict[str, str] = {}  # one str per distinct outcome/stage, not one per row
    for r in rows:
        parent[r[0]] = r[1]
        outcome[r[0]] = intern.setdefault(r[2], r[2])
        st = r[3] if len(r) > 3 else None
        if st and st != "none":
            stage[r[0]] = intern.setdefault(st, st)
    children: dict[int, list[int]] = {}
    roots: list[int] = []
    for n in numbers:
        p = parent[n]
        if p is None or p not in parent or p == n:
            roots.append(n)
        else:
            children.setdefault(p, []).append(n)
    # height of each subtree; children are (almost always) numbered after their parent,
    # so one pass in descending order settles it. A pass over a cycle-free graph.
    height: dict[int, int] = {}
    for n in reversed(numbers):
        kids = children.get(n)
        height[n] = 1 + (max((height.get(c, 1) for c in kids), default=0) if kids else 0)
    heir: dict[int, int] = {}
    for n, kids in children.items():
        best = None
        best_key = None
        for c in kids:
            if outcome.get(c) != "promoted" and c not in children:
                continue
            key = (height.get(c, 1), outcome.get(c) == "promoted", -c)
            if best_key is None or key > best_key:
                best, best_key = c, key
        if best is not None:
            heir[n] = best
    spine: list[int] = []
    for r in roots:
        cur: int | None = r
        guard = 0
        while cur is not None and guard <= len(numbers):
            spine.append(cur)
            cur = heir.get(cur)
            guard += 1
    counts = Counter(outcome.values())
    return LineageModel(campaign_id=campaign_id, numbers=numbers, parent=parent, outcome=outcome, stage=stage,
                        children=children, heir=heir, spine=spine, signature=signature, counts=counts)


_HEADING_RE = re.compile(r"^ {0,3}(#{1,2})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_FENCE_RE = re.compile(r"^[ \t]*(`{3,}|~{3,})")


def make_spec_doc(h: str, title: str, text: str) -> SpecDoc:
    lines = tuple(text.splitlines())
    section_starts: dict[int, str] = {}
    frozen: list[tuple[int, int, str]] = []
    try:
        from core.spec import find_frozen, parse_spec

        try:
            spec = parse_spec(text)
            for s in spec.sections:
                section_starts[s.start_line - 1] = s.name
        except Exception:
            section_starts = _scan_headings(lines)
        blocks, _issues = find_frozen(text)
        frozen = [(b.start_line - 1, b.end_line - 1, b.name) for b in blocks]
    except Exception:
        section_starts = _scan_headings(lines)
        frozen = _scan_frozen(lines)
    section_of: list[str] = []
    current = ""
    for i in range(len(lines)):
        if i in section_starts:
            current = section_starts[i]
        section_of.append(current)
    return SpecDoc(hash=h, title=title, text=text, lines=lines, section_starts=section_starts,
                   section_of=tuple(section_of), frozen=tuple(frozen))


def _scan_headings(lines: Iterable[str]) -> dict[int, str]:
    out: dict[int, str] = {}
    fence = None
    for i, line in enumerate(lines):
        m = _FENCE_RE.match(line)
        if m:
            if fence is None:
                fence = m.group(1)[0]
            elif m.group(1)[0] == fence:
                fence = None
            continue
        if fence is None:
            h = _HEADING_RE.match(line)
            if h and len(h.group(1)) == 2:
                out[i] = h.group(2)
    return out


_FROZEN_RE = re.compile(r"^[ \t]*<!--[ \t]*(BEGIN|END)[ \t]+FROZEN:[ \t]*([a-z0-9-]+)[ \t]*-->")


def _scan_frozen(lines: Iterable[str]) -> list[tuple[int, int, str]]:
    out, open_ = [], {}
    for i, line in enumerate(lines):
        m = _FROZEN_RE.match(line)
        if m:
            if m.group(1) == "BEGIN":
                open_[m.group(2)] = i
            elif m.group(2) in open_:
                out.append((open_.pop(m.group(2)), i, m.group(2)))
    return out


def _decode(data: bytes) -> list[str] | None:
    if b"\0" in data[:4096]:
        return None
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None


def file_diffs(old: dict[str, bytes] | None, new: dict[str, bytes], context: int = 3) -> list[FileDiff]:
    """Per-file unified diffs of an artifact against its parent's (changed files first)."""
    old = old or {}
    out: list[FileDiff] = []
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path), new.get(path)
        if a == b:
            out.append(FileDiff(path, "same", 0, 0, ()))
            continue
        status = "added" if a is None else "removed" if b is None else "modified"
        la = _decode(a) if a is not None else []
        lb = _decode(b) if b is not None else []
        if la is None or lb is None:
            out.append(FileDiff(path, status, 0, 0, ("(binary file differs)",)))
            continue
        lines = tuple(difflib.unified_diff(la, lb, f"parent/{path}", f"this/{path}", n=context, lineterm=""))
        added = sum(1 for l in lines if l.startswith("+") and not l.startswith("+++"))
        removed = sum(1 for l in lines if l.startswith("-") and not l.startswith("---"))
        out.append(FileDiff(path, status, added, removed, lines))
    order = {"modified": 0, "added": 1, "removed": 2, "same": 3}
    out.sort(key=lambda d: (order[d.status], d.path))
    return out


def report_failures(report: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every failed item of a report in stage order: stages, then tests, vectors, contracts.

    Each: {kind: stage|test|vector|contract, stage, name, error, location}.
    """
    if not report:
        return []
    out: list[dict[str, Any]] = []
    checks = report.get("checks") or {}
    diag = report.get("diagnostics") or {}
    for stage in list(STAGES) + [s for s in checks if s not in STAGES]:
        chk = checks.get(stage)
        if chk is None:
            continue
        if not chk.get("passed", False):
            out.append({"kind": "stage", "stage": stage, "name": stage,
                        "error": diag.get("summary", "") if diag.get("stage") == stage else "",
                        "location": ""})
            if diag.get("stage") == stage:
                for f in diag.get("failures") or []:
                    loc = f.get("file") or ""
                    if loc and f.get("line") is not None:
                        loc = f"{loc}:{f['line']}"
                    out.append({"kind": "test", "stage": stage, "name": f.get("test", "?"),
                                "error": f.get("error", ""), "location": loc})
        for kind in ("vectors", "contracts"):
            for r in chk.get(kind) or []:
                if not r.get("passed", True):
                    out.append({"kind": kind[:-1], "stage": stage, "name": r.get("name", "?"),
                                "error": r.get("error") or (f"status {r.get('status')}" if r.get("status") else ""),
                                "location": ""})
    if not out and diag:
        out.append({"kind": "stage", "stage": diag.get("stage", "?"), "name": diag.get("stage", "?"),
                    "error": diag.get("summary", ""), "location": ""})
    return out


def jsonable(v: Any) -> str:
    return json.dumps(v, sort_keys=True, default=str)

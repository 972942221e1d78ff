"""Every read the TUI and the command line make, in one place (no writes here).

A ``Store`` (one SQLite connection) belongs to one thread: ``Reader.store()`` keeps one
per calling thread (the TUI calls from reused worker threads; the CLI from its main
thread), so a read costs a query, not a connection and a migration check.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.app.lineage import build_lineage, downsample
from core.app.models import (
    FINISHED_OUTCOMES,
    AmendmentPreview,
    AmendmentView,
    CampaignSummary,
    CampaignView,

    GenerationDetail,
    LineageModel,
    RunRow,
    SearchHit,
    SeriesPoint,
    SpecChoice,
    SpecDoc,
    SpecVersionView,
    StatusView,
    short_hash,
)
from core.app.reports import check_rows, file_diffs
from core.app.specdoc import make_spec_doc
from core.engine.stats import wilson_interval
from core.engine.summary import generalisation
from core.examiner.service import campaign_examiner
from core.redteam.service import campaign_redteam
from core.evolution.kinds import CHILD_KINDS, RUN_KIND
from core.home import db_path

# core.distill's modules import each other: two screens' workers importing them at once can
# meet a half-initialised module (ImportError), so their first import is taken one at a time
_DISTILL_IMPORT = threading.Lock()

if TYPE_CHECKING:
    from core.app.evolution_views import EvolutionRun
    from core.store import Store

STATUS_ORDER = {"pending": 0, "edited": 1, "accepted": 2, "rejected": 3}


class Reader:
    """Thread-safe reads of one Cambrian home."""

    def __init__(self, home: Path, spec_dir: Path | None = None):
        self.home = Path(home)
        self.db = db_path(self.home)
        self.spec_dir = spec_dir
        self._local = threading.local()
        self._stores: list[tuple[threading.Thread, "Store"]] = []
        self._lock = threading.Lock()
        self._artifact_cache: dict[str, dict[str, bytes]] = {}

    # connections ------------------------------------------------------------------------------

    def store(self) -> "Store":
        st = getattr(self._local, "store", None)
        if st is None:
            # imported here: core.store pulls in pydantic and sqlite-utils (~0.4 s), which must
            # not delay the TUI's first frame (this runs on a worker thread)
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
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    # the change signal -------------------------------------------------------------------------

    def commit_version(self) -> int:
        return self.store().commit_version()

    def data_versions(self) -> dict[str, int]:
        return self.store().data_versions()

    # campaigns ---------------------------------------------------------------------------------

    def campaigns(self) -> list[CampaignView]:
        """Campaigns newest first (evolution runs are listed by ``evolution_runs``)."""
        st = self.store()
        labels = {v.hash: v.label for v in st.spec_versions()}
        out = []
        for c in st.campaigns():
            if c["kind"] == RUN_KIND:
                continue
            out.append(self._campaign_view(st, c, labels))
        return out

    def _campaign_view(self, st: "Store", c: dict[str, Any], labels: dict[str, str]) -> CampaignView:
        lease = st.lease(c["id"])
        alive = st.lease_alive(c["id"])
        tokens, dollars = st.spend(c["id"])
        counts = st.outcome_counts(campaign_id=c["id"])
        judged = judged_count(st, c["id"])
        return CampaignView(
            id=c["id"], kind=c["kind"], state=c["state"], stored_reason=c.get("reason"),
            spec_hash=c["spec_hash"], settings=c["settings"], created_at=c["created_at"],
            updated_at=c["updated_at"], counts=counts, engine_alive=alive,
            engine_pid=int(lease["pid"]) if (lease and alive) else None, tokens=tokens, cost_usd=dollars,
            spec_label=labels.get(c["spec_hash"], ""), judged=judged, evolution_child=c["kind"] in CHILD_KINDS,
            unpriced_calls=st.unpriced_calls(c["id"]))

    def campaign(self, campaign_id: str) -> CampaignView:
        st = self.store()
        c = st.campaign(campaign_id)  # KeyError: no such campaign
        if c["kind"] == RUN_KIND:
            raise KeyError(f"{campaign_id!r} is an evolution run, not a campaign")
        labels = {v.hash: v.label for v in st.spec_versions()}
        return self._campaign_view(st, c, labels)

    def newest_id(self, kind: str) -> str | None:
        rows = self.store().campaigns(kind=kind)
        return rows[0]["id"] if rows else None

    def campaign_status(self, campaign_id: str) -> dict[str, Any]:
        """``cambrian campaign status --json``: {id, state, engine_pid, spec_hash, provider,
        generations: [...], summary: {...}} (keys may be added, never renamed)."""
        from core.engine.summary import campaign_summary

        st = self.store()
        c = self.campaign(campaign_id)
        s = campaign_summary(st, campaign_id)
        return {
            "id": c.id, "state": c.state, "reason": c.reason, "engine_pid": c.engine_pid,
            "engine_alive": c.engine_alive, "spec_hash": c.spec_hash, "provider": c.provider,
            "simulated": c.simulated, "settings": c.settings, "progress": c.progress,
            "generations": [
                {"generation": g.number, "parent": g.parent, "outcome": g.outcome.value, "status": g.status,
                 "failure_stage": g.failure_stage, "attempt": g.attempt, "reason": g.reason}
                for g in st.generations(campaign_id)
            ],
            "summary": {k: s[k] for k in ("viability_rate", "viability_interval", "generations", "viable",
                                          "tokens", "tokens_recorded", "cost_usd", "failure_stages",
                                          "judged", "outcomes", "tokens_per_viable", "cost_per_viable",
                                          "trend", "unpriced_calls", "fertility", "sealed",
                                          "examiner", "examiner_pass_rate", "redteam")},
            "imported": c.kind == "import",
            # the home's rig hosts (core/hosts): slots, facts, and why a drained one is out
            "hosts": self.rig_hosts(),
        }

    def rig_hosts(self) -> list[dict[str, Any]]:
        from core.app.hosts import host_rows
        from core.hosts.config import HostError

        if not (self.home / "hosts.json").exists():
            return []
        try:
            return host_rows(self.home)
        except HostError as exc:
            return [{"name": "?", "state": "error", "drained": str(exc)}]

    def examiner_probes(self, spec_ref: str) -> dict[str, Any]:
        """``cambrian examiner show``: the spec's examiner probe sets, each probe with its
        evidence over every campaign of the spec, suspect and dismissed flags."""
        from core.examiner import records
        from core.examiner.service import probe_table

        st = self.store()
        spec_hash = st.resolve_spec(spec_ref)
        sets = []
        for ps in records.sets_of(st, spec_hash):
            d = ps.to_dict()
            d["probes"] = [dict(row, **{k: p.get(k) for k in ("body", "expect")})
                           for row, p in zip(probe_table(st, ps), ps.probes)]
            sets.append(d)
        return {"spec_hash": spec_hash, "sets": sets}

    def status(self, campaign_id: str | None) -> StatusView:
        st = self.store()
        camps = self.campaigns()
        alive = sum(1 for c in camps if c.engine_alive)
        current = next((c for c in camps if c.id == campaign_id), None)
        if current is not None:
            simulated = current.simulated or st.any_simulated_call(current.id)
        else:
            simulated = st.any_simulated_call(None) or any(c.simulated for c in camps)
        return StatusView(campaign=current, engines_alive=alive, any_simulated=simulated, home=str(self.home),
                          hosts=self._host_states())

    def _host_states(self) -> tuple[tuple[str, str | None], ...]:
        """(name, drained reason or None) of the rig hosts; () when the home has none (local)."""
        from core.app.hosts import HostError, host_rows
        from core.hosts.pool import HostPool

        if not HostPool.configured(self.home):
            return ()
        try:
            return tuple((r["name"], r["drained"]) for r in host_rows(self.home))
        except HostError as exc:  # a broken hosts.json: the engine refuses too; say it here
            return (("hosts.json", str(exc)),)

    # lineage ---------------------------------------------------------------------------------------

    def generation_signature(self, campaign_id: str | None) -> tuple:
        """Cheap fingerprint of a campaign's generations: skip reloads when equal."""
        return (campaign_id, *self.store().generation_fingerprint(campaign_id))

    def lineage(self, campaign_id: str | None) -> LineageModel:
        st = self.store()
        sig = self.generation_signature(campaign_id)
        return build_lineage(campaign_id, st.lineage_rows(campaign_id), sig,
                             fertility=st.fertility_statuses(campaign_id))

    def generation_campaign(self, number: int) -> str | None:
        return self.store().generation(number).campaign_id

    def generation_updated_at(self, number: int) -> str | None:
        try:
            return self.store().generation(number).updated_at
        except KeyError:
            return None

    # summary and charts -------------------------------------------------------------------------

    def summary_signature(self, campaign_id: str | None) -> tuple:
        calls, cost = self.store().spend_fingerprint(campaign_id)
        return self.generation_signature(campaign_id) + (calls, round(cost, 6))

    def summary(self, campaign_id: str | None, max_points: int = 240) -> CampaignSummary:
        """Headline figures and chart series. The rate follows ``core.engine.summary``:
        judged = promoted or failed with a rig verdict; progress = ``CampaignView.progress``."""
        st = self.store()
        signature = self.summary_signature(campaign_id)
        rows = st.summary_rows(campaign_id)
        per_gen_spend = st.spend_by_generation(campaign_id)
        tokens = sum(v[0] for v in per_gen_spend.values())
        cost = sum(v[1] for v in per_gen_spend.values())
        unpriced = st.unpriced_calls(campaign_id)
        target = None
        if campaign_id is not None:
            try:
                target = int(st.campaign(campaign_id)["settings"].get("generations") or 0) or None
            except KeyError:
                target = None

        judged = viable = failed = running = finished = interrupted = 0
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
                if outcome == "interrupted":
                    interrupted += 1
                if outcome != "promoted":
                    failed += 1
                    if outcome in ("failed", "timeout"):
                        stages[stage or "unknown"] += 1
                if outcome in ("promoted", "failed") and status is not None:
                    judged += 1
                    viable += outcome == "promoted"
                    lo, hi = wilson_interval(viable, judged)
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
        fert_trend: list[SeriesPoint] = []
        tested = fertile = 0
        for number, status in sorted(st.fertility_statuses(campaign_id).items()):
            if status not in ("fertile", "infertile"):
                continue  # as core.engine.summary.fertility: an error is no verdict
            tested += 1
            fertile += status == "fertile"
            lo, hi = wilson_interval(fertile, tested)
            fert_trend.append(SeriesPoint(number, fertile / tested, lo, hi))
        examiner = campaign_examiner(st, campaign_id) if campaign_id else None
        layer_series = self._layer_series(st.layer_rows(campaign_id), examiner, max_points)
        return CampaignSummary(
            campaign_id=campaign_id, viability_rate=(viable / judged) if judged else None,
            viability_interval=wilson_interval(viable, judged) if judged else None,
            generations=len(rows), done=finished - interrupted, target=target, viable=promoted,
            failed=failed, interrupted=interrupted, running=running, tokens=tokens, cost_usd=cost,
            failure_stages=dict(sorted(stages.items(), key=lambda kv: (-kv[1], kv[0]))),
            cost_per_viable=(cost / promoted) if promoted and not unpriced else None, unpriced_calls=unpriced,
            trend=downsample(trend, max_points),
            cost_x=downsample(cost_x, max_points), cost_cum=downsample(cost_cum, max_points),
            tokens_cum=downsample(tokens_cum, max_points),
            tests_x=downsample(tests_x, max_points), tests_run=downsample(tests_run, max_points),
            tests_passed=downsample(tests_passed, max_points), signature=signature,
            fertility_tested=tested, fertile=fertile, fertility_trend=downsample(fert_trend, max_points),
            sealed=generalisation(st.sealed_rows(campaign_id)),
            examiner_pass_rate=examiner["pass_rate"] if examiner else None, examiner=examiner,
            redteam=campaign_redteam(st, campaign_id) if campaign_id else None, layer_series=layer_series)

    @staticmethod
    def _layer_series(rows: list[tuple], examiner: dict[str, Any] | None,
                      max_points: int) -> dict[str, tuple[list[int], list[float]]]:
        cols: dict[str, tuple[list[int], list[float]]] = {}
        for number, *values in rows:
            for key, v in zip(("visible", "sealed", "redteam"), values):
                if v is not None:
                    xs, ys = cols.setdefault(key, ([], []))
                    xs.append(int(number))
                    ys.append(float(v))
        if examiner and examiner.get("series"):
            cols["examiner"] = ([int(n) for n, _ in examiner["series"]], [float(r) for _, r in examiner["series"]])
        # only worth a chart when a hidden layer ran: visible vectors alone are Layer 1
        if not set(cols) - {"visible"}:
            return {}
        return {k: (downsample(xs, max_points), downsample(ys, max_points)) for k, (xs, ys) in cols.items()}

    # one generation ----------------------------------------------------------------------------------

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
        from pydantic import ValidationError

        from core.models import ViabilityReport

        st = self.store()
        g = st.generation(number)
        raw = st.report(number)
        report, problem = None, None
        if raw is not None:
            try:
                report = ViabilityReport.model_validate(raw)
            except ValidationError as exc:  # imported history may predate today's schema
                problem = f"the stored report does not match today's schema: {exc.errors()[0].get('msg')}"
        files = self.artifact_files(g.artifact_hash)
        parent_artifact = parent_files = None
        if g.parent is not None:
            try:
                parent_artifact = st.generation(g.parent).artifact_hash
            except KeyError:
                parent_artifact = None
            if parent_artifact:
                parent_files = self.artifact_files(parent_artifact)
        lineage_rows = st.lineage_rows(g.campaign_id)
        failed = build_lineage(g.campaign_id, lineage_rows).failed
        return GenerationDetail(
            number=g.number, parent=g.parent, campaign_id=g.campaign_id, spec_hash=g.spec_hash,
            outcome=g.outcome.value, status=g.status, failure_stage=g.failure_stage, reason=g.reason,
            attempt=g.attempt, artifact_hash=g.artifact_hash, created_at=g.created_at, updated_at=g.updated_at,
            report=report, report_raw=raw, report_problem=problem, check_rows=tuple(check_rows(raw)),
            files=files, parent_artifact=parent_artifact, parent_files=parent_files,
            llm_calls=tuple(st.llm_calls(generation=number)), log_lines=st.log_chunk_count(number),
            diffs=file_diffs(parent_files, files) if parent_files is not None else None,
            failed_numbers=tuple(failed), bred_by=st.bred_by(number),
            reproduction=self._reproduction(number), layers=self._layers(g.spec_hash, raw))

    def _layers(self, spec_hash: str, raw: dict[str, Any] | None):
        """The hidden layers that judged a report, with the expectations the rig was given."""
        from core.app.layers import layer_views
        from core.examiner import records
        from core.examiner.service import probe_table
        from core.spec import sealed_probes

        health = ((raw or {}).get("checks") or {}).get("health") or {}
        if not raw or not (health.get("sealed") or health.get("examiner") or raw.get("redteam")):
            return ()
        st = self.store()
        sealed: list[dict[str, Any]] = []
        if health.get("sealed"):
            try:
                sealed = sealed_probes(st.spec_text(spec_hash))
            except KeyError:
                sealed = []  # imported history without its spec: results only
        probes: list[dict[str, Any]] = []
        flags: dict[str, dict[str, Any]] = {}
        model = (raw.get("examiner_set") or {}).get("model")
        if health.get("examiner") and model:
            ps = records.load(st, spec_hash, model)
            if ps is not None:
                probes = list(ps.probes)
                flags = {r["name"]: r for r in probe_table(st, ps)}
        return layer_views(raw, sealed, probes, flags)

    def _reproduction(self, number: int):
        from core.app.reproduction import BredVerdict, reproduction_view

        st = self.store()
        row = st.reproduction(number)
        if row is None:
            return None
        off = None
        if row.get("offspring") is not None:
            try:
                g = st.generation(int(row["offspring"]))
                off = BredVerdict(g.number, g.outcome.value, g.failure_stage, g.reason)
            except KeyError:
                off = None
        return reproduction_view(row, off)

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

    # specs ---------------------------------------------------------------------------------------------

    def spec_versions(self) -> list[SpecVersionView]:
        """Stored versions (oldest first), then shipped genomes not stored yet."""
        from core.app.specs import file_choice, spec_folder_files

        out = [SpecVersionView(v.hash, v.parent_hash, v.origin.value, v.label, v.created_at)
               for v in self.store().spec_versions()]
        known = {v.hash for v in out}
        for path in spec_folder_files(self.spec_dir):
            c = file_choice(path)
            if c.usable and c.hash not in known:
                out.append(SpecVersionView(c.hash, None, "shipped", path.stem, "", shipped_path=str(path)))
        return out

    def spec_choices(self) -> list[SpecChoice]:
        from core.app.specs import spec_choices

        stored = [SpecVersionView(v.hash, v.parent_hash, v.origin.value, v.label, v.created_at)
                  for v in self.store().spec_versions()]
        return spec_choices(stored, self.spec_dir)

    def spec_text(self, version: SpecVersionView | str) -> str:
        if isinstance(version, SpecVersionView) and version.shipped_path:
            return Path(version.shipped_path).read_text(encoding="utf-8")
        h = version.hash if isinstance(version, SpecVersionView) else version
        return self.store().spec_text(h)

    def spec_doc(self, version: SpecVersionView) -> SpecDoc:
        return make_spec_doc(version.hash, version.title, self.spec_text(version))

    def resolve_spec(self, ref: str) -> str:
        return self.store().resolve_spec(ref)

    def spec_text_of(self, ref: str) -> str:
        """A spec by file path, full hash, unique hash prefix or label (KeyError: none)."""
        p = Path(ref)
        if p.is_file():
            return p.read_text(encoding="utf-8")
        st = self.store()
        return st.spec_text(st.resolve_spec(ref))

    def spec_listing(self) -> dict[str, list[dict[str, Any]]]:
        """``cambrian spec list --json``: shipped genomes (with their check) and stored versions."""
        from core.app.specs import file_choice, spec_folder_files

        shipped = []
        for path in spec_folder_files(self.spec_dir):
            c = file_choice(path)
            shipped.append({"path": str(path), "hash": c.hash, "ok": c.usable, "problem": c.problem})
        stored = [{"hash": v.hash, "parent": v.parent_hash, "origin": v.origin.value, "label": v.label,
                   "created_at": v.created_at} for v in self.store().spec_versions()]
        return {"shipped": shipped, "stored": stored}

    def db_info(self) -> dict[str, Any]:
        return self.store().info()

    # search ---------------------------------------------------------------------------------------------

    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        q = query.strip()
        if not q:
            return []
        st = self.store()
        hits: list[SearchHit] = []
        m = re.fullmatch(r"#?\s*(\d+)", q)
        if m:
            n = int(m.group(1))
            try:
                g = st.generation(n)
                hits.append(SearchHit("generation", str(n), f"#{n}",
                                      f"{g.outcome.value} · {g.campaign_id or 'no campaign'}"))
            except KeyError:
                pass
        for cid, state, kind in st.find_campaigns(q, run_kind=RUN_KIND):
            if kind == RUN_KIND:
                hits.append(SearchHit("evolution", cid, cid, f"evolution run · {state}"))
            else:
                hits.append(SearchHit("campaign", cid, cid, f"campaign · {state}"))
        for h, label, origin in st.find_specs(q):
            hits.append(SearchHit("spec", h, label or short_hash(h), f"spec · {origin} · {short_hash(h)}"))
        for number, outcome, stage, reason in st.find_generations(q, limit):
            hits.append(SearchHit("generation", str(number), f"#{number}",
                                  f"{outcome} · {stage or '-'} · {(reason or '')[:60]}"))
        seen: set[tuple[str, str]] = set()
        out = []
        for h in hits:
            if (h.kind, h.key) not in seen:
                seen.add((h.kind, h.key))
                out.append(h)
        return out[:limit]

    # evolution runs ----------------------------------------------------------------------------------------

    def evolution_runs(self) -> list[RunRow]:
        """One row per run, newest first (a broken run must not hide the others)."""
        from core.evolution import records as rec
        from core.evolution.runs import run_status

        st = self.store()
        out = []
        for row in rec.evolution_runs(st):
            try:
                s = run_status(st, row["id"])
            except Exception as exc:  # noqa: BLE001
                out.append(RunRow(row["id"], row["state"], 0, None, False, row.get("created_at"), str(exc)))
                continue
            out.append(RunRow(s["id"], s["state"], len(s["observations"]), s["best"]["viability_rate"],
                              s["engine_alive"], s.get("created_at")))
        return out

    def evolution_status(self, run_id: str) -> dict[str, Any]:
        """``cambrian evolve status --json`` (keys may be added, never renamed)."""
        from core.evolution.runs import run_status

        return run_status(self.store(), run_id)

    def evolution_run(self, run_id: str) -> "EvolutionRun":
        from core.app.evolution_views import EvolutionRun

        return EvolutionRun.model_validate(self.evolution_status(run_id))

    def evolution_best(self, run_id: str) -> dict[str, Any]:
        """The incumbent with the run's metadata (``cambrian evolve best --json``)."""
        from core.evolution.runs import best_with_metadata

        return best_with_metadata(self.store(), run_id)

    def observation_diff(self, obs: Any) -> tuple[SpecDoc, SpecDoc, str]:
        """The spec of an observation against its parent's (and a line saying what it is)."""
        st = self.store()
        child, parent = obs.spec_hash, obs.parent_spec_hash
        if not parent:
            raise ValueError("this observation has no parent spec")
        right_hash = child or parent
        versions = {v.hash: v for v in st.spec_versions()}

        def title(h: str) -> str:
            # the hash first: a label is the name of whichever run stored that text first
            v = versions.get(h)
            return short_hash(h, 8) + (f" ({v.label})" if v is not None and v.label else "")

        left = make_spec_doc(parent, f"parent {title(parent)}", st.spec_text(parent))
        right = make_spec_doc(right_hash, f"#{obs.index} {title(right_hash)}", st.spec_text(right_hash))
        if not child:
            note = "rejected before a spec existed: showing the parent only"
        elif child == parent:
            note = f"same spec as the parent ({obs.parent_model} → {obs.model})"
        else:
            note = obs.detail or ""
        return left, right, note

    # amendments ----------------------------------------------------------------------------------------------

    def amendments(self) -> list[AmendmentView]:
        """Every amendment, pending first, then newest first within a status."""
        rows = [amendment_view(a) for a in self.store().amendments()]
        rows.sort(key=lambda r: (STATUS_ORDER.get(r.status, 9), -r.id))
        return rows

    def amendment(self, amendment_id: int) -> AmendmentView:
        return amendment_view(self.store().amendment(amendment_id))

    def amendment_preview(self, amendment_id: int, edited: str | None = None) -> AmendmentPreview:
        """The spec before and after the amendment (for one already applied: its parent
        against the stored result)."""
        with _DISTILL_IMPORT:
            from core.distill.amend import AmendmentRefused, distill_preview

        st = self.store()
        a = self.amendment(amendment_id)
        parent = short_hash(a.spec_hash, 8)
        if a.result_spec_hash:
            old, new = st.spec_text(a.spec_hash), st.spec_text(a.result_spec_hash)
            return AmendmentPreview(a.id, None, make_spec_doc(a.spec_hash, parent, old),
                                    make_spec_doc(a.result_spec_hash, short_hash(a.result_spec_hash, 8), new),
                                    applied=True)
        try:
            old, new = distill_preview(st, a.id, edited)
        except AmendmentRefused as exc:
            return AmendmentPreview(a.id, edited, None, None, problem=exc.reason)
        return AmendmentPreview(a.id, edited, make_spec_doc(a.spec_hash, parent, old),
                                make_spec_doc("", f"amendment #{a.id}", new))

    def amendment_confirmation(self, amendment_id: int) -> dict[str, Any] | None:
        """Before/after viability of the newest confirmation campaign of an accepted
        amendment (``core.distill.confirm.compare``, with its one-line ``verdict``), or None
        when none was started."""
        with _DISTILL_IMPORT:
            from core.distill.confirm import confirmation_report

        return confirmation_report(self.store(), amendment_id)


def amendment_view(a: Any) -> AmendmentView:
    return AmendmentView(id=int(a.id), campaign_id=a.campaign_id, spec_hash=a.spec_hash, section=a.section,
                         text=a.text, feature=a.feature, status=getattr(a.status, "value", str(a.status)),
                         result_spec_hash=a.result_spec_hash, created_at=a.created_at,
                         evidence=dict(a.evidence or {}))


def judged_count(st: "Store", campaign_id: str) -> int:
    """Promoted or failed with a rig verdict: the viability rate's denominator."""
    counts = st.verdict_counts(campaign_id)
    return counts.get("promoted", 0) + counts.get("failed", 0)


def pick_campaign(campaigns: list[CampaignView]) -> str | None:
    """What the TUI attaches to on start: a campaign whose engine runs, else the newest."""
    live = [c for c in campaigns if c.engine_alive] or [c for c in campaigns if c.state == "running"]
    if live:
        return live[0].id
    return campaigns[0].id if campaigns else None

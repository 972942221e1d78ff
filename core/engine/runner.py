"""The campaign runner: N generations from one spec version, P at a time.

One engine process runs one campaign. LLM calls run concurrently on the event loop;
rig runs happen in threads, bounded by rig slots sized to the machine. Every state
change goes to SQLite first (the generation row exists before anything else happens),
so a SIGKILL at any moment leaves history that the next engine start can close.

Counting: ``settings.generations`` bounds the generations that count — every attempt
(fresh or retry) except those interrupted by a crash or an abort, which are redone.
Lineage: a retry's parent is the failed generation it continues; a fresh generation's
parent is the campaign's latest promoted generation (whose context it continues), else None.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from core.engine import containers
from core.engine.budget import Budget, BudgetedProvider, BudgetExceeded, price_of
from core.engine.stop_reasons import no_space_reason, out_of_space, resumed_reason
from core.llm.base import unwrap
from core.models import CampaignSettings, Generation, Outcome, RigRun, utcnow
from core.spec import sealed_probes
from core.store import Store
from rig.api import RigSetupError

COMMAND_POLL_S = 0.3
RIG_DRAIN_S = 30.0  # how long an abort waits for a rig call whose containers it killed
HEARTBEAT_S = 2.0
LOG_FLUSH_S = 0.25
LOG_FLUSH_LINES = 200


def rig_slots() -> int:
    """Concurrent rig runs: one per core (builds and tests are CPU-bound).
    CAMBRIAN_RIG_SLOTS overrides."""
    env = os.environ.get("CAMBRIAN_RIG_SLOTS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, os.cpu_count() or 1)


@dataclass
class Work:
    gen: Generation
    retry_of: Generation | None
    redo_of: Generation | None = None  # re-judge this interrupted generation's artifact


class RigUnavailable(RuntimeError):
    """The rig cannot judge now (engine down, image gone): infrastructure, never a verdict."""


class LogWriter:
    """Collects rig output lines from the rig thread and appends them in batches.

    A batch is written after LOG_FLUSH_LINES lines or LOG_FLUSH_S seconds, whichever comes
    first; a timer covers the second case, so a line followed by silence (a long test run
    under ``pytest -q``) still reaches live viewers within LOG_FLUSH_S."""

    def __init__(self, db: Path, generation: int):
        self.db = db
        self.generation = generation
        self.buf: dict[str, list[str]] = {}
        self.count = 0
        self.last = time.monotonic()
        self.store: Store | None = None
        self.lock = threading.Lock()
        self.timer: threading.Timer | None = None
        self.closed = False

    def __call__(self, stream: str, line: str) -> None:
        with self.lock:
            if self.closed:
                return
            self.buf.setdefault(stream, []).append(line)
            self.count += 1
            if self.count >= LOG_FLUSH_LINES or time.monotonic() - self.last >= LOG_FLUSH_S:
                self._flush()
            elif self.timer is None:
                self.timer = threading.Timer(LOG_FLUSH_S, self._timed_flush)
                self.timer.daemon = True
                self.timer.start()

    def _timed_flush(self) -> None:
        with self.lock:
            self.timer = None
            if not self.closed:
                self._flush()

    def _flush(self) -> None:
        if not self.count:
            return
        if self.store is None:
            self.store = Store.open(self.db)
        for stream, lines in self.buf.items():
            if lines:
                self.store.append_log(self.generation, stream, lines)
        self.buf = {}
        self.count = 0
        self.last = time.monotonic()

    def close(self) -> None:
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            self._flush()
            self.closed = True
            if self.store is not None:
                self.store.close()
                self.store = None


class CampaignRunner:
    def __init__(
        self,
        store: Store,
        campaign_id: str,
        home: Path,
        *,
        provider_factory: Callable[[CampaignSettings], Any] | None = None,
        rig_fn: Callable[..., Any] | None = None,
        slots: int | None = None,
        rig_check: Callable[[str], None] | None = None,
        use_hosts: bool | None = None,
    ):
        self.store = store
        self.cid = campaign_id
        self.home = home
        row = store.campaign(campaign_id)
        self.settings = CampaignSettings(**row["settings"])
        self.spec_text = store.spec_text(row["spec_hash"])
        self.spec_hash = row["spec_hash"]
        # the sealed vectors, from the stored spec (never from an artifact): the rig runs them
        # after the visible checks; the writer never sees them
        self.sealed = sealed_probes(self.spec_text)
        # Layer 2: the examiner's probe set for (spec, examiner model), made lazily before the
        # first generation is judged (or found: one per spec version, reused by every campaign)
        self.examiner_model = self.settings.examiner_model or self.settings.model
        self.examiner_set = None
        self.examiner_off_why: str | None = None  # the examiner failed in this engine run
        self._examiner_lock = asyncio.Lock()
        # prices come from this campaign's home (its prices.toml), whatever CAMBRIAN_HOME says
        self.provider_factory = provider_factory or (lambda s: default_provider_factory(s, home))
        self.rig_fn = rig_fn or default_rig
        # Before each generation is paid for, the rig must be able to judge it. With the real
        # rig that is rig.api.check_rig; a test's own rig_fn brings its own check (or none).
        self.rig_check = rig_check if rig_check is not None else (
            default_rig_check if rig_fn is None else None)
        self.rig_sem = asyncio.Semaphore(slots or rig_slots())
        # rig hosts (core/hosts): once the home has a hosts.json, the real docker rig runs
        # on their slots instead of this machine's alone (use_hosts=True: also a test's own
        # rig_fn, which then takes docker_url)
        self.hosts = None
        if (rig_fn is None if use_hosts is None else use_hosts) and self.settings.backend == "docker":
            from core.hosts.pool import HostPool

            if HostPool.configured(home):
                self.hosts = HostPool(home, on_event=lambda kind, data: self.store.add_event(
                    kind, campaign_id=self.cid, data=data))
        tokens, usd = store.spend(campaign_id)
        self.budget = Budget(
            max_tokens=self.settings.budget_tokens, max_usd=self.settings.budget_usd,
            max_wall_s=self.settings.budget_wall_s, spent_tokens=tokens, spent_usd=usd,
            wall_used_s=float(row.get("wall_used_s") or 0.0),
        )
        self.paused = row["state"] == "paused"
        self.stop_reason: str | None = None
        self.stop_state: str | None = None
        self.aborting = False
        self.in_flight: dict[int, asyncio.Task] = {}
        self.claimed_retries: set[int] = set()
        self.claimed_redos: set[int] = set()
        self._breeds: bool | None = None
        self.base_provider = None
        self.workdir = home / "work" / campaign_id
        self.home_label = containers.home_id(store.path)

    # --- lifecycle -------------------------------------------------------------------

    async def run(self) -> str:
        self._check_models()
        self.base_provider = self.provider_factory(self.settings)
        self._check_prices()
        self.store.set_campaign_state(self.cid, "paused" if self.paused else "running",
                                      resumed_reason(self.store.campaign(self.cid)))
        self.store.add_event("engine_started", campaign_id=self.cid,
                             data={"pid": os.getpid(), "provider": self.settings.provider,
                                   "simulated": bool(getattr(self.base_provider, "simulated", False))})
        control = asyncio.create_task(self._control_loop())
        workers = [asyncio.create_task(self._worker(i)) for i in range(self.settings.parallelism)]
        if self.hosts is not None:  # what an earlier engine of this campaign left on remote hosts
            await asyncio.to_thread(self.hosts.reconcile, set(), {"cambrian.campaign": self.cid}, None, True)
        try:
            await asyncio.gather(*workers, return_exceptions=False)
        finally:
            control.cancel()
            await asyncio.gather(control, return_exceptions=True)
            if self.hosts is not None:
                from rig.api import wait_removed

                await asyncio.to_thread(wait_removed, 30.0)
                await asyncio.to_thread(self.hosts.reconcile, set(), {"cambrian.campaign": self.cid}, None, True)
                self.hosts.close()
        state, reason = self._final_state()
        self.store.set_campaign_runtime(self.cid, wall_used_s=self.budget.wall_elapsed())
        self.store.set_campaign_state(self.cid, state, reason)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return state

    def _final_state(self) -> tuple[str, str | None]:
        if self.aborting:
            return "aborted", self.stop_reason or "aborted"
        if self.stop_state:
            return self.stop_state, self.stop_reason
        return "completed", f"{self._counted()} generations"

    def _check_prices(self) -> None:
        """A dollar budget needs a known price for every model the campaign may call."""
        if self.settings.budget_usd is None or getattr(self.base_provider, "simulated", False):
            return
        quote = getattr(unwrap(self.base_provider), "quote", None)
        if quote is None:
            return
        for m in filter(None, [self.settings.model, self.settings.escalation_model,
                               self.settings.examiner_model]):
            q = quote(m)
            if not q.known:
                raise ValueError(f"a dollar budget needs known prices, and {q.where} — or use a token budget")

    def _check_models(self) -> None:
        allowed = self.settings.allowed_models
        for m in filter(None, [self.settings.model, self.settings.escalation_model,
                               self.settings.examiner_model]):
            if allowed and m not in allowed:
                raise ValueError(f"model {m!r} is not in the campaign's allow-list {allowed}")

    def request_stop(self, state: str, reason: str) -> None:
        if self.stop_state is None:
            self.stop_state, self.stop_reason = state, reason
            self.store.add_event("campaign_stopping", campaign_id=self.cid,
                                 data={"state": state, "reason": reason})

    def abort(self, reason: str = "aborted by user") -> None:
        if self.aborting:
            return
        self.aborting = True
        self.stop_reason = reason
        self.store.add_event("campaign_aborting", campaign_id=self.cid, data={"reason": reason})
        runs = {containers.run_id_for(self.cid, n) for n in self.in_flight}
        try:
            containers.kill_runs(runs, self.home_label)
        except Exception as exc:  # noqa: BLE001 - keep aborting; record why
            self.store.add_event("abort_kill_failed", campaign_id=self.cid, data={"error": str(exc)})
        for task in list(self.in_flight.values()):
            task.cancel()

    async def _control_loop(self) -> None:
        halt = self.home / "HALT"
        last_beat = time.monotonic()
        while True:
            for cmd in self.store.take_commands(self.cid):
                name = cmd["command"]
                if name == "pause" and not self.paused:
                    self.paused = True
                    self.store.set_campaign_state(self.cid, "paused", "paused by user")
                elif name == "resume" and self.paused:
                    self.paused = False
                    self.store.set_campaign_state(self.cid, "running", "resumed by user")
                elif name == "abort":
                    self.abort(cmd["args"].get("reason") or "aborted by user")
            if halt.exists():
                self.request_stop("stopped", f"HALT file present ({halt})")
            if time.monotonic() - last_beat >= HEARTBEAT_S:
                last_beat = time.monotonic()
                if not self.store.holds_lease(self.cid):
                    # someone else took our lease: never run two engines on one campaign
                    self.abort("lease lost to another engine")
                else:
                    self.store.heartbeat(self.cid)
                    self.store.set_campaign_runtime(self.cid, wall_used_s=self.budget.wall_elapsed())
            await asyncio.sleep(COMMAND_POLL_S)

    # --- scheduling --------------------------------------------------------------------

    def _counted(self) -> int:
        counts = self.store.outcome_counts(campaign_id=self.cid)
        return sum(n for o, n in counts.items() if o != Outcome.INTERRUPTED.value)

    def _retry_candidate(self) -> Generation | None:
        if self.settings.max_retries <= 0:
            return None
        rows = self.store.conn.execute(
            "SELECT g.number FROM generations g WHERE g.campaign_id=? AND g.outcome='failed' "
            "AND g.attempt < ? AND g.artifact_hash IS NOT NULL AND NOT EXISTS (SELECT 1 FROM generations c "
            "WHERE c.campaign_id=g.campaign_id AND c.parent=g.number AND c.attempt=g.attempt+1 "
            "AND c.outcome <> 'interrupted') ORDER BY g.number",
            (self.cid, self.settings.max_retries),
        ).fetchall()
        for (n,) in rows:
            if n not in self.claimed_retries:
                return self.store.generation(n)
        return None

    def _latest_promoted(self) -> int | None:
        row = self.store.conn.execute(
            "SELECT MAX(number) FROM generations WHERE campaign_id=? AND outcome='promoted'", (self.cid,)
        ).fetchone()
        return row[0]

    async def _claim(self) -> Work | None:
        while True:
            if self.aborting or self.stop_state:
                return None
            if self.paused:
                await asyncio.sleep(COMMAND_POLL_S)
                continue
            why = self.budget.wall_exhausted()
            if why:
                self.request_stop("stopped", why)
                return None
            if self._counted() >= self.settings.generations:
                return None
            problem = await self._rig_problem()
            if problem:
                self.request_stop("stopped", rig_unavailable_reason(problem))
                return None
            # the rig check awaited: another worker may have claimed the last slot meanwhile
            # (no await from here to create_generation, so this count holds)
            if self.aborting or self.stop_state or self._counted() >= self.settings.generations:
                return None
            redo = self._redo_candidate()
            if redo is not None:
                gen = self.store.create_generation(spec_hash=self.spec_hash, campaign_id=self.cid,
                                                   parent=redo.parent, attempt=redo.attempt,
                                                   draw=self._draw(redo.number), redo_of=redo.number)
                self.store.add_event("generation_redo", generation=gen.number, campaign_id=self.cid,
                                     data={"redo_of": redo.number, "artifact_hash": redo.artifact_hash})
                return Work(gen, None, redo)
            # Can we afford at least the first call of a generation?
            probe = self._probe_request()
            if probe is not None:
                why = self.budget.check(*probe)
                if why:
                    if self.in_flight:
                        # an in-flight call may release its reservation; wait for it
                        await asyncio.sleep(COMMAND_POLL_S)
                        if self.budget.check(*probe) and not self.in_flight:
                            self.request_stop("stopped", why)
                            return None
                        continue
                    self.request_stop("stopped", why)
                    return None
            retry_of = self._retry_candidate()
            if retry_of is not None:
                self.claimed_retries.add(retry_of.number)
                gen = self.store.create_generation(spec_hash=self.spec_hash, campaign_id=self.cid,
                                                   parent=retry_of.number, attempt=retry_of.attempt + 1,
                                                   draw=self.store.next_draw(self.cid))
            else:
                gen = self.store.create_generation(spec_hash=self.spec_hash, campaign_id=self.cid,
                                                   parent=self._latest_promoted(), attempt=0,
                                                   draw=self.store.next_draw(self.cid))
            return Work(gen, retry_of)

    async def _rig_problem(self) -> str | None:
        if self.rig_check is None:
            return None
        try:
            await asyncio.to_thread(self.rig_check, self.settings.backend)
        except Exception as exc:  # noqa: BLE001 - any reason the rig cannot run
            return str(exc) or type(exc).__name__
        return None

    def _redo_candidate(self) -> Generation | None:
        for g in self.store.redo_candidates(self.cid):
            if g.number not in self.claimed_redos:
                self.claimed_redos.add(g.number)
                return g
        return None

    def _probe_request(self) -> tuple[int, float] | None:
        from core.engine.budget import worst_case
        from core.llm.base import LLMRequest

        if self.settings.budget_usd is None and self.settings.budget_tokens is None:
            return None
        req = LLMRequest(model=self.settings.model, system="", messages=[
            {"role": "user", "content": self.spec_text}], max_tokens=self.settings.max_tokens)
        return worst_case(req, bool(getattr(self.base_provider, "simulated", False)), price_of(self.base_provider))

    async def _worker(self, index: int) -> None:
        while True:
            work = await self._claim()
            if work is None:
                return
            task = asyncio.create_task(self._generation(work))
            self.in_flight[work.gen.number] = task
            try:
                await task
            except asyncio.CancelledError:
                if not self.aborting:
                    raise
            finally:
                self.in_flight.pop(work.gen.number, None)

    # --- one generation ------------------------------------------------------------------

    async def _generation(self, work: Work) -> None:
        n = work.gen.number
        try:
            await asyncio.wait_for(self._generation_body(work), self.settings.generation_timeout_s)
        except asyncio.TimeoutError:
            self._close(n, Outcome.TIMEOUT, f"generation exceeded {self.settings.generation_timeout_s:.0f} s")
        except asyncio.CancelledError:
            # no stop reason: the engine is being torn down by an error (the campaign's reason)
            self._close(n, Outcome.INTERRUPTED, self.stop_reason or "the engine stopped before it finished")
            raise
        except BudgetExceeded as exc:
            self.request_stop("stopped", str(exc))
            self._close(n, Outcome.INTERRUPTED, f"budget: {exc}")
        except (RigUnavailable, RigSetupError) as exc:
            # the rig, not the artifact: stop before anything else is paid for; the artifact
            # (if written) is re-judged on resume without a new LLM call
            self.store.add_event("rig_unavailable", generation=n, campaign_id=self.cid,
                                 data={"error": str(exc)})
            self.request_stop("stopped", rig_unavailable_reason(str(exc)))
            self._close(n, Outcome.INTERRUPTED, f"rig unavailable: {exc}"[:500])
        except Exception as exc:  # noqa: BLE001 - the record says what happened
            what = f"{type(exc).__name__}: {exc}"
            self.store.add_event("generation_error", generation=n, campaign_id=self.cid, data={"error": what})
            if out_of_space(exc):
                # the host's disk, not the generation: failing every remaining generation
                # (each after a paid LLM call) would only burn the budget and skew the rate
                self.request_stop("stopped", no_space_reason(what, self.home))
                self._close(n, Outcome.INTERRUPTED, f"out of disk space: {what}")
                return
            self._close(n, Outcome.FAILED, f"engine error: {what}", stage="engine")
        finally:
            shutil.rmtree(self.workdir / f"gen-{n}", ignore_errors=True)

    def _keep_answer(self, n: int, result: Any) -> None:
        """A generation that failed at generate keeps the model's text: it goes to the
        generation's log (stream "llm"), where the inspector shows it beside the reason."""
        if not result.answer_text:
            return
        head = (f"[engine] the model's answer ({len(result.answer_text)} characters, "
                f"{result.continuations} continuation(s), {result.repairs} repair(s)) — {result.error_kind}: "
                f"{result.error}")
        self.store.append_log(n, "llm", [head, *result.answer_text.splitlines()])

    def _close(self, n: int, outcome: Outcome, reason: str, stage: str | None = None) -> None:
        current = self.store.generation(n).outcome
        if current.terminal:
            return
        if current is Outcome.TESTED and outcome not in (Outcome.PROMOTED, Outcome.FAILED):
            outcome = Outcome.FAILED  # a tested generation can only be promoted or failed
        self.store.set_outcome(n, outcome, reason, failure_stage=stage)

    async def _generation_body(self, work: Work) -> None:
        n = work.gen.number
        out = self.workdir / f"gen-{n}"
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        run_id = containers.run_id_for(self.cid, n)
        labels = {"cambrian.campaign": self.cid, containers.HOME_LABEL: self.home_label}
        channel = self._channel(run_id, n)
        # the rig's containers come up while the LLM writes (they carry the run's labels,
        # so an abort or a reconcile treats them like any of the run's containers)
        prepared = self._prepare(run_id, n, labels, channel)
        try:
            await self._generate_and_judge(work, out, run_id, labels, prepared, channel)
        finally:
            if prepared is not None:
                await asyncio.to_thread(prepared.release)  # a no-op once the rig took them
            if channel is not None:
                shutil.rmtree(channel.gateway_dir, ignore_errors=True)

    def _prepare(self, run_id: str, n: int, labels: dict[str, str], channel=None):
        if self.rig_fn is not default_rig or self.settings.backend != "docker":
            return None
        from rig.api import prepare

        try:
            return prepare(run_id, generation=n, labels=labels, channel=channel)
        except Exception:  # noqa: BLE001 - the rig then creates its own
            return None

    # --- reproduction -------------------------------------------------------------------

    def _channel(self, run_id: str, n: int):
        """The LLM gateway's way in for this generation's offspring, when the campaign asks
        for reproduction, the spec declares it and (sampling) this draw is chosen."""
        s = self.settings
        if s.reproduction == "off" or s.backend != "docker" or not self._spec_breeds():
            return None
        if s.reproduction == "sample" and not sampled(s.seed, self._draw(n), s.reproduction_rate):
            return None
        from rig.api import Channel

        folder = self.home / "gw" / run_id
        folder.mkdir(parents=True, exist_ok=True)
        return Channel(str(folder), model=s.model, timeout=s.reproduction_wall_s)

    def _spec_breeds(self) -> bool:
        if self._breeds is None:
            from rig.vectors import spec_reproduce

            self._breeds = spec_reproduce(self.spec_text)[0] is not None
        return self._breeds

    def _gateway(self, channel, provider, n: int):
        from core.llm.gateway import Caps, Gateway

        s = self.settings
        return Gateway(provider, model=s.model, socket_path=Path(channel.gateway_dir) / channel.socket_name,
                       caps=Caps(calls=s.reproduction_calls, tokens=s.reproduction_tokens,
                                 wall_s=s.reproduction_wall_s, max_tokens_per_call=s.max_tokens),
                       metadata={"generation": n, "campaign_id": self.cid, "seed": s.seed,
                                 "draw": self._draw(n)})

    async def _reproduction_result(self, n: int, res, gateway, run_id: str,
                                   labels: dict[str, str], breeder_out: Path) -> None:
        """Record whether the viable offspring #n bred a viable offspring of its own: judge
        what it wrote (a generation of its own, bred_by #n, in no campaign's count) in a
        fresh run; the gateway's record of its calls is kept with the verdict."""
        rep = res.report.to_wire().get("reproduction") or {}
        log = gateway.log.to_wire()
        calls = [c for c in self.store.llm_calls(generation=n) if c.purpose == "reproduction"]
        tokens = sum(c.input_tokens + c.output_tokens + c.cache_creation_input_tokens
                     + c.cache_read_input_tokens for c in calls)
        cost = sum(c.cost_usd for c in calls)
        request = {k: rep.get(k) for k in ("path", "generation", "status", "ms", "error", "why", "files")}
        request["response"] = rep.get("body") or rep.get("body_excerpt")
        step_ms = (res.stage_ms or {}).get("reproduce")
        common = dict(campaign_id=self.cid, request=request, gateway=log, tokens=tokens, cost_usd=cost)
        cut = log.get("cut_off") or ""
        if cut.startswith("campaign budget"):
            # not a verdict on the offspring: the campaign ran out while it bred
            self.request_stop("stopped", cut[len("campaign budget: "):] or cut)
            self.store.record_reproduction(n, status="error", stage="gateway", reason=cut,
                                           offspring=None, rig_ms=step_ms, **common)
            return
        if not rep.get("offered") or not res.offspring_files:
            why = rep.get("why") or rep.get("error") or "it wrote no artifact"
            if cut:
                why = f"{why} (the gateway cut it off: {cut})"
            self.store.record_reproduction(n, status="infertile", stage="reproduce", reason=why,
                                           offspring=None, rig_ms=step_ms, **common)
            return
        bred = self.store.create_generation(spec_hash=self.spec_hash, campaign_id=None, parent=n,
                                            bred_by=n, attempt=0)
        self.store.add_event("bred", generation=bred.number, campaign_id=self.cid,
                             data={"breeder": n})
        out = breeder_out.parent / f"bred-{bred.number}"
        t0 = time.monotonic()
        try:
            self.store.record_artifact(bred.number, res.offspring_files)
            await asyncio.to_thread(write_artifact, out, res.offspring_files)
            bred_run = containers.bred_run_id(run_id, bred.number)
            # as the breeder's own run: an abort lets the rig thread drain (its containers
            # killed, removed by the rig) before the engine goes
            kw = self._probe_kw()
            child, started = await self._judge(bred.number, out, bred_run, labels, kw)
            self.store.record_rig_run(RigRun(
                generation=bred.number, run_id=bred_run, backend=child.backend,
                container_id=child.container_id, started_at=started, finished_at=utcnow(),
                stage_ms=child.stage_ms, total_ms=child.total_ms, first_output_ms=child.first_output_ms,
                oom_killed=child.oom_killed, rig_error=child.rig_error))
            report = child.report.to_wire()
            report["backend"] = child.backend
            if getattr(child, "rig_host", None):
                report["rig_host"] = child.rig_host
            self._stamp_layers(report, kw)
            viable = child.report.status == "viable"
            diag = child.report.diagnostics
            with self.store.write():
                self.store.record_report(bred.number, report)
                self.store.set_outcome(bred.number, Outcome.PROMOTED if viable else Outcome.FAILED,
                                       ("viable" if viable else (diag.summary if diag else "non-viable"))[:500])
            self.store.record_reproduction(
                n, status="fertile" if viable else "infertile",
                stage=None if viable else f"offspring:{child.report.failure_stage}",
                reason=None if viable else (diag.summary if diag else "non-viable"),
                offspring=bred.number, rig_ms=(step_ms or 0) + int((time.monotonic() - t0) * 1000),
                **common)
        except BaseException:  # an abort's cancellation too: never leave it in progress
            self._close(bred.number, Outcome.INTERRUPTED,
                        f"the engine stopped while judging it ({self.stop_reason or 'error'})"[:500])
            raise
        finally:
            shutil.rmtree(out, ignore_errors=True)

    async def _generate_and_judge(self, work: Work, out: Path, run_id: str,
                                  labels: dict[str, str], prepared, channel=None) -> None:
        from core.llm.ledger import LedgeredProvider
        from core.prime.generate import generate
        from core.prime.prompt import history_digest

        n = work.gen.number
        provider = BudgetedProvider(
            LedgeredProvider(self.base_provider, self.store, generation=n, campaign_id=self.cid),
            self.budget, price_of(self.base_provider),
        )
        if work.redo_of is not None:
            # the artifact was paid for by the interrupted generation: judge it, call nobody
            files = self.store.artifact_files(work.redo_of.artifact_hash or "")
            if not files:
                self._close(n, Outcome.FAILED, f"no artifact: the files of #{work.redo_of.number} "
                                               "are missing from the store", stage="generate")
                return
            await asyncio.to_thread(write_artifact, out, files)
            self.store.append_log(n, "rig", [f"[engine] #{n}: judging again the artifact of "
                                             f"#{work.redo_of.number} (no model call)"])
        else:
            retry = self._retry_context(work.retry_of) if work.retry_of else None
            model = self.settings.model
            if work.gen.attempt > 0 and self.settings.escalation_model:
                model = self.settings.escalation_model
            # the log is not silent while the model writes (which takes most of the time)
            after = f", after #{work.retry_of.number} failed" if work.retry_of else ""
            self.store.append_log(n, "rig", [f"[engine] #{n}: {model} is writing the artifact "
                                             f"(attempt {work.gen.attempt + 1}{after}) ..."])
            t_gen = time.monotonic()
            result = await generate(
                self.spec_text, out, provider,
                generation=n, parent=work.gen.parent or 0, seed=self.settings.seed, model=model,
                history=history_digest(self.store, self.spec_hash), retry=retry,
                sink=None, max_repairs=self.settings.max_repairs, campaign_id=self.cid,
                max_tokens=self.settings.max_tokens, draw=self._draw(n),
                max_continuations=self.settings.max_continuations,
                context_window=self.settings.context_window,
            )
            if result.error or not result.artifact:
                self._keep_answer(n, result)
                self._close(n, Outcome.FAILED, f"no artifact: {result.error}"[:500], stage="generate")
                return
            self.store.record_artifact(n, result.artifact)
            extra = "".join(f", {w} {k}" for k, w in (("repair(s)", result.repairs),
                                                        ("continuation(s)", result.continuations)) if w)
            self.store.append_log(n, "rig", [
                f"[engine] #{n}: the artifact came back in {time.monotonic() - t_gen:.1f} s "
                f"({len(result.artifact)} files, {result.input_tokens:,} tokens in, "
                f"{result.output_tokens:,} out{extra}); the rig judges it next"])
        if self.aborting:
            raise asyncio.CancelledError
        rig_kw: dict[str, Any] = {"prepared": prepared} if prepared is not None else {}
        await self._ensure_examiner()
        rig_kw.update(self._probe_kw())
        gateway = None
        if channel is not None:
            # the offspring's one way out, up for the whole run (it breeds only once viable)
            gateway = self._gateway(channel, provider, n)
            await gateway.start()
            rig_kw["channel"] = channel
        try:
            res, started = await self._judge(n, out, run_id, labels, rig_kw)
        finally:
            if gateway is not None:
                await gateway.close()
        if self.aborting:
            raise asyncio.CancelledError
        if res.report.status != "viable" and self.hosts is None:
            # Did the rig break under the run (engine stopped, link lost)? Then this is no
            # verdict on the artifact: interrupt, and re-judge it once the rig is back.
            problem = await self._rig_problem()
            if problem:
                during = f" (during the run: {res.rig_error})" if res.rig_error else ""
                raise RigUnavailable(f"{problem}{during}")
        self.store.record_rig_run(RigRun(
            generation=n, run_id=run_id, backend=res.backend, container_id=res.container_id,
            started_at=started, finished_at=utcnow(), stage_ms=res.stage_ms, total_ms=res.total_ms,
            first_output_ms=res.first_output_ms, oom_killed=res.oom_killed, rig_error=res.rig_error,
        ))
        report = res.report.to_wire()
        report["backend"] = res.backend
        if getattr(res, "rig_host", None):
            report["rig_host"] = res.rig_host  # where it was judged: name, Docker and kernel facts
        self._stamp_layers(report, rig_kw)
        if res.report.status == "viable":
            final, reason = Outcome.PROMOTED, "viable"
            if self._redteam_chosen(n):
                # Layer 3 before the verdict is recorded: its threshold may turn it around
                why = await self._red_team(n, out, run_id, labels, provider, report, work)
                if why:
                    final, reason = Outcome.FAILED, why
        else:
            diag = res.report.diagnostics
            final, reason = Outcome.FAILED, (diag.summary if diag else "non-viable")
            if res.rig_error:
                reason = f"rig error: {res.rig_error}"
        # tested -> promoted/failed in one transaction: a crash never leaves a judged
        # generation undecided
        with self.store.write():
            self.store.record_report(n, report)
            self.store.set_outcome(n, final, reason[:500])
        if gateway is not None and final is Outcome.PROMOTED:
            await self._reproduction_result(n, res, gateway, run_id, labels, out)

    async def _judge(self, n: int, out: Path, run_id: str, labels: dict[str, str],
                     rig_kw: dict[str, Any]):
        if self.hosts is not None:
            return await self._judge_on_hosts(n, out, run_id, labels, rig_kw)
        async with self.rig_sem:
            if self.aborting:
                raise asyncio.CancelledError
            logs = LogWriter(self.store.path, n)
            started = utcnow()
            rig = asyncio.get_running_loop().run_in_executor(None, functools.partial(
                self.rig_fn, out, backend=self.settings.backend, run_id=run_id, generation=n,
                on_line=logs, labels=labels, **rig_kw))
            try:
                res = await asyncio.shield(rig)
            finally:
                if self.aborting:
                    # A cancelled await does not stop the rig thread: let it finish (the abort
                    # killed its containers) so it frees its slot and writes its last line
                    # before the note saying that line judged killed containers, not the artifact.
                    with contextlib.suppress(BaseException):
                        await asyncio.wait_for(asyncio.shield(rig), RIG_DRAIN_S)
                    logs("rig", f"[engine] interrupted: {self.stop_reason or 'aborted'}; the containers "
                                "were killed, so the verdict above does not judge the artifact")
                await asyncio.to_thread(logs.close)
        return res, started

    async def _judge_on_hosts(self, n: int, out: Path, run_id: str, labels: dict[str, str],
                              rig_kw: dict[str, Any]):
        """One rig run on a free host slot. When the host, not the artifact, ended it (the
        pool says: link down, Docker gone, image gone, container killed from outside) the
        run is no attempt: the host is charged a failure and the same artifact runs again on
        another host. No host left: RigUnavailable (the generation is redone on resume)."""
        from core.hosts.pool import OUTSIDE_PREFIX, HostTrouble, Lease, NoHostLeft

        pool = self.hosts
        tried: set[str] = set()
        outside = 0  # runs whose container was killed from outside (a second time: the artifact)
        rechecked = False  # a rig timeout is a verdict only once it reproduces on another host
        while True:
            try:
                slot = pool.slot(tried)
                host = await slot.__aenter__()
            except NoHostLeft as exc:
                raise RigUnavailable(str(exc)) from exc
            try:
                if self.aborting:
                    raise asyncio.CancelledError
                logs = LogWriter(self.store.path, n)
                started = utcnow()
                kw = dict(rig_kw)
                if host.remote:
                    kw.pop("prepared", None)  # made on the local engine

                def call(host=host, kw=kw, logs=logs):
                    try:
                        lease = pool.lease(host)
                    except HostTrouble as exc:
                        return None, None, str(exc)
                    rev = None
                    channel = kw.get("channel")
                    if channel is not None and host.remote:
                        # the offspring breeds through this engine's gateway: its socket is
                        # reverse-forwarded into a folder of the run's own on the host
                        import dataclasses

                        rev = pool.links.reverse(host, Path(channel.gateway_dir) / channel.socket_name,
                                                 f"/tmp/cambrian-gw-{self.home_label}/{run_id}")
                        try:
                            kw = dict(kw, channel=dataclasses.replace(channel, gateway_dir=rev.start()))
                        except Exception as exc:  # noqa: BLE001 - HostLinkError
                            return lease, None, f"the LLM gateway could not reach {host.name}: {exc}"
                    try:
                        return self._run_on(lease, pool, kw, logs, n, out, run_id, labels)
                    finally:
                        if rev is not None:
                            rev.stop()

                rig = asyncio.get_running_loop().run_in_executor(None, call)
                try:
                    lease, res, why = await asyncio.shield(rig)
                except BaseException:
                    if self.aborting:
                        with contextlib.suppress(BaseException):
                            await asyncio.wait_for(asyncio.shield(rig), RIG_DRAIN_S)
                    await asyncio.to_thread(logs.close)
                    raise
                if self.aborting:
                    logs("rig", f"[engine] interrupted: {self.stop_reason or 'aborted'}; the containers "
                                "were killed, so the verdict above does not judge the artifact")
                    await asyncio.to_thread(logs.close)
                    raise asyncio.CancelledError
                if why is not None and why.startswith(OUTSIDE_PREFIX) and res is not None:
                    outside += 1
                    if outside > 1:  # on two hosts: the artifact did it, and that is its verdict
                        why = None
                if why is None and not rechecked and _timed_out(res) and any(
                        h.name not in tried and h.name != host.name for h in pool.usable()):
                    rechecked = True
                    pool.succeeded(lease)  # a slow run is no fault of the host's
                    logs("rig", f"[engine] the run timed out on rig host {host.name}; a timeout counts "
                                f"only when it reproduces on another host: running the artifact again")
                    await asyncio.to_thread(logs.close)
                    self.store.add_event("rig_timeout_recheck", generation=n, campaign_id=self.cid,
                                         data={"host": host.name, "stage": res.report.failure_stage})
                    tried.add(host.name)
                    continue
                if why is None:
                    pool.succeeded(lease)
                    res.rig_host = lease.report_block()
                    if rechecked:
                        res.rig_host["timeout_rechecked"] = True
                    await asyncio.to_thread(logs.close)
                    return res, started
                logs("rig", f"[engine] rig host {host.name} failed: {why} -- not a verdict; "
                            f"running the artifact again on another host")
                await asyncio.to_thread(logs.close)
                await asyncio.to_thread(pool.failed, lease or Lease(host, None), why)
                self.store.add_event("rig_host_retry", generation=n, campaign_id=self.cid,
                                     data={"host": host.name, "reason": why[:500]})
                tried.add(host.name)
            finally:
                await slot.__aexit__(None, None, None)

    def _run_on(self, lease, pool, kw, logs, n: int, out: Path, run_id: str, labels: dict[str, str]):
        """One rig call on a leased host (in a rig thread): (lease, result, why the host
        failed -- None when the result is a verdict)."""
        try:
            res = self.rig_fn(out, backend=self.settings.backend, run_id=run_id, generation=n,
                              on_line=logs, labels=labels, docker_url=lease.docker_url, **kw)
        except Exception as exc:  # noqa: BLE001 - RigSetupError, a dropped link
            why = pool.trouble(lease, str(exc)) or f"rig setup failed on {lease.name}: {exc}"
            return lease, None, why
        why = pool.trouble(lease, res.rig_error) if res.report.status != "viable" else None
        return lease, res, why

    # --- the red team (Layer 3) --------------------------------------------------------------

    def _redteam_chosen(self, n: int) -> bool:
        from core.redteam.service import sampled as redteam_sampled

        s = self.settings
        if s.redteam == "off":
            return False
        return s.redteam == "every" or redteam_sampled(s.seed, self._draw(n), s.redteam_rate)

    async def _red_team(self, n: int, out: Path, run_id: str, labels: dict[str, str], provider,
                        report: dict[str, Any], work: Work) -> str | None:
        """One ``redteam`` call on the viable artifact of #n (through the generation's budgeted,
        ledgered provider), then a fresh rig run of the same directory with those probes alone.
        Puts the ``redteam`` block in ``report`` and applies the campaign's threshold; returns
        the reason when that made the verdict non-viable. A budget refusal stops the campaign
        and leaves Layer 1's verdict (the block says why it is unavailable); an abort raises,
        and the caller closes the generation as interrupted (nothing recorded)."""
        from core.redteam.service import Attack, apply_threshold, propose, rig_layer, score_block

        gen = self.store.generation(n)
        digest = gen.artifact_hash or (work.redo_of.artifact_hash if work.redo_of else None) or ""
        files = self.store.artifact_files(digest)
        try:
            attack = await propose(self.spec_text, files, provider, self.settings.model, generation=n,
                                   campaign_id=self.cid, max_tokens=min(8000, self.settings.max_tokens))
        except BudgetExceeded as exc:
            self.request_stop("stopped", str(exc))
            attack = Attack(unavailable=f"campaign budget: {exc}"[:500])
        if self.aborting:
            raise asyncio.CancelledError
        run, rig_ms = None, None
        if attack.unavailable is None:
            rt_run = containers.redteam_run_id(run_id)
            # the generation's log goes on with a second run of the same artifact: say so
            intro = LogWriter(self.store.path, n)
            intro("rig", f"[engine] the red team's run ({rt_run}): the same artifact again, with its "
                         f"{len(attack.probes)} probe(s) after the visible checks")
            await asyncio.to_thread(intro.close)
            t0 = time.monotonic()
            # a fresh run (no prepared containers, no channel), labelled like the generation's
            res, started = await self._judge(n, out, rt_run, labels,
                                             {"probes": {"redteam": rig_layer(attack)}})
            if self.aborting:
                raise asyncio.CancelledError
            rig_ms = int((time.monotonic() - t0) * 1000)
            self.store.record_rig_run(RigRun(
                generation=n, run_id=rt_run, backend=res.backend, container_id=res.container_id,
                started_at=started, finished_at=utcnow(), stage_ms=res.stage_ms, total_ms=res.total_ms,
                first_output_ms=res.first_output_ms, oom_killed=res.oom_killed, rig_error=res.rig_error))
            run = res.report.to_wire()
            if res.rig_error:
                attack.unavailable = f"the red-team run broke: {res.rig_error}"[:500]
        block = score_block(attack, run, rig_ms)
        if block["unavailable"]:
            self.store.add_event("redteam_unavailable", generation=n, campaign_id=self.cid,
                                 data={"why": block["why"]})
        report["redteam"] = block
        if block["score"] is not None:
            report.setdefault("fitness", {})["redteam_score"] = block["score"]
        return apply_threshold(report, block, self.settings.redteam_threshold)

    def _probe_kw(self) -> dict[str, Any]:
        """The hidden layers for the rig: the spec's sealed vectors and the examiner's
        undismissed probes, each gating or only scored as the campaign says."""
        from core.examiner import records
        from core.examiner.service import rig_layer

        probes: dict[str, list[dict[str, Any]]] = {}
        gate: list[str] = []
        if self.sealed:
            probes["sealed"] = self.sealed
            if self.settings.sealed_vectors == "gate":
                gate.append("sealed")
        if self.examiner_set is not None and self.settings.examiner != "off":
            # dismissals are read afresh: one made meanwhile (CLI, TUI) counts from now on
            current = records.load(self.store, self.spec_hash, self.examiner_model) or self.examiner_set
            layer = rig_layer(current)
            if layer:
                probes["examiner"] = layer
                if self.settings.examiner == "gate":
                    gate.append("examiner")
        return {"probes": probes, "gate": gate} if probes else {}

    async def _ensure_examiner(self) -> None:
        """The examiner's probe set, made once (the first generation to be judged asks;
        the others wait for it). A provider failure turns the layer off for this engine run
        (recorded as an event; nothing stored, so a resumed campaign asks again)."""
        from core.examiner.service import ExaminerUnavailable, ensure_probes
        from core.llm.ledger import LedgeredProvider

        if self.settings.examiner == "off" or self.examiner_set is not None or self.examiner_off_why:
            return
        async with self._examiner_lock:
            if self.examiner_set is not None or self.examiner_off_why:
                return
            # the campaign's call, no generation's: budgeted and ledgered like every other
            provider = BudgetedProvider(
                LedgeredProvider(self.base_provider, self.store, generation=None, campaign_id=self.cid),
                self.budget, price_of(self.base_provider))
            try:
                ps = await ensure_probes(self.store, self.spec_text, self.spec_hash, provider,
                                         self.examiner_model, campaign_id=self.cid,
                                         max_tokens=min(8000, self.settings.max_tokens))
            except ExaminerUnavailable as exc:
                self.examiner_off_why = str(exc)
                self.store.add_event("examiner_unavailable", campaign_id=self.cid,
                                     data={"error": str(exc)[:500]})
                return
            self.examiner_set = ps
            if ps.state != "ready":
                self.store.add_event("examiner_unavailable", campaign_id=self.cid,
                                     data={"error": ps.reason, "stored": True})

    def _stamp_layers(self, report: dict[str, Any], rig_kw: dict[str, Any]) -> None:
        """The campaign's viability policy as it judged this report (which layer gated, which
        only scored, which did not run), and which examiner set judged it (the suspect rule
        counts per set)."""
        probes, gate = rig_kw.get("probes") or {}, rig_kw.get("gate") or []
        s = self.settings

        def mode(kind: str, setting: str) -> str:
            if setting == "off" or kind not in probes:
                return "off" if setting == "off" else f"{setting} (no probes)"
            return "gate" if kind in gate else "score"

        report["verification"] = {
            "sealed": mode("sealed", s.sealed_vectors) if self.sealed else "none in the spec",
            "examiner": mode("examiner", s.examiner),
            "redteam": s.redteam if s.redteam != "sample" else f"sample {s.redteam_rate:g}",
            "redteam_threshold": s.redteam_threshold,
        }
        sent = probes.get("examiner")
        if sent and self.examiner_set is not None:
            report["examiner_set"] = {"model": self.examiner_model, "spec_hash": self.spec_hash,
                                      "probes": len(sent), "gate": "examiner" in rig_kw.get("gate", [])}

    def _draw(self, n: int) -> int | None:
        row = self.store.conn.execute("SELECT draw FROM generations WHERE number=?", (n,)).fetchone()
        return row[0] if row else None

    def _retry_context(self, failed: Generation):
        from core.prime.prompt import RetryInfo

        files = self.store.artifact_files(failed.artifact_hash) if failed.artifact_hash else {}
        files.pop("manifest.json", None)
        report = self.store.report(failed.number) or {}
        return RetryInfo(attempt=failed.attempt + 1, generation=failed.number,
                         diagnostics=report.get("diagnostics"), files=files, summary=failed.reason)


# --- defaults ----------------------------------------------------------------------------


def default_provider_factory(settings: CampaignSettings, home: Path | None = None):
    from core.llm.config import provider_from
    from core.llm.pricing import PriceBook

    if settings.provider in ("anthropic", "openai"):
        return provider_from(settings, prices=PriceBook.load(home))
    return provider_from(settings)


def sampled(seed: int, draw: int | None, rate: float, kind: str = "reproduction") -> bool:
    """Whether this draw of a campaign is in its ``kind`` sample (reproduction, redteam): a
    hash of the kind, the seed and the draw, so a resumed or replayed campaign samples the
    same generations, and each kind samples independently of the others."""
    import hashlib

    h = hashlib.sha256(f"{kind}:{seed}:{draw}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < rate


def _timed_out(res) -> bool:
    """A non-viable verdict reached by a stage's deadline (the report's checks say so)."""
    if res.report.status == "viable":
        return False
    checks = res.report.to_wire().get("checks") or {}
    return any(isinstance(c, dict) and c.get("timed_out") for c in checks.values())


def default_rig_check(backend: str) -> None:
    from rig.api import check_rig

    check_rig(backend)


def rig_unavailable_reason(problem: str) -> str:
    return (f"rig unavailable: {problem} — fix it (`cambrian doctor` says how), then resume "
            f"the campaign; nothing is judged or paid for meanwhile")[:500]


def write_artifact(out: Path, files: dict[str, bytes]) -> None:
    """Write stored artifact files into a fresh directory for the rig."""
    shutil.rmtree(out, ignore_errors=True)
    for rel, data in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def default_rig(artifact_dir, **kw):
    from rig.api import run_artifact

    return run_artifact(artifact_dir, **kw)


def install_signal_handlers(loop: asyncio.AbstractEventLoop, runner: CampaignRunner) -> None:
    def on_term() -> None:
        runner.abort("engine terminated (SIGTERM)")

    loop.add_signal_handler(signal.SIGTERM, on_term)
    loop.add_signal_handler(signal.SIGINT, on_term)
    # detached engines have no terminal; a stray SIGHUP must not kill them
    loop.add_signal_handler(signal.SIGHUP, lambda: None)

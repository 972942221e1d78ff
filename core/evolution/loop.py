"""The evolution loop: ask → mutate the incumbent → grammar gate → screen → full → accept.

One process runs one evolution run (``python -m core.evolution.main``, detached), holding
the run's lease with a heartbeat. Campaigns run *in this process* through
``core.engine.main.run_campaign``, one after another, each holding its own lease; a crash
anywhere is resumed by starting the process again:

* the optimizer is rebuilt by replaying the stored observations (``optimizer.rebuild``
  asserts every re-asked point equals the stored one);
* a variant whose campaign already exists is taken from the store (``evolution_variant``
  event), not mutated again — a real LLM would not repeat itself;
* an unfinished campaign is continued by ``run_campaign`` (interrupted generations are
  redone in the same draw slots, and campaigns run with ``max_retries=0``, so their results
  are a function of (spec, model, seed, draws) only);
* an observation row is the commit point of a step; budget checks use the planned sizes of
  the run's campaigns, so they give the same answers before and after a crash.

Control: the run accepts the campaign commands (``pause``, ``resume``, ``abort``) on its own
id; a control thread relays them to the campaign that is running, heartbeats the lease and
watches ``HOME/HALT`` (campaigns see it too, and stop).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from core.engine.stop_reasons import no_space_reason, out_of_space, resumed_reason
from core.evolution import records as rec
from core.evolution.acceptance import Counts, accept, promising
from core.evolution.hats import Hat
from core.evolution.operators import (
    AmendmentRef,
    LLMRewriter,
    Variant,
    check_variant,
    make_variant,
)
from core.evolution.optimizer import rebuild
from core.evolution.settings import (EvolutionSettings, canonical, deferred_points, derive_seed, search_space,
                                     sweep_points)
from core.evolution.state import DUPLICATE_PREFIX, RunState, campaign_counts
from core.home import db_path
from core.models import CampaignSettings, Observation, SpecOrigin
from core.store import Store

POLL_S = 0.3
HEARTBEAT_S = 2.0
MUTATE_MAX_TOKENS = 8000


class RunStopped(Exception):
    """The run must stop now (abort, HALT, budget of a campaign); carries the final state."""

    def __init__(self, state: str, reason: str):
        super().__init__(reason)
        self.state = state
        self.reason = reason


class Control(threading.Thread):
    """Polls the run's commands, relays them to the running campaign, keeps the lease."""

    def __init__(self, db: Path, run_id: str, home: Path, paused: bool):
        super().__init__(name=f"evolution-control-{run_id}", daemon=True)
        self.db = db
        self.run_id = run_id
        self.home = home
        self.lock = threading.Lock()
        self.paused = paused
        self.abort_reason: str | None = None
        self.halted = False
        self.child: str | None = None
        self._quit = threading.Event()
        self.pid = os.getpid()

    # called from the main thread ------------------------------------------------------------
    def enter(self, store: Store, campaign_id: str) -> None:
        """Make ``campaign_id`` the running child: stale commands dropped, pause state set."""
        with self.lock:
            self.child = campaign_id
            rec.drain_commands(store, campaign_id)
            state = store.campaign(campaign_id)["state"]
            if self.paused and state != "paused":
                store.set_campaign_state(campaign_id, "paused", "evolution run paused")
            elif not self.paused and state == "paused":
                store.set_campaign_state(campaign_id, "pending", "evolution run running")

    def leave(self) -> None:
        with self.lock:
            self.child = None

    def abort(self, reason: str) -> None:
        with self.lock:
            if self.abort_reason is None:
                self.abort_reason = reason
                child = self.child
            else:
                return
        if child:
            with Store.open(self.db) as s:
                s.send_command(child, "abort", {"reason": reason})

    def shutdown(self) -> None:
        self._quit.set()
        self.join(timeout=5)

    # the thread -------------------------------------------------------------------------------
    def run(self) -> None:
        store = Store.open(self.db)
        last_beat = 0.0
        try:
            while not self._quit.is_set():
                for cmd in store.take_commands(self.run_id):
                    self._command(store, cmd["command"], cmd.get("args") or {})
                if (self.home / "HALT").exists():
                    self.halted = True
                if time.monotonic() - last_beat >= HEARTBEAT_S:
                    last_beat = time.monotonic()
                    if not store.holds_lease(self.run_id, self.pid):
                        self.abort("lease lost to another process")
                    else:
                        store.heartbeat(self.run_id, self.pid)
                self._quit.wait(POLL_S)
        finally:
            store.close()

    def _command(self, store: Store, name: str, args: dict[str, Any]) -> None:
        with self.lock:
            child = self.child
            if name == "pause" and not self.paused:
                self.paused = True
                store.set_campaign_state(self.run_id, "paused", "paused by user")
            elif name == "resume" and self.paused:
                self.paused = False
                store.set_campaign_state(self.run_id, "running", "resumed by user")
            elif name == "abort":
                if self.abort_reason is None:
                    self.abort_reason = args.get("reason") or "aborted by user"
            else:
                return
            if child:
                relay = {"reason": self.abort_reason} if name == "abort" else {}
                store.send_command(child, name, relay)


@dataclass
class StepResult:
    observation: Observation
    extras: dict[str, Any]


class EvolutionLoop:
    """Runs (or resumes) one evolution run in this process; :meth:`run` returns its final state.

    ``runner_kw`` go to ``run_campaign`` (tests: ``rig_fn``, ``provider_factory``, ``slots``);
    ``mutation_provider_factory()`` builds the provider for rewrite calls (default: the
    run's provider)."""

    def __init__(
        self,
        home: Path,
        run_id: str,
        *,
        runner_kw: dict[str, Any] | None = None,
        mutation_provider_factory: Callable[[], Any] | None = None,
        on_step: Callable[[Observation], None] | None = None,
    ):
        self.home = Path(home)
        self.run_id = run_id
        self.runner_kw = dict(runner_kw or {})
        self.mutation_provider_factory = mutation_provider_factory
        self.on_step = on_step
        self.store: Store | None = None
        self.control: Control | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def run(self) -> str:
        store = self.store = Store.open(db_path(self.home))
        try:
            row = store.campaign(self.run_id)
            if row["kind"] != rec.RUN_KIND:
                raise ValueError(f"{self.run_id} is a {row['kind']}, not an evolution run")
            if row["state"] in ("completed", "aborted"):
                return row["state"]
            if not store.acquire_lease(self.run_id):
                raise RuntimeError(f"evolution {self.run_id} is already run by pid {store.lease(self.run_id)['pid']}")
            store.set_campaign_runtime(self.run_id, engine_pid=os.getpid())
            self.control = Control(store.path, self.run_id, self.home, paused=row["state"] == "paused")
            self.control.start()
            self._install_signals()
            try:
                store.set_campaign_state(self.run_id, "paused" if self.control.paused else "running",
                                         resumed_reason(row))
                store.add_event("evolution_started", campaign_id=self.run_id, data={"pid": os.getpid()})
                try:
                    state, reason = self._loop(EvolutionSettings(**row["settings"]))
                except RunStopped as stop:
                    state, reason = stop.state, stop.reason
                if state == "aborted":
                    # an aborted run is final: a child created but never started must not
                    # stay pending forever
                    for child in rec.child_campaigns(store, self.run_id):
                        if child["state"] not in ("completed", "aborted") and not store.lease_alive(child["id"]):
                            store.set_campaign_state(child["id"], "aborted", f"evolution aborted: {reason}"[:500])
                store.set_campaign_state(self.run_id, state, reason)
                return state
            except BaseException as exc:
                why = f"{type(exc).__name__}: {exc}"
                state = "crashed"
                if out_of_space(exc):  # nothing is wrong with the run: free space, resume
                    state, why = "stopped", no_space_reason(why, self.home, "run")
                try:  # the smallest write first: on a full disk the traceback may not fit
                    store.set_campaign_state(self.run_id, state, why[:500])
                    store.add_event("evolution_crashed", campaign_id=self.run_id,
                                    data={"error": why, "traceback": traceback.format_exc()[-4000:]})
                except Exception:  # noqa: BLE001
                    pass
                raise
            finally:
                self.control.shutdown()
                store.release_lease(self.run_id)
        finally:
            store.close()
            self.store = None

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        control = self.control
        assert control is not None

        def on_term(signum: int, _frame: Any) -> None:
            control.abort(f"evolution terminated ({signal.Signals(signum).name})")

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def _check_stop(self) -> None:
        c = self.control
        assert c is not None
        if c.abort_reason:
            raise RunStopped("aborted", c.abort_reason)
        if c.halted:
            raise RunStopped("stopped", f"HALT file present ({self.home / 'HALT'})")

    def _wait_while_paused(self) -> None:
        c = self.control
        assert c is not None
        while True:
            self._check_stop()
            with c.lock:
                if not c.paused:
                    return
            time.sleep(POLL_S)

    # --- campaigns ------------------------------------------------------------------------------

    def _remaining_usd(self, s: EvolutionSettings) -> float | None:
        if s.budget_usd is None:
            return None
        _, usd = rec.run_spend(self.store, self.run_id)  # type: ignore[arg-type]
        return max(0.0, s.budget_usd - usd)

    def _campaign(self, s: EvolutionSettings, cid: str, spec_hash: str, model: str, n: int,
                  seed: int, kind: str) -> Counts:
        """Create (once) and run (until completed) one campaign of the run."""
        store = self.store
        assert store is not None and self.control is not None
        if not rec.campaign_exists(store, cid):
            from core.llm.config import ModelRef

            # the model choice may name another provider or server than the run's
            ref = ModelRef.parse(model, provider=s.provider, base_url=s.base_url)
            base = dict(spec_hash=spec_hash, generations=n, parallelism=s.parallelism, provider=s.provider,
                        model=model, seed=seed, max_retries=0, budget_usd=self._remaining_usd(s),
                        backend=s.backend, cassette=s.cassette, max_tokens=s.max_tokens,
                        generation_timeout_s=s.generation_timeout_s, base_url=s.base_url,
                        api_key_env=s.api_key_env, context_window=s.context_window,
                        continuation=s.continuation)
            # no examiner unless the objective needs it: every variant is a new spec version
            # (one examine call each), and viability or fertility never change with it
            base["examiner"] = "off"
            if s.fitness == "fertility":
                base.update(reproduction="every", fitness="fertility")
            elif s.fitness == "verified":
                # Layer 2 counts: its probes are made once per variant (from the variant's
                # visible text only) and scored; the counts leave out what fails them
                base.update(examiner="score", fitness="verified")
            settings = CampaignSettings(**ref.settings(base))
            store.create_campaign(cid, spec_hash, settings.model_dump(), kind=kind)
        while store.campaign(cid)["state"] != "completed":
            self._wait_while_paused()
            self.control.enter(store, cid)
            try:
                from core.engine.main import run_campaign

                final = run_campaign(self.home, cid, **self.runner_kw)
            finally:
                self.control.leave()
                self._install_signals()  # asyncio.run restored the default handlers
            self._check_stop()
            if final == "completed":
                break
            reason = store.campaign(cid).get("reason") or final
            if final == "aborted":
                raise RunStopped("aborted", f"campaign {cid} aborted: {reason}")
            if final == "paused":  # cannot happen: a paused runner keeps waiting
                continue
            raise RunStopped("stopped", f"campaign {cid} {final}: {reason}")
        return campaign_counts(store, cid)

    # --- the loop ---------------------------------------------------------------------------------

    def _loop(self, s: EvolutionSettings) -> tuple[str, str]:
        store = self.store
        assert store is not None
        base_text = store.spec_text(s.base_spec_hash)
        hats = s.hat_objects()
        amendments = [AmendmentRef(a.id, a.section, a.text, a.status, a.evidence) for a in s.amendments]
        dims = search_space(s)

        base_n = min(s.full_generations, s.budget_generations)
        base_counts = self._campaign(s, rec.base_campaign_id(self.run_id), s.base_spec_hash, s.model,
                                     base_n, derive_seed(s.seed, "base"), rec.FULL_KIND)
        observations = store.observations(self.run_id)
        state = RunState.fold(store, s, base_counts, observations)
        told = lambda p: canonical(p, dims)  # noqa: E731
        opt = rebuild(dims, state.history, kind=s.optimizer, seed=s.seed, told=told,
                      **self._optimizer_kw(s, told, dims))
        pending = rec.events_by_index(store, self.run_id, rec.EV_VARIANT)

        while True:
            i = len(state.history)
            self._wait_while_paused()
            if s.max_observations is not None and i >= s.max_observations:
                return "completed", f"{i} observations"
            point = opt.ask()
            started = pending.get(i)
            if started is None:
                why = self._budget_exhausted(s)
                if why:
                    return "completed", why
            step = self._step(s, i, point, state, started, base_text, hats, amendments)
            with store.write():
                store.add_observation(step.observation)
                store.add_event(rec.EV_OBSERVATION, campaign_id=self.run_id,
                                data={"index": i, **step.extras})
            y = state.apply(store, step.observation)
            opt.tell(told(point), y)
            if self.on_step is not None:
                self.on_step(step.observation)

    @staticmethod
    def _optimizer_kw(s: EvolutionSettings, project: Any, dims: list) -> dict[str, Any]:
        if s.optimizer != "bo":
            return {}
        sweep = s.initial_design == "sweep"
        initial = sweep_points(s, dims) if sweep else []
        known = [(p, 0.0) for p in deferred_points(s, dims)] if sweep else []
        return {"n_initial_points": s.n_initial_points, "base_estimator": s.base_estimator,
                "acq_func": s.acq_func, "project": project, "initial": initial, "known": known,
                "prior": s.prior.mean if s.prior is not None else None}

    def _budget_exhausted(self, s: EvolutionSettings) -> str | None:
        planned = rec.planned_generations(self.store, self.run_id)  # type: ignore[arg-type]
        if planned + s.screen_generations > s.budget_generations:
            return f"generation budget used ({planned} of {s.budget_generations} planned)"
        if s.budget_usd is not None:
            _, usd = rec.run_spend(self.store, self.run_id)  # type: ignore[arg-type]
            if usd >= s.budget_usd:
                return f"dollar budget used (${usd:.4f} of ${s.budget_usd:.4f})"
        return None

    # --- one step ---------------------------------------------------------------------------------

    def _mutate(self, s: EvolutionSettings, i: int, point: dict[str, Any], state: RunState,
                hats: dict[str, Hat], amendments: list[AmendmentRef]) -> Variant:
        store = self.store
        assert store is not None
        parent = state.parent(store)
        donors = state.donors(store)

        async def go() -> Variant:
            from core.llm.ledger import LedgeredProvider

            inner = None
            rewriter = None
            if point["operator"] == "rewrite":
                inner = self._mutation_provider(s)
                from core.llm.config import ModelRef

                rewrite_model = ModelRef.parse(s.rewrite_model, provider=s.provider, base_url=s.base_url).model
                rewriter = LLMRewriter(LedgeredProvider(inner, store, generation=None, campaign_id=self.run_id),
                                       rewrite_model, max_tokens=MUTATE_MAX_TOKENS)
            try:
                return await make_variant(point, parent, system_section=s.system_section, hats=hats,
                                          amendments=amendments, donors=donors, rewrite=rewriter,
                                          seed=derive_seed(s.seed, "mutate", i))
            finally:
                close = getattr(inner, "aclose", None)
                if close is not None:
                    await close()

        v = asyncio.run(go())
        return check_variant(store.spec_text(s.base_spec_hash), parent, v)

    def _mutation_provider(self, s: EvolutionSettings) -> Any:
        if self.mutation_provider_factory is not None:
            return self.mutation_provider_factory()
        from core.llm.config import ModelRef, provider_from

        # rewrites go to the rewrite model's own provider and server
        ref = ModelRef.parse(s.rewrite_model, provider=s.provider, base_url=s.base_url)
        base = s.model_dump(include={"provider", "base_url", "api_key_env", "context_window", "continuation",
                                     "cassette"})
        if ref.provider in ("anthropic", "openai"):
            from core.llm.pricing import PriceBook

            return provider_from(ref.settings(base), prices=PriceBook.load(self.home))
        return provider_from(ref.settings(base))

    def _step(self, s: EvolutionSettings, i: int, point: dict[str, Any], state: RunState,
              started: dict[str, Any] | None, base_text: str, hats: dict[str, Hat],
              amendments: list[AmendmentRef]) -> StepResult:
        store = self.store
        assert store is not None
        parent_hash = state.incumbent.spec_hash
        parent_model = state.incumbent.model
        common = {"parent_model": parent_model, "operator": point["operator"]}
        if point["operator"] == "amend" and int(point["amendment"]) < len(amendments):
            a = amendments[int(point["amendment"])]  # what was inserted, and why (proposals)
            common["amendment"] = {"id": a.id, "status": a.status, "section": a.section,
                                   **({"evidence": dict(a.evidence)} if a.evidence else {})}
        if started is not None:
            if started.get("params") != point:
                from core.evolution.optimizer import ReplayMismatch

                raise ReplayMismatch(f"observation {i}: the optimizer asked {point} but the stored "
                                     f"variant was made for {started.get('params')}")
            spec_hash, model, detail = started["spec_hash"], started["model"], started.get("detail", "")
        else:
            v = self._mutate(s, i, point, state, hats, amendments)
            detail = v.detail
            dup = None
            if v.ok:
                dup = state.evaluated.get((v.hash, v.model))
                if dup is not None:
                    who = "the base spec" if dup.index < 0 else f"observation {dup.index}"
                    v = v.reject(f"{DUPLICATE_PREFIX}same spec and model as {who}")
            if not v.ok:
                keep_hash = v.hash if (v.noop or dup is not None) else None
                obs = Observation(run_id=self.run_id, index=i, params=point, spec_hash=keep_hash,
                                  parent_spec_hash=parent_hash, rejected_reason=v.rejected_reason)
                return StepResult(obs, {**common, "detail": detail, "model": v.model, "noop": v.noop})
            version = store.add_spec(v.text, parent_hash=parent_hash, origin=SpecOrigin.MUTATION,
                                     label=f"{self.run_id} o{i}")
            spec_hash, model = version.hash, v.model
            store.add_event(rec.EV_VARIANT, campaign_id=self.run_id,
                            data={"index": i, "params": point, "spec_hash": spec_hash, "model": model,
                                  "parent_spec_hash": parent_hash, "detail": detail})

        screen_id = rec.screen_campaign_id(self.run_id, i)
        screen = self._campaign(s, screen_id, spec_hash, model, s.screen_generations,
                                derive_seed(s.seed, "screen", i), rec.SCREEN_KIND)
        extras: dict[str, Any] = {
            **common, "detail": detail, "model": model, "screen_campaign_id": screen_id,
            "screen": [screen.viable, screen.judged], "incumbent": [state.incumbent.counts.viable,
                                                                  state.incumbent.counts.judged],
            "promising": promising(screen, state.incumbent.counts),
        }
        counts, campaign_id, total, accepted = screen, screen_id, s.screen_generations, False
        full_id = rec.full_campaign_id(self.run_id, i)
        run_full = rec.campaign_exists(store, full_id)
        full_n = s.full_generations
        if not run_full and extras["promising"]:
            room = s.budget_generations - rec.planned_generations(store, self.run_id)
            full_n = min(s.full_generations, room)
            run_full = full_n >= min(s.full_generations, s.screen_generations)
            if not run_full:
                extras["full_skipped"] = f"generation budget leaves room for {room}"
        if run_full:
            full = self._campaign(s, full_id, spec_hash, model, full_n,
                                  derive_seed(s.seed, "full", i), rec.FULL_KIND)
            accepted, p = accept(full, state.incumbent.counts, s.accept_probability)
            extras.update({"full_campaign_id": full_id, "full": [full.viable, full.judged],
                           "p_better": round(p, 6)})
            counts, campaign_id, total = full, full_id, s.screen_generations + full_n
        obs = Observation(
            run_id=self.run_id, index=i, params=point, spec_hash=spec_hash, parent_spec_hash=parent_hash,
            campaign_id=campaign_id, viability_rate=counts.rate, interval=counts.interval,
            generations=total, accepted=accepted,
        )
        return StepResult(obs, extras)


def run_evolution(home: Path, run_id: str, **kw: Any) -> str:
    """Run or resume an evolution run in this process; returns its final state."""
    return EvolutionLoop(home, run_id, **kw).run()

"""What every engine does on start: close what dead engines left behind."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from core.engine import containers
from core.models import Outcome


def startup_reconcile(store, own_campaign: str | None = None) -> dict:
    """Close in_progress generations of dead engines, then kill containers of non-live runs.

    Containers are listed first: one created after the listing belongs to a generation
    that a live engine created after our look, which we must not touch.
    """
    listed = containers.list_managed(containers.home_id(store.path))
    closed: list[int] = []
    crashed: list[str] = []
    me = os.getpid()
    for c in store.campaigns():
        cid = c["id"]
        dead = cid == own_campaign or not store.lease_alive(cid)
        if not dead:
            continue
        pid = c.get("engine_pid")
        who = f"engine pid {pid}" if pid and pid != me else "a previous engine"
        for n in store.in_progress(cid):
            store.set_outcome(n, Outcome.INTERRUPTED, f"{who} died mid-generation; closed at engine start")
            closed.append(n)
        for g in store.bred_generations(campaign_id=cid):  # bred by an offspring, in no campaign
            if g.outcome in (Outcome.IN_PROGRESS, Outcome.TESTED):
                store.set_outcome(g.number, Outcome.INTERRUPTED,
                                  f"{who} died while judging what #{g.parent} bred; closed at engine start")
                closed.append(g.number)
        for n in store.tested(cid):
            # judged but not yet decided (older engines wrote the two steps apart):
            # the recorded verdict decides
            report = store.report(n) or {}
            viable = report.get("status") == "viable"
            store.set_outcome(n, Outcome.PROMOTED if viable else Outcome.FAILED,
                              f"decided at engine start from the recorded verdict ({who} died)")
            closed.append(n)
        if cid != own_campaign and c["state"] in ("running", "paused", "pending") and c.get("engine_pid"):
            store.set_campaign_state(cid, "crashed", f"{who} stopped without finishing")
            crashed.append(cid)
    live = live_run_ids(store)
    killed = containers.kill_containers([cid for cid, run in listed if run not in live])
    remote = reconcile_hosts(store, live)
    if remote:
        killed = killed + [c for ids in remote.values() for c in ids]
    _clear_gateway_folders(store.path.parent / "gw", live)  # the home holds the db and gw/
    result = {"closed_generations": closed, "crashed_campaigns": crashed, "killed_containers": killed}
    if closed or crashed or killed:
        store.add_event("reconciled", campaign_id=own_campaign, data=result)
    return result


def live_run_ids(store) -> set[str]:
    """Every rig run some generation in the store still owns (its containers must stay)."""
    live = set()
    for g_cid in {c["id"] for c in store.campaigns()}:
        live.update(containers.run_id_for(g_cid, n) for n in store.in_progress(g_cid))
        # a generation's red-team run is live while the generation is
        live.update(containers.redteam_run_id(containers.run_id_for(g_cid, n)) for n in store.in_progress(g_cid))
        # what a live campaign's offspring bred is judged in a run of its own (those of
        # dead campaigns were closed above)
        live.update(containers.bred_run_id(containers.run_id_for(g_cid, g.parent), g.number)
                    for g in store.bred_generations(campaign_id=g_cid)
                    if g.outcome in (Outcome.IN_PROGRESS, Outcome.TESTED) and g.parent is not None)
    return live


def reconcile_hosts(store, live: set[str] | None = None, only_host: str | None = None) -> dict[str, list[str]]:
    """The same on the home's remote rig hosts that are in use (or on ``only_host``, e.g.
    one that just passed its check): this home's containers of runs no generation owns."""
    from core.hosts.pool import HostPool

    home = store.path.parent
    if not HostPool.configured(home):
        return {}
    pool = HostPool(home)
    try:
        return pool.reconcile(live_run_ids(store) if live is None else live,
                              {containers.HOME_LABEL: containers.home_id(store.path)}, only_host)
    finally:
        pool.close()


def _clear_gateway_folders(gw: Path, live: set[str]) -> None:
    """A dead engine's LLM gateway folders (one per run, named after it): its socket is gone."""
    if not gw.is_dir():
        return
    for folder in gw.iterdir():
        if folder.name not in live:
            shutil.rmtree(folder, ignore_errors=True)

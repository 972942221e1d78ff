"""Rig containers seen from the engine: list by label, kill those whose run is not live."""

from __future__ import annotations

from typing import Callable

LABEL_KEY = "cambrian.rig"
RUN_LABEL = "cambrian.run"
HOME_LABEL = "cambrian.home"


def home_id(db_path) -> str:
    """Names the store a container belongs to, so homes sharing one Docker engine
    never reconcile each other's containers."""
    import hashlib
    import os

    return hashlib.sha256(os.path.realpath(str(db_path)).encode()).hexdigest()[:16]


def run_id_for(campaign_id: str, generation: int) -> str:
    return f"{campaign_id}.g{generation}"


BRED = ".bred"
REDTEAM = ".redteam"


def redteam_run_id(run_id: str) -> str:
    """The second rig run of a generation: its red team's probes, in fresh containers."""
    return f"{run_id}{REDTEAM}"


def base_run(run: str) -> str:
    """The generation's run a (bred or red-team) run belongs to."""
    return run.partition(BRED)[0].removesuffix(REDTEAM)


def bred_run_id(run_id: str, bred: int) -> str:
    """The rig run judging what the offspring of ``run_id`` bred (its containers' run label)."""
    return f"{run_id}{BRED}{bred}"


def _client():
    from rig.image import docker_client

    return docker_client()


def list_managed(home: str | None = None) -> list[tuple[str, str]]:
    """(container id, run label) for every rig container (of one home), running or not."""
    try:
        client = _client()
    except Exception:  # noqa: BLE001 - no engine, nothing can be running in it
        return []
    filters = [f"{LABEL_KEY}=1"] + ([f"{HOME_LABEL}={home}"] if home else [])
    out = []
    # sparse: no per-container inspect, which races with containers being removed
    for c in client.containers.list(all=True, sparse=True, filters={"label": filters}):
        labels = c.attrs.get("Labels") or {}
        out.append((c.id, labels.get(RUN_LABEL, "")))
    return out


def kill_containers(ids: list[str]) -> list[str]:
    if not ids:
        return []
    client = _client()
    killed = []
    for cid in ids:
        try:
            c = client.containers.get(cid)
            c.remove(force=True)
            killed.append(cid)
        except Exception:  # noqa: BLE001 - already gone is fine
            continue
    return killed


def reconcile(is_live: Callable[[str], bool], home: str | None = None) -> list[str]:
    """Kill rig containers whose run is not live.

    Containers are listed *before* liveness is decided: a container that appears
    afterwards belongs to a generation created after the listing, which we never judge.
    """
    listed = list_managed(home)
    return kill_containers([cid for cid, run in listed if not is_live(run)])


def kill_runs(run_ids: set[str], home: str | None = None) -> list[str]:
    """Kill the containers of these runs, of their red-team runs and of what their offspring
    bred (each judged in a run of its own)."""
    return kill_containers([cid for cid, run in list_managed(home)
                            if run in run_ids or base_run(run) in run_ids])

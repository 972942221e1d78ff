"""Rig containers seen from the engine: list by label, kill those whose run is not live."""

from __future__ import annotations

from typing import Callable

LABEL_KEY = "cambrian.rig"
RUN_LABEL = "cambrian.run"


def run_id_for(campaign_id: str, generation: int) -> str:
    return f"{campaign_id}.g{generation}"


def _client():
    from rig.image import docker_client

    return docker_client()


def list_managed() -> list[tuple[str, str]]:
    """(container id, run label) for every rig container, running or not."""
    try:
        client = _client()
    except Exception:  # noqa: BLE001 - no engine, nothing can be running in it
        return []
    out = []
    for c in client.containers.list(all=True, filters={"label": f"{LABEL_KEY}=1"}):
        out.append((c.id, (c.labels or {}).get(RUN_LABEL, "")))
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


def reconcile(is_live: Callable[[str], bool]) -> list[str]:
    """Kill rig containers whose run is not live.

    Containers are listed *before* liveness is decided: a container that appears
    afterwards belongs to a generation created after the listing, which we never judge.
    """
    listed = list_managed()
    return kill_containers([cid for cid, run in listed if not is_live(run)])


def kill_runs(run_ids: set[str]) -> list[str]:
    return kill_containers([cid for cid, run in list_managed() if run in run_ids])

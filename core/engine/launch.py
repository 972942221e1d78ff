"""Start engines as detached processes, so campaigns outlive terminals and SSH links."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from pathlib import Path

from core.detached import spawn_detached
from core.home import db_path
from core.models import CampaignSettings
from core.store import Store


def new_campaign_id(prefix: str = "c") -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{prefix}-{stamp}-{secrets.token_hex(2)}"


def create_campaign(store: Store, settings: CampaignSettings | dict, spec_text: str, label: str = "",
                    campaign_id: str | None = None) -> str:
    """Store the spec version and the campaign row (state pending); returns the id."""
    from core.spec import check_spec

    issues = check_spec(spec_text)
    if issues:
        raise ValueError("spec has problems: " + "; ".join(str(i) for i in issues[:5]))
    spec = store.add_spec(spec_text, label=label)
    data = settings.model_dump() if isinstance(settings, CampaignSettings) else dict(settings)
    data["spec_hash"] = spec.hash
    settings = CampaignSettings(**data)
    cid = campaign_id or new_campaign_id()
    store.create_campaign(cid, spec.hash, settings.model_dump())
    return cid


def spawn_engine(home: Path, campaign_id: str, wait_s: float = 20.0) -> int:
    """Launch the engine in its own session; return its pid once it holds the lease."""
    return spawn_detached(home, "core.engine.main", campaign_id, log_name=f"engine-{campaign_id}.log",
                          what="engine", wait_s=wait_s).pid


def preflight_rig(backend: str) -> None:
    """Refuse to start work the rig cannot judge: raise RigSetupError (reason and fix)
    before anything is created or paid for."""
    from rig.api import check_rig

    check_rig(backend)


def start_detached(home: Path, settings: CampaignSettings | dict, spec_text: str, label: str = "") -> str:
    backend = settings.backend if isinstance(settings, CampaignSettings) else settings.get("backend", "docker")
    preflight_rig(backend or "docker")
    with Store.open(db_path(home)) as store:
        cid = create_campaign(store, settings, spec_text, label)
    spawn_engine(home, cid)
    return cid


def resume(home: Path, campaign_id: str) -> str:
    """Resume a paused campaign, or restart the engine of a crashed/stopped one."""
    with Store.open(db_path(home)) as store:
        c = store.campaign(campaign_id)
        if store.lease_alive(campaign_id):
            store.send_command(campaign_id, "resume")
            return "resumed"
        if c["state"] in ("completed", "aborted"):
            raise RuntimeError(f"campaign {campaign_id} is {c['state']}; start a new one instead")
        if c["state"] == "paused":
            store.set_campaign_state(campaign_id, "running", "resumed by user")
    spawn_engine(home, campaign_id)
    return "restarted"


def control_campaign(home: Path, campaign_id: str, action: str) -> str:
    """``pause`` | ``resume`` | ``abort``; returns what happened (RuntimeError: refused,
    KeyError: no such campaign). A campaign no engine runs can still be aborted."""
    if action == "resume":
        return resume(home, campaign_id)
    if action not in ("pause", "abort"):
        raise ValueError(f"unknown action {action!r}")
    with Store.open(db_path(home)) as store:
        c = store.campaign(campaign_id)
        if store.lease_alive(campaign_id):
            store.send_command(campaign_id, action)
            return f"{action} sent to engine pid {store.lease(campaign_id)['pid']}"
        if action == "abort" and c["state"] not in ("completed", "aborted"):
            with store.write():
                for n in store.in_progress(campaign_id):
                    store.set_outcome(n, "interrupted", "aborted while no engine ran")
                store.set_campaign_state(campaign_id, "aborted", "aborted by user (no engine running)")
            return "aborted (no engine was running)"
        raise RuntimeError(f"no engine runs campaign {campaign_id} (state {c['state']})")

"""Preflight of one rig host: Docker reachable (through its forward when remote), the
engine's facts (Docker, kernel, cgroups, cores), a sane clock, the rig image with the
exact local id (pushed over the same SSH link when missing or stale), then a short
calibration run. A passing check records the facts and returns a drained host to use."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from core.hosts.config import Host, HostBook
from core.hosts.links import HostLinks
from rig.remote import CLOCK_SKEW_MAX_S, HostLinkError, client_for, clock_skew_s, engine_facts, image_id, push_image


class PreflightFailed(RuntimeError):
    """The host cannot take rig runs now (never a verdict on an artifact)."""


def preflight(host: Host, links: HostLinks, *, push: bool = True,
              progress: Callable[[str], None] | None = None) -> tuple[str | None, dict[str, Any]]:
    """(docker_url, facts) for a host that can take rig runs; PreflightFailed otherwise."""
    from rig.backends.docker import image_tag

    say = progress or (lambda _m: None)
    try:
        url = links.docker_url(host)
    except HostLinkError as exc:
        raise PreflightFailed(str(exc)) from exc
    try:
        client = client_for(url, timeout=60)
        client.ping()
        facts = engine_facts(client)
    except Exception as exc:  # noqa: BLE001 - any failure: the engine is not usable
        raise PreflightFailed(f"Docker on {host.name} unreachable: {type(exc).__name__}: {exc}") from exc
    skew = clock_skew_s(facts.pop("system_time", None))
    facts["clock_skew_s"] = None if skew is None else round(skew, 1)
    if skew is not None and skew > CLOCK_SKEW_MAX_S:
        raise PreflightFailed(f"{host.name}'s clock is {skew:.0f}s off ours (at most "
                              f"{CLOCK_SKEW_MAX_S:g}s): fix its time sync")
    tag = image_tag()
    want = image_id(client_for(None), tag) if host.remote else None
    if host.remote and want is None:
        raise PreflightFailed(f"the rig image {tag} is missing here: `cambrian rig build-image` first")
    have = image_id(client, tag)
    if host.remote and have != want:
        if not push:
            raise PreflightFailed(f"rig image {tag} on {host.name} is {'stale' if have else 'missing'}")
        say(f"{host.name}: rig image {tag} {'stale' if have else 'missing'}; pushing it over the SSH link")
        try:
            facts["image_push"] = push_image(client_for(None, timeout=600), client_for(url, timeout=600),
                                             tag, progress)
        except Exception as exc:  # noqa: BLE001
            raise PreflightFailed(f"pushing the rig image to {host.name} failed: {exc}") from exc
        have = want
    if have is None:
        raise PreflightFailed(f"rig image {tag} is missing on {host.name}: `cambrian rig build-image`")
    facts["image"] = {"tag": tag, "id": have}
    return url, facts


def calibrate(url: str | None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """One short rig run on the host: its seconds and verdict (it must be viable)."""
    from core.hosts.calibrate import write_calibration_artifact
    from rig.api import run_artifact

    with tempfile.TemporaryDirectory(prefix="cambrian-cal-") as tmp:
        art = write_calibration_artifact(Path(tmp) / "a")
        t0 = time.monotonic()
        res = run_artifact(art, docker_url=url, labels=labels or {})
        secs = time.monotonic() - t0
    if not res.viable:
        why = res.rig_error or (res.report.diagnostics.summary if res.report.diagnostics else res.report.status)
        raise PreflightFailed(f"the calibration run was not viable: {why}")
    return {"calibration_s": round(secs, 2)}


def check_host(home: Path, name: str, *, calibrate_run: bool = True, push: bool = True,
               progress: Callable[[str], None] | None = None,
               labels: dict[str, str] | None = None) -> Host:
    """Preflight (and calibrate) one host; on success record its facts and undrain it.
    PreflightFailed (with the reason, also recorded) otherwise."""
    book = HostBook(home)
    host = book.get(name)
    links = HostLinks(home)
    try:
        url, facts = preflight(host, links, push=push, progress=progress)
        if calibrate_run:
            try:
                facts.update(calibrate(url, labels))
            except PreflightFailed:
                raise
            except Exception as exc:  # noqa: BLE001 - RigSetupError, a dropped link...
                raise PreflightFailed(f"the calibration run failed: {type(exc).__name__}: {exc}") from exc
    except PreflightFailed as exc:
        # a remote host that fails its check is not used until one passes, and its drain
        # reason is this failure (not an older one); the local engine stays as it was
        drained = {"drained": f"check failed: {exc}"} if host.remote else {}
        book.update(name, facts=dict(host.facts, last_check_error=str(exc),
                                     last_check_at=time.time()), **drained)
        raise
    finally:
        links.close()
    facts["checked_at"] = time.time()
    host = book.update(name, facts=facts, failures=0, drained=None)
    if host.remote:  # back in use: what dead or cut-off engines of this home left there goes
        _reconcile_host(home, name)
    return host


def _reconcile_host(home: Path, name: str) -> None:
    from core.engine.reconcile import reconcile_hosts
    from core.home import db_path
    from core.store import Store

    if not db_path(home).exists():
        return
    with Store.open(db_path(home)) as store:
        reconcile_hosts(store, only_host=name)

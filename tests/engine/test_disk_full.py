"""A full disk stops the campaign instead of failing every remaining generation (real
engine in-process, real SQLite; the rig is replaced and hits a real ENOSPC from /dev/full)."""

from __future__ import annotations

import pytest

from core.engine.launch import create_campaign
from core.engine.main import run_campaign
from core.engine.stop_reasons import out_of_space
from core.home import REPO_ROOT, db_path
from core.models import CampaignSettings
from core.store import Store
from tests.evolution.conftest import make_fake_rig

ECHO = (REPO_ROOT / "spec" / "echo.md").read_text()


def _campaign(tmp_path, generations: int):
    home = tmp_path / "home"
    home.mkdir()
    with Store.open(db_path(home)) as s:
        cid = create_campaign(s, CampaignSettings(
            spec_hash="sha256:" + "0" * 64, generations=generations, parallelism=1, provider="sim",
            model="sim-1", seed=2, max_retries=0, backend="none").model_dump(), ECHO)
    return home, cid


def _write_to_a_full_disk() -> None:
    with open("/dev/full", "wb", buffering=0) as fh:  # the kernel answers ENOSPC
        fh.write(b"artifact bytes")


def test_out_of_space_is_recognised_through_the_chain_and_in_messages():
    try:
        _write_to_a_full_disk()
    except OSError as exc:
        direct = exc
    assert out_of_space(direct)
    try:
        try:
            _write_to_a_full_disk()
        except OSError as inner:
            raise RuntimeError("could not write the artifact") from inner
    except RuntimeError as exc:
        assert out_of_space(exc)
    assert out_of_space(RuntimeError("cannot create the rig container: 500 Server Error: "
                                      "write /var/lib/docker/x: no space left on device"))
    import sqlite3

    assert out_of_space(sqlite3.OperationalError("database or disk is full"))
    assert not out_of_space(RuntimeError("1 of 37 test(s) failed"))
    assert not out_of_space(OSError(13, "Permission denied"))


def test_a_full_disk_stops_the_campaign_and_resume_redoes_the_generation(tmp_path):
    home, cid = _campaign(tmp_path, generations=6)
    fake = make_fake_rig(home)
    calls = []

    def rig_until_the_disk_fills(*a, **kw):
        calls.append(kw.get("generation"))
        if len(calls) == 3:
            _write_to_a_full_disk()
        return fake(*a, **kw)

    assert run_campaign(home, cid, rig_fn=rig_until_the_disk_fills) == "stopped"
    with Store.open(db_path(home)) as s:
        c = s.campaign(cid)
        assert "out of disk space" in c["reason"] and "resume" in c["reason"]
        gens = s.generations(cid)
        # no generation was started after the disk filled, none was failed for it
        assert len(gens) == 3 and len(calls) == 3
        full = gens[-1]
        assert full.outcome.value == "interrupted" and "[Errno 28]" in full.reason
        assert not [g for g in gens if g.failure_stage == "engine"]
    # space is back: resuming redoes it and completes the campaign's six generations
    seen = []

    def rig_watching_the_reason(*a, **kw):
        with Store.open(db_path(home)) as s:
            seen.append(s.campaign(cid)["reason"])
        return fake(*a, **kw)

    assert run_campaign(home, cid, rig_fn=rig_watching_the_reason) == "completed"
    # while it runs again, the reason says it was resumed, not that the disk is full
    assert seen and all(r.startswith("resumed after it stopped: out of disk space") for r in seen)
    with Store.open(db_path(home)) as s:
        gens = s.generations(cid)
        done = [g for g in gens if g.outcome.value in ("promoted", "failed")]
        assert len(done) == 6 and [g.outcome.value for g in gens].count("interrupted") == 1


def test_an_engine_that_dies_of_a_full_disk_leaves_a_resumable_stopped_campaign(tmp_path, monkeypatch):
    """SQLite refusing a write outside any generation (here: right after the engine claimed
    one) ends the engine; the record says "stopped: out of disk space", not "crashed"."""
    import sqlite3

    from core.engine import runner as runner_mod

    home, cid = _campaign(tmp_path, generations=2)
    claimed = []

    async def full(self):
        claimed.append(self.store.create_generation(spec_hash=self.store.campaign(cid)["spec_hash"],
                                                    campaign_id=cid).number)
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(runner_mod.CampaignRunner, "run", full)
    with pytest.raises(sqlite3.OperationalError):
        run_campaign(home, cid, rig_fn=make_fake_rig(home))
    with Store.open(db_path(home)) as s:
        c = s.campaign(cid)
        assert c["state"] == "stopped" and c["reason"].startswith("out of disk space") and "resume" in c["reason"]
        g = s.generation(claimed[0])
        assert g.outcome.value == "interrupted" and "out of disk space" in g.reason
    monkeypatch.undo()
    assert run_campaign(home, cid, rig_fn=make_fake_rig(home)) == "completed"

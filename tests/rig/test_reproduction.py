"""The reproduction stage in the real rig: a viable offspring of a spec that declares
`reproduce` is asked to breed. Its model calls reach the engine's LLM gateway through the
rig's forwarder (the container keeps no network), it holds only a placeholder key, and the
artifact it writes is collected for judging.

The offspring here is a small hand-written "breeder": its POST /generate calls the model
through the anthropic SDK (ANTHROPIC_BASE_URL), then tries other ways out (which must all
fail), looks for the real key in every process's environment it can read, and writes a
small artifact of its own (the hello service) with a manifest.
"""

from __future__ import annotations

import json

import pytest

from conftest import write_artifact  # tests/rig/conftest.py
from core.llm.gateway import Caps
from rig.api import Channel, run_artifact
from tests.organisms import GatewayThread, breeder_entry, breeder_files

pytestmark = pytest.mark.docker

REAL_KEY = "sk-ant-REAL-KEY-must-never-enter-a-container-93c1"


def breeder(tmp_path, calls: int = 1):
    return write_artifact(tmp_path / "breeder", breeder_files(), entry=breeder_entry(calls))


@pytest.fixture
def gateway(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", REAL_KEY)  # the engine's real key, outside
    made = []

    def make(**kw):
        g = GatewayThread(tmp_path, **kw)
        made.append(g)
        return g

    yield make
    for g in made:
        g.close()


def test_a_viable_offspring_breeds_through_the_gateway_and_nowhere_else(tmp_path, rig_image, gateway):
    gw = gateway()
    res = run_artifact(breeder(tmp_path), channel=Channel(str(gw.dir), model="sim-1", timeout=120))
    rep = res.report.to_wire()
    assert rep["status"] == "viable", rep.get("diagnostics")
    repro = rep["reproduction"]
    assert repro["offered"] is True and repro["status"] == 200 and repro["generation"] == 4
    b = repro["body"]["breeder"]
    assert b["errors"] == [] and len(b["answers"]) == 1            # the gateway answered
    assert set(b["outside"]) == {"public", "host_docker0"}
    assert "connected" not in b["outside"].values(), b["outside"]  # no other way out
    assert b["key_seen"] is None and b["key"] != REAL_KEY           # the key stayed outside
    assert b["base_url"].startswith("http://127.0.0.1:")
    assert [c.purpose for c in gw.sink.calls] == ["reproduction"]   # ledgered
    # the artifact it wrote was collected, ready to be judged in a fresh run
    files = res.offspring_files
    assert files and "manifest.json" in files and json.loads(files["manifest.json"])["generation"] == 4
    child = tmp_path / "child"
    for p, data in files.items():
        (child / p).parent.mkdir(parents=True, exist_ok=True)
        (child / p).write_bytes(data)
    assert run_artifact(child).viable


def test_a_runaway_organism_is_cut_off_and_the_reason_kept(tmp_path, rig_image, gateway):
    gw = gateway(caps=Caps(calls=2))
    res = run_artifact(breeder(tmp_path, calls=6), channel=Channel(str(gw.dir), timeout=120))
    b = res.report.to_wire()["reproduction"]["body"]["breeder"]
    assert len(b["answers"]) == 2 and len(b["errors"]) == 4
    assert all("call cap reached" in e for e in b["errors"])
    assert gw.gw.log.cut_off.startswith("call cap reached (2 calls")
    assert len(gw.sink.calls) == 2


def test_no_reproduction_for_a_spec_that_does_not_declare_it(tmp_path, rig_image, gateway):
    from conftest import make_hello_artifact

    gw = gateway()
    rep = run_artifact(make_hello_artifact(tmp_path / "h"), channel=Channel(str(gw.dir))).report.to_wire()
    assert rep["status"] == "viable"
    assert rep["reproduction"]["offered"] is False and "declares no reproduction" in rep["reproduction"]["why"]
    assert gw.sink.calls == []

"""`cambrian verify DIR --reproduce` (issue 23): the reproduction stage on any artifact
directory, with the gateway served by the verify process itself (sim answers), the real
Docker rig judging both the breeder and what it bred."""

from __future__ import annotations

import io
import json

import pytest

from core.engine.verify_reproduce import verify_reproduce_main
from tests.organisms import HELLO_TEST, breeder_entry, breeder_files, hello_files
from tests.rig.conftest import make_hello_artifact, write_artifact

pytestmark = pytest.mark.docker


def run(path, monkeypatch) -> tuple[int, dict]:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)  # the sim answers the offspring
    out = io.StringIO()
    code = verify_reproduce_main(str(path), provider="sim", seed=7, as_json=True, stream=out)
    return code, json.loads(out.getvalue())


def test_a_fertile_breeder(tmp_path, rig_image, monkeypatch):
    code, doc = run(write_artifact(tmp_path / "breeder", breeder_files(), entry=breeder_entry(1)), monkeypatch)
    assert doc["report"]["status"] == "viable", doc["report"].get("diagnostics")
    assert (code, doc["fertility"], doc["why"]) == (0, "fertile", None)
    assert doc["report"]["reproduction"]["status"] == 200
    assert [c["status"] for c in doc["gateway"]["calls"]] == [200]  # its one model call, answered
    assert doc["offspring_report"]["status"] == "viable"


def test_a_breeder_whose_offspring_fails_its_tests_is_infertile(tmp_path, rig_image, monkeypatch):
    child = {k: v for k, v in hello_files().items() if not k.startswith("spec/")}
    child["tests/test_app.py"] = HELLO_TEST + "\n\ndef test_broken():\n    assert 1 == 2\n"
    code, doc = run(write_artifact(tmp_path / "breeder", breeder_files(child), entry=breeder_entry(1)),
                    monkeypatch)
    assert doc["report"]["status"] == "viable"
    assert code == 1 and doc["fertility"] == "infertile"
    assert doc["why"].startswith("offspring:test"), doc["why"]
    assert doc["offspring_report"]["status"] == "non-viable"


def test_an_artifact_whose_spec_declares_no_reproduction_is_not_asked(tmp_path, rig_image, monkeypatch):
    code, doc = run(make_hello_artifact(tmp_path / "hello"), monkeypatch)
    assert doc["report"]["status"] == "viable"
    assert (code, doc["fertility"]) == (3, "not-asked")
    assert "reproduce" in doc["why"] and doc["gateway"]["calls"] == []
    assert doc["offspring_report"] is None

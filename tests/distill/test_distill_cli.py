"""`cambrian distill` / `cambrian amendments` entry points: exit codes and JSON shapes."""

from __future__ import annotations

import json

import pytest

from core.distill.cli import amendments_main, distill_main
from core.home import db_path
from core.models import Amendment
from core.store import Store
from tests.distill.synth import SPEC, planted_campaign


@pytest.fixture
def home(tmp_path):
    with Store.open(db_path(tmp_path)) as s:
        planted_campaign(s)
    return tmp_path


def _json(capsys):
    out = capsys.readouterr().out
    return json.loads(out)


def _distill(home, capsys) -> dict:
    assert distill_main(home, "c-planted", True) == 0
    return _json(capsys)


def test_distill_json_shape(home, capsys):
    data = _distill(home, capsys)
    assert {"campaign", "amendments", "features", "unparsed"} <= set(data)
    assert data["campaign"] == "c-planted"
    [a] = data["amendments"]
    assert {"id", "section", "text", "evidence"} <= set(a)
    assert a["section"] == "Implementation Requirements" and isinstance(a["id"], int)
    ev = a["evidence"]
    assert {"groups", "p", "q", "odds_ratio", "direction", "examples"} <= set(ev)
    assert ev["p"] < 0.01
    for ex in ev["examples"]:
        assert {"generation", "file", "line", "code"} <= set(ex)
    feats = {f["feature"]: f for f in data["features"]}
    assert len(feats) >= 12
    row = feats["monotonic_clock"]
    assert {"feature", "description", "groups", "tests"} <= set(row)
    assert row["groups"]["viable"]["present"] == 18
    assert row["tests"]["viable_vs_failed"]["significant"] is True
    assert {"p", "q", "odds_ratio", "direction", "tested"} <= set(row["tests"]["viable_vs_failed"])
    assert len(data["unparsed"]) == 2
    assert {"generation", "file", "line", "error"} <= set(data["unparsed"][0])


def test_distill_text_report(home, capsys):
    assert distill_main(home, "c-planted", False) == 0
    out = capsys.readouterr().out
    assert "Unparsed Python files: 2" in out and "pkg/broken.py" in out
    assert "monotonic_clock" in out and "Amendments created: 1" in out
    assert "time.monotonic()" in out


def test_distill_unknown_campaign(home, capsys):
    assert distill_main(home, "nope", True) == 1
    assert "nope" in capsys.readouterr().err


def test_amendments_list_show_accept(home, capsys):
    aid = _distill(home, capsys)["amendments"][0]["id"]
    assert amendments_main(home, "list", [], True) == 0
    listed = _json(capsys)
    assert [a["id"] for a in listed["amendments"]] == [aid]
    row = listed["amendments"][0]
    assert {"id", "campaign", "spec_hash", "section", "feature", "status", "text"} <= set(row)
    assert row["status"] == "pending"
    # filters: by status and by campaign
    assert amendments_main(home, "list", ["rejected"], True) == 0
    assert _json(capsys)["amendments"] == []
    assert amendments_main(home, "list", ["c-planted"], True) == 0
    assert len(_json(capsys)["amendments"]) == 1

    assert amendments_main(home, "show", [aid], True) == 0
    shown = _json(capsys)
    [d] = shown["amendments"]
    assert d["id"] == aid and d["evidence"]["feature"] == "monotonic_clock"
    assert d["preview_diff"].count("\n+") >= 1 and "time.monotonic()" in d["preview_diff"]

    assert amendments_main(home, "accept", [str(aid)], True) == 0
    acc = _json(capsys)
    assert acc["action"] == "accept"
    [r] = acc["amendments"]
    assert r["ok"] and r["status"] == "accepted" and r["spec_hash"].startswith("sha256:")
    with Store.open(db_path(home)) as s:
        v = s.spec_version(r["spec_hash"])
        assert v.parent_hash == r["parent_hash"] and v.origin.value == "amendment"

    # accepting again is refused with exit 1
    assert amendments_main(home, "accept", [aid], True) == 1
    [r] = _json(capsys)["amendments"]
    assert not r["ok"] and "not pending" in r["error"]


def test_amendments_accept_with_text_is_an_edit(home, capsys):
    aid = _distill(home, capsys)["amendments"][0]["id"]
    assert amendments_main(home, "accept", [aid], True, text="Time everything with time.monotonic().") == 0
    [r] = _json(capsys)["amendments"]
    assert r["status"] == "edited" and r["text"] == "Time everything with time.monotonic()."


def test_amendments_reject_and_refusal(home, capsys):
    with Store.open(db_path(home)) as s:
        h = s.campaign("c-planted")["spec_hash"]
        bad = s.add_amendment(Amendment(spec_hash=h, section="Acceptance Vectors", text="Add a probe."))
        ok = s.add_amendment(Amendment(spec_hash=h, section="Testing", text="Test errors too."))
    assert amendments_main(home, "accept", [bad], True) == 1
    [r] = _json(capsys)["amendments"]
    assert not r["ok"] and "FROZEN" in r["error"]
    assert amendments_main(home, "reject", [ok], True) == 0
    [r] = _json(capsys)["amendments"]
    assert r == {"id": ok, "ok": True, "status": "rejected"}
    assert amendments_main(home, "reject", [ok], False) == 1
    assert "not pending" in capsys.readouterr().err
    assert amendments_main(home, "list", ["pending"], True) == 0
    assert [a["id"] for a in _json(capsys)["amendments"]] == [bad]


def test_amendments_usage_errors(home, capsys):
    assert amendments_main(home, "frob", [], True) == 2
    assert amendments_main(home, "accept", [], True) == 2
    assert amendments_main(home, "show", ["x1"], True) == 2
    assert amendments_main(home, "reject", [1], True, text="edit") == 2
    assert amendments_main(home, "show", [999], True) == 1
    assert _json(capsys)["amendments"][0]["error"] == "no amendment 999"


def test_amendments_text_output(home, capsys):
    aid = _distill(home, capsys)["amendments"][0]["id"]
    assert amendments_main(home, "list", [], False) == 0
    assert f"#{aid}" in capsys.readouterr().out
    assert amendments_main(home, "show", [aid], False) == 0
    out = capsys.readouterr().out
    assert "monotonic_clock" in out and "example" in out and "preview" in out
    assert SPEC  # the synthetic spec is what the amendment targets

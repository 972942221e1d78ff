"""Layer 3, the red team, without Docker: the request (the writer-visible spec and the
artifact's code, bounded, no sealed byte), parsing through the examiner's parser (one repair,
then unavailable), the score block, the threshold rule, the per-draw sample, the sim's attack
probes, the settings and the app command."""

from __future__ import annotations

import asyncio
import json

import pytest

from core.app import Cambrian
from core.app.commands import CommandRefused, SpecRef, StartCampaign
from core.engine.runner import sampled as reproduction_sampled
from core.examiner.parse import parse_probes
from core.home import REPO_ROOT
from core.llm.sim import SimProvider
from core.llm.sim.redteam import attack_probes, redteam_answer
from core.models import CampaignSettings, ViabilityReport
from core.redteam.prompt import MAX_CHARS, PROBES_FENCE, build_redteam_request
from core.redteam.service import Attack, apply_threshold, propose, sampled, score_block
from core.spec import parse_spec

ECHO = (REPO_ROOT / "spec" / "echo.md").read_text(encoding="utf-8")
VISIBLE = parse_spec(ECHO).visible_text
ROW = '| GET | /health | 200 | `{"status": "ok", "generation": N}` |'
APP = b"from aiohttp import web\n\ndef make_app():\n    return web.Application()  # RED-TEAM-MARKER\n"
FILES = {"echo/app.py": APP, "echo/__init__.py": b"", "manifest.json": b'{"name": "echo"}',
         "spec/echo.md": ECHO.encode(), "tests/test_app.py": b"def test_x():\n    assert True\n"}


def _text(req) -> str:
    return req.system + "".join(b["text"] for m in req.messages for b in
                                (m["content"] if isinstance(m["content"], list) else [{"text": m["content"]}]))


class Scripted(SimProvider):
    """The sim, answering the red team from a script (other purposes as the sim does)."""

    def __init__(self, answers):
        super().__init__()
        self.answers = list(answers)
        self.seen = []

    def answer(self, req, model=None):
        if req.purpose == "redteam":
            self.seen.append(req)
            return self.answers.pop(0)
        return super().answer(req, model)


def _answer(items) -> str:
    return f"Attack.\n\n```{PROBES_FENCE}\n" + json.dumps(items) + "\n```\n"


# --- the request --------------------------------------------------------------------------------------


def test_the_request_holds_the_visible_spec_and_the_code_and_nothing_sealed():
    spec = parse_spec(ECHO)
    assert spec.sealed
    with pytest.raises(ValueError, match="writer-visible"):
        build_redteam_request(spec, FILES, generation=3, model="sim-1")
    req = build_redteam_request(spec.visible(), FILES, generation=3, model="sim-1")
    text = _text(req)
    assert req.purpose == "redteam" and req.metadata["generation"] == 3
    assert VISIBLE in text and "RED-TEAM-MARKER" in text and "def test_x" in text
    assert "sealed-vectors" not in text and all(v.name not in text for v in spec.sealed)
    # the rig's manifest and the spec copy are not shown (the spec block is the spec), and it says so
    assert '{"name": "echo"}' not in text and '<file path="spec/echo.md">' not in text
    assert "not shown (rig or spec copy): manifest.json, spec/echo.md" in text
    assert 'files="3/5"' in text
    # the code comes before the tests
    assert text.index('<file path="echo/app.py">') < text.index('<file path="tests/test_app.py">')


def test_the_code_is_capped_and_the_cut_is_named():
    big = {"a/small.py": b"x = 1\n", "a/big.py": b"y = 2\n" * 4000, "a/huge.py": b"z = 3\n" * 20000}
    req = build_redteam_request(parse_spec(ECHO).visible(), big, generation=1, model="sim-1", max_chars=30_000)
    art = req.messages[0]["content"][1]["text"]
    assert "x = 1" in art and len(art) < 30_000 + 1000
    assert "cut short at the 30000-character cap: a/huge.py" in art
    full = build_redteam_request(parse_spec(ECHO).visible(), big, generation=1, model="sim-1")
    assert "left out" not in full.messages[0]["content"][1]["text"] and MAX_CHARS == 60_000
    tiny = build_redteam_request(parse_spec(ECHO).visible(), big, generation=1, model="sim-1", max_chars=10)
    assert ("cut short at the 10-character cap: a/big.py; left out at the 10-character cap: a/huge.py"
            in tiny.messages[0]["content"][1]["text"])


# --- the call and its parse ------------------------------------------------------------------------------


def test_probes_are_parsed_by_the_examiners_parser_quotes_checked_against_the_visible_spec():
    sealed_quote = "a known path with the wrong method answers 405"  # also visible prose: kept
    invented = "the service must answer 418 to teapots"
    prov = Scripted([_answer([
        {"name": "ok", "method": "GET", "path": "/health", "expect": {"status": 200}, "relies_on": ROW},
        {"name": "wm", "method": "PUT", "path": "/echo", "expect": {"status": 405}, "relies_on": sealed_quote},
        {"name": "tea", "method": "GET", "path": "/tea", "expect": {"status": 418}, "relies_on": invented}])])
    attack = asyncio.run(propose(ECHO, FILES, prov, "sim-1", generation=4))
    assert attack.unavailable is None and attack.calls == 1 and attack.tokens > 0
    assert [p["name"] for p in attack.probes] == ["ok", "wm"]
    assert attack.dropped == [{"index": 2, "name": "tea", "reason": "relies_on is not text of the spec"}]
    assert attack.probes[0]["relies_on"] == ROW


def test_an_unreadable_answer_gets_one_repair_then_the_red_team_is_unavailable():
    prov = Scripted(["I would rather not.", "still no"])
    attack = asyncio.run(propose(ECHO, FILES, prov, "sim-1", generation=4))
    assert attack.calls == 2 and attack.probes == []
    assert attack.unavailable.startswith("unreadable answer after one repair")
    assert "no `redteam-probes` block" in attack.unavailable
    assert prov.seen[1].metadata["redteam_attempt"] == 1 and prov.seen[1].purpose == "redteam"
    assert "could not be read" in prov.seen[1].messages[-1]["content"]
    block = score_block(attack, None, None)
    assert block["unavailable"] and block["score"] is None and block["confirmed"] is None
    report = _viable()
    assert apply_threshold(report, block, 0.7) is None and report["status"] == "viable"


def test_a_repaired_answer_is_used():
    prov = Scripted(["no block", _answer([{"name": "h", "path": "/health", "expect": {"status": 200},
                                           "relies_on": ROW}])])
    attack = asyncio.run(propose(ECHO, FILES, prov, "sim-1", generation=4))
    assert attack.unavailable is None and attack.calls == 2 and [p["name"] for p in attack.probes] == ["h"]


# --- score and threshold ---------------------------------------------------------------------------------


def _viable() -> dict:
    return {"generation": 5, "status": "viable", "failure_stage": "none", "completed_at": "2025-01-01T00:00:00Z",
            "checks": {"health": {"passed": True, "duration_ms": 3}}, "fitness": {}, "diagnostics": None,
            "stricter_rules": [], "lenient_rules": []}


def _attack(n=4) -> Attack:
    return Attack(probes=[{"name": f"p{i}", "method": "GET", "path": f"/p{i}", "expect": {"status": 200},
                           "relies_on": ROW} for i in range(n)], tokens=100, calls=1)


def _run_report(passed) -> dict:
    return {"failure_stage": "none", "checks": {"health": {"redteam": [
        {"name": f"p{i}", "passed": ok, "status": 200 if ok else 500, "body_excerpt": None if ok else "boom"}
        for i, ok in enumerate(passed)]}}}


def test_the_score_counts_confirmed_violations_with_expected_and_actual():
    block = score_block(_attack(), _run_report([True, False, True, True]), 1234)
    assert (block["proposed"], block["confirmed"], block["score"], block["rig_ms"]) == (4, 1, 0.75, 1234)
    bad = block["probes"][1]
    assert bad["expected"] == {"status": 200} and bad["actual"]["status"] == 500 and not bad["passed"]
    assert bad["actual"]["body_excerpt"] == "boom" and bad["relies_on"] == ROW
    # a red-team run that never reached its probes is no score
    none = score_block(_attack(), {"failure_stage": "start", "checks": {}}, 900)
    assert none["unavailable"] and none["score"] is None and "failed at start" in none["why"]


def test_the_threshold_turns_a_viable_report_non_viable_and_names_the_rule_but_not_the_probes():
    block = score_block(_attack(), _run_report([True, False, False, True]), 10)
    assert block["score"] == 0.5
    report = _viable()
    assert apply_threshold(report, dict(block), None) is None  # no threshold: only measured
    assert apply_threshold(report, dict(block), 0.5) is None  # at the threshold: viable
    why = apply_threshold(report, block, 0.7)
    assert why and "[rule: redteam_threshold]" in why and "2 of 4" in why
    assert report["status"] == "non-viable" and report["stricter_rules"] == ["redteam_threshold"]
    assert "p1" not in json.dumps(report["diagnostics"]) and "/p2" not in why
    ViabilityReport.model_validate({k: v for k, v in report.items() if k not in ("stricter_rules", "lenient_rules")})


# --- sampling ------------------------------------------------------------------------------------------------


def test_the_sample_is_deterministic_near_its_rate_and_independent_of_reproductions():
    picks = [sampled(7, d, 0.25) for d in range(1, 2001)]
    assert picks == [sampled(7, d, 0.25) for d in range(1, 2001)]
    assert 0.21 < sum(picks) / len(picks) < 0.29
    assert picks != [reproduction_sampled(7, d, 0.25) for d in range(1, 2001)]
    assert all(sampled(7, d, 1.0) for d in range(1, 50))


# --- the sim -------------------------------------------------------------------------------------------------


def test_the_sims_attack_probes_quote_the_visible_spec_and_parse():
    probes = attack_probes(VISIBLE)
    assert {(p["method"], p["path"]) for p in probes} >= {("PUT", "/echo"), ("GET", "/HEALTH"),
                                                           ("GET", "/reverse?text=")}
    empty = next(p for p in probes if p["path"] == "/reverse?text=")
    assert empty["expect"] == {"status": 200, "body_contains": {"text": "", "reversed": ""}}
    parsed = parse_probes(redteam_answer(VISIBLE, "<artifact>"), VISIBLE, fence=PROBES_FENCE)
    assert parsed.dropped == [] and len(parsed.probes) == len(probes)
    assert redteam_answer(VISIBLE, "") == redteam_answer(VISIBLE, "")  # deterministic
    prime = attack_probes(parse_spec((REPO_ROOT / "spec" / "prime.md").read_text()).visible_text)
    assert any(p.get("body") == {"text": 5} for p in prime) and len(prime) <= 12


def test_the_sim_answers_the_redteam_purpose_through_propose():
    attack = asyncio.run(propose(ECHO, FILES, SimProvider(), "sim-1", generation=2))
    assert attack.unavailable is None and len(attack.probes) == len(attack_probes(VISIBLE))


# --- settings and the app command ----------------------------------------------------------------------------


def test_settings_default_off_and_validate():
    s = CampaignSettings(spec_hash="x")
    assert (s.redteam, s.redteam_rate, s.redteam_threshold) == ("off", 0.25, None)
    with pytest.raises(ValueError):
        CampaignSettings(spec_hash="x", redteam="sometimes")
    with pytest.raises(ValueError):
        CampaignSettings(spec_hash="x", redteam_threshold=1.5)


def test_start_campaign_refuses_a_bad_threshold_and_records_the_settings(tmp_path, monkeypatch):
    import core.engine.launch as launch

    monkeypatch.setattr(launch, "spawn_engine", lambda *a, **k: 0)  # the engine process is not this test's
    with Cambrian(tmp_path / "home") as app:
        with pytest.raises(CommandRefused, match="redteam_threshold"):
            app.run(StartCampaign(spec=SpecRef(path=str(REPO_ROOT / "spec" / "echo.md")), provider="sim",
                                  redteam="every", redteam_threshold=1.5, backend="none"))


def test_the_cli_options_reach_the_campaigns_settings(tmp_path, monkeypatch):
    import core.engine.launch as launch
    from cambrian_tui.cli import build_parser

    args = build_parser().parse_args(["campaign", "start", "--spec", "spec/echo.md", "--redteam", "sample:0.5",
                                      "--redteam-threshold", "0.7"])
    assert args.redteam == ("sample", 0.5) and args.redteam_threshold == 0.7
    assert build_parser().parse_args(["campaign", "start", "--spec", "x"]).redteam == ("off", None)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["campaign", "start", "--spec", "x", "--redteam", "every:0.5"])
    monkeypatch.setattr(launch, "spawn_engine", lambda *a, **k: None)  # the engine process is not this test's
    with Cambrian(tmp_path / "home") as app:
        done = app.run(StartCampaign(spec=SpecRef(path=str(REPO_ROOT / "spec" / "echo.md")), provider="sim",
                                     redteam=args.redteam[0], redteam_rate=args.redteam[1],
                                     redteam_threshold=args.redteam_threshold, backend="none"))
        settings = app.reads.campaign_status(done.campaign_id)["settings"]
    assert (settings["redteam"], settings["redteam_rate"], settings["redteam_threshold"]) == ("sample", 0.5, 0.7)

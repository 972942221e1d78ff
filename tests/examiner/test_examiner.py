"""Layer 2, the dual-blind examiner, without Docker: the request (writer-visible spec only),
the parser (a bad probe is dropped with its reason; an unreadable answer is repaired once,
then the layer is unavailable), storage and reuse (one examine call per spec version and
examiner model), the suspect rule and dismissals, the sim's examiner."""

from __future__ import annotations

import asyncio
import json

import pytest

from core.app import Cambrian
from core.app.commands import CommandRefused, DismissProbe
from core.engine.launch import create_campaign
from core.examiner import records
from core.examiner.parse import ExamineAnswerError, parse_probes
from core.examiner.prompt import build_examine_request
from core.examiner.service import (ExaminerUnavailable, campaign_examiner, ensure_probes, evidence,
                                   is_suspect, rig_layer, suspects)
from core.home import REPO_ROOT, db_path
from core.llm.anthropic_provider import AnthropicProvider
from core.llm.fake_server import FakeAnthropic, Fault
from core.llm.ledger import LedgeredProvider
from core.llm.pricing import PriceBook
from core.llm.sim import SimProvider
from core.llm.sim.examine import WRONG_P, derive_probes, examine_answer
from core.models import CampaignSettings, Outcome
from core.spec import parse_spec
from core.store import Store

ECHO = (REPO_ROOT / "spec" / "echo.md").read_text(encoding="utf-8")
VISIBLE = parse_spec(ECHO).visible_text
ROW = '| GET | /health | 200 | `{"status": "ok", "generation": N}` |'


def probe(name="p1", **kw):
    p = {"name": name, "method": "GET", "path": "/health", "expect": {"status": 200}, "relies_on": ROW}
    p.update(kw)
    return p


def answer(items) -> str:
    return "Here they are.\n\n```examiner-probes\n" + json.dumps(items) + "\n```\n"


# --- the request ------------------------------------------------------------------------------------


def test_the_request_holds_the_visible_spec_and_nothing_sealed():
    spec = parse_spec(ECHO)
    assert spec.sealed  # echo ships sealed vectors
    with pytest.raises(ValueError, match="writer-visible"):
        build_examine_request(spec, model="sim-1")
    req = build_examine_request(spec.visible(), model="sim-1")
    text = req.system + "".join(b["text"] for b in req.messages[0]["content"])
    assert req.purpose == "examine" and len(req.messages) == 1
    assert VISIBLE in text
    for v in spec.sealed:
        assert v.name not in text
    assert "sealed-vectors" not in text and "reverse-counts-code-points" not in text


# --- the parser -------------------------------------------------------------------------------------


def test_valid_probes_keep_their_quote_and_bad_ones_are_dropped_with_a_reason():
    items = [
        probe("ok-1"),
        probe("ok-2", method="POST", path="/echo", body={"a": 1},
              expect={"status": 200, "body": {"a": 1}},
              relies_on="| POST | /echo | 200 | the request body, unchanged |"),
        "not an object",
        probe("extra", colour="red"),
        probe("bad name!"),
        probe("ok-1"),  # duplicate
        probe("rel", path="health"),
        probe("nostatus", expect={"body": {}}),
        probe("wrongexp", expect={"status": 200, "headers": {}}),
        probe("invented", relies_on="The service answers every request within one millisecond."),
        probe("noquote", relies_on=""),
    ]
    out = parse_probes(answer(items), VISIBLE)
    assert [p["name"] for p in out.probes] == ["ok-1", "ok-2"]
    assert out.probes[0]["relies_on"] == ROW and out.probes[1]["body"] == {"a": 1}
    reasons = {d["index"]: d["reason"] for d in out.dropped}
    assert reasons[2].startswith("a JSON str")
    assert "unknown keys ['colour']" in reasons[3]
    assert "name must be" in reasons[4]
    assert "duplicate name 'ok-1'" in reasons[5]
    assert reasons[6].startswith("not a contract: path")
    assert reasons[7].startswith("not a contract: expect.status")
    assert "unknown expect keys ['headers']" in reasons[8]
    assert reasons[9] == "relies_on is not text of the spec"
    assert "relies_on must quote" in reasons[10]
    assert len(out.dropped) == 9


def test_a_quote_matches_across_markdown_case_and_line_breaks():
    quote = "ANY other path answers 404;\n  a known path with the *wrong method* answers 405."
    assert parse_probes(answer([probe("q", relies_on=quote)]), VISIBLE).probes[0]["name"] == "q"


def test_probe_count_is_capped():
    out = parse_probes(answer([probe(f"p{i}") for i in range(5)]), VISIBLE, max_probes=3)
    assert len(out.probes) == 3 and [d["reason"] for d in out.dropped] == ["more than 3 probes"] * 2


@pytest.mark.parametrize("text, why", [
    ("no probes here", "no `examiner-probes` block"),
    ("```examiner-probes\n[{\n```", "not JSON"),
    ("```examiner-probes\n{\"name\": 1}\n```", "not an array"),
    ("```examiner-probes\n[]\n```", "the array is empty"),
    ("```json\n[1, 2]\n```", "no valid probe among 2"),
])
def test_an_answer_without_one_readable_probe_is_an_error(text, why):
    with pytest.raises(ExamineAnswerError, match=why.replace("(", r"\(")):
        parse_probes(text, VISIBLE)


def test_a_bare_array_is_read_too():
    assert len(parse_probes(json.dumps([probe()]), VISIBLE).probes) == 1


# --- made once, reused --------------------------------------------------------------------------------


def _home(tmp_path, n_campaigns=2, **settings):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    with Store.open(db_path(home)) as s:
        cids = [create_campaign(s, CampaignSettings(spec_hash="-", provider="sim", model="sim-1",
                                                    **settings), ECHO) for _ in range(n_campaigns)]
    return home, cids


def test_probes_are_made_once_per_spec_and_model_and_reused_by_every_campaign(tmp_path):
    home, cids = _home(tmp_path)
    with Store.open(db_path(home)) as s:
        spec_hash = s.campaign(cids[0])["spec_hash"]
        sim = SimProvider()
        sets = [asyncio.run(ensure_probes(s, ECHO, spec_hash, LedgeredProvider(sim, s, campaign_id=cid),
                                          "sim-1", campaign_id=cid)) for cid in cids]
        assert sim.calls == 1
        calls = [c for cid in cids for c in s.llm_calls(campaign_id=cid)]
        assert [(c.purpose, c.campaign_id, c.generation) for c in calls] == [("examine", cids[0], None)]
        a, b = sets
        assert a.state == b.state == "ready" and a.probes == b.probes and a.call_ids == [calls[0].id]
        assert a.tokens == calls[0].input_tokens + calls[0].output_tokens and a.campaign_id == cids[0]
        assert [p["name"] for p in a.probes] == [p["name"] for p in derive_probes(VISIBLE)]
        assert all("relies_on" not in p for p in rig_layer(a))
        # another examiner model is another set, another call
        asyncio.run(ensure_probes(s, ECHO, spec_hash, LedgeredProvider(sim, s, campaign_id=cids[1]),
                                  "sim-1-pro", campaign_id=cids[1]))
        assert sim.calls == 2 and [ps.model for ps in records.sets_of(s, spec_hash)] == ["sim-1", "sim-1-pro"]


# one engine process: the sim examiner, slowed so that the other engine asks meanwhile
ENGINE = r'''
import asyncio, json, sys
from core.examiner.service import ensure_probes
from core.llm.ledger import LedgeredProvider
from core.llm.sim import SimProvider
from core.spec import parse_spec
from core.store import Store

class Slow(SimProvider):
    async def complete(self, req, on_delta=None):
        await asyncio.sleep(1.0)
        return await super().complete(req, on_delta)

db, cid, spec_path = sys.argv[1:4]
with Store.open(db) as s:
    spec_hash = s.campaign(cid)["spec_hash"]
    ps = asyncio.run(ensure_probes(s, open(spec_path).read(), spec_hash,
                                   LedgeredProvider(Slow(), s, campaign_id=cid), "sim-1", campaign_id=cid))
    print(json.dumps({"calls": ps.call_ids, "probes": [p["name"] for p in ps.probes]}))
'''


def test_two_engines_of_one_home_make_one_examine_call(tmp_path):
    """Two engine processes start campaigns on the same spec at once: the second waits for
    the first one's probe set (a file lock beside the database) instead of asking too."""
    import subprocess
    import sys

    home, cids = _home(tmp_path)
    spec = tmp_path / "echo.md"
    spec.write_text(ECHO, encoding="utf-8")
    procs = [subprocess.Popen([sys.executable, "-c", ENGINE, str(db_path(home)), cid, str(spec)],
                              cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for cid in cids]
    try:
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait(10)
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    got = [json.loads(out) for out, _ in outs]
    assert got[0] == got[1] and got[0]["probes"]
    with Store.open(db_path(home)) as s:
        calls = [c for cid in cids for c in s.llm_calls(campaign_id=cid) if c.purpose == "examine"]
    assert len(calls) == 1 and got[0]["calls"] == [calls[0].id]


def _fake_run(tmp_path, responder, faults=()):
    """ensure_probes through the real anthropic provider against the loopback fake."""
    home, cids = _home(tmp_path, 1)

    async def go():
        async with FakeAnthropic(responder=responder) as fake:
            fake.inject(*faults)
            p = AnthropicProvider(api_key="k", base_url=fake.base_url, prices=PriceBook(), max_attempts=1)
            with Store.open(db_path(home)) as s:
                spec_hash = s.campaign(cids[0])["spec_hash"]
                try:
                    return await ensure_probes(s, ECHO, spec_hash, LedgeredProvider(p, s, campaign_id=cids[0]),
                                               "claude-x", campaign_id=cids[0]), fake.message_requests()
                finally:
                    await p.aclose()

    return home, cids[0], go


def test_an_unreadable_answer_gets_one_repair_then_the_layer_is_unavailable(tmp_path):
    home, cid, go = _fake_run(tmp_path, lambda body: "I would rather not.")
    ps, reqs = asyncio.run(go())
    assert ps.state == "unavailable" and "after one repair" in ps.reason and ps.probes == []
    assert len(reqs) == 2 and "could not be read" in json.dumps(reqs[1].body["messages"][-1])
    with Store.open(db_path(home)) as s:
        calls = s.llm_calls(campaign_id=cid)
        assert [c.purpose for c in calls] == ["examine", "examine"] and ps.call_ids == [c.id for c in calls]
        assert records.load(s, ps.spec_hash, "claude-x").state == "unavailable"  # stored: not asked again
        assert rig_layer(ps) == [] and suspects(s, ps) == []


def test_a_repaired_answer_is_used(tmp_path):
    answers = iter(["no block", answer([probe("h")])])
    home, cid, go = _fake_run(tmp_path, lambda body: next(answers))
    ps, reqs = asyncio.run(go())
    assert ps.state == "ready" and [p["name"] for p in ps.probes] == ["h"] and len(reqs) == 2


def test_a_provider_failure_stores_nothing(tmp_path):
    home, cid, go = _fake_run(tmp_path, lambda body: answer([probe()]), faults=[Fault.server_error()] * 3)
    with pytest.raises(ExaminerUnavailable, match="the examine call failed"):
        asyncio.run(go())
    with Store.open(db_path(home)) as s:
        assert records.sets_of(s, s.campaign(cid)["spec_hash"]) == []


# --- suspects and dismissals ---------------------------------------------------------------------------


def _judged(s: Store, cid: str, spec_hash: str, results: dict[str, bool], viable: bool = True) -> int:
    g = s.create_generation(spec_hash=spec_hash, campaign_id=cid, parent=None, attempt=0)
    report = {"generation": g.number, "status": "viable" if viable else "non-viable",
              "failure_stage": "none" if viable else "test", "checks": {"health": {
                  "passed": True, "duration_ms": 5, "vectors": [], "contracts": [],
                  "examiner": [{"name": k, "passed": v, "status": 200, "error": None, "ms": 2}
                               for k, v in results.items()]}},
              "fitness": {"examiner_pass_rate": sum(results.values()) / len(results),
                          "examiner_total": len(results)},
              "completed_at": "2026-01-01T00:00:00Z", "examiner_set": {"model": "sim-1"}}
    with s.write():
        s.record_report(g.number, report)
        s.set_outcome(g.number, Outcome.PROMOTED if viable else Outcome.FAILED, "x")
    return g.number


def test_a_probe_failing_nearly_everywhere_is_suspect_until_dismissed(tmp_path):
    assert is_suspect(5, 5) and is_suspect(10, 9) and not is_suspect(10, 8) and not is_suspect(4, 4)
    home, (cid, other) = _home(tmp_path)
    with Store.open(db_path(home)) as s:
        spec_hash = s.campaign(cid)["spec_hash"]
        ps = asyncio.run(ensure_probes(s, ECHO, spec_hash, LedgeredProvider(SimProvider(), s, campaign_id=cid),
                                       "sim-1", campaign_id=cid))
        names = [p["name"] for p in ps.probes]
        bad, flaky = names[0], names[1]
        # 3 artifacts in one campaign, 3 in another: the rule counts every campaign of the spec
        for i, c in enumerate([cid, cid, cid, other, other, other]):
            _judged(s, c, spec_hash, {**{n: True for n in names}, bad: False, flaky: i % 2 == 0},
                    viable=i != 5)
        assert evidence(s, spec_hash, "sim-1")[bad] == {"ran": 6, "failed": 6}
        assert [p["name"] for p in suspects(s, ps)] == [bad]  # flaky failed 3/6: not suspect
        ex = campaign_examiner(s, cid)
        assert ex["suspects"][0]["name"] == bad and ex["pass_rate"] == round((3 * 7 - 3 - 1) / 21, 4)
        assert ex["viable"] == 3 and ex["viable_all_passed"] == 0 and ex["viability_if_gated"] == 0.0

    with Cambrian(home) as app:
        with pytest.raises(CommandRefused, match="needs a reason"):
            app.run(DismissProbe(spec=spec_hash, probe=bad, reason="  "))
        with pytest.raises(CommandRefused, match="no probe 'nope'"):
            app.run(DismissProbe(spec=spec_hash, probe="nope", reason="x"))
        with pytest.raises(CommandRefused, match="no spec version"):
            app.run(DismissProbe(spec="sha256:ffff", probe=bad, reason="x"))
        done = app.run(DismissProbe(spec=spec_hash[:15], probe=bad, reason="the spec never says so"))
        assert done.spec_hash == spec_hash
        assert done.dismissals == ({"model": "sim-1", "probe": bad, "evidence": {"ran": 6, "failed": 6},
                                    "already": False},)
        summ = app.reads.summary(cid)
        status = app.reads.campaign_status(cid)
        shown = app.reads.examiner_probes(spec_hash)
    assert summ.examiner["suspects"] == [] and summ.examiner["dismissed"] == 1
    assert status["summary"]["examiner_pass_rate"] == summ.examiner_pass_rate
    # the dismissed probe's results stop counting: 3 artifacts x 6 probes, one miss (flaky at #1)
    assert summ.examiner_pass_rate == round(17 / 18, 4)
    # dismissed: gone from the rig's layer, evidence kept, and no longer failing anyone
    with Store.open(db_path(home)) as s:
        now = records.load(s, spec_hash, "sim-1")
        assert bad not in [p["name"] for p in rig_layer(now)] and len(rig_layer(now)) == len(names) - 1
        assert now.dismissed[bad]["evidence"] == {"ran": 6, "failed": 6}
        assert evidence(s, spec_hash, "sim-1")[bad] == {"ran": 6, "failed": 6}
        assert campaign_examiner(s, cid)["viable_all_passed"] == 2  # #0 and #2: their only miss was `bad`
    row = next(p for p in shown["sets"][0]["probes"] if p["name"] == bad)
    assert row["dismissed"] and not row["suspect"] and row["dismissal"]["reason"] == "the spec never says so"


# --- the sim's examiner ---------------------------------------------------------------------------------


def test_the_sim_examiner_reads_the_contract_table_and_prose():
    probes = {p["name"]: p for p in derive_probes(VISIBLE)}
    assert set(probes) == {"health-200", "echo-returns-body", "reverse-200", "reverse-without-query-400",
                           "unknown-path-404", "echo-wrong-method-405", "health-wrong-method-405"}
    assert probes["reverse-200"]["path"] == "/reverse?text=abc"  # the query the prose shows
    assert probes["health-200"]["expect"]["body_contains"] == {"status": "ok"}
    assert probes["echo-returns-body"]["body"] == probes["echo-returns-body"]["expect"]["body"]
    assert probes["echo-wrong-method-405"]["method"] == "DELETE"
    prime = {p["name"] for p in derive_probes(parse_spec((REPO_ROOT / "spec" / "prime.md").read_text()).visible_text)}
    assert {"parse-empty-object-400", "parse-array-body-400", "manifest-empty-object-400",
            "generate-empty-object-400", "stats-200"} <= prime


def test_the_sim_examiner_is_wrong_at_its_documented_rate_and_always_the_same_way():
    right = {p["name"]: p["expect"]["status"] for p in derive_probes(VISIBLE)}
    assert examine_answer(VISIBLE, "sim-1") == examine_answer(VISIBLE, "sim-1")
    wrong = total = 0
    for i in range(300):
        got = parse_probes(examine_answer(VISIBLE, f"sim-model-{i}"), VISIBLE).probes
        total += len(got)
        wrong += sum(p["expect"]["status"] != right[p["name"]] for p in got)
    assert abs(wrong / total - WRONG_P) < 0.03, wrong / total

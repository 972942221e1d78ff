"""Import of an original Cambrian artifacts tree (the published layout), and reverify."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from cambrian_tui.cli import main as cli
from core.engine.importer import import_tree
from core.home import db_path
from core.store import Store
from rig.hashing import artifact_hash_of
from tests.engine import original_layout as ol

C1, C2 = "gen0-1775283677", "gen0-1775225335"
TABLES = ("generations", "campaigns", "spec_versions", "blobs", "artifact_files", "imported_generations",
          "llm_calls", "events")


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "cambrian-artifacts"
    return root, ol.original_tree(root)


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    return h


def counts(home: Path) -> dict[str, int]:
    with Store.open(db_path(home)) as s:
        return {t: s.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


def run(capsys, home: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = cli(["--home", str(home), *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def imported(home: Path, root: Path, capsys) -> dict[str, int]:
    rc, out, err = run(capsys, home, "import", "cambrian-artifacts", str(root), "--json")
    assert rc == 0, err
    return {m["source"]: m["generation"] for m in json.loads(out)["mapping"]}


def test_import_reads_the_exact_original_layout(tree, tmp_path):
    root, facts = tree
    h = facts["hashes"]
    g0 = f"gen-0-campaigns/{C1}"
    with Store.open(tmp_path / "c.db") as s:
        res = import_tree(s, root)
        by = {m["source"]: m["generation"] for m in res["mapping"]}
        assert res["generations"] == 10 == len(by)
        assert set(res["new_campaigns"]) == {f"import-{C1}", f"import-{C2}", "import-campaign-9cb3d7e5",
                                             "import-cambrian-artifacts"}
        # a summary whose `generations` is a count: its records become generations
        camp = s.campaign(f"import-{C1}")
        assert camp["kind"] == "import" and camp["state"] == "completed"
        want = {"provider": "import", "model": ol.MODEL, "spec_path": ol.SPEC_FILE, "recorded_generations": 6,
                "recorded_viable": 5, "start_generation": 5, "original_campaign": C1}
        assert {k: camp["settings"].get(k) for k in want} == want
        assert s.spec_version(camp["spec_hash"]).origin.value == "import"
        assert s.spec_text(camp["spec_hash"]).encode() == ol.SPEC
        viable = s.generation(by[f"{g0}/gen-5"])
        assert (viable.outcome.value, viable.status, viable.artifact_hash) == ("promoted", "viable", h[5])
        assert s.artifact_files(h[5]) == ol.VIABLE | {"manifest.json": (root / g0 / "gen-5" / "manifest.json").read_bytes()}
        # failed/gen-N: the record's verdict, counts and failing test kept
        failed = s.generation(by[f"{g0}/failed/gen-6"])
        assert (failed.outcome.value, failed.failure_stage, failed.parent) == ("failed", "test", viable.number)
        rep = s.report(failed.number)
        assert rep["checks"]["test"]["tests_run"] == 4 and rep["imported"]["verdict_from"] == "record"
        # a record without an artifact: history, no files
        ro = s.generation(by[f"{g0}/summary.json#gen-9"])
        assert ro.outcome.value == "promoted" and ro.artifact_hash is None
        assert "record only" in ro.reason and "no rig run possible" in ro.reason
        only = s.generation(by[f"gen-0-campaigns/{C2}/summary.json#gen-12"])
        assert (only.campaign_id, only.outcome.value, only.artifact_hash) == (f"import-{C2}", "failed", None)
        # an artifact without a record: its verdict is where the original put it
        orphan = s.generation(by[f"{g0}/failed/gen-10"])
        assert (orphan.outcome.value, orphan.status, orphan.failure_stage) == ("failed", "non-viable", "unknown")
        assert "folder placement" in orphan.reason and orphan.artifact_hash == h[10]
        # a manifest listing a file twice is stored as it is (the rig judges it)
        dup = json.loads(s.artifact_files(h[8])["manifest.json"])
        assert dup["files"].count(ol.SPEC_FILE) == 2
        assert any("twice" in n for n in res["notes"])
        # an M1-era manifest (created_at) on the main line, with no record: no verdict
        main = s.generation(by["gen-1"])
        assert (main.campaign_id, main.outcome.value, main.status) == ("import-cambrian-artifacts", "interrupted", None)
        assert main.created_at == "2026-04-04T06:24:44.870Z"
        # the same artifact twice in the tree: one generation, the one with the record
        assert s.generations_with_artifact(h[5]) == [viable.number]
        [copy] = res["already_imported"]
        assert copy["source"] == "campaigns/campaign-9cb3d7e5/gen-3" and copy["generation"] == viable.number
        assert copy["same_import"]
        # recorded token usage per campaign, apart from the LLM ledger
        for original, tokens in facts["tokens"].items():
            assert s.imported_tokens(f"import-{original}") == tokens
        assert s.llm_calls() == []
        # original numbers are kept, ours are fresh and follow the original order
        rows = {r["generation"]: r for r in s.imported_generations()}
        assert rows[viable.number]["original_generation"] == 5 and rows[viable.number]["original_campaign"] == C1
        assert sorted(by.values()) == list(range(min(by.values()), min(by.values()) + 10))


def test_import_names_what_it_created(tree, home, capsys):
    root, facts = tree
    rc, out, err = run(capsys, home, "import", "cambrian-artifacts", str(root))
    assert rc == 0, err
    assert out.startswith(f"imported 10 generations from {root} into 4 campaign(s) (4 new)")
    line = next(ln for ln in out.splitlines() if ln.strip().startswith(f"import-{C1} (new)"))
    assert "7 generations" in line and "promoted 5" in line and "failed 2" in line and "1 record only" in line
    assert f"tokens {facts['tokens'][C1]} recorded" in line
    assert "record only (no artifact in the tree: kept as history, no rig run possible)" in out
    assert "campaigns/campaign-9cb3d7e5/gen-3: the same artifact as gen" in out


def test_reimport_adds_nothing_and_says_so(tree, home, capsys):
    root, _ = tree
    first = imported(home, root, capsys)
    before = counts(home)
    rc, out, err = run(capsys, home, "import", "cambrian-artifacts", str(root))
    assert rc == 0, err
    assert out.startswith(f"nothing new in {root}: everything in it is already imported")
    assert "nothing was added" in out
    assert counts(home) == before
    rc, out, _ = run(capsys, home, "import", "cambrian-artifacts", str(root), "--json")
    res = json.loads(out)
    assert res["generations"] == 0 and res["new_campaigns"] == [] and res["campaigns"] == res["per_campaign"] == []
    # every folder and record, the record-only ones too, is named with its generation
    again = {a["source"]: a["generation"] for a in res["already_imported"]}
    assert {k: v for k, v in again.items() if k in first} == first
    assert again["campaigns/campaign-9cb3d7e5/gen-3"] == first[f"gen-0-campaigns/{C1}/gen-5"]
    assert counts(home) == before


def test_a_grown_tree_adds_only_the_new_artifact(tree, home, capsys):
    root, _ = tree
    imported(home, root, capsys)
    before = counts(home)
    ol.write_artifact(root / "gen-0-campaigns" / C1 / "gen-13", 13, 11, ol.VIABLE | {"app/v.py": b"V = 13\n"})
    rc, out, err = run(capsys, home, "import", "cambrian-artifacts", str(root), "--json")
    res = json.loads(out)
    assert res["generations"] == 1 and res["new_campaigns"] == []
    assert res["campaigns"] == [f"import-{C1}"] and res["per_campaign"][0]["generations"] == [
        m["generation"] for m in res["mapping"]]
    assert counts(home)["generations"] == before["generations"] + 1
    assert counts(home)["campaigns"] == before["campaigns"]


def test_an_error_during_the_import_writes_nothing(tree, tmp_path, monkeypatch):
    root, _ = tree
    with Store.open(tmp_path / "c.db") as s:
        s.add_spec("# kept\n", label="kept")
        before = {t: s.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
        calls = []
        real = Store.add_imported

        def failing(self, row):
            calls.append(row)
            if len(calls) == 5:
                raise OSError(28, "No space left on device")
            return real(self, row)

        monkeypatch.setattr(Store, "add_imported", failing)
        with pytest.raises(OSError):
            import_tree(s, root)
        after = {t: s.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in before}
        assert after == before
        monkeypatch.setattr(Store, "add_imported", real)
        assert import_tree(s, root)["generations"] == 10  # and it works once the fault is gone


def test_an_unreadable_summary_is_a_clear_error(tree, home, capsys):
    root, _ = tree
    (root / "gen-0-campaigns" / C2 / "summary.json").write_text("{not json")
    rc, out, err = run(capsys, home, "import", "cambrian-artifacts", str(root))
    assert rc == 1
    assert f"gen-0-campaigns/{C2}/summary.json: cannot read it as JSON" in err
    assert "nothing was imported" in err
    assert counts(home)["generations"] == 0 and counts(home)["campaigns"] == 0


def test_campaign_list_and_status_show_imported_campaigns_with_their_tokens(tree, home, capsys):
    root, facts = tree
    imported(home, root, capsys)
    rc, out, _ = run(capsys, home, "campaign", "list")
    assert rc == 0
    line = next(ln for ln in out.splitlines() if ln.startswith(f"import-{C1} "))
    assert f"tokens {facts['tokens'][C1]} recorded by the original" in line and "IMPORTED" in line
    assert "viable   5" in line and "done     7/7" in line
    assert any(ln.startswith(f"import-{C2} ") for ln in out.splitlines())
    rc, out, _ = run(capsys, home, "campaign", "list", "--json")
    rows = {r["id"]: r for r in json.loads(out)}
    assert rows[f"import-{C1}"]["imported"] is True
    s = rows[f"import-{C1}"]["summary"]
    assert (s["tokens"], s["tokens_recorded"], s["cost_usd"]) == (0, facts["tokens"][C1], 0)
    assert s["tokens_per_viable"] == facts["tokens"][C1] / 5
    rc, out, _ = run(capsys, home, "campaign", "status", f"import-{C1}")
    assert "tokens 0 " not in out and f"tokens {facts['tokens'][C1]} recorded by the original" in out
    assert f"original campaign {C1}, model {ol.MODEL}" in out
    assert "the original counted 6 generations, 5 viable" in out
    assert counts(home)["llm_calls"] == 0


# --- reverify ---------------------------------------------------------------------------


def our_report(gen: int, status: str, stage: str = "none", run: int = 3, passed: int = 3,
               failed: tuple[str, ...] = (), rules: tuple[str, ...] = ()) -> dict:
    rep = {"generation": gen, "status": status, "failure_stage": stage,
           "checks": {"test": {"passed": status == "viable", "duration_ms": 5, "tests_run": run,
                               "tests_passed": passed}},
           "completed_at": "2026-05-01T00:00:00Z", "stricter_rules": list(rules)}
    if status != "viable":
        rep["diagnostics"] = {"stage": stage, "summary": f"{stage} failed",
                              "failures": [{"test": t, "error": "assert"} for t in failed]}
    return rep


class FakeRig:
    """Stands in for rig.api.run_artifact under the contract the rig is being given (issue
    19: a ``profile`` keyword; the report carries ``profile`` and ``stricter_rules``) until
    its profiles land. Verdicts are looked up by the hash of the folder it is handed, so a
    wrongly materialised artifact fails the test."""

    def __init__(self, h: dict):
        t = ("tests/test_more.py::test_fails",)
        self.verdicts = {
            h[5]: {p: our_report(5, "viable") for p in ("cambrian", "original")},
            h[6]: {p: our_report(6, "non-viable", "test", 4, 3, t) for p in ("cambrian", "original")},
            h[7]: {"cambrian": our_report(7, "non-viable", "build", None, None, rules=("syntax_gate",)),
                   "original": our_report(7, "viable")},
            h[8]: {"cambrian": our_report(8, "non-viable", "manifest", None, None,
                                          rules=("duplicate_manifest_paths",)),
                   "original": our_report(8, "viable")},
            h[10]: {p: our_report(10, "viable") for p in ("cambrian", "original")},
            h["main-1"]: {"cambrian": our_report(1, "non-viable", "manifest", None, None,
                                                 rules=("manifest_created_at",)),
                          "original": our_report(1, "viable")},
            h[11]: {"cambrian": our_report(11, "non-viable", "build", None, None, rules=("syntax_gate",)),
                    "original": our_report(11, "non-viable", "test", 1, 0, ("tests/test_app.py",))},
        }
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, folder, *, backend, run_id, generation, profile):
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}
        assert "manifest.json" in files
        h = artifact_hash_of(files)
        self.calls.append((h, profile, backend))
        wire = dict(self.verdicts[h][profile]) | {"profile": profile}
        if profile == "original":
            wire["stricter_rules"] = []
        return SimpleNamespace(report=SimpleNamespace(to_wire=lambda: wire))


def reverify(capsys, home, rig, *args):
    from core.engine.cli import reverify_main

    gens = [a for a in args if not a.startswith("--")]
    profile = "original" if "--original" in args else "cambrian"
    capsys.readouterr()
    rc = reverify_main(home, gens, backend="docker", profile=profile, as_json="--json" in args, rig_fn=rig)
    return rc, capsys.readouterr().out


def test_reverify_judges_every_valid_number_and_reports_the_invalid_ones(tree, home, capsys):
    root, facts = tree
    by = imported(home, root, capsys)
    rig = FakeRig(facts["hashes"])
    g5, g6 = by[f"gen-0-campaigns/{C1}/gen-5"], by[f"gen-0-campaigns/{C1}/failed/gen-6"]
    g9 = by[f"gen-0-campaigns/{C1}/summary.json#gen-9"]
    rc, out = reverify(capsys, home, rig, str(g5), "99999", "abc", str(g9), str(g6))
    assert rc == 1
    assert [c[:2] for c in rig.calls] == [(facts["hashes"][5], "cambrian"), (facts["hashes"][6], "cambrian")]
    rows = {ln.split()[0]: ln for ln in out.splitlines()[1:-1]}
    assert rows[str(g5)].rstrip().endswith("same") and f"{C1} gen-5" in rows[str(g5)]
    assert rows[str(g6)].rstrip().endswith("same") and "non-viable/test 3/4" in rows[str(g6)]
    assert "error: no generation 99999" in rows["99999"]
    assert "error: 'abc' is not a generation number" in rows["abc"]
    assert out.splitlines()[1].split()[0] == "abc"  # reported at once, before any rig run
    assert "imported record only" in rows[str(g9)] and "no rig run possible" in rows[str(g9)]
    assert "2 judged under profile cambrian: 2 same, 0 differ; 3 not judged" in out


def test_reverify_gives_the_reason_of_a_differing_verdict(tree, home, capsys):
    root, facts = tree
    by = imported(home, root, capsys)
    rig = FakeRig(facts["hashes"])
    g7, g8, g11 = (by[f"gen-0-campaigns/{C1}/gen-{n}"] for n in (7, 8, 11))
    rc, out = reverify(capsys, home, rig, str(g7), str(g8), str(g11))
    assert rc == 1 and "DIFFERS" not in out
    rows = {ln.split()[0]: ln for ln in out.splitlines()[1:-1]}
    assert "stricter rule of ours: syntax_gate; --profile original reproduces the recorded verdict" in rows[str(g7)]
    assert "duplicate_manifest_paths; --profile original reproduces" in rows[str(g8)]
    assert "viable/none 3/3" in rows[str(g8)] and "non-viable/manifest" in rows[str(g8)]
    # under the original's rules the recorded verdicts come back, or the artifact is to blame
    rc, out = reverify(capsys, home, rig, str(g7), str(g8), str(g11), "--original")
    rows = {ln.split()[0]: ln for ln in out.splitlines()[1:-1]}
    assert rows[str(g7)].rstrip().endswith("same") and rows[str(g8)].rstrip().endswith("same")
    assert ("the artifact behaved differently: status viable -> non-viable; failure_stage none -> test; "
            "tests 3/3 passed -> 0/1 passed (test: test failed)") in rows[str(g11)]
    assert {c[1] for c in rig.calls[-3:]} == {"original"}
    # an M1 manifest has no record on the main line; a folder's place is a thin record
    g1, g10 = by["gen-1"], by[f"gen-0-campaigns/{C1}/failed/gen-10"]
    rc, out = reverify(capsys, home, rig, str(g1), str(g10))
    rows = {ln.split()[0]: ln for ln in out.splitlines()[1:-1]}
    assert ("no recorded verdict to compare with; stricter rule of ours: manifest_created_at decided it "
            "(--profile original applies the original's rules)") in rows[str(g1)]
    assert "non-viable/unknown" in rows[str(g10)]
    assert rows[str(g10)].rstrip().endswith("the artifact behaved differently: status non-viable -> viable; "
                                            "the recorded verdict is only the folder the original put it in")
    rc, out = reverify(capsys, home, rig, str(g8), "7x", "--json")
    data = json.loads(out)
    assert data[0]["profile"] == "cambrian" and data[0]["stricter_rules"] == ["duplicate_manifest_paths"]
    assert data[0]["differs"]["status"] == {"recorded": "viable", "now": "non-viable"}
    assert data[0]["original"] == {"campaign": C1, "generation": 8, "source": f"gen-0-campaigns/{C1}/gen-8"}
    assert "duplicate_manifest_paths" in data[0]["reason"]
    assert data[1] == {"generation": "7x", "error": "'7x' is not a generation number", "reason": "not a number"}


def test_reverify_stops_judging_when_the_rig_cannot_run(tree, home, capsys):
    from rig.api import RigSetupError

    root, facts = tree
    by = imported(home, root, capsys)
    calls = []

    def broken_rig(folder, *, backend, run_id, generation, profile):
        calls.append(folder)
        raise RigSetupError("the Docker engine does not answer")

    g5, g6 = by[f"gen-0-campaigns/{C1}/gen-5"], by[f"gen-0-campaigns/{C1}/failed/gen-6"]
    rc, out = reverify(capsys, home, broken_rig, str(g5), str(g6))
    assert rc == 1 and len(calls) == 1
    assert "error: the rig cannot run: the Docker engine does not answer" in out
    assert "error: not judged: the Docker engine does not answer" in out


def test_reverify_with_a_rig_that_has_no_profiles(tree, home, capsys):
    """Until the rig takes ``profile``: ours is what it applies; --profile original is refused."""
    root, facts = tree
    by = imported(home, root, capsys)
    fake = FakeRig(facts["hashes"])

    def old_rig(folder, *, backend, run_id, generation):
        return fake(folder, backend=backend, run_id=run_id, generation=generation, profile="cambrian")

    g5 = str(by[f"gen-0-campaigns/{C1}/gen-5"])
    assert reverify(capsys, home, old_rig, g5)[0] == 0
    rc, out = reverify(capsys, home, old_rig, g5, "--original")
    assert rc == 1 and "this rig has no verdict profiles: it cannot apply --profile original" in out


@pytest.mark.docker
def test_reverify_under_the_real_rig(tree, home, capsys, rig_ready):
    """The original's verdicts come back under --profile original; ours names the rule.

    Needs the rig of issue 19: uv in the image (the M2 manifests build with `uv pip
    install`) and verdict profiles (``profile=``, ``stricter_rules``)."""
    root, facts = tree
    by = imported(home, root, capsys)
    g = {n: str(by[f"gen-0-campaigns/{C1}/{'failed/' if n == 6 else ''}gen-{n}"]) for n in (5, 6, 7, 8, 11)}
    main = str(by["gen-1"])
    from core.engine.cli import reverify_main

    capsys.readouterr()
    rc = reverify_main(home, [*g.values(), main], backend="docker", profile="original", as_json=True)
    rows = {str(r["generation"]): r for r in json.loads(capsys.readouterr().out)}
    for n in (5, 6, 7, 8):
        assert rows[g[n]]["reason"] == "same", rows[g[n]]
    assert rows[g[11]]["reason"].startswith("the artifact behaved differently: status viable -> non-viable")
    assert rows[main]["now"]["status"] == "viable", rows[main]  # M1: pip build, created_at
    assert rc == 1
    rc = reverify_main(home, [g[5], g[6], g[7], g[8], main], backend="docker", profile="cambrian", as_json=True)
    rows = {str(r["generation"]): r for r in json.loads(capsys.readouterr().out)}
    assert rows[main]["stricter_rules"] == ["manifest_created_at"], rows[main]
    assert rows[g[5]]["reason"] == "same" and rows[g[6]]["reason"] == "same"
    assert "syntax_gate" in rows[g[7]]["stricter_rules"] and "syntax_gate" in rows[g[7]]["reason"]
    assert "duplicate_manifest_paths" in rows[g[8]]["stricter_rules"]
    assert "--profile original reproduces the recorded verdict" in rows[g[8]]["reason"]


def test_the_reason_names_what_changed():
    from core.engine.reverify import differences, reason_for, verdict_fields

    # the original joined several pytest ids into one failure entry; ids are compared as sets
    recorded = verdict_fields(ol.viability(6, "non-viable", "test", 4, 2,
                                           ["tests/a.py::test_x - Assertion...", "tests/b.py::test_y"]))
    now = verdict_fields(our_report(6, "non-viable", "test", 4, 2, ("tests/a.py::test_x", "tests/c.py::test_z")))
    row = {"recorded": recorded, "now": now, "differs": differences(recorded, now), "stricter_rules": []}
    assert set(row["differs"]) == {"failed_tests"}
    assert reason_for(row) == ("the artifact behaved differently: failing tests now also tests/c.py::test_z, "
                               "no longer tests/b.py::test_y")
    same = verdict_fields(our_report(6, "non-viable", "test", 4, 2, ("tests/b.py::test_y", "tests/a.py::test_x")))
    assert differences(recorded, same) == {}
    # a stage the record does not know is no difference; a count it does not state neither
    placed = {"status": "non-viable", "failure_stage": "unknown", "tests_run": None, "tests_passed": None,
              "failed_tests": None}
    assert differences(placed, now) == {}
    rules = {"recorded": recorded, "now": now, "differs": {"status": {}}, "stricter_rules": ["a", "b"]}
    assert reason_for(rules) == "stricter rules of ours: a, b; --profile original reproduces the recorded verdict"
    # a hang of 150 s: non-viable under the original's 120 s test timeout, viable under ours
    lenient = {"recorded": recorded, "now": now, "differs": {"status": {}}, "lenient_rules": ["test_timeout"]}
    assert reason_for(lenient) == ("more lenient rule of ours: test_timeout; "
                                   "--profile original reproduces the recorded verdict")


def test_a_record_of_another_artifact_stays_apart(tmp_path):
    """generations.json and a gen-N/ folder overwritten later: the record judged another
    artifact, so it stays record-only history and the folder gets no borrowed verdict; a
    record whose artifact sits in another folder joins that folder."""
    root = tmp_path / "t"
    h1 = ol.write_artifact(root / "gen-1", 1, 0, ol.VIABLE, m1=True)
    old = "sha256:" + "1" * 64
    (root / "generations.json").write_text(json.dumps([
        ol.record(1, 0, old, "main", ol.viability(1, "viable")) | {"artifact_ref": "gen-1"}]))
    c = root / "gen-0-campaigns" / "gen0-5"
    h2 = ol.write_artifact(c / "failed" / "gen-7", 7, 6, ol.TEST_FAILS)
    ol.write_summary(c, "gen0-5", 6, [ol.record(6, 5, h2, "gen0-5", ol.viability(6, "non-viable", "test", 4, 3))])
    with Store.open(tmp_path / "c.db") as s:
        res = import_tree(s, root)
        by = {m["source"]: m for m in res["mapping"]}
        folder, record = by["gen-1"], by["generations.json#gen-1"]
        assert (folder["recorded"], folder["artifact"]) == (None, True)
        assert (record["recorded"], record["artifact"]) == ("viable", False)
        assert s.generation(folder["generation"]).artifact_hash == h1
        assert any("names another artifact" in n for n in res["notes"])
        moved = by["gen-0-campaigns/gen0-5/failed/gen-7"]
        assert moved["recorded"] == "non-viable" and len(res["mapping"]) == 3
        assert s.report(moved["generation"])["checks"]["test"]["tests_run"] == 4

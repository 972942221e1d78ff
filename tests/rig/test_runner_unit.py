"""Runner and host-side logic without any sandbox: junit parsing, matching, $GENERATION,
vectors, fitness, the syntax gate, the manifest stage and verdict assembly."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from rig import runner
from rig.backends import Execution, LineSplitter, OutputSink
from rig.fitness import compute_fitness, is_trivial_assert, static_metrics
from rig.orchestrator import assemble, manifest_stage
from rig.api import StageTimeouts
from rig.vectors import VectorError, extract_vectors

from conftest import make_hello_artifact, write_artifact, hello_files

# --- junit -------------------------------------------------------------------------------

JUNIT_MIXED = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="4">
<testcase classname="tests.test_a" name="test_ok" file="tests/test_a.py" line="3" time="0.001"/>
<testcase classname="tests.test_a" name="test_bad" file="tests/test_a.py" line="7" time="0.001">
<failure message="assert 1 == 2">def test_bad():
&gt;       assert 1 == 2
E       assert 1 == 2

/workspace/tests/test_a.py:9: AssertionError</failure></testcase>
<testcase classname="tests.test_a" name="test_skip" file="tests/test_a.py" line="11" time="0">
<skipped type="pytest.skip" message="later">skip</skipped></testcase>
<testcase classname="tests.test_a" name="test_ok2" file="tests/test_a.py" line="14" time="0"/>
</testsuite></testsuites>"""

JUNIT_COLLECTION_ERROR = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="0" skipped="0" tests="1">
<testcase classname="" name="tests.test_broken" time="0.000">
<error message="collection failure">ImportError while importing test module '/workspace/tests/test_broken.py'.
tests/test_broken.py:1: in &lt;module&gt;
    import nothere
E   ModuleNotFoundError: No module named 'nothere'</error></testcase>
</testsuite></testsuites>"""


def _write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "junit.xml"
    p.write_text(text)
    return str(p)


def test_junit_counts_and_per_test_results(tmp_path):
    out = runner.parse_junit(_write(tmp_path, JUNIT_MIXED))
    assert out["found"]
    assert (out["tests_run"], out["tests_passed"], out["failed"], out["skipped"]) == (3, 2, 1, 1)
    bad = [r for r in out["results"] if r["outcome"] == "failed"][0]
    assert bad["id"] == "tests.test_a::test_bad"
    assert bad["file"] == "tests/test_a.py" and bad["line"] == 9
    assert "assert 1 == 2" in bad["message"]
    ok = [r for r in out["results"] if r["id"].endswith("test_ok")][0]
    assert ok["line"] == 4  # pytest writes 0-based lines


def test_junit_collection_error_is_one_error(tmp_path):
    out = runner.parse_junit(_write(tmp_path, JUNIT_COLLECTION_ERROR))
    assert (out["tests_run"], out["tests_passed"], out["errors"]) == (1, 0, 1)
    assert len(out["results"]) == 1
    r = out["results"][0]
    assert r["outcome"] == "error" and r["file"] == "tests/test_broken.py" and r["line"] == 1
    assert not runner.test_passed({"ok": False}, out)


def test_console_text_never_changes_counts(tmp_path):
    """An artifact printing '999 passed' changes nothing: counts come from the XML only."""
    out = runner.parse_junit(_write(tmp_path, JUNIT_MIXED.replace("skip</skipped>",
                                                                  "999 passed</skipped>")))
    assert out["tests_run"] == 3 and out["tests_passed"] == 2


def test_junit_missing_symlink_dtd_and_garbage(tmp_path):
    assert runner.parse_junit(str(tmp_path / "nope.xml"))["found"] is False
    target = tmp_path / "real.xml"
    target.write_text(JUNIT_MIXED)
    link = tmp_path / "link.xml"
    link.symlink_to(target)
    assert runner.parse_junit(str(link))["found"] is False  # O_NOFOLLOW
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><testsuite>&a;</testsuite>'
    out = runner.parse_junit(_write(tmp_path, bomb))
    assert out["found"] is False and "DTD" in out["parse_error"]
    out = runner.parse_junit(_write(tmp_path, "999 passed"))
    assert out["found"] is False and out["tests_run"] == 0


def test_zero_tests_is_not_a_pass():
    assert not runner.test_passed({"ok": True}, {"found": True, "tests_run": 0, "tests_passed": 0})
    assert runner.test_passed({"ok": True}, {"found": True, "tests_run": 2, "tests_passed": 2})
    assert not runner.test_passed({"ok": False}, {"found": True, "tests_run": 2, "tests_passed": 2})


# --- matching --------------------------------------------------------------------------


def test_subset_match_recursive():
    actual = {"a": 1, "b": {"c": [1, {"d": "x", "e": 2}], "f": True}, "g": None}
    assert runner.subset_match({"b": {"c": [1, {"d": "x"}]}}, actual)
    assert runner.subset_match({}, actual)
    assert not runner.subset_match({"b": {"c": [1]}}, actual)       # list length differs
    assert not runner.subset_match({"b": {"f": 1}}, actual)          # bool is not a number
    assert not runner.subset_match({"z": None}, actual)              # key must exist
    assert runner.subset_match({"g": None}, actual)
    assert "missing key 'q'" in runner.subset_mismatch({"b": {"q": 1}}, actual)


def test_json_equal_is_exact():
    assert runner.json_equal({"a": [1, 2.0]}, {"a": [1.0, 2]})
    assert not runner.json_equal({"a": 1}, {"a": 1, "b": 2})
    assert not runner.json_equal(True, 1)
    assert not runner.json_equal(0, False)
    assert not runner.json_equal("1", 1)


def test_generation_substitution():
    exp = {"status": 200, "body": {"generation": "$GENERATION", "list": ["$GENERATION", "x"],
                                   "text": "gen $GENERATION"}}
    sub = runner.substitute_generation(exp, 7)
    assert sub["body"] == {"generation": 7, "list": [7, "x"], "text": "gen $GENERATION"}
    assert runner.substitute_path("/g/$GENERATION", 7) == "/g/7"
    ok, err = runner.check_expectation(exp, 200, json.dumps(sub["body"]).encode(), 7)
    assert ok, err
    ok, err = runner.check_expectation({"status": 200, "body_contains": {"generation": "$GENERATION"}},
                                       200, b'{"generation": "7"}', 7)
    assert not ok and "generation" in err


def test_check_expectation_variants():
    ok, _ = runner.check_expectation({"status": 200}, 200, b"not json", 0)
    assert ok
    ok, err = runner.check_expectation({"status": 200, "body_has_keys": ["a"]}, 200, b"not json", 0)
    assert not ok and "not JSON" in err
    ok, err = runner.check_expectation({"status": 201}, 200, b"{}", 0)
    assert not ok and "status 200" in err
    ok, err = runner.check_expectation({"status": 200, "body_has_keys": ["a", "b"]}, 200,
                                       b'{"a": 1}', 0)
    assert not ok and "'b'" in err
    deep = b"[" * 100000 + b"]" * 100000
    ok, err = runner.check_expectation({"status": 200, "body": []}, 200, deep, 0)
    assert not ok


# --- vectors ---------------------------------------------------------------------------

SPEC = """# S
```spec-vector
name: outside
path: /ignored
expect: {status: 200}
```
<!-- BEGIN FROZEN: acceptance-vectors -->
```spec-vector
name: one
method: GET
path: /health
expect:
  status: 200
  body_contains: {status: ok}
```
```yaml
not: a vector
```
~~~spec-vector
name: two
method: POST
path: /echo
body: {x: 1}
expect: {status: 201, body: {x: 1, generation: $GENERATION}}
~~~
<!-- END FROZEN: acceptance-vectors -->
"""


def test_vectors_extracted_from_frozen_block_only():
    vs = extract_vectors(SPEC)
    assert [v.name for v in vs.vectors] == ["one", "two"]
    assert vs.vectors[1].method == "POST" and vs.vectors[1].body == {"x": 1}
    assert vs.vectors[1].expect.body == {"x": 1, "generation": "$GENERATION"}


@pytest.mark.parametrize("bad, needle", [
    (SPEC.replace("name: two\n", ""), "schema"),
    (SPEC.replace("path: /echo", "path: echo"), "schema"),
    (SPEC.replace("expect: {status: 201", "expect: {status: [201"), "YAML"),
    (SPEC.replace("<!-- END FROZEN: acceptance-vectors -->", ""), "markers"),
    (SPEC.replace("name: two", "name: one"), "duplicate"),
    (SPEC.replace("~~~\n<!-- END", "<!-- END"), "not closed"),
])
def test_bad_vectors_are_errors(bad, needle):
    with pytest.raises(VectorError, match=needle):
        extract_vectors(bad)


def test_spec_without_vectors_is_a_warning():
    vs = extract_vectors("# nothing here\n")
    assert vs.vectors == [] and vs.warnings


# --- syntax gate ------------------------------------------------------------------------


def test_syntax_gate(tmp_path):
    (tmp_path / "ok.py").write_text("x = 1\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "bad.py").write_text("def f(:\n    pass\n")
    (tmp_path / "side_effect.py").write_text("open('/tmp/SHOULD_NOT_EXIST_RIG', 'w')\n")
    out = runner.syntax_gate(str(tmp_path), ["ok.py", "pkg/bad.py", "side_effect.py", "README.md"])
    assert not out["ok"] and out["files_checked"] == 3
    assert out["errors"][0]["file"] == "pkg/bad.py" and out["errors"][0]["line"] == 1
    assert not os.path.exists("/tmp/SHOULD_NOT_EXIST_RIG")  # parsed, never executed
    assert runner.syntax_gate(str(tmp_path), ["ok.py"])["ok"]


def test_smoke_modules_skip_tests_and_start_script():
    files = ["app.py", "svc/__init__.py", "svc/core.py", "svc/__main__.py", "tests/test_x.py",
             "conftest.py", "spec/s.md", "manifest.json", "tools/run-me.py"]
    assert runner.smoke_modules(files, "python app.py") == ["svc", "svc.core"]
    assert runner.smoke_modules(files, "python -m svc.core") == ["app", "svc"]


# --- fitness -----------------------------------------------------------------------------


def test_trivial_asserts():
    def a(src):
        return is_trivial_assert(ast.parse(src).body[0])
    assert a("assert True") and a("assert 1") and a("assert x == x") and a("assert 1 == 1")
    assert a("assert f(y) is f(y)")
    assert not a("assert x == 1") and not a("assert resp.status == 200") and not a("assert x")


def test_static_metrics():
    files = {
        "app.py": b"import os\nimport aiohttp\nfrom yaml import safe_load\nimport helpers\n",
        "helpers.py": b"import json\n",
        "tests/test_app.py": (b"import pytest\n\ndef test_a():\n    assert True\n    assert 1 + 1 == 2\n\n"
                              b"async def test_b():\n    x = 1\n    assert x == x\n    assert x\n"),
        "spec/s.md": b"# spec\n",
    }
    m = static_metrics(files)
    assert m["source_files"] == 2 and m["source_lines"] == 5
    assert m["test_files"] == 1 and m["test_lines"] == 10
    assert m["dependencies"] == ["aiohttp", "yaml"] and m["dependency_count"] == 2
    assert m["test_functions"] == 2 and m["assertion_density"] == 2.0
    assert m["trivial_assert_rate"] == 0.5


def test_fitness_absent_is_not_zero():
    fit = compute_fitness(files=None, token_usage=None,
                          checks={"manifest": {"passed": True}, "build": {"passed": False}},
                          stage_ms={"manifest": 3, "build": 40})
    assert fit["stages_completed"] == 1 and fit["build_ms"] == 40
    for absent in ("tests_run", "test_pass_rate", "vector_pass_rate", "test_ms", "tokens_in"):
        assert absent not in fit


# --- live output ------------------------------------------------------------------------


def test_output_sink_caps_and_says_so_once():
    got = []
    sink = OutputSink(lambda s, l: got.append((s, l)), cap=100)
    sp = LineSplitter(sink, "stdout")
    for _ in range(50):
        sp.feed(b"0123456789\n")
    sp.feed(b"x" * 20000)
    sp.close()
    rig_lines = [l for s, l in got if s == "rig"]
    assert len(rig_lines) == 1 and "cap" in rig_lines[0]
    assert sum(len(l) + 1 for s, l in got if s == "stdout") <= 100
    assert sink.total > 20000


def test_output_sink_survives_a_broken_callback():
    def boom(s, l):
        raise RuntimeError("ui died")
    sink = OutputSink(boom, cap=1000)
    sink.line("stdout", "x")
    assert sink.callback_errors == 1


# --- manifest stage and assembly ---------------------------------------------------------


def test_manifest_stage_ok(tmp_path):
    mo = manifest_stage(make_hello_artifact(tmp_path / "a"))
    assert mo.ok, mo.errors
    assert [v["name"] for v in mo.vectors] == ["health-ok", "hello-generation"]


def test_manifest_stage_rejects_symlinks_hash_and_reports_unlisted(tmp_path):
    root = make_hello_artifact(tmp_path / "a")
    (root / "extra.txt").write_text("unlisted")
    mo = manifest_stage(root)
    assert mo.ok and mo.unlisted == ["extra.txt"]
    (root / "evil").symlink_to("/etc/passwd")
    mo = manifest_stage(root)
    assert not mo.ok and any("symlink" in e and "evil" in e for e in mo.errors)
    os.unlink(root / "evil")
    (root / "app.py").write_text("changed = True\n")
    mo = manifest_stage(root)
    assert not mo.ok and any("hash mismatch" in e for e in mo.errors)


def test_manifest_stage_bad_json_and_missing(tmp_path):
    root = make_hello_artifact(tmp_path / "a")
    (root / "manifest.json").write_text("{nope")
    assert "not valid JSON" in manifest_stage(root).errors[0]
    assert not manifest_stage(tmp_path / "missing").ok


def test_manifest_stage_with_too_many_files_names_only_that(tmp_path, monkeypatch):
    """A walk cut short at MAX_FILES must not report the listed files it never reached as
    missing: the one error is the file count."""
    import rig.orchestrator as orch

    root = make_hello_artifact(tmp_path / "a")
    junk = root / "zz_junk"
    junk.mkdir()
    for i in range(12):
        (junk / f"f{i}.txt").write_text("x")
    monkeypatch.setattr(orch, "MAX_FILES", 5)
    mo = manifest_stage(root)
    assert not mo.ok
    assert mo.errors == ["more than 5 files in the artifact directory"], mo.errors


def _steps(**over):
    steps = {
        "build": {"name": "build", "ok": True, "exit_code": 0, "duration_ms": 10},
        "gate": {"name": "gate", "ok": True, "duration_ms": 1, "data": {"errors": [], "files_checked": 2}},
        "test": {"name": "test", "ok": True, "exit_code": 0, "duration_ms": 100},
        "results": {"name": "results", "ok": True, "duration_ms": 1,
                  "data": {"found": True, "tests_run": 2, "tests_passed": 2, "failed": 0,
                           "errors": 0, "skipped": 0, "results": []}},
        "smoke": {"name": "smoke", "ok": True, "duration_ms": 5, "data": {"modules": []}},
        "start": {"name": "start", "ok": True, "duration_ms": 50, "exit_code": None,
                  "data": {"ready": {"ready": True, "ms": 50}}},
        "health": {"name": "health", "ok": True, "duration_ms": 9,
                   "data": {"endpoint": {"name": "entry.health", "passed": True, "status": 200},
                            "vectors": [{"name": "v", "passed": True, "status": 200}],
                            "contracts": []}},
    }
    steps.update(over)
    return {k: v for k, v in steps.items() if v is not None}


def _assemble(tmp_path, steps, rig_error=None, stage=None, profile=None):
    from rig.profiles import CAMBRIAN
    from rig.steps import Step

    prof = profile or CAMBRIAN
    mo = manifest_stage(make_hello_artifact(tmp_path / "a"), prof)
    ex = Execution(steps={k: Step.from_wire(v) for k, v in steps.items()}, rig_error=rig_error,
                   rig_error_stage=stage)
    rep, _ = assemble(mo, ex, generation=3, backend="docker", timeouts=prof.timeouts,
                      weaker=False, run_id="r", profile=prof)
    return rep


def test_assemble_viable(tmp_path):
    rep = _assemble(tmp_path, _steps())
    assert rep.status == "viable" and set(rep.checks) == {"manifest", "build", "test", "start", "health"}
    wire = rep.to_wire()
    assert wire["backend"] == "docker" and wire["checks"]["test"]["tests_run"] == 2


def test_assemble_gate_failure_is_build(tmp_path):
    gate = {"name": "gate", "ok": False, "duration_ms": 1,
            "data": {"errors": [{"file": "a.py", "line": 3, "error": "SyntaxError: x"}]}}
    rep = _assemble(tmp_path, _steps(gate=gate))
    assert rep.failure_stage == "build" and rep.diagnostics.failures[0].line == 3
    assert "test" not in rep.checks and "health" not in rep.checks


def test_assemble_rig_error_is_never_a_pass(tmp_path):
    rep = _assemble(tmp_path, _steps(health=None), rig_error="runner crashed", stage="start")
    assert rep.status == "non-viable" and rep.failure_stage == "start"
    assert "rig error" in rep.diagnostics.summary and "health" not in rep.checks
    rep = _assemble(tmp_path, _steps(), rig_error="teardown exploded")
    assert rep.status == "non-viable"


def test_assemble_missing_stage_is_never_a_pass(tmp_path):
    rep = _assemble(tmp_path, _steps(health=None))
    assert rep.status == "non-viable" and rep.failure_stage == "health"


def test_assemble_oom_summary(tmp_path):
    test = {"name": "test", "ok": False, "exit_code": 137, "duration_ms": 100, "oom": True}
    results = {"name": "results", "ok": False, "duration_ms": 1, "data": {"found": False}}
    rep = _assemble(tmp_path, _steps(test=test, results=results))
    assert rep.failure_stage == "test" and "out of memory" in rep.diagnostics.summary


def test_runner_is_stdlib_only():
    import sys

    tree = ast.parse(Path(runner.__file__).read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree)
             if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
    assert mods <= set(sys.stdlib_module_names) | {"__future__"}, mods


# --- streamed results: the rig's pytest plugin + trusted aggregation ----------------------

FORGING_CONFTEST = '''
import os, json, pytest

def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line("999 passed in 0.01s")

def pytest_sessionfinish(session, exitstatus):
    session.exitstatus = 0
    for d in ("/tmp", os.getcwd()):
        for name in ("junit.xml", "report.json"):
            try:
                open(os.path.join(d, name), "w").write('{"status": "viable"}')
            except OSError:
                pass
'''

SUITE = '''
import pytest

def test_ok():
    assert 1 + 1 == 2

def test_fails():
    x = 3
    assert x == 4

@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded")

def test_setup_error(broken):
    pass

@pytest.mark.skip(reason="counted as skipped by the plugin")
def test_skipped():
    pass

@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False
'''


def _run_with_plugin(tmp_path, files, extra_env=None):
    import subprocess
    import sys
    import threading

    ws = tmp_path / "ws"
    for rel, text in files.items():
        p = ws / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    coll = tmp_path / "collect"
    coll.mkdir()
    fifo = runner.make_fifo(str(coll))
    runner.install_plugin(str(coll / runner.PLUGIN_MODULE), None, fifo)
    reader = runner.ResultReader(fifo)
    stop = threading.Event()
    th = threading.Thread(target=reader.wait, kwargs={"stop_flag": stop}, daemon=True)
    th.start()
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(coll), runner.STAGE_ENV: "test",
           "PYTEST_ADDOPTS": f"-p {runner.PLUGIN_MODULE} -p no:cacheprovider"}
    env.update(extra_env or {})
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q"], cwd=ws, env=env,
                          capture_output=True, text=True, timeout=120)
    stop.set()
    th.join(5)
    return proc, reader.result(str(ws))


def test_plugin_counts_resist_forged_files_summaries_and_exit_status(tmp_path):
    proc, res = _run_with_plugin(tmp_path, {"tests/test_suite.py": SUITE,
                                            "conftest.py": FORGING_CONFTEST})
    assert proc.returncode == 0 and "999 passed" in proc.stdout  # the forgery "worked"
    assert res["found"] and res["sessions"] == 1 and res["finished"] == 1
    assert (res["tests_run"], res["tests_passed"], res["failed"], res["errors"],
            res["skipped"]) == (3, 1, 1, 1, 2)
    by_id = {r["id"]: r for r in res["results"]}
    bad = by_id["tests/test_suite.py::test_fails"]
    assert bad["outcome"] == "failed" and bad["file"] == "tests/test_suite.py" and bad["line"] == 9
    assert "assert 3 == 4" in bad["message"]
    assert by_id["tests/test_suite.py::test_setup_error"]["outcome"] == "error"
    assert "fixture exploded" in by_id["tests/test_suite.py::test_setup_error"]["message"]
    assert by_id["tests/test_suite.py::test_ok"]["line"] == 4
    assert not runner.test_passed({"ok": True}, res)


def test_plugin_collection_error_is_one_error(tmp_path):
    proc, res = _run_with_plugin(tmp_path, {"tests/test_ok.py": "def test_a():\n    pass\n",
                                            "tests/test_broken.py": "import not_a_module_xyz\n"})
    assert (res["tests_run"], res["tests_passed"], res["errors"]) == (1, 0, 1)
    (err,) = [r for r in res["results"] if r["outcome"] == "error"]
    assert err["id"] == "tests/test_broken.py" and err["file"] == "tests/test_broken.py"
    assert "not_a_module_xyz" in err["message"]


def test_plugin_silent_when_not_in_the_test_stage(tmp_path):
    _, res = _run_with_plugin(tmp_path, {"tests/test_ok.py": "def test_a():\n    pass\n"},
                              extra_env={runner.STAGE_ENV: "build"})
    assert res["found"] is False and res["tests_run"] == 0


def test_session_that_never_finished_is_not_a_pass():
    recs = [{"t": "start", "pid": 7},
            {"t": "report", "nodeid": "t.py::a", "when": "setup", "outcome": "passed", "pid": 7},
            {"t": "report", "nodeid": "t.py::a", "when": "call", "outcome": "passed", "pid": 7},
            {"t": "report", "nodeid": "t.py::b", "when": "setup", "outcome": "passed", "pid": 7}]
    res = runner.aggregate_results(recs)
    assert res["tests_run"] == 2 and res["tests_passed"] == 1  # b never reported its call
    assert res["finished"] == 0
    res = runner.aggregate_results(recs[:3])
    assert res["tests_passed"] == res["tests_run"] == 1
    assert not runner.test_passed({"ok": True}, res)           # no end record
    assert runner.test_passed({"ok": True},
                              runner.aggregate_results(recs[:3] + [{"t": "end", "exitstatus": 0, "pid": 7}]))


def _session(pid, *recs, end=True):
    out = [{"t": "start", "pid": pid}]
    out += [dict(r, pid=pid) for r in recs]
    if end:
        out.append({"t": "end", "exitstatus": 0, "pid": pid})
    return out


def test_forged_records_are_tampering():
    ok = [{"t": "report", "nodeid": "t.py::a", "when": w, "outcome": "passed"}
          for w in ("setup", "call", "teardown")]
    bad = [{"t": "report", "nodeid": "t.py::b", "when": "setup", "outcome": "passed"},
           {"t": "report", "nodeid": "t.py::b", "when": "call", "outcome": "failed"},
           {"t": "report", "nodeid": "t.py::b", "when": "teardown", "outcome": "passed"}]
    honest = _session(7, *ok, *bad)
    res = runner.aggregate_results(honest)
    assert (res["tests_run"], res["tests_passed"], res["tampering"]) == (2, 1, [])
    # after the session: passed records for the failing test (no pid, then with pid)
    forged = [{"t": "report", "nodeid": "t.py::b", "when": "call", "outcome": "passed"}]
    res = runner.aggregate_results(honest + forged)
    assert res["tampering"] and res["tests_passed"] == 1
    assert not runner.test_passed({"ok": True}, res)
    res = runner.aggregate_results(honest + [dict(forged[0], pid=7)])
    assert "outside any pytest session" in res["tampering"][0]
    # inside the session: a second call record for the same test
    res = runner.aggregate_results(_session(7, *ok, *bad, dict(bad[1], outcome="passed")))
    assert "second call record" in res["tampering"][0] and res["tests_passed"] == 1
    # a fresh forged session cannot turn the failure into a pass
    res = runner.aggregate_results(honest + _session(7, *[dict(r, outcome="passed") for r in bad]))
    assert res["tampering"] == [] and res["tests_passed"] == 1 and res["failed"] == 1


def test_trickling_response_is_cut_at_the_deadline():
    import socket
    import threading
    import time

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    port = srv.getsockname()[1]

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            c.recv(4096)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n")
            for _ in range(40):
                try:
                    c.sendall(b"x")
                    time.sleep(0.1)
                except OSError:
                    break
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    t0 = time.monotonic()
    res = runner.probe_checks("127.0.0.1", port, [
        {"name": "slow", "path": "/", "expect": {"status": 200, "body": {}}},
        {"name": "never", "path": "/", "expect": {"status": 200}}], 0, time.monotonic() + 1.0,
        "vector")
    assert time.monotonic() - t0 < 2.0
    assert res[0]["passed"] is False and "not complete within" in res[0]["error"]
    assert res[1]["passed"] is False and "not probed" in res[1]["error"]
    srv.close()


def test_tamper_scan():
    from rig.orchestrator import tamper_scan

    files = {
        "conftest.py": (b"import sys, pytest\n"
                        b"@pytest.hookimpl(hookwrapper=True)\n"
                        b"def pytest_runtest_makereport(item, call):\n"
                        b"    outcome = yield\n"
                        b"    rep = outcome.get_result()\n"
                        b"    rep.outcome = 'passed'\n"
                        b"def pytest_sessionfinish(session, exitstatus):\n"
                        b"    session.exitstatus = 0\n"
                        b"def pytest_configure(config):\n"
                        b"    sys.modules.get('_cambrian_rig')\n"),
        "app.py": b"class Game:\n    def end(self):\n        self.outcome = 'win'\n",
        "tests/test_x.py": b"def test_a():\n    r = object()\n    assert r\n",
    }
    found = tamper_scan(files)
    whats = {(f["file"], f["line"], f["what"].split(" inside")[0]) for f in found}
    assert ("conftest.py", 6, "assigns .outcome") in whats
    assert ("conftest.py", 8, "assigns .exitstatus") in whats
    assert any(f["line"] == 10 and "results plugin" in f["what"] for f in found)
    assert not [f for f in found if f["file"] != "conftest.py"]   # app code is left alone
    assert tamper_scan({"conftest.py": b"def pytest_configure(config):\n    config.x = 1\n"}) == []
    # the rewrite moved into a helper the hook calls: still flagged, in a file with hooks only
    helper = (b"import pytest\n"
              b"def _bless(report):\n"
              b"    report.outcome = 'passed'\n"
              b"    report.longrepr = None\n"
              b"class Tally:\n"
              b"    def add(self):\n"
              b"        self.passed = 1\n"
              b"@pytest.hookimpl(hookwrapper=True)\n"
              b"def pytest_runtest_makereport(item, call):\n"
              b"    result = yield\n"
              b"    _bless(result.get_result())\n")
    found = tamper_scan({"conftest.py": helper, "pkg/plugin_free.py": helper.split(b"@pytest")[0]})
    assert {(f["file"], f["line"]) for f in found} == {("conftest.py", 3), ("conftest.py", 4)}
    assert all("file that implements pytest hooks" in f["what"] for f in found)


# --- the one stage sequence and the verdict profiles ------------------------------------


class _Ops:
    """Records what run_sequence asks for; each op answers from ``answers``."""

    def __init__(self, **answers):
        self.calls: list[str] = []
        self.answers = answers

    def __getattr__(self, name):
        def op():
            self.calls.append(name)
            return self.answers.get(name, True)
        return op


@pytest.mark.parametrize("answers, stop, calls", [
    ({}, False, ["build", "test", "smoke", "start_and_probe", "teardown"]),
    ({"build": False}, False, ["build", "gate", "teardown"]),
    ({"test": False}, False, ["build", "test", "gate", "teardown"]),
    ({}, True, ["build", "test", "gate", "teardown"]),
    ({"smoke": False}, False, ["build", "test", "smoke", "gate", "teardown"]),
])
def test_run_sequence_is_the_one_order(answers, stop, calls):
    ops = _Ops(**answers)
    runner.run_sequence(ops, stop_after_test=stop)
    assert ops.calls == calls


def test_original_profile_does_not_enforce_our_stricter_steps(tmp_path):
    from rig.profiles import ORIGINAL

    gate = {"name": "gate", "ok": False, "duration_ms": 1,
            "data": {"errors": [{"file": "a.py", "line": 3, "error": "SyntaxError: x"}]}}
    smoke = {"name": "smoke", "ok": False, "duration_ms": 5, "exit_code": 1,
             "data": {"modules": ["a"], "failures": [{"module": "a", "error": "boom"}]}}
    no_results = {"name": "results", "ok": False, "duration_ms": 1, "data": {"found": False}}
    ours = _assemble(tmp_path / "o", _steps(gate=gate))
    assert ours.failure_stage == "build" and ours.to_wire()["stricter_rules"] == ["syntax_gate"]
    orig = _assemble(tmp_path / "x", _steps(gate=gate, smoke=smoke, results=no_results), profile=ORIGINAL)
    wire = orig.to_wire()
    assert orig.status == "viable", orig.diagnostics
    assert wire["checks"]["build"]["syntax_gate"]["enforced"] is False
    assert wire["checks"]["start"]["smoke"]["enforced"] is False
    assert wire["checks"]["test"]["decided_by"].startswith("exit code")
    assert wire["profile"] == "original" and wire["stricter_rules"] == []


def test_rules_that_decide_later_stages_are_named(tmp_path):
    smoke = {"name": "smoke", "ok": False, "duration_ms": 5, "exit_code": 1,
             "data": {"modules": ["a"], "failures": [{"module": "a", "error": "boom"}]}}
    rep = _assemble(tmp_path / "s", _steps(smoke=smoke)).to_wire()
    assert rep["failure_stage"] == "start" and rep["stricter_rules"] == ["import_smoke"]
    died = {"name": "health", "ok": False, "duration_ms": 9,
            "data": {"endpoint": {"name": "entry.health", "passed": True, "status": 200},
                     "vectors": [{"name": "v", "passed": True, "status": 200}], "contracts": [],
                     "error": "the start process exited with code 1 during the health probes"}}
    rep = _assemble(tmp_path / "d", _steps(health=died)).to_wire()
    assert rep["failure_stage"] == "health" and rep["stricter_rules"] == ["process_alive"]
    # a vector that fails is the artifact's own failure: no rule
    bad = {"name": "health", "ok": False, "duration_ms": 9,
           "data": {"endpoint": {"name": "entry.health", "passed": True, "status": 200},
                    "vectors": [{"name": "v", "passed": False, "status": 500, "error": "x"}],
                    "contracts": []}}
    assert _assemble(tmp_path / "b", _steps(health=bad)).to_wire()["stricter_rules"] == []


def test_a_test_stage_longer_than_the_originals_timeout_is_a_lenient_rule(tmp_path):
    slow = {"name": "test", "ok": True, "exit_code": 0, "duration_ms": 150_000}
    rep = _assemble(tmp_path, _steps(test=slow)).to_wire()
    assert rep["status"] == "viable" and rep["lenient_rules"] == ["test_timeout"]


def test_spec_timeouts_front_matter():
    from rig.vectors import spec_timeouts

    assert spec_timeouts("---\nname: x\nrig-timeouts: {test: 120, build: 300}\n---\n# x\n") == (
        {"test": 120.0, "build": 300.0}, [])
    assert spec_timeouts("# no front matter\n") == ({}, [])
    _, problems = spec_timeouts("---\nrig-timeouts: {tests: 5, build: 0, start: yes}\n---\n")
    assert len(problems) == 3 and "unknown stage 'tests'" in problems[0]


def test_hidden_layers_are_reported_apart_and_never_named_in_diagnostics(tmp_path):
    health = {"name": "health", "ok": False, "duration_ms": 9,
              "data": {"endpoint": {"name": "entry.health", "passed": True, "status": 200},
                       "vectors": [{"name": "v", "passed": True, "status": 200}], "contracts": [],
                       "sealed": [{"name": "sealed-secret-name", "passed": False, "status": 500,
                                   "error": "body['count'] is 0, expected 1"}],
                       "examiner": [{"name": "ex-1", "passed": True, "status": 405}]}}
    from rig.profiles import CAMBRIAN
    from rig.steps import Step

    mo = manifest_stage(make_hello_artifact(tmp_path / "a"))
    ex = Execution(steps={k: Step.from_wire(v) for k, v in _steps(health=health).items()})
    rep, _ = assemble(mo, ex, generation=3, backend="docker", timeouts=CAMBRIAN.timeouts,
                      weaker=False, run_id="r", gate_kinds=("sealed",))
    wire = rep.to_wire()
    assert rep.failure_stage == "health"
    assert wire["checks"]["health"]["sealed"][0]["name"] == "sealed-secret-name"  # kept for people
    assert wire["checks"]["health"]["examiner"][0]["passed"] is True
    diag = json.dumps(wire["diagnostics"])  # what a retry would show the writer
    assert "sealed-secret-name" not in diag and "count" not in diag
    assert "1 sealed check(s) failed (withheld from the writer)" in diag
    # a layer that only scores does not fail the verdict
    ok = _steps(health={**health, "ok": True})
    ex = Execution(steps={k: Step.from_wire(v) for k, v in ok.items()})
    rep, _ = assemble(mo, ex, generation=3, backend="docker", timeouts=CAMBRIAN.timeouts,
                      weaker=False, run_id="r", gate_kinds=())
    assert rep.status == "viable"


def test_health_ok_gates_only_the_named_layers():
    h = {"endpoint": {"passed": True}, "vectors": [{"passed": True}], "contracts": [],
         "sealed": [{"passed": False}], "examiner": [{"passed": True}]}
    assert runner.health_ok(h) is True
    assert runner.health_ok(h, ("examiner",)) is True
    assert runner.health_ok(h, ("sealed",)) is False

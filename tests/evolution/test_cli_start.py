"""`cambrian evolve start` end to end: a real detached process (sim provider, backend none)."""

from __future__ import annotations

import json
import subprocess
import sys

from core.home import REPO_ROOT, db_path
from core.store import Store


def test_evolve_start_wait_json_with_models_and_optimizer(tmp_path):
    home = tmp_path / "home"
    res = subprocess.run(
        [sys.executable, "-m", "cambrian_tui.cli", "--home", str(home), "evolve", "start",
         "--spec", str(REPO_ROOT / "spec" / "echo.md"), "--backend", "none", "--budget-generations", "6",
         "--screen-generations", "2", "--full-generations", "2", "--max-observations", "2",
         "--models", "sim-1, sim-1-pro", "--optimizer", "random", "--seed", "4", "-p", "2", "--wait", "--json"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    st = json.loads(res.stdout)
    assert st["state"] == "completed" and len(st["observations"]) == 2
    assert st["settings"]["models"] == ["sim-1", "sim-1-pro"]
    assert st["settings"]["optimizer"] == "random" and st["settings"]["seed"] == 4
    with Store.open(db_path(home)) as s:
        assert not s.lease_alive(st["id"])  # the process is gone
        assert s.campaign(st["id"])["kind"] == "evolution"


def test_evolve_start_refuses_an_empty_model_list(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "cambrian_tui.cli", "--home", str(tmp_path), "evolve", "start",
         "--spec", str(REPO_ROOT / "spec" / "echo.md"), "--models", " , "],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "at least one model" in res.stderr
    with Store.open(db_path(tmp_path)) as s:
        assert s.campaigns(kind="evolution") == []

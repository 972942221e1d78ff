"""Read-only commands without an id show the newest run; control commands still need one."""

from __future__ import annotations

import json

import pytest

from cambrian_tui.cli import main
from core.engine.launch import create_campaign
from core.evolution.runs import create_run
from core.home import db_path
from core.models import CampaignSettings
from core.store import Store
from tests.evolution.conftest import ECHO


def _campaign(store: Store, cid: str) -> None:
    create_campaign(store, CampaignSettings(spec_hash="sha256:" + "0" * 64, generations=2, provider="sim",
                                            model="sim-1", seed=1, backend="none").model_dump(),
                    ECHO, campaign_id=cid)


def test_status_without_an_id_is_the_newest_campaign(tmp_path, capsys):
    home = tmp_path / "home"
    assert main(["--home", str(home), "campaign", "status"]) == 1
    assert "no campaign yet" in capsys.readouterr().err
    with Store.open(db_path(home)) as s:
        _campaign(s, "c-older")
        _campaign(s, "c-newer")
        # an evolution run is a campaigns row too, of another kind: not "the newest campaign"
        create_run(s, ECHO, run_id="e-run", budget_generations=20, backend="none")
    assert main(["--home", str(home), "campaign", "status", "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["id"] == "c-newer"
    assert "latest campaign: c-newer" in out.err
    assert main(["--home", str(home), "campaign", "status", "c-older", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "c-older"


def test_evolve_status_and_best_default_to_the_newest_run(tmp_path, capsys):
    home = tmp_path / "home"
    assert main(["--home", str(home), "evolve", "best"]) == 1
    assert "no evolution run yet" in capsys.readouterr().err
    with Store.open(db_path(home)) as s:
        create_run(s, ECHO, run_id="e-first", budget_generations=20, backend="none")
        create_run(s, ECHO, run_id="e-second", budget_generations=20, backend="none")
    assert main(["--home", str(home), "evolve", "status", "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["id"] == "e-second" and "latest evolution run: e-second" in out.err
    assert main(["--home", str(home), "evolve", "best", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["run"] == "e-second"


@pytest.mark.parametrize("argv", [["campaign", "abort"], ["campaign", "pause"], ["evolve", "abort"],
                                  ["evolve", "resume"]])
def test_control_commands_still_require_an_id(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(["--home", str(tmp_path), *argv])
    assert exc.value.code == 2
    assert "required: id" in capsys.readouterr().err

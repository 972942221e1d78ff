"""Key bindings as data: every action has an id, people remap keys by id in the settings
file, the help screen and the palette show the keys in effect, and a bad file is refused
with what to fix (the TUI does not start with it)."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import subprocess
import sys

import pytest
from textual.binding import Binding
from textual.widgets import Static

import cambrian_tui
from cambrian_tui.app import CambrianApp
from cambrian_tui.keys import SCOPES, all_keys
from cambrian_tui.screens.help import HelpScreen
from cambrian_tui.settings import SettingsError, TuiSettings, load_settings
from cambrian_tui.widgets.charts import FitnessCharts
from core.home import REPO_ROOT
from tests.tui.conftest import settle

pytestmark = pytest.mark.timeout(120)


def cambrian_classes_with_bindings():
    for mod in pkgutil.walk_packages(cambrian_tui.__path__, "cambrian_tui."):
        module = importlib.import_module(mod.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and "BINDINGS" in cls.__dict__:
                yield cls


def test_every_binding_has_an_id_from_the_catalogue_and_every_id_is_bound():
    known = all_keys()
    used = set()
    for cls in cambrian_classes_with_bindings():
        for b in cls.__dict__["BINDINGS"]:
            assert isinstance(b, Binding) and b.id in known, f"{cls.__name__}: {b}"
            used.add(b.id)
    assert used == set(known), set(known) - used


def test_the_settings_file_is_documented_with_every_id():
    doc = (REPO_ROOT / "docs" / "tui.md").read_text()
    assert "tui.toml" in doc and "[keymap]" in doc
    missing = [k for k in all_keys() if f"`{k}`" not in doc]
    assert missing == []


def test_no_file_means_the_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv("CAMBRIAN_TUI_SETTINGS", raising=False)
    assert load_settings(tmp_path) == TuiSettings()


@pytest.mark.parametrize("text, needle", [
    ('[keymap]\n"main.pauze" = "x"\n', "unknown binding id 'main.pauze'"),
    ('[keymap]\n"main.pause" = "i"\n', "main.inspect and main.pause are both on 'i'"),
    ('[keymap]\n"main.pause" = "q"\n', "app.quit and main.pause are both on 'q'"),
    ('[keymap]\n"main.pause" = "ctrl + p"\n', "not a key list"),
    ('them = "nord"\n', "them: Extra inputs are not permitted"),
    ('poll_interval_s = 0\n', "poll_interval_s"),
    ('[keymap\n', "not valid TOML"),
])
def test_a_bad_settings_file_says_what_to_fix(tmp_path, monkeypatch, text, needle):
    monkeypatch.delenv("CAMBRIAN_TUI_SETTINGS", raising=False)
    (tmp_path / "tui.toml").write_text(text)
    with pytest.raises(SettingsError) as exc:
        load_settings(tmp_path)
    assert needle in str(exc.value) and str(tmp_path / "tui.toml") in str(exc.value)


def test_the_tui_does_not_start_with_a_bad_settings_file(tmp_path):
    (tmp_path / "tui.toml").write_text('[keymap]\n"app.qiut" = "ctrl+q"\n')
    res = subprocess.run([sys.executable, "-m", "cambrian_tui.cli", "--home", str(tmp_path), "tui"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert res.returncode == 2 and "unknown binding id 'app.qiut'" in res.stderr
    assert "did you mean app.quit" in res.stderr


def test_cambrian_keys_lists_ids_with_the_keys_in_effect(tmp_path):
    (tmp_path / "tui.toml").write_text('[keymap]\n"main.pause" = "P"\n')
    res = subprocess.run([sys.executable, "-m", "cambrian_tui.cli", "--home", str(tmp_path), "keys", "--json"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    rows = {r["id"]: r for r in json.loads(res.stdout)["bindings"]}
    assert set(rows) == set(all_keys())
    assert (rows["main.pause"]["default"], rows["main.pause"]["keys"]) == ("p", "P")


async def test_remapped_keys_work_and_help_shows_them(seeded, empty_spec_dir):
    home, _ = seeded
    settings = TuiSettings(keymap={"app.help": "f9", "main.chart": "v"})
    app = CambrianApp(home, live=False, spec_dir=empty_spec_dir, theme="textual-dark", show_home=False,
                      settings=settings)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        charts = app.screen.query_one(FitnessCharts)
        before = charts.query_one("#chart-tabs").active
        await pilot.press("c")  # the default key is gone
        await settle(pilot, 1)
        assert charts.query_one("#chart-tabs").active == before
        await pilot.press("v")
        await settle(pilot, 1)
        assert charts.query_one("#chart-tabs").active != before
        await pilot.press("f1")
        await settle(pilot, 1)
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f9")
        await settle(pilot, 1)
        assert isinstance(app.screen, HelpScreen)
        lines = app.screen.query(".help-line")
        shown = {str(line.query_one(".help-row", Static).render()): str(line.query_one(".help-keys", Static).render())
                 for line in lines}
        assert shown["Every key on this screen"] == app.get_key_display(Binding("f9", "help"))
        assert shown["Next fitness chart"] == "v"
        assert shown["Pause the selected campaign"] == "p"  # the others keep their defaults
        foot = str(app.screen.query_one("#help-foot", Static).render())
        assert "tui.toml" in foot


def test_scopes_cover_screens_and_modal_reuse_is_allowed():
    from cambrian_tui.settings import keymap_clashes

    assert keymap_clashes({}) == []  # the defaults never clash
    assert set(SCOPES) >= {"app", "main", "spec", "amendments", "evolution", "inspector", "form"}

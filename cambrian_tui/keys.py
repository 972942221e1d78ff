"""Every key binding of the TUI, as data: one id per action.

Screens and widgets take their ``BINDINGS`` from here (``bindings(scope)``); people remap
keys by id in the settings file (``cambrian_tui.settings``, documented in docs/tui.md), and
the help screen and the command palette show the keys in effect. An id is
``<scope>.<action>``; its key string is Textual's (``ctrl+r``, ``f1``, ``question_mark``;
several keys separated by commas).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    id: str
    keys: str  # default keys
    action: str
    label: str  # the footer's word
    help: str  # the help screen's and the palette's sentence
    show: bool = True
    key_display: str | None = None
    priority: bool = False
    group: str | None = None


def _k(id: str, keys: str, action: str, label: str, help: str = "", **kw) -> Key:
    return Key(id, keys, action, label, help or label, **kw)


# scope -> its keys, in footer order. Scopes: one per screen or widget class.
SCOPES: dict[str, tuple[Key, ...]] = {
    "app": (
        _k("app.help", "f1,question_mark", "help", "Help", "Every key on this screen", key_display="F1/?"),
        _k("app.quit", "q", "quit", "Quit", "Quit the TUI (campaigns keep running)"),
        _k("app.palette", "ctrl+p", "command_palette", "Palette", "Command palette: every action"),
        _k("app.theme", "ctrl+t", "change_theme", "Theme", "Pick a theme", show=False),
        _k("app.new_campaign", "ctrl+n", "new_campaign", "New campaign", "Start a new campaign", show=False),
        _k("app.search", "ctrl+f", "search", "Search", "Search everything", show=False),
        _k("app.redraw", "ctrl+l", "redraw", "Redraw", "Redraw the whole screen", show=False),
        _k("app.mode.main", "f2", "switch_mode('main')", "Campaigns", "Campaigns screen", show=False),
        _k("app.mode.spec", "f3", "switch_mode('spec')", "Specs", "Specs screen", show=False),
        _k("app.mode.amendments", "f4", "switch_mode('amendments')", "Amendments", "Amendments screen",
           show=False),
        _k("app.mode.evolution", "f5", "switch_mode('evolution')", "Evolution", "Evolution screen", show=False),
        _k("app.mode.hosts", "f6", "switch_mode('hosts')", "Hosts", "Rig hosts screen", show=False),
    ),
    "main": (
        _k("main.new", "n", "new_campaign", "New", "Start a new campaign (detached engine)"),
        _k("main.inspect", "i", "inspect", "Inspect", "Open the generation inspector"),
        _k("main.pause", "p", "pause", "Pause", "Pause the selected campaign"),
        _k("main.resume", "r", "resume", "Resume", "Resume the selected campaign"),
        _k("main.abort", "a", "abort", "Abort", "Abort the selected campaign"),
        _k("main.live", "l", "live", "Live", "Follow the running generation's log again"),
        _k("main.follow", "f", "toggle_follow", "Tail", "Stick to the end of the log / hold still"),
        _k("main.prev_failed", "left_square_bracket", "prev_failed", "Prev failed", "Previous failed generation",
           group="Fail"),
        _k("main.next_failed", "right_square_bracket", "next_failed", "Next failed", "Next failed generation",
           group="Fail"),
        _k("main.goto", "g", "goto", "Go #", "Jump to generation N"),
        _k("main.search", "slash", "search", "Search", "Search generations, campaigns, specs"),
        _k("main.chart", "c", "cycle_chart", "Chart", "Next fitness chart"),
        _k("main.distill", "D", "distill", "Distill",
           "Distill the selected campaign: propose spec amendments (review on F4)", show=False),
        _k("main.specs", "s", "app.switch_mode('spec')", "Specs", "Spec versions and diffs", show=False),
        _k("main.refresh", "ctrl+r", "refresh", "Refresh", "Reload everything now", show=False),
        _k("main.focus_campaigns", "1", "focus('campaigns')", "Campaigns", "Focus the campaign list", show=False),
        _k("main.focus_tree", "2", "focus('gen-tree')", "Tree", "Focus the generation tree", show=False),
        _k("main.focus_log", "3", "focus('log')", "Log", "Focus the rig log", show=False),
    ),
    "tree": (
        _k("tree.expand", "right", "expand", "Expand", "Expand a node / go to its first child", show=False),
        _k("tree.collapse", "left", "collapse", "Collapse", "Collapse a node / go to its parent", show=False),
        _k("tree.first", "home", "scroll_home", "First", "First generation", show=False),
        _k("tree.last", "end", "scroll_end", "Last", "Last generation", show=False),
    ),
    "inspector": (
        _k("inspector.back", "escape", "back", "Back", "Back to the campaigns"),
        _k("inspector.next_failed", "n", "next_failed", "Next failed gen", "Next failed generation"),
        _k("inspector.prev_failed", "p", "prev_failed", "Prev failed gen", "Previous failed generation"),
        _k("inspector.next_stage", "s", "next_failed_stage", "Next failed stage", "Next failed check in the report"),
        _k("inspector.parent", "u", "parent", "Parent gen", "Open the parent generation"),
        _k("inspector.open", "o", "open_location", "Open file", "Open the failure's file at its line"),
        _k("inspector.tab.report", "1", "tab('report')", "Report", "Report tab", show=False),
        _k("inspector.tab.output", "2", "tab('output')", "Output", "Output tab (stdout / stderr)", show=False),
        _k("inspector.tab.files", "3", "tab('files')", "Files", "Files tab", show=False),
        _k("inspector.tab.diff", "4", "tab('diff')", "Diff", "Diff against the parent", show=False),
        _k("inspector.tab.log", "5", "tab('log')", "Log", "Rig log tab", show=False),
        _k("inspector.tab.llm", "6", "tab('llm')", "LLM calls", "LLM calls tab", show=False),
        _k("inspector.tab.repro", "7", "tab('repro')", "Reproduction", "Reproduction tab (fertility test)",
           show=False),
        _k("inspector.bred", "b", "open_bred", "Bred gen", "Open the generation this offspring bred",
           show=False),
        _k("inspector.tab.layers", "8", "tab('layers')", "Layers",
           "Layers tab (sealed vectors, examiner and red-team probes)", show=False),
        _k("inspector.dismiss", "d", "dismiss_probe", "Dismiss probe",
           "Dismiss the highlighted examiner probe as wrong (Layers tab; asks for a reason)", show=False),
    ),
    "spec": (
        _k("spec.back", "escape", "app.switch_mode('main')", "Back", "Back to the campaigns"),
        _k("spec.set_a", "a", "mark('a')", "Set A", "Use the highlighted version as A (left)"),
        _k("spec.set_b", "b", "mark('b')", "Set B", "Use the highlighted version as B (right)"),
        _k("spec.diff_parent", "enter", "diff_parent", "Diff vs parent",
           "Diff the highlighted version against its parent", show=False),
        _k("spec.swap", "x", "swap", "Swap", "Swap A and B"),
        _k("spec.next", "n", "next_change", "Next chg", "Next change"),
        _k("spec.prev", "p", "prev_change", "Prev chg", "Previous change"),
        _k("spec.fold", "c", "fold", "Fold", "Fold unchanged lines / show everything"),
        _k("spec.zoom", "z", "zoom", "Zoom", "Hide / show the version list (full-width diff)"),
        _k("spec.refresh", "ctrl+r", "refresh", "Refresh", "Reload the versions now", show=False),
    ),
    "diff": (
        _k("diff.next", "n", "next_hunk", "Next change", "Scroll to the next change"),
        _k("diff.prev", "p", "prev_hunk", "Prev change", "Scroll to the previous change"),
        _k("diff.fold", "c", "toggle_context", "Fold", "Fold unchanged lines / show everything"),
    ),
    "amendments": (
        _k("amendments.back", "escape", "back", "Back", "Back to the campaigns"),
        _k("amendments.accept", "a", "review('accept')", "Accept", "Accept the amendment (a new spec version)"),
        _k("amendments.reject", "r", "review('reject')", "Reject", "Reject the amendment"),
        _k("amendments.edit", "e", "edit", "Edit", "Edit the amendment text before accepting"),
        _k("amendments.confirm", "c", "confirm", "Confirm",
           "Run a confirmation campaign of the accepted amendment (same settings and seed schedule)"),
        _k("amendments.diff", "d", "toggle_diff", "Diff", "Show / hide the preview of the resulting spec diff"),
        _k("amendments.filter", "f", "cycle_filter", "Filter", "Cycle the status filter (all, pending, accepted, …)"),
        _k("amendments.refresh", "ctrl+r", "refresh", "Refresh", "Reload now", show=False),
    ),
    "amendment_editor": (
        _k("amendment_editor.save", "ctrl+s", "save", "Keep edit", "Keep the edited text (accept it next)",
           priority=True),
        _k("amendment_editor.cancel", "escape", "cancel", "Cancel", "Close the editor without keeping the edit",
           priority=True),
    ),
    "hosts": (
        _k("hosts.back", "escape", "app.switch_mode('main')", "Back", "Back to the campaigns"),
        _k("hosts.check", "c", "check", "Check", "Check the highlighted host: preflight, image, calibration "
           "(a pass undrains it)"),
        _k("hosts.add", "a", "add", "Add", "Add a rig host (local, or ssh://user@host)"),
        _k("hosts.remove", "x", "remove", "Remove", "Forget the highlighted rig host"),
    ),
    "evolution": (
        _k("evolution.back", "escape", "app.switch_mode('main')", "Back", "Back to the campaigns"),
        _k("evolution.new", "n", "new_run", "New", "Start a new evolution run (detached process)"),
        _k("evolution.open_campaign", "enter", "open_campaign", "Campaign",
           "Show the observation's campaign (full, else screening)"),
        _k("evolution.open_screen", "s", "open_screen", "Screening", "Show the observation's screening campaign"),
        _k("evolution.diff", "d", "toggle_diff", "Diff", "Spec diff of the observation against its parent"),
        _k("evolution.open_spec", "o", "open_spec", "In Specs", "Open the observation's spec in the Specs screen"),
        _k("evolution.export", "x", "export_best", "Export best",
           "Write the run's best spec and its metadata to HOME/exports/"),
        _k("evolution.pause", "p", "control('pause')", "Pause", "Pause the selected run"),
        _k("evolution.resume", "r", "control('resume')", "Resume", "Resume the selected run"),
        _k("evolution.abort", "a", "control('abort')", "Abort", "Abort the selected run"),
        _k("evolution.focus_runs", "1", "focus('evo-runs')", "Runs", "Focus the run list", show=False),
        _k("evolution.focus_obs", "2", "focus('evo-obs')", "Observations", "Focus the observations", show=False),
        _k("evolution.focus_diff", "3", "focus('evo-diff')", "Diff", "Focus the spec diff", show=False),
        _k("evolution.refresh", "ctrl+r", "refresh", "Refresh", "Reload now", show=False),
    ),
    "form": (
        _k("form.start", "ctrl+s", "start", "Start", "Start it (the process runs detached)"),
        _k("form.cancel", "escape", "cancel", "Cancel", "Close the form; nothing is started"),
        _k("form.test_connection", "ctrl+t", "test_connection", "Test connection",
           "Reach the model server: its models, context window and price"),
    ),
    "confirm": (
        _k("confirm.yes", "y", "answer(True)", "Yes", "Yes"),
        _k("confirm.no", "n,escape", "answer(False)", "No", "No"),
    ),
    "jump": (_k("jump.cancel", "escape", "cancel", "Cancel", "Close without jumping"),),
    "search": (
        _k("search.cancel", "escape", "cancel", "Cancel", "Close the search"),
        _k("search.results", "down", "focus_results", "Results", "Move to the results", show=False),
    ),
    "help": (_k("help.close", "escape,q,f1,question_mark", "close", "Close help", "Close help"),),
}

# Scopes of modal screens: they may reuse the app's keys on purpose (F1 closes help).
MODAL_SCOPES = frozenset({"help", "confirm", "jump", "search", "form", "amendment_editor"})

# The footer shows these first, whatever the screen (a narrow terminal cuts the end).
FOOTER_FIRST = ("app.help", "app.quit")


@lru_cache(maxsize=None)
def all_keys() -> dict[str, Key]:
    out: dict[str, Key] = {}
    for scope, keys in SCOPES.items():
        for k in keys:
            assert k.id.startswith(scope + "."), k.id
            assert k.id not in out, k.id
            out[k.id] = k
    return out


_GROUPS: dict[str, Binding.Group] = {}


def bindings(scope: str) -> list[Binding]:
    """Textual bindings of a scope, each carrying its id (the keymap overrides by id)."""
    out = []
    for k in SCOPES[scope]:
        group = _GROUPS.setdefault(k.group, Binding.Group(k.group)) if k.group else None
        out.append(Binding(k.keys, k.action, k.label, show=k.show, key_display=k.key_display,
                           priority=k.priority, tooltip=k.help, id=k.id, group=group))
    return out


def effective(key_id: str, keymap: dict[str, str]) -> str:
    """The keys of an id once the user's keymap is applied."""
    return keymap.get(key_id) or all_keys()[key_id].keys


def display(keys: str, app=None) -> str:
    """"f1,question_mark" -> "F1 ?" (Textual's own key display when an app is given)."""
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    if app is not None:
        return " ".join(app.get_key_display(Binding(k, "noop")) for k in parts)
    return " ".join(parts)

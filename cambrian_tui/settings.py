"""The TUI's settings: one typed object, read from a TOML file (docs/tui.md, "Settings").

The file is ``HOME/tui.toml`` (``CAMBRIAN_TUI_SETTINGS`` names another). Everything is
optional; an unknown setting, an unknown binding id or two actions of one screen on the
same key is an error that names the line to fix, and the TUI does not start with it (the
file is never rewritten; the theme picked with ctrl+t is remembered in ``HOME/tui.json``).

    theme = "gruvbox"          # any Textual theme name
    poll_interval_s = 0.3      # how often the store is checked for changes
    [keymap]                   # binding id = keys (Textual names, comma-separated)
    "app.quit" = "ctrl+q"
    "main.pause" = "P"
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import unicodedata
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cambrian_tui.keys import SCOPES, MODAL_SCOPES, all_keys

SETTINGS_FILE = "tui.toml"
ENV = "CAMBRIAN_TUI_SETTINGS"
_KEY_TOKEN = re.compile(r"^[A-Za-z0-9_+\-]+$|^.$")


class SettingsError(ValueError):
    pass


def normalize_keys(keys: str) -> str:
    """Textual's long names for one-character keys ("?" -> "question_mark"), no spaces."""
    out = []
    for k in (k.strip() for k in keys.split(",")):
        if len(k) == 1 and not k.isalnum():
            try:
                k = unicodedata.name(k).lower().replace("-", "_").replace(" ", "_")
            except ValueError:
                pass
        out.append(k)
    return ",".join(out)


class TuiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    theme: str | None = None
    poll_interval_s: float = Field(default=0.3, ge=0.05, le=10.0)
    keymap: dict[str, str] = Field(default_factory=dict)

    @field_validator("keymap")
    @classmethod
    def _known_ids(cls, keymap: dict[str, str]) -> dict[str, str]:
        known = all_keys()
        out = {}
        for key_id, keys in keymap.items():
            if key_id not in known:
                close = difflib.get_close_matches(key_id, list(known), n=3, cutoff=0.7)
                hint = f" (did you mean {', '.join(close)}?)" if close else " (`cambrian keys` lists them)"
                raise ValueError(f"unknown binding id {key_id!r}{hint}")
            tokens = [t.strip() for t in str(keys).split(",")]
            if not tokens or any(not t or not _KEY_TOKEN.match(t) for t in tokens):
                raise ValueError(f"{key_id}: not a key list: {keys!r} (e.g. \"ctrl+q\" or \"p,P\")")
            out[key_id] = normalize_keys(str(keys))
        clashes = keymap_clashes(out)
        if clashes:
            raise ValueError("; ".join(clashes))
        return out


def keymap_clashes(keymap: dict[str, str]) -> list[str]:
    """Two actions of one scope (screen or widget) on the same key, after the keymap."""
    out = []
    app_keys = SCOPES["app"]
    for scope, keys in SCOPES.items():
        owner: dict[str, str] = {}
        # a screen's key shadows the app's: remapping onto one is a clash too
        for k in (keys if scope == "app" or scope in MODAL_SCOPES else app_keys + keys):
            for key in (keymap.get(k.id) or normalize_keys(k.keys)).split(","):
                other = owner.get(key)
                if other is not None and other != k.id and (k.id in keymap or other in keymap):
                    out.append(f"{other} and {k.id} are both on {key!r} ({scope})")
                owner.setdefault(key, k.id)
    return out


def settings_path(home: Path) -> Path:
    env = os.environ.get(ENV)
    return Path(env).expanduser() if env else Path(home) / SETTINGS_FILE


def load_settings(home: Path) -> TuiSettings:
    """The settings in effect (defaults when there is no file); SettingsError when the file
    cannot be used, with its path and what to change."""
    path = settings_path(home)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if os.environ.get(ENV):
            raise SettingsError(f"{path}: no such file ({ENV} names it)") from None
        return TuiSettings()
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read: {exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    try:
        return TuiSettings.model_validate(data)
    except ValidationError as exc:
        msgs = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err.get("loc", ()))
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            msgs.append(f"{loc}: {msg}" if loc else msg)
        raise SettingsError(f"{path}: " + "; ".join(msgs)) from None

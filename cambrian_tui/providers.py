"""Command palette providers (ctrl+p): every action of the current screen, the modes,
"jump to generation N", campaigns and spec versions."""

from __future__ import annotations

import asyncio
import re
from functools import partial

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from cambrian_tui.nav import ShowCampaign, ShowGeneration, ShowSpec

_NUM = re.compile(r"^\s*(?:#|gen(?:eration)?\s*|g\s*)?(\d+)\s*$", re.IGNORECASE)


def _actions(provider: Provider) -> list[tuple[str, str, object, str]]:
    """(title, keys in effect, node, action) of the current screen's, its widgets' and the
    app's bindings (``cambrian_tui.keys``, after the settings' keymap)."""
    from cambrian_tui.screens.help import own_bindings

    app = provider.app
    screen = provider.screen
    keymap = getattr(getattr(app, "settings", None), "keymap", {}) or {}
    out: list[tuple[str, str, object, str]] = []
    seen: set[str] = set()
    nodes = [screen] + [w for w in screen.walk_children() if own_bindings(w)] + [app]
    for node in nodes:
        for b in own_bindings(node):
            if not b.description or b.action == "command_palette":
                continue
            ident = f"{b.description}|{b.action}"
            if ident in seen:
                continue
            seen.add(ident)
            keys = (keymap.get(b.id) if b.id else None) or b.key
            shown = " ".join(app.get_key_display(Binding(k.strip(), b.action)) for k in keys.split(","))
            out.append((b.description, shown, node, b.action))
    return out


class CambrianCommands(Provider):
    """Actions of the screen you are on (with their keys) and the top-level screens."""

    async def _run(self, node, action: str) -> None:
        await self.app.run_action(action, node)

    def _entries(self):
        from cambrian_tui.screens import MODE_REGISTRY

        for title, key, node, action in _actions(self):
            yield f"{title}", f"key {key}", partial(self._run, node, action)
        for spec in MODE_REGISTRY.values():
            yield (f"Show {spec.title} screen", f"key {spec.key} · {spec.description}",
                   partial(self.app.switch_mode, spec.name))

    async def discover(self) -> Hits:
        for text, help_text, command in self._entries():
            yield DiscoveryHit(text, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help_text, command in self._entries():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), command, text=text, help=help_text)


class JumpCommands(Provider):
    """"Jump to generation N", campaigns and spec versions by name (read afresh each time
    the palette opens, so what was stored a moment ago is there)."""

    async def startup(self) -> None:
        cam = getattr(self.app, "cam", None)
        self._campaigns = []
        self._specs = []
        if cam is None:
            return
        try:
            self._campaigns = await asyncio.to_thread(cam.reads.campaigns)
            self._specs = await asyncio.to_thread(cam.reads.spec_versions)
        except Exception:
            pass

    async def search(self, query: str) -> Hits:
        app = self.app
        m = _NUM.match(query)
        if m:
            n = int(m.group(1))
            text = f"Jump to generation {n}"
            yield Hit(1.0, text, partial(app.navigate, ShowGeneration(n)), text=text,  # type: ignore[attr-defined]
                      help="select it in the generation tree")
        matcher = self.matcher(query)
        for c in self._campaigns:
            text = f"Campaign {c.id}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text),
                          partial(app.navigate, ShowCampaign(c.id)),  # type: ignore[attr-defined]
                          text=text, help=f"{c.state} · {c.progress} · {c.provider}")
        for v in self._specs:
            text = f"Spec {v.title}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(score * 0.9, matcher.highlight(text),
                          partial(app.navigate, ShowSpec(v.hash)),  # type: ignore[attr-defined]
                          text=text, help=f"{v.origin} · {v.hash[:19]}")

    async def discover(self) -> Hits:
        yield DiscoveryHit("Jump to generation N (type a number)", lambda: None,
                           help="type e.g. 1234 or #1234")

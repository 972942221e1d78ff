"""Screens, and the registry of top-level modes.

A *mode* is a top-level screen with its own stack (Textual modes): ``main`` and ``spec``
ship here; the amendments (distiller) and evolution screens register themselves the
same way::

    from cambrian_tui.screens import ModeSpec, register_mode
    register_mode(ModeSpec("amendments", "Amendments", "f4", "cambrian_tui.screens.amendments:AmendmentsScreen"))

The factory is a ``"module:Class"`` string (imported when the mode is first shown, so
start-up stays fast) or a callable returning a ``Screen``. ``CambrianApp`` binds the key
and lists the mode in help and the command palette.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from textual.screen import Screen


@dataclass(frozen=True)
class ModeSpec:
    name: str
    title: str
    key: str
    factory: str | Callable[[], Screen]
    description: str = ""

    def make(self) -> Screen:
        if callable(self.factory):
            return self.factory()
        module, _, cls = self.factory.partition(":")
        return getattr(importlib.import_module(module), cls)()


MODE_REGISTRY: dict[str, ModeSpec] = {}


def register_mode(spec: ModeSpec) -> None:
    MODE_REGISTRY[spec.name] = spec


register_mode(ModeSpec("main", "Campaigns", "f2", "cambrian_tui.screens.main:MainScreen",
                       "campaigns, generation tree, live log, fitness charts"))
register_mode(ModeSpec("spec", "Specs", "f3", "cambrian_tui.screens.spec:SpecScreen",
                       "spec versions, lineage and side-by-side diff"))
register_mode(ModeSpec("amendments", "Amendments", "f4", "cambrian_tui.screens.amendments:AmendmentsScreen",
                       "distiller amendments: evidence, diff preview, accept / edit / reject"))
register_mode(ModeSpec("evolution", "Evolution", "f5", "cambrian_tui.screens.evolution:EvolutionScreen",
                       "evolution runs: observations, best so far, operators, spec diffs"))
register_mode(ModeSpec("hosts", "Hosts", "f6", "cambrian_tui.screens.hosts:HostsScreen",
                       "rig hosts: slots, state (drained and why), engine facts; add, check, remove"))

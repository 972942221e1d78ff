"""The application layer (DESIGN §4): what the TUI and the headless CLI both call.

- ``service.Cambrian``: one home; ``.reads`` (``reads.Reader``: typed read models from
  ``models``) and ``.run(command)`` (typed commands from ``commands``, one handler each);
- ``changes``: the change signal (which topics moved) that every screen watches;
- ``forms`` and ``providers``: what the start forms ask, as data, with strict parsing;
- ``specs``: the spec chooser's entries (shipped, stored, files failing ``spec check``);
- ``lineage``, ``reports``, ``specdoc``, ``fmt``: pure builders the views share.

Nothing here imports Textual; nothing outside ``core`` writes SQL.
"""

from core.app.service import Cambrian

__all__ = ["Cambrian"]

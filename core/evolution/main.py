"""The evolution process: ``python -m core.evolution.main --home HOME RUN_ID``.

Started detached (own session) by ``cambrian evolve start|resume``; holds the run's lease
with a heartbeat, runs the run's campaigns in-process, and exits when the run completes,
stops, is aborted or crashes. Starting it again on the same run resumes it exactly.
"""

from __future__ import annotations

import argparse
import sys

from core.quiet import silence_library_deprecations
from core.home import cambrian_home


def main(argv: list[str] | None = None) -> int:
    silence_library_deprecations()
    ap = argparse.ArgumentParser(prog="cambrian-evolution")
    ap.add_argument("--home")
    ap.add_argument("run_id")
    args = ap.parse_args(argv)
    home = cambrian_home(args.home)
    from core.evolution.loop import run_evolution

    try:
        state = run_evolution(home, args.run_id)
    except Exception as exc:  # noqa: BLE001
        print(f"evolution: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"evolution: run {args.run_id} {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

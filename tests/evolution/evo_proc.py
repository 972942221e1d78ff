"""``python -m tests.evolution.evo_proc --home H RUN``: the evolution process entry with the
draw-keyed sim wrapper (see ``conftest.DrawKeyedSim``) for its campaigns and rewrites."""

from __future__ import annotations

import argparse
import sys

from core.evolution.loop import run_evolution
from core.home import cambrian_home
from tests.evolution.conftest import DrawKeyedSim, draw_keyed_factory


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home")
    ap.add_argument("run_id")
    args = ap.parse_args(argv)
    state = run_evolution(cambrian_home(args.home), args.run_id,
                          runner_kw={"provider_factory": draw_keyed_factory},
                          mutation_provider_factory=DrawKeyedSim)
    print(f"evolution: run {args.run_id} {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What reproduction finds and what it costs, from two finished campaigns in one home.

    .venv/bin/python bench/reproduction_cost.py --home DIR ON_CAMPAIGN [OFF_CAMPAIGN]

ON_CAMPAIGN ran with ``--reproduce every``; OFF_CAMPAIGN (optional) is the same spec,
settings and seed with reproduction off — with the sim, the same seed draws the same
generation in each slot, so the two are paired by draw. Prints viability, fertility with
its interval, every breeder's verdict (for sim campaigns, the breeding defects its files
show), and the rig time: the breeder's own run (its reproduce step included), the
grand-offspring's judging, and the paired difference against the run without. Prints
figures only; never passes or fails.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.engine.summary import campaign_summary, fertility  # noqa: E402
from core.home import db_path  # noqa: E402
from core.store import Store  # noqa: E402


def draws(store: Store, cid: str) -> dict[int, int]:
    return {n: d for n, d in store.conn.execute(
        "SELECT number, draw FROM generations WHERE campaign_id=?", (cid,))}


def total_ms(store: Store, n: int) -> int | None:
    runs = store.rig_runs(n)
    return runs[-1].total_ms if runs else None


def breeding_defects(store: Store, gen) -> str:
    """The sim's breeding defects as the breeder's files show them ('' for other providers)."""
    try:
        from core.llm.sim.retry import RetryContext, detect_breeding
        from core.llm.sim.specinfo import parse_spec_text
    except ImportError:  # pragma: no cover
        return ""
    files = {p: b.decode("utf-8", "replace") for p, b in store.artifact_files(gen.artifact_hash or "").items()}
    spec = next((t for p, t in files.items() if p.startswith("spec/") and p.endswith(".md")), "")
    if not spec:
        return ""
    seen = detect_breeding(parse_spec_text(spec), RetryContext(None, 1, "", "", files=files))
    return ", ".join(sorted(k for k, v in seen.items() if v)) or "none"


def med(xs: list[int]) -> str:
    return f"{statistics.median(xs) / 1000:.1f} s" if xs else "-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", required=True)
    ap.add_argument("on")
    ap.add_argument("off", nargs="?")
    a = ap.parse_args()
    with Store.open(db_path(Path(a.home))) as s:
        summ = campaign_summary(s, a.on)
        lo, hi = summ["viability_interval"]
        print(f"campaign {a.on}: viable {summ['viable']}/{summ['generations']} = "
              f"{summ['viability_rate']:.0%} [{lo:.0%}, {hi:.0%}]")
        f = fertility(s, a.on)
        if f is None:
            print("no reproduction test")
            return 0
        flo, fhi = f["interval"]
        rate = "-" if f["rate"] is None else f"{f['rate']:.0%}"
        print(f"fertility: {f['fertile']}/{f['tested']} = {rate} [{flo:.0%}, {fhi:.0%}]; bred {f['bred']}, "
              f"errors {f['errors']}; infertile stages {f['infertile_stages']}; gateway tokens {f['tokens']}")
        print("\nbreeder  draw  verdict     stage                 breeding defects in its files   reason")
        d_on = draws(s, a.on)
        gens = {g.number: g for g in s.generations(a.on)}
        repro_ms, bred_ms, breeder_ms = [], [], []
        for r in s.reproductions(a.on):
            g = gens[r["generation"]]
            print(f"{g.number:>7}  {d_on.get(g.number, '-'):>4}  {r['status']:<10}  {str(r['stage'] or '-'):<20}  "
                  f"{breeding_defects(s, g):<30}  {(r['reason'] or '')[:90]}")
            run = s.rig_runs(g.number)[-1]
            breeder_ms.append(run.total_ms or 0)
            # the step's own time (recorded by the rig since this script exists); older runs:
            # the POST's duration as the runner measured it
            step = (run.stage_ms or {}).get("reproduce") or (r["request"] or {}).get("ms")
            if step:
                repro_ms.append(step)
            if r["offspring"] is not None:
                t = total_ms(s, r["offspring"])
                if t is not None:
                    bred_ms.append(t)
        print(f"\nrig time, median: breeder's run {med(breeder_ms)} (its reproduce step {med(repro_ms)}); "
              f"grand-offspring's judging {med(bred_ms)} (n={len(bred_ms)})")
        if a.off:
            d_off = {d: n for n, d in draws(s, a.off).items()}
            pairs = []
            for g in gens.values():
                if s.reproduction(g.number) is None:
                    continue
                twin = d_off.get(d_on.get(g.number))
                if twin is None or s.generation(twin).outcome.value != "promoted":
                    continue
                on_ms, off_ms = total_ms(s, g.number), total_ms(s, twin)
                if on_ms and off_ms:
                    pairs.append((on_ms, off_ms))
            if pairs:
                on = [p[0] for p in pairs]
                off = [p[1] for p in pairs]
                diff = [x - y for x, y in pairs]
                extra = statistics.median(diff) + (statistics.median(bred_ms) if bred_ms else 0)
                print(f"paired by draw ({len(pairs)} promoted generations, same verdict without reproduction): "
                      f"rig run {med(on)} with vs {med(off)} without (+{med(diff)}); with the grand-offspring's "
                      f"judging, reproduction adds about {extra / 1000:.1f} s per bred generation "
                      f"(x{(statistics.median(off) + extra) / statistics.median(off):.1f} its rig time)")
            offs = campaign_summary(s, a.off)
            print(f"without reproduction ({a.off}): viable {offs['viable']}/{offs['generations']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

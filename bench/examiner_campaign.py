"""The dual-blind examiner (Layer 2) on offline sim campaigns, through the real Docker rig.

    CAMBRIAN_HOME=$(mktemp -d) .venv/bin/python bench/examiner_campaign.py [-n 8] [-p 2]
        [--spec spec/echo.md --spec spec/prime.md] [--seed 0] [--examiner score]

For each spec: one campaign (sim provider, model sim-1) in a fresh private home with the
examiner on, then a second short campaign of the same spec in the same home (reuse: the
ledger must show one ``examine`` call for both). Prints, per spec: Layer-1 viability (the
campaign's own verdicts, the examiner only scoring) vs viability had the examiner gated
(viable and failing no probe), the examiner pass rate, the suspect probes, the examine call's
tokens per judged generation, and the rig time the examiner probes added per generation (the
sum of their request times in the health stage). Figures only; nothing passes or fails here.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from core.app import Cambrian
from core.home import REPO_ROOT, db_path
from core.store import Store

from campaign_figures import campaign_parser, per, tokens, two_campaigns


def one(spec_path: Path, n: int, p: int, seed: int, mode: str) -> dict:
    home, cids, wall = two_campaigns(spec_path, n, p, seed, "cambrian-examiner-", examiner=mode)
    with Store.open(db_path(home)) as s, Cambrian(home) as app:
        summ = app.reads.campaign_status(cids[0])["summary"]
        ex = summ["examiner"]
        examine = [c for cid in cids for c in s.llm_calls(campaign_id=cid) if c.purpose == "examine"]
        gens = [g for g in s.generations(cids[0]) if g.status is not None]
        extra_ms, health_ms = [], []
        for g in gens:
            rep = s.report(g.number) or {}
            h = (rep.get("checks") or {}).get("health") or {}
            if h.get("examiner"):
                extra_ms.append(sum(r.get("ms") or 0 for r in h["examiner"]))
                health_ms.append(h.get("duration_ms") or 0)
        writer = tokens(c for c in s.llm_calls(campaign_id=cids[0]) if c.purpose != "examine")
        show = app.reads.examiner_probes(s.campaign(cids[0])["spec_hash"])
    return {
        "spec": spec_path.name, "home": str(home), "campaigns": cids, "wall_s": round(wall, 1),
        "judged": ex["judged"], "ran_examiner": ex["generations"], "viability_layer1": summ["viability_rate"],
        "viable": ex["viable"], "viable_if_gated": ex["viable_all_passed"],
        "viability_if_gated": ex["viability_if_gated"], "examiner_pass_rate": summ["examiner_pass_rate"],
        "passed_total": [ex["passed"], ex["total"]], "probes": ex["probes"],
        "suspects": [(p["name"], p["failed"], p["ran"], p["expect_status"]) for p in ex["suspects"]],
        "probe_failures": [(p["name"], p["failed"], p["ran"]) for p in show["sets"][0]["probes"]],
        "examine_calls_in_both_campaigns": len(examine),
        "examine_tokens": tokens(examine),
        "examine_tokens_per_judged_generation": per(tokens(examine), ex["generations"], 1),
        "writer_tokens_per_generation": per(writer, len(gens), 1),
        "examiner_rig_ms_per_generation_median": statistics.median(extra_ms) if extra_ms else None,
        "health_ms_median": statistics.median(health_ms) if health_ms else None,
    }


def main() -> None:
    ap = campaign_parser(__doc__, generations=8)
    ap.add_argument("--spec", action="append", default=None)
    ap.add_argument("--examiner", choices=("score", "gate"), default="score")
    args = ap.parse_args()
    specs = [Path(s) for s in (args.spec or [REPO_ROOT / "spec" / "echo.md", REPO_ROOT / "spec" / "prime.md"])]
    for spec in specs:
        print(json.dumps(one(spec, args.n, args.p, args.seed, args.examiner), indent=1), flush=True)


if __name__ == "__main__":
    main()

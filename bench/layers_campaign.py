"""All three verification layers on one offline sim campaign, through the real Docker rig.

    CAMBRIAN_HOME=$(mktemp -d) .venv/bin/python bench/layers_campaign.py [-n 10] [-p 2]
        [--spec spec/prime.md] [--seed 0]

One campaign (sim provider, model sim-1, one retry) in a fresh private home with every layer
on and none gating, so each layer's verdict can be read apart: sealed vectors ``score``,
examiner ``score``, red team ``every`` viable generation. Then a second, 2-generation
campaign of the same spec in the same home: the ledger must show one ``examine`` call for
both. Prints:

* viability under Layer 1 alone (the campaign's verdicts) vs under all three layers (viable,
  every sealed vector passed, no examiner probe failed, no red-team probe confirmed) — the
  latter with and without the examiner's suspect probes;
* per judged generation: its verdict and which sealed vectors, examiner probes and red-team
  probes it failed, and the sim's hidden violations that generation's answer carried (read
  from its files by ``core.llm.sim.retry.detect_hidden``: which layer was meant to see it);
* the generalisation gap (the campaign's, pooled over every generation that ran the sealed
  vectors, and over the Layer-1-viable ones alone), the examiner's suspect probes, the red team's score distribution;
* extra rig time (hidden probes in the health stage; the red team's second run) and extra
  tokens (examine once; redteam per tested generation) per generation, beside the writer's.

Figures only; nothing passes or fails here.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from core.app import Cambrian
from core.home import REPO_ROOT, db_path
from core.llm.sim.retry import RetryContext, detect_hidden
from core.llm.sim.specinfo import parse_spec_text
from core.store import Store

from campaign_figures import campaign_parser, per, tokens, two_campaigns


def _failed(rows) -> list[str]:
    return [r["name"] for r in rows or () if not r.get("passed")]


def run(spec_path: Path, n: int, p: int, seed: int) -> dict:
    home, cids, wall = two_campaigns(spec_path, n, p, seed, "cambrian-layers-", sealed_vectors="score",
                                     examiner="score", redteam="every")
    info = parse_spec_text(spec_path.read_text(encoding="utf-8"))
    with Store.open(db_path(home)) as s, Cambrian(home) as app:
        summ = app.reads.campaign_status(cids[0])["summary"]
        ex, rt = summ["examiner"] or {}, summ["redteam"] or {}
        suspects = {p["name"] for p in ex.get("suspects") or ()}
        rows, probe_ms, rt_ms, rt_tokens, scores = [], [], [], [], []
        among_viable = {"visible": [0, 0], "sealed": [0, 0]}  # [passed, run] over Layer-1-viable generations
        for g in s.generations(cids[0]):
            if g.status is None:
                continue
            rep = s.report(g.number) or {}
            h = (rep.get("checks") or {}).get("health") or {}
            block = rep.get("redteam") or {}
            files = {k: v.decode("utf-8", "replace") for k, v in
                     (s.artifact_files(g.artifact_hash) if g.artifact_hash else {}).items()}
            hidden = sorted(k for k, v in detect_hidden(info, RetryContext(None, 0, "", "", files=files)).items() if v)
            sealed_f, ex_f = _failed(h.get("sealed")), _failed(h.get("examiner"))
            rt_f = [q["name"] for q in block.get("probes") or () if not q.get("passed")]
            l1 = g.status.value == "viable" if hasattr(g.status, "value") else g.status == "viable"
            for key, layer in (("visible", "vectors"), ("sealed", "sealed")):
                if l1:
                    among_viable[key][0] += sum(bool(r.get("passed")) for r in h.get(layer) or ())
                    among_viable[key][1] += len(h.get(layer) or ())
            rows.append({"gen": g.number, "attempt": g.attempt, "layer1": "viable" if l1 else f"non-viable ({g.failure_stage})",
                         "sealed_failed": sealed_f, "examiner_failed": ex_f, "redteam_confirmed": rt_f,
                         "redteam_score": block.get("score"), "sim_hidden_violations": hidden,
                         "all_layers": l1 and not sealed_f and not ex_f and not rt_f,
                         "all_layers_without_suspects": l1 and not sealed_f and not (set(ex_f) - suspects) and not rt_f})
            probe_ms.append(sum(r.get("ms") or 0 for k in ("sealed", "examiner") for r in h.get(k) or ()))
            if block.get("rig_ms") is not None:
                rt_ms.append(block["rig_ms"])
                rt_tokens.append(block.get("tokens") or 0)
            if block.get("score") is not None:
                scores.append(block["score"])
        calls = [c for cid in cids for c in s.llm_calls(campaign_id=cid)]
        examine = [c for c in calls if c.purpose == "examine"]
        writer = tokens(c for c in s.llm_calls(campaign_id=cids[0])
                        if c.purpose not in ("examine", "redteam"))
    judged = len(rows)
    return {
        "spec": spec_path.name, "home": str(home), "campaigns": cids, "wall_s": round(wall, 1),
        "judged": judged,
        "viability_layer1": f"{sum(r['layer1'] == 'viable' for r in rows)}/{judged}",
        "viability_all_three_layers": f"{sum(r['all_layers'] for r in rows)}/{judged}",
        "viability_all_three_suspects_dismissed": f"{sum(r['all_layers_without_suspects'] for r in rows)}/{judged}",
        "generalisation": summ["sealed"],
        "generalisation_among_layer1_viable": {
            **{k: v for k, v in among_viable.items()},
            "gap": round(among_viable["visible"][0] / max(1, among_viable["visible"][1])
                         - among_viable["sealed"][0] / max(1, among_viable["sealed"][1]), 4)},
        "examiner_pass_rate": summ["examiner_pass_rate"],
        "examiner_suspects": [(q["name"], q["expect_status"], q["failed"], q["ran"]) for q in ex.get("suspects") or ()],
        "redteam": {k: rt.get(k) for k in ("tested", "unavailable", "proposed", "confirmed", "mean_score", "scores")},
        "redteam_scores": sorted(scores),
        "per_generation": rows,
        "examine_calls_over_both_campaigns": [(c.purpose, c.campaign_id, c.generation) for c in examine],
        "examine_tokens_once": tokens(examine),
        "examine_tokens_per_judged_generation": per(tokens(examine), judged),
        "redteam_tokens_per_tested_generation": round(statistics.mean(rt_tokens)) if rt_tokens else None,
        "writer_tokens_per_generation": per(writer, judged),
        "hidden_probe_rig_ms_per_generation_median": statistics.median(probe_ms) if probe_ms else None,
        "redteam_rig_ms_per_tested_generation_median": statistics.median(rt_ms) if rt_ms else None,
    }


def main() -> None:
    ap = campaign_parser(__doc__, generations=10)
    ap.add_argument("--spec", default=str(REPO_ROOT / "spec" / "prime.md"))
    args = ap.parse_args()
    print(json.dumps(run(Path(args.spec), args.n, args.p, args.seed), indent=1), flush=True)


if __name__ == "__main__":
    main()

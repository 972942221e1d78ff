"""Bayesian optimisation vs random search over the evolution loop's operator space.

    .venv/bin/python bench/bo_vs_random.py [--spec spec/prime.md] [--seeds 10] [--budget 60]
                                           [--prior-runs 10] [--reference-runs 6]
                                           [--reference-budget 400] [--jobs 2]
    .venv/bin/python bench/bo_vs_random.py --intent-table 30 [--target 0.8246]

What is evaluated
-----------------
Running real rig campaigns for hundreds of variants is far too slow here, so each variant is
scored on the **sim landscape directly**: its *expected viability* under the sim provider's
defect model (``core.llm.sim.defects.expected_viability`` of the variant's text, for the
variant's model) — the exact probability that a first attempt of the sim passes the rig, with
no sampling noise. Everything else is the loop's own machinery: the same search space
(``core.evolution.settings.search_space``: operator × section × intent × hat × model ×
amendment × donor), the same optimizer adapter (``core.evolution.optimizer``; ``bo`` =
scikit-optimize GP, ``random`` = uniform; BO asks only canonical points and maximises its acquisition over
all of them, as the loop does), the same operators and grammar gate
(``core.evolution.operators``: rewrites by the sim provider's seeded mutate, hats from
``spec/hats``, crossover from the best earlier variants, model choice) and the same objective
(``core.evolution.state``: the negated log of the gain over the incumbent for new runs,
``--objective gain`` for the raw gain; no-ops 0, duplicates their earlier value, grammar
rejections a fixed penalty). The climb moves to a variant when its expected viability is strictly
higher than the incumbent's (noise-free, so no interval rule is needed here).

Counting and "best-known"
-------------------------
* An **evaluation** is a variant that passes the gate and would have cost a screening
  campaign in the real loop. Asked points that are rejected (grammar, no-op, duplicate) cost
  no rig time and are counted separately as "asks" (a run stops after 3 x budget asks).
* The **best-known variant** is the highest expected viability found by any search this
  script runs: ``--reference-runs`` long random climbs of ``--reference-budget``
  evaluations each (separate seeds, random search), plus every main run. A run *reaches* it at its first
  evaluation whose expected viability is within ``--tolerance`` (default 0.005) of it; runs
  that never do count as budget + 1 ("censored").

Methods
-------
* ``bo``: the loop's BO as a run in a fresh home starts it (cold: no prior).
* ``bo+prior``: the loop's BO as a run in a home with history starts it: first
  ``--prior-runs`` cold BO runs on other seeds (2000, 2001, ...) are run, and
  ``core.evolution.prior.learn_prior`` turns their climbing observations into the prior mean
  for rewrites and crossovers and the list of one-shot choices left out of the sweep (never
  a gain), exactly as ``create_run`` does from the home's earlier runs.
  Same seeds (so the same sweep order) as ``bo``; the training seeds never overlap them.
* ``random``: uniform random search over the same space (no prior: it has no model to put
  one in).

Prints per seed and method the evaluations to reach the best-known variant, the medians,
and the ratio median(BO) / median(random) with a bootstrap interval over seeds and the
per-seed comparison; for scale, the same for two reference policies
(``ScheduleOptimizer``): an *oracle* that knows the landscape (the best model first, then
every hat that helps, then only add-guidance rewrites) and a *sweep* that knows only its
structure (every model and every hat once, then only add-guidance rewrites). Figures only,
never pass/fail.

``--intent-table TRIES`` prints instead how often each rewrite (intent x section) pays off
from the incumbent the sweep design reaches: what a search has to learn once every
one-shot choice has been tried, and why a cold search cannot match the sweep reference.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.evolution.hats import load_hats  # noqa: E402
from core.evolution.operators import (  # noqa: E402
    LLMRewriter,
    Parent,
    check_variant,
    make_variant,
    mutable_sections,
)
from core.evolution.loop import EvolutionLoop  # noqa: E402
from core.evolution.optimizer import make_optimizer  # noqa: E402
from core.evolution.prior import OperatorPrior, learn_prior  # noqa: E402
from core.evolution.settings import (  # noqa: E402
    SIM_MODELS,
    EvolutionSettings,
    canonical,
    derive_seed,
    search_space,
    sweep_points,
)
from core.evolution.state import (  # noqa: E402
    DUPLICATE_PREFIX,
    REJECT_PENALTY,
    objective,
    rank_donors,
    rejected_objective,
)
from core.llm.sim import SimProvider  # noqa: E402
from core.llm.sim import defects as dm  # noqa: E402
from core.llm.sim.specinfo import parse_spec_text  # noqa: E402
from core.spec import parse_spec, spec_hash  # noqa: E402

_EV_CACHE: dict[tuple[str, str], float] = {}
PRIOR_METHOD = "bo+prior"
METHODS = ("bo", PRIOR_METHOD, "random", "oracle", "sweep")


def expected(text: str, model: str) -> float:
    key = (spec_hash(text), model)
    if key not in _EV_CACHE:
        _EV_CACHE[key] = dm.expected_viability(parse_spec_text(text), model)
    return _EV_CACHE[key]


def settings_for(base: str, optimizer: str, seed: int, n_initial: int, design: str = "sweep",
                 objective_kind: str = "log-gain") -> EvolutionSettings:
    hats = {h.name: {"description": h.description, "fragment": h.fragment} for h in load_hats().values()}
    return EvolutionSettings(
        base_spec_hash=spec_hash(base), provider="sim", model="sim-1", models=list(SIM_MODELS), seed=seed,
        optimizer=optimizer, n_initial_points=n_initial, initial_design=design, objective=objective_kind,
        sections=mutable_sections(base),
        system_section=parse_spec(base).system_prompt_section, hats=hats)


@dataclass
class RunResult:
    method: str
    seed: int
    trace: list[float]  # expected viability of each evaluated variant, in order
    asks: int
    best: float
    best_detail: str
    seconds: float
    incumbent: tuple[str, str, float]  # (text, model, expected viability) when the run stopped
    kinds: list[str]  # each evaluated variant's operator ("rewrite add", "hat", ...), as trace
    told: list[tuple[dict, float]]  # every (canonical point, objective) told, in order


class ScheduleOptimizer:
    """Not a search method: a reference policy. It asks its ``schedule`` of points first,
    then only "add guidance" rewrites of a random section.

    * ``oracle`` *knows* the landscape: the best model, then every hat that helps on its own
      (best gain first). A scale for what knowing the answer buys, not a strict bound: a hat
      that only helps in combination is never tried, so a few seeds miss the plateau.
    * ``sweep`` knows only the landscape's *structure*: its schedule is the loop's sweep
      design (``settings.sweep_points``: every other model and every hat once, in the run
      seed's order), as BO's initial points, and "add" is the productive rewrite."""

    def __init__(self, dims, seed: int, kind: str, schedule: list[dict]) -> None:
        self.dims = tuple(dims)
        self.rng = random.Random(f"{kind}|{seed}")
        self.schedule = list(schedule)
        self.n = 0

    def ask(self) -> dict:
        p = {d.name: d.values[0] for d in self.dims}
        if self.n < len(self.schedule):
            p.update(self.schedule[self.n])
        else:
            sections = next(d for d in self.dims if d.name == "section").values
            p.update(operator="rewrite", intent="add", section=self.rng.choice(sections))
        return p

    def tell(self, point: dict, y: float) -> None:
        self.n += 1


REFERENCES = ("oracle", "sweep")


def helpful_hats(base: str, s: EvolutionSettings, hats: dict) -> list[str]:
    """Hats whose overlay alone raises the base's exact expected viability, best first."""
    from core.evolution.operators import insert_into_section

    model = SIM_MODELS[-1]
    ref = expected(base, model)
    gains = {n: expected(insert_into_section(base, s.system_section, h.fragment), model) - ref
             for n, h in hats.items()}
    return sorted((n for n, g in gains.items() if g > 1e-12), key=lambda n: (-gains[n], n))


def climb(base: str, method: str, seed: int, budget: int, n_initial: int = 6,
          max_asks_factor: int = 3, estimator: str = "GP", acq_func: str = "EI",
          penalty: float = REJECT_PENALTY, initial: str = "random", project: bool = True,
          design: str = "sweep", objective_kind: str = "log-gain",
          prior: OperatorPrior | None = None) -> RunResult:
    """One evolution run on the exact sim landscape; stops after ``budget`` evaluations.
    ``design`` and ``objective_kind``: the loop's ``initial_design`` and ``objective`` settings;
    ``prior`` (method ``bo+prior``): BO's prior mean, as a run created in a home with history."""
    t0 = time.monotonic()
    label = method
    if method == PRIOR_METHOD:
        assert prior is not None
        method = "bo"
    s = settings_for(base, "random" if method in REFERENCES else method, seed, n_initial, design, objective_kind)
    # the prior is frozen into the settings, as create_run does: the sweep reads it too
    s = s.model_copy(update={"prior": prior, "base_estimator": estimator, "acq_func": acq_func})
    dims = search_space(s)
    kw = EvolutionLoop._optimizer_kw(s, (lambda p: canonical(p, dims)) if project else None, dims)
    if method == "bo":
        kw["initial_point_generator"] = initial
    hats = s.hat_objects()
    if method == "oracle":
        schedule = [{"operator": "model", "model": SIM_MODELS[-1]}]
        schedule += [{"operator": "hat", "hat": h} for h in helpful_hats(base, s, hats)]
        opt = ScheduleOptimizer(dims, seed, method, schedule)
    elif method == "sweep":
        opt = ScheduleOptimizer(dims, seed, method, sweep_points(s, dims))
    else:
        opt = make_optimizer(dims, kind=method, seed=seed, **kw)
    rewriter = LLMRewriter(SimProvider(), s.rewrite_model)
    inc_text, inc_model = base, s.model
    inc_value = expected(base, inc_model)
    evaluated: dict[tuple[str, str], tuple[int, float, str]] = {(spec_hash(base), inc_model): (-1, inc_value, base)}
    order: list[tuple[int, float, str]] = []  # (index, value, spec hash) of evaluated variants
    texts: dict[str, str] = {}  # spec hash -> text
    trace: list[float] = []
    kinds: list[str] = []
    told: list[tuple[dict, float]] = []
    best, best_detail = inc_value, "base"
    i = 0
    while len(trace) < budget and i < budget * max_asks_factor:
        point = opt.ask()
        parent = Parent(inc_text, inc_model)
        donors = rank_donors(order, spec_hash(inc_text), texts.__getitem__)
        v = asyncio.run(make_variant(point, parent, system_section=s.system_section, hats=hats,
                                     amendments=[], donors=donors, rewrite=rewriter,
                                     seed=derive_seed(seed, "mutate", i)))
        v = check_variant(base, parent, v)
        if v.ok and (v.hash, v.model) in evaluated:
            v = v.reject(f"{DUPLICATE_PREFIX}seen before")
        if not v.ok:
            earlier = evaluated.get((v.hash, v.model)) if v.hash else None
            y = rejected_objective(v.rejected_reason or "", earlier[1] if earlier else None, inc_value, penalty,
                                   s.objective_scale)
        else:
            value = expected(v.text, v.model)
            trace.append(value)
            kinds.append(point["operator"] + (f" {point['intent']}" if point["operator"] == "rewrite" else ""))
            evaluated[(v.hash, v.model)] = (i, value, v.text)
            order.append((i, value, v.hash))
            texts[v.hash] = v.text
            y = objective(value, inc_value, s.objective_scale)
            if value > best:
                best, best_detail = value, f"{v.model}, {v.detail}"
            if value > inc_value + 1e-12:
                inc_text, inc_model, inc_value = v.text, v.model, value
        told.append((canonical(point, dims), y))
        opt.tell(*told[-1])
        i += 1
    return RunResult(label, seed, trace, i, best, best_detail, time.monotonic() - t0,
                     (inc_text, inc_model, inc_value), kinds, told)


def _job(args: tuple) -> RunResult:
    *positional, design, objective_kind, prior = args
    return climb(*positional, design=design, objective_kind=objective_kind, prior=prior)


def intent_table(base: str, seed: int, tries: int, target: float | None) -> None:
    """How often each rewrite pays off *after* the sweep design: the question a search must
    answer (cheaply) once every one-shot choice has been tried. ``tries`` seeded rewrites per
    intent and section, from the incumbent the sweep reaches for ``seed``."""
    s = settings_for(base, "random", seed, 6)
    points = sweep_points(s, search_space(s))
    r = climb(base, "sweep", seed, len(points), max_asks_factor=1)  # exactly the sweep's asks
    text, model, value = r.incumbent
    need = None if target is None else target - value
    print(f"after the sweep (seed {seed}, {r.asks} asks, {len(r.trace)} evaluations): incumbent {value:.4f} ({model})"
          + ("" if need is None else f"; reaching {target:.4f} needs a gain >= {need:.4f}"))
    hats = s.hat_objects()
    rewriter = LLMRewriter(SimProvider(), s.rewrite_model)
    parent = Parent(text, model)
    print(f"{'intent':<9} {'section':<28} {'run':>5} {'P(gain)':>8} {'mean change':>12}"
          + ("" if need is None else f" {'P(enough)':>10}"))
    for intent in ("add", "remove", "rephrase"):
        for section in s.sections:
            changes = []
            for k in range(tries):
                point = {"operator": "rewrite", "section": section, "intent": intent}
                v = asyncio.run(make_variant(point, parent, system_section=s.system_section, hats=hats,
                                             amendments=[], donors=[], rewrite=rewriter,
                                             seed=derive_seed(seed, "table", k)))
                v = check_variant(base, parent, v)
                if v.ok:
                    changes.append(expected(v.text, v.model) - value)
            ran = len(changes)
            mean = statistics.mean(changes) if changes else 0.0
            line = (f"{intent:<9} {section[:28]:<28} {ran:>2}/{tries:<2} {sum(c > 1e-12 for c in changes) / tries:>8.2f}"
                    f" {mean:>+12.4f}")
            if need is not None:
                line += f" {sum(c >= need for c in changes) / tries:>10.2f}"
            print(line)


def ratio_interval(bo: list[int], rnd: list[int], draws: int = 5000) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of median(bo)/median(rnd), resampling seeds (paired:
    a seed's two runs stay together). Seeded, so the same table prints the same interval."""
    rng = random.Random("cambrian-bench-bootstrap")
    n = len(bo)
    ratios = []
    for _ in range(draws):
        pick = [rng.randrange(n) for _ in range(n)]
        ratios.append(statistics.median(bo[k] for k in pick) / statistics.median(rnd[k] for k in pick))
    ratios.sort()
    return ratios[int(0.025 * draws)], ratios[int(0.975 * draws) - 1]


def reached(trace: list[float], target: float, tol: float) -> int | None:
    for k, v in enumerate(trace, start=1):
        if v >= target - tol:
            return k
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", default=str(ROOT / "spec" / "prime.md"))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=60, help="evaluations per main run")
    ap.add_argument("--reference-runs", type=int, default=6)
    ap.add_argument("--reference-budget", type=int, default=400)
    ap.add_argument("--tolerance", type=float, default=0.005)
    ap.add_argument("--n-initial", type=int, default=6, help="BO's random initial points (--design random)")
    ap.add_argument("--design", choices=("sweep", "random"), default="sweep",
                    help="BO's initial design (the loop's initial_design; new runs use sweep)")
    ap.add_argument("--objective", choices=("log-gain", "gain"), default="log-gain",
                    help="what BO is told (the loop's objective setting; new runs use log-gain)")
    ap.add_argument("--prior-runs", type=int, default=10,
                    help="cold BO runs (seeds 2000+) whose climbing observations make the prior of the "
                         "bo+prior method, as earlier runs in a home do; 0: no bo+prior")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--intent-table", type=int, metavar="TRIES", default=0,
                    help="instead: how often each rewrite pays off after the sweep design (TRIES per cell)")
    ap.add_argument("--target", type=float, default=None,
                    help="with --intent-table: the best-known viability, to show P(gain enough to reach it)")
    args = ap.parse_args(argv)
    base = Path(args.spec).read_bytes().decode("utf-8")
    if args.intent_table:
        target = None if args.target is None else args.target - args.tolerance
        intent_table(base, 1, args.intent_table, target)
        return 0
    t0 = time.monotonic()
    print(f"spec {args.spec}: base expected viability (sim-1) {expected(base, 'sim-1'):.4f}; "
          f"BO initial design: {args.design}; objective: {args.objective}")
    seeds = list(range(1, args.seeds + 1))
    methods = [m for m in METHODS if m != PRIOR_METHOD or args.prior_runs > 0]
    common = (args.n_initial, args.design, args.objective)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        training = list(pool.map(_job, [(base, "bo", 2000 + k, args.budget, *common, None)
                                        for k in range(args.prior_runs)]))
        prior = learn_prior({f"train-{r.seed}": r.told for r in training}, model="sim-1")
        if args.prior_runs:
            learned = "none" if prior is None else (
                f"{prior.observations} climbing observations; "
                + ", ".join(f"{k} {v:+.3f}" for k, v in sorted(prior.by_operator().items()))
                + "; left out of the sweep: " + (", ".join(prior.deferred_names()) or "nothing"))
            print(f"prior from {len(training)} cold BO runs (seeds 2000-{1999 + len(training)}): {learned}")
        if prior is None:
            methods = [m for m in methods if m != PRIOR_METHOD]
        jobs = [(base, m, sd, args.budget, *common, prior if m == PRIOR_METHOD else None)
                for sd in seeds for m in methods]
        ref_seeds = [1000 + k for k in range(args.reference_runs)]
        # reference climbs are random: as good at finding the plateau (see the figures) and
        # cheap at 400 evaluations, where a GP refit on >1000 told points takes minutes per run
        jobs += [(base, "random", sd, args.reference_budget, *common, None) for sd in ref_seeds]
        results = list(pool.map(_job, jobs)) + training
    main_runs = [r for r in results if r.seed in seeds]
    best_known = max(r.best for r in results)
    best_run = max(results, key=lambda r: r.best)
    print(f"best-known expected viability {best_known:.4f} ({best_run.method} seed {best_run.seed}: "
          f"{best_run.best_detail}); reached = within {args.tolerance} of it")
    table: dict[str, list[int]] = {m: [] for m in methods}
    censored = {m: 0 for m in methods}
    has_prior = PRIOR_METHOD in methods
    print(f"{'seed':>5} {'BO evals':>9}" + (f" {'BO+prior':>9}" if has_prior else "")
          + f" {'random evals':>13} {'oracle':>7} {'sweep':>6} {'BO best':>8} {'rnd best':>9} "
          f"{'BO asks':>8} {'rnd asks':>9}")
    for sd in seeds:
        row = {}
        for m in methods:
            r = next(x for x in main_runs if x.seed == sd and x.method == m)
            k = reached(r.trace, best_known, args.tolerance)
            if k is None:
                censored[m] += 1
                k = args.budget + 1
            table[m].append(k)
            row[m] = (k, r)
        fmt = lambda k: f"{k}" if k <= args.budget else f">{args.budget}"  # noqa: E731
        print(f"{sd:>5} {fmt(row['bo'][0]):>9}" + (f" {fmt(row[PRIOR_METHOD][0]):>9}" if has_prior else "")
              + f" {fmt(row['random'][0]):>13} {fmt(row['oracle'][0]):>7} {fmt(row['sweep'][0]):>6} "
              f"{row['bo'][1].best:>8.4f} "
              f"{row['random'][1].best:>9.4f} {row['bo'][1].asks:>8} {row['random'][1].asks:>9}")
    med_rnd = statistics.median(table["random"])
    for m, name in (("bo", "BO (cold start)"), (PRIOR_METHOD, "BO with the prior")):
        if m not in table:
            continue
        med = statistics.median(table[m])
        lo, hi = ratio_interval(table[m], table["random"])
        better = sum(b < r for b, r in zip(table[m], table["random"]))
        worse = sum(b > r for b, r in zip(table[m], table["random"]))
        print(f"{name}: median {med:g} evaluations to reach the best-known variant, random {med_rnd:g} "
              f"(censored at {args.budget + 1}: {censored[m]} and {censored['random']} of {len(seeds)}); "
              f"ratio {med / med_rnd:.2f} (target <= 0.5), bootstrap 95% interval over seeds [{lo:.2f}, {hi:.2f}]; "
              f"per seed fewer on {better}, more on {worse}, as many on {len(seeds) - better - worse}")
    if has_prior:
        b, p = table["bo"], table[PRIOR_METHOD]
        print(f"prior vs cold, per seed: fewer evaluations on {sum(x < y for x, y in zip(p, b))}, "
              f"more on {sum(x > y for x, y in zip(p, b))}")
    # where the evaluations went, up to reaching the best-known variant (all of them when never)
    for m in [x for x in ("bo", PRIOR_METHOD, "random") if x in table]:
        spent: dict[str, int] = {}
        for r in (x for x in main_runs if x.method == m):
            k = reached(r.trace, best_known, args.tolerance)
            for kind in r.kinds[:k]:
                spent[kind] = spent.get(kind, 0) + 1
        total = sum(spent.values())
        print(f"{m} evaluations up to reaching it, by operator: "
              + ", ".join(f"{kind} {n} ({n / total:.0%})" for kind, n in sorted(spent.items(), key=lambda kv: -kv[1])))
    for m, what in (("oracle", "an oracle that knows the landscape (best model first, every helpful hat, "
                                "then only add-guidance rewrites)"),
                    ("sweep", "a sweep that knows only its structure (every model and hat once, "
                              "then only add-guidance rewrites)")):
        med = statistics.median(table[m])
        print(f"reference: {what} needs median {med:g} evaluations (censored {censored[m]}), "
              f"ratio {m}/random {med / med_rnd:.2f}")
    secs = {m: statistics.mean(r.seconds for r in main_runs if r.method == m) for m in ("bo", "random")}
    print(f"mean wall time per main run: BO {secs['bo']:.0f} s, random {secs['random']:.0f} s; "
          f"total {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

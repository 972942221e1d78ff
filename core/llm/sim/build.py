"""From a defect decision to the files of one simulated answer."""

from __future__ import annotations

import dataclasses

from core.llm.sim import codegen as cg
from core.llm.sim import templates_echo, templates_generic, templates_prime
from core.llm.sim.breeding import KINDS
from core.llm.sim.defects import Decision, rng_for
from core.llm.sim.specinfo import SpecInfo, template_kind
from core.llm.sim.style import Style, choose_style
from core.llm.sim.stylize import stylize


def choose_template(spec: SpecInfo):
    """prime / echo templates for their genomes (recognised by package and endpoints),
    the generic vector-driven service for anything else."""
    return {"prime": templates_prime, "echo": templates_echo}.get(template_kind(spec), templates_generic)


def template_name(spec: SpecInfo) -> str:
    return choose_template(spec).__name__.rsplit("_", 1)[-1]


def readme(spec: SpecInfo, style: Style) -> str:
    lines = [f"# {spec.name}", "", f"An aiohttp service generated from the `{spec.name}` spec.", ""]
    lines += ["## Run", "", "```", f"python -m {spec.package}", "```", ""]
    lines += [f"It listens on port {spec.port} (override with `PORT`).", ""]
    lines += ["## Test", "", "```", "python -m pytest -q", "```", ""]
    paths = sorted({(v.method, v.path.split("?")[0]) for v in spec.vectors if v.expect.status != 404})
    if paths:
        lines += ["## Endpoints", ""] + [f"- `{m} {p}`" for m, p in paths] + [""]
    return "\n".join(lines)


def build_files(spec: SpecInfo, decision: Decision, seed: int, generation: int) -> tuple[dict[str, str], cg.Ctx]:
    style = choose_style(spec, seed, generation, decision.careless)
    if "async_test_config" in decision.defects:
        style = dataclasses.replace(style, test_client="fixture")
    ctx = cg.Ctx(spec, style, decision.defects, rng_for("variant", seed, generation), spec.package,
                 habits=dict(decision.habits))
    # breeding defects draw their forms from a stream of their own: an answer without one is
    # byte for byte what it was before they existed
    brng = rng_for("breeding-variant", seed, generation)
    ctx.breeding = {name: brng.choice(KINDS[name].variants) for name in sorted(decision.breeding)}
    ctx.hidden = decision.hidden
    files = choose_template(spec).build(ctx)
    for path in list(files):
        if path.endswith(".py") and cg.REQUEST_HABIT in files[path]:
            files[path] = cg.request_habit(ctx, files[path])
    if ctx.has("collection_error"):
        path, src = cg.collection_breaker(ctx)
        files[path] = src
    for path in list(files):
        if path.endswith(".py"):
            files[path] = stylize(files[path], style)
    files["pytest.ini"] = cg.PYTEST_INI_NO_ASYNCIO if ctx.has("async_test_config") else cg.PYTEST_INI
    files["requirements.txt"] = cg.requirements(ctx)
    files["README.md"] = readme(spec, style)
    if ctx.has("syntax_error"):
        ctx.variants["syntax_error_file"] = cg.break_syntax(ctx, files)
    return dict(sorted(files.items())), ctx


def forced(decision: Decision, defects=None, habits=None) -> Decision:
    """``decision`` with exactly these defects and habits (``habits``: name -> biting form;
    a set means all biting). Either left None means none of that kind. ``defects`` may name
    breeding defects (``breeding.py``) and hidden violations (``hidden.py``) too: those go to
    ``Decision.breeding`` and ``Decision.hidden``."""
    from core.llm.sim import breeding as br
    from core.llm.sim import defects as dm
    from core.llm.sim import hidden as hd
    from core.llm.sim.habits import HABITS

    defects = frozenset(defects or ())
    if not isinstance(habits, dict):
        habits = {h: True for h in habits or ()}
    unknown = (sorted(set(defects) - set(dm.KINDS) - set(br.KINDS) - set(hd.KINDS))
               + sorted(set(habits) - set(HABITS)))
    if unknown:
        raise ValueError(f"unknown defect kind(s) or habit(s): {unknown}")
    return Decision(decision.careless, defects & frozenset(dm.KINDS), decision.probabilities,
                    habits=dict(habits), breeding=defects & frozenset(br.KINDS),
                    hidden=defects & frozenset(hd.KINDS))


def files_for(
    spec_text: str,
    *,
    seed: int = 0,
    generation: int = 1,
    defects: set[str] | frozenset[str] | None = None,
    habits: dict[str, bool] | set[str] | None = None,
    model: str = "sim-1",
) -> dict[str, str]:
    """The files the sim writes for a first attempt — or, with ``defects`` and/or
    ``habits``, for exactly those (tests and benchmarks use this to build one artifact per
    defect kind or habit)."""
    from core.llm.sim import defects as dm
    from core.llm.sim.specinfo import parse_spec_text

    spec = parse_spec_text(spec_text)
    decision = dm.decide(spec, seed, generation, 0, model)
    if defects is not None or habits is not None:
        decision = forced(decision, defects, habits)
    files, _ctx = build_files(spec, decision, seed, generation)
    return files

"""From a defect decision to the files of one simulated answer."""

from __future__ import annotations

import dataclasses

from core.llm.sim import codegen as cg
from core.llm.sim import templates_echo, templates_generic, templates_prime
from core.llm.sim.defects import Decision, rng_for
from core.llm.sim.specinfo import SpecInfo
from core.llm.sim.style import Style, choose_style
from core.llm.sim.stylize import stylize


def choose_template(spec: SpecInfo):
    """prime / echo templates for their genomes (recognised by package and endpoints),
    the generic vector-driven service for anything else."""
    paths = {v.path.split("?")[0] for v in spec.vectors}
    if spec.package == "prime" and {"/parse", "/manifest"} <= paths:
        return templates_prime
    if spec.package == "echo" and {"/echo", "/reverse"} <= paths:
        return templates_echo
    return templates_generic


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
    ctx = cg.Ctx(spec, style, decision.defects, rng_for("variant", seed, generation), spec.package)
    files = choose_template(spec).build(ctx)
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


def files_for(
    spec_text: str,
    *,
    seed: int = 0,
    generation: int = 1,
    defects: set[str] | frozenset[str] | None = None,
    model: str = "sim-1",
) -> dict[str, str]:
    """The files the sim writes for a first attempt — or, with ``defects``, for exactly
    those defects (tests and benchmarks use this to build one artifact per defect kind)."""
    from core.llm.sim import defects as dm
    from core.llm.sim.specinfo import parse_spec_text

    spec = parse_spec_text(spec_text)
    decision = dm.decide(spec, seed, generation, 0, model)
    if defects is not None:
        unknown = set(defects) - set(dm.KINDS)
        if unknown:
            raise ValueError(f"unknown defect kind(s): {sorted(unknown)}")
        decision = dm.Decision(decision.careless, frozenset(defects), decision.probabilities)
    files, _ctx = build_files(spec, decision, seed, generation)
    return files

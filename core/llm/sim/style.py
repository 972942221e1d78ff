"""Coding-style choices of one simulated answer.

Some features follow the generation's latent diligence (so they correlate with the
defects, through it: true signal for the distiller), the others are independent noise.
Spec phrases that ask for a habit make it more likely directly as well.

| feature          | values                            | follows diligence? |
|------------------|-----------------------------------|--------------------|
| clock            | monotonic / time                  | yes                |
| excepts          | specific / broad / bare           | yes                |
| typed            | True / False                      | yes                |
| log_fstrings     | True / False (f-strings in logs)  | yes                |
| trivial_asserts  | True / False                      | yes                |
| asserts_per_test | 1..4                              | yes (careful: more)|
| retry_helper     | True / False                      | no                 |
| config           | dataclass / pydantic / plain      | no                 |
| logger           | logging / structlog               | no                 |
| test_client      | fixture / manual                  | no                 |
| runner           | run_app / app_runner              | no                 |
| docstrings       | True / False                      | no                 |
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.llm.sim.defects import rng_for
from core.llm.sim.specinfo import SpecInfo


@dataclass(frozen=True)
class Style:
    clock: str = "monotonic"
    excepts: str = "specific"
    typed: bool = True
    log_fstrings: bool = False
    trivial_asserts: bool = False
    asserts_per_test: int = 2
    retry_helper: bool = True
    config: str = "dataclass"
    logger: str = "logging"
    test_client: str = "manual"
    runner: str = "run_app"
    docstrings: bool = True


def _asks(spec: SpecInfo, pattern: str) -> bool:
    return re.search(pattern, spec.prose, re.I | re.S) is not None


def choose_style(spec: SpecInfo, seed: int, generation: int, careless: bool) -> Style:
    r = rng_for("style", seed, generation)
    # Draw every uniform up front, in a fixed order, so a spec change never shifts the
    # stream (common random numbers across spec variants).
    u = [r.random() for _ in range(17)]
    c = careless
    monotonic = u[0] < (0.35 if c else 0.8) or (_asks(spec, r"monotonic") and u[1] < 0.7)
    if _asks(spec, r"specific exceptions?|bare\s*`?except"):
        excepts = "specific" if u[2] < 0.75 else "broad"
    elif c:
        excepts = "bare" if u[2] < 0.45 else "broad" if u[2] < 0.8 else "specific"
    else:
        excepts = "bare" if u[2] < 0.08 else "broad" if u[2] < 0.35 else "specific"
    typed = u[3] < (0.4 if c else 0.85) or (
        _asks(spec, r"type (hints?|annotations?)") and u[4] < 0.8
    )
    log_fstrings = u[5] < (0.6 if c else 0.2)
    if _asks(spec, r"(lazy|%-?style|structured) (formatting|logging)|f-strings? in log"):
        log_fstrings = log_fstrings and u[6] < 0.3
    trivial = u[7] < (0.5 if c else 0.1)
    asserts = 1 + sum(x < (0.3 if c else 0.6) for x in u[8:11])
    return Style(
        clock="monotonic" if monotonic else "time",
        excepts=excepts,
        typed=typed,
        log_fstrings=log_fstrings,
        trivial_asserts=trivial,
        asserts_per_test=asserts,
        retry_helper=u[11] < 0.5 or _asks(spec, r"retry|backoff"),
        config=("dataclass", "pydantic", "plain")[int(u[12] * 3)],
        logger="structlog" if u[13] < 0.3 else "logging",
        test_client="fixture" if u[14] < 0.5 else "manual",
        runner="app_runner" if u[15] < 0.4 else "run_app",
        docstrings=u[16] < 0.6,
    )

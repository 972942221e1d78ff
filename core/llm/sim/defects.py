"""The sim's defect model: which mistakes a simulated model makes, and how often.

Every defect kind maps to one real rig failure (the stage it fails at is in
``DefectKind.stage``). Its probability for a given spec is::

    p = clamp(base x product(rule factors that fire) x model factor x diligence factor)

Rules look at the spec's *mutable* prose (everything outside FROZEN blocks, front matter
and code fences) and at which ``##`` sections exist, so editing the spec, deleting a
section, or accepting a distiller amendment changes the odds measurably.

Besides the defects, an answer has *habits* (``habits.py``): ways of writing code the
distiller's features see, each failing the rig at a documented rate. ``decide`` draws both;
``Decision.viable`` is "no defect and no biting habit". It also draws the Prime's *breeding
defects* (``breeding.py``), which the rig cannot see until the Prime is asked to breed: they
never change ``viable``, and its *hidden violations* (``hidden.py``): spec breaks only a
sealed vector, an examiner probe or a red-team probe catches; they never change ``viable``
either.

A per-generation latent *diligence* (careless or careful) shifts every defect up or down
and, independently of the defects, shapes the code style (specific exceptions, type hints,
monotonic clock...). It gives the distiller real signal: style features that correlate with
viability. Spec phrases asking for those habits make the careless draw rarer.

Decisions are made with *common random numbers*: the uniform draw for defect ``d`` depends
only on ``(seed, generation, d)``, never on the spec. Two spec variants run with the same
seeds therefore differ only where their probabilities differ, which makes comparisons
between variants (evolution, benchmarks) far less noisy.

``README.md`` beside this file is the human-readable table of this model; keep them in step
(``tests/sim/test_sim_provider.py`` checks the table lists every kind).
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Literal, Mapping

from core.llm.sim import breeding as br
from core.llm.sim import habits as hb
from core.llm.sim import hidden as hd
from core.llm.sim.rules import Rule, RuleKind  # noqa: F401 - re-exported
from core.llm.sim.specinfo import GENERATION_TOKEN, SpecInfo


@dataclass(frozen=True)
class DefectKind:
    name: str
    stage: str  # rig stage at which the artifact fails: build | test | start | health
    base: float
    summary: str
    rules: tuple[Rule, ...]
    applies: Callable[[SpecInfo], bool] = lambda spec: True
    # Words in rig diagnostics that point at this defect (used by informed retries).
    signature: str = ""
    order: int = 0  # rig order inside a stage (lower is hit first)


# --- applicability helpers ------------------------------------------------------------


def _health_vectors(spec: SpecInfo):
    return [v for v in spec.vectors if v.method == "GET" and v.path == spec.health_path]


def _mentions_generation(spec: SpecInfo) -> bool:
    def walk(x) -> bool:
        if x == GENERATION_TOKEN:
            return True
        if isinstance(x, dict):
            return any(walk(v) for v in x.values())
        if isinstance(x, list):
            return any(walk(v) for v in x)
        return False

    return any(walk(v.expect.body) or walk(v.expect.body_contains) for v in spec.vectors)


def _has_error_vector(spec: SpecInfo) -> bool:
    return any(400 <= v.expect.status < 500 for v in spec.vectors)


def _has_keys_vector(spec: SpecInfo) -> bool:
    return any(v.expect.body_has_keys and v.expect.status < 400 for v in spec.vectors)


def _has_health_body(spec: SpecInfo) -> bool:
    return any(
        (v.expect.body_contains or (v.expect.has_body and isinstance(v.expect.body, dict)))
        for v in _health_vectors(spec)
    )


# --- the catalogue ----------------------------------------------------------------------

IMPL = r"implementation requirements?"
CONTRACT = r"http contract|\bcontract\b|endpoints|\bapi\b"
TESTING = r"\btest"


def _keys_in_prose(spec: SpecInfo) -> bool:
    """Every key that a vector requires (body_has_keys) is named in the prose."""
    keys = {k for v in spec.vectors + spec.contracts for k in (v.expect.body_has_keys or ())}
    return bool(keys) and all(re.search(re.escape(k), spec.prose) for k in keys)


def _vector_bodies_in_prose(spec: SpecInfo) -> bool:
    """The prose spells out the health answer: a key: value pair of its body."""
    for v in _health_vectors(spec):
        wanted = dict(v.expect.body_contains or {})
        if isinstance(v.expect.body, dict):
            wanted.update(v.expect.body)
        for key, value in wanted.items():
            if isinstance(value, str) and value != GENERATION_TOKEN:
                rx = rf"""["']?{re.escape(str(key))}["']?\s*:\s*["']{re.escape(value)}["']"""
                if re.search(rx, spec.prose):
                    return True
    return False


CATALOGUE: tuple[DefectKind, ...] = (
    DefectKind(
        name="syntax_error",
        stage="build",
        base=0.02,
        summary="one module has a syntax error (a dropped colon or bracket); "
        "`python -m compileall` fails",
        rules=(
            Rule("phrase", r"compileall|must (parse|compile)|syntax", 0.5,
                 "says the code must compile"),
            Rule("section", IMPL, 0.5, "has an Implementation Requirements section"),
            Rule("phrase", r"\b(terse|as short as possible|minimal code|be brief)\b", 1.8,
                 "asks for terse code"),
        ),
        signature=r"SyntaxError|compileall|syntax",
    ),
    DefectKind(
        name="collection_error",
        stage="test",
        base=0.01,
        summary="a test module imports a helper that does not exist; pytest reports a "
        "collection error",
        rules=(
            Rule("no-section", TESTING, 2.0, "no Testing section"),
            Rule("phrase", r"pytest-aiohttp|aiohttp_client|aiohttp\.test_utils|TestClient", 0.5,
                 "names the test client to use"),
        ),
        signature=r"ERROR collecting|collection|ImportError|cannot import|No module named",
        order=0,
    ),
    DefectKind(
        name="async_test_config",
        stage="test",
        base=0.12,
        summary="async tests without `asyncio_mode = auto` in pytest.ini; pytest fails every "
        "async test",
        rules=(
            Rule("phrase", r"asyncio_mode", 0.1, "names asyncio_mode"),
            Rule("phrase", r"pytest\.ini", 0.7, "asks for a pytest.ini"),
            Rule("no-section", TESTING, 1.5, "no Testing section"),
        ),
        signature=r"async def functions are not natively supported|asyncio|coroutine",
        order=1,
    ),
    DefectKind(
        name="failing_test",
        stage="test",
        base=0.015,
        summary="one unit test asserts a wrong expected value; pytest reports a failure",
        rules=(
            Rule("no-section", TESTING, 2.5, "no Testing section"),
            Rule("phrase", r"tests? (must|should) pass|all tests pass|your tests pass|run the tests",
                 0.6, "says the tests must pass"),
            Rule("phrase", r"\bexact\b.{0,40}\b(assert|value|expect)", 0.75,
                 "asks for exact assertions"),
        ),
        signature=r"AssertionError|assert |failed",
        order=2,
    ),
    DefectKind(
        name="missing_package",
        stage="start",
        base=0.03,
        summary="the entry module imports a package that is not in the rig image "
        "(uvloop, python-dotenv, prometheus_client); the start fails with ModuleNotFoundError",
        rules=(
            Rule("no-section", IMPL, 6.0, "no Implementation Requirements section"),
            Rule("phrase", r"(only|no other)\b.{0,60}\b(packages?|librar(y|ies)|dependenc)", 0.5,
                 "restricts the packages to use"),
            Rule("phrase", r"==\d", 0.6, "pins package versions"),
            Rule("phrase", r"\b(uvloop|orjson|ujson|fastapi|flask|dotenv)\b", 1.5,
                 "names a package that is not installed"),
        ),
        signature=r"ModuleNotFoundError|No module named|ImportError",
        order=0,
    ),
    DefectKind(
        name="blocking_startup",
        stage="start",
        base=0.04,
        summary="start-up waits in a blocking time.sleep loop before binding; the readiness "
        "timeout expires",
        rules=(
            Rule("phrase",
                 r"(start|ready|listen|serv|port)[\w-]*\b.{0,60}\b(within|under|less than)\b.{0,20}"
                 r"(\d+|one|two|three|five|ten|a)\s*(s\b|sec|ms\b|milli)",
                 0.35, "sets a start-up deadline"),
            Rule("phrase", r"(must not|never|do not|don't)\s+(block|sleep)|non-blocking|blocking call", 0.5,
                 "forbids blocking calls"),
            Rule("no-section", IMPL, 3.0, "no Implementation Requirements section"),
        ),
        signature=r"timed? ?out|timeout|readiness|ready",
        order=1,
    ),
    DefectKind(
        name="wrong_port",
        stage="start",
        base=0.04,
        summary="listens on a hard-coded wrong port (off by one, or 8080) and ignores PORT; "
        "readiness never succeeds",
        rules=(
            Rule("phrase", r"\bport\b.{0,100}\benv(ironment)?\b|\benv(ironment)?\b.{0,40}\bport\b",
                 0.4, "says to read the port from the environment"),
            Rule("phrase", r"(listen|serve|bind)\w*\b.{0,60}\bport\b", 0.5,
                 "says which port to listen on"),
            Rule("no-section", IMPL, 2.0, "no Implementation Requirements section"),
        ),
        signature=r"port|listen|readiness|ready|connection refused",
        order=2,
    ),
    DefectKind(
        name="health_body",
        stage="health",
        base=0.04,
        summary='the health endpoint answers a different body (e.g. {"status": "healthy"})',
        rules=(
            Rule("custom", "health body spelled out", 0.3, 'spells out the health answer',
                 check=_vector_bodies_in_prose),
            Rule("no-section", CONTRACT, 2.5, "no HTTP contract section"),
        ),
        applies=_has_health_body,
        signature=r"health|status",
        order=0,
    ),
    DefectKind(
        name="health_generation",
        stage="health",
        base=0.06,
        summary="the health body omits `generation`, reads the wrong variable or answers a "
        "string, so the $GENERATION vector fails",
        rules=(
            Rule("phrase", r"CAMBRIAN_GENERATION", 0.2, "names CAMBRIAN_GENERATION"),
            Rule("phrase", r"generation.{0,80}(integer|\bint\b|number)", 0.7,
                 "says generation is an integer"),
            Rule("no-section", CONTRACT, 2.0, "no HTTP contract section"),
        ),
        applies=_mentions_generation,
        signature=r"generation|health",
        order=1,
    ),
    DefectKind(
        name="error_status",
        stage="health",
        base=0.06,
        summary="an invalid request (an unsafe path, a missing parameter, an unknown path) "
        "is answered 200 or with the wrong 4xx",
        rules=(
            Rule("phrase", r"(reject|refuse)\w*\b.{0,60}(unsafe|\.\.|absolute|invalid)|unsafe-path|"
                 r"missing\b.{0,40}\bis a 4\d\d", 0.35, "says what to reject"),
            Rule("phrase", r"\b4(00|22)\b", 0.7, "names the error status"),
            Rule("no-section", CONTRACT, 2.5, "no HTTP contract section"),
        ),
        applies=_has_error_vector,
        signature=r"status|400|404|422|unsafe",
        order=2,
    ),
    DefectKind(
        name="missing_keys",
        stage="health",
        base=0.05,
        summary="a JSON answer lacks one of the keys a vector requires (body_has_keys)",
        rules=(
            Rule("custom", "keys named in prose", 0.35, "names every required key",
                 check=_keys_in_prose),
            Rule("phrase", r"(all|every) (of )?(the )?(keys|fields)", 0.6, "asks for every key"),
            Rule("no-section", CONTRACT, 2.5, "no HTTP contract section"),
        ),
        applies=_has_keys_vector,
        signature=r"key|missing",
        order=3,
    ),
)

KINDS: dict[str, DefectKind] = {d.name: d for d in CATALOGUE}
STAGE_ORDER = {"build": 0, "test": 1, "start": 2, "health": 3}
# Where a biting habit fails among the defects of its stage (the order the rig meets them:
# start: the import, the pid file, warm_up, the PORT read, the start-up hooks, readiness;
# health: the middleware fails the health endpoint itself, before any vector).
HABIT_ORDER = {"hardcoded_path": 0.5, "unchecked_env": 1.5, "blocking_async": 1.7,
               "unchecked_input": -1, "swallowed_exception": 2.5}

# Phrases that make the careless draw rarer (each x0.7 on P(careless), floor 0.1).
DILIGENCE_RULES: tuple[Rule, ...] = (
    Rule("phrase", r"type (hints?|annotations?)|annotate", 0.7, "asks for type annotations"),
    Rule("phrase", r"specific exceptions?|bare\s*`?except|except Exception", 0.7,
         "asks for specific exception handling"),
    Rule("phrase", r"monotonic", 0.7, "asks for a monotonic clock"),
    Rule("phrase", r"(lazy|%-?style|structured) (formatting|logging)|f-strings? in log", 0.7,
         "asks for proper logging"),
    Rule("phrase", r"meaningful assert|trivial assert|assert(ion)?s? (that|which) check", 0.7,
         "asks for meaningful assertions"),
)
CARELESS_BASE = 0.5
CARELESS_SHIFT = 0.4  # careless: p x 1.4, careful: p x 0.6 (marginal unchanged at q=0.5)
P_MAX = 0.95

REFERENCE_CHECKS = 13  # spec/prime.md: 12 vectors + 1 spec-contract
MODEL_FACTORS = {"sim-1": 1.0, "sim-1-lite": 1.6, "sim-1-pro": 0.6}

# Retry behaviour (informed retry fixes what the diagnostics name).
P_FIX_NAMED = 0.92
P_KEEP_OTHER = 0.75
P_NEW_ON_RETRY = 0.25  # x p: a retry can introduce a fresh mistake


def model_factor(model: str) -> float:
    return MODEL_FACTORS.get(model, 1.0)


def careless_probability(spec: SpecInfo) -> float:
    key = ("careless",)
    if key not in spec.memo:
        spec.memo[key] = _careless_probability(spec)
    return spec.memo[key]


def _careless_probability(spec: SpecInfo) -> float:
    q = CARELESS_BASE
    for rule in DILIGENCE_RULES:
        if rule.fires(spec):
            q *= rule.factor
    return max(0.1, q)


def complexity_factor(spec: SpecInfo) -> float:
    """Bigger contracts mean more chances to slip: sqrt(checks / REFERENCE_CHECKS), clamped.
    Counted on the acceptance vectors and spec-contract blocks, which mutations cannot touch."""
    checks = len(spec.vectors) + len(spec.contracts)
    if checks == 0:
        return 1.0
    return min(1.5, max(0.4, (checks / REFERENCE_CHECKS) ** 0.5))


def raw_probability(kind: DefectKind, spec: SpecInfo, model: str = "sim-1") -> float:
    """base x rule factors x complexity x model factor (before the diligence latent)."""
    key = ("raw", kind.name, model)
    if key not in spec.memo:
        spec.memo[key] = _raw_probability(kind, spec, model)
    return spec.memo[key]


def _raw_probability(kind: DefectKind, spec: SpecInfo, model: str) -> float:
    if not kind.applies(spec):
        return 0.0
    p = kind.base
    for rule in kind.rules:
        if rule.fires(spec):
            p *= rule.factor
    return min(P_MAX, p * complexity_factor(spec) * model_factor(model))


def conditional_probability(p: float, careless: bool) -> float:
    return min(P_MAX, p * (1 + CARELESS_SHIFT if careless else 1 - CARELESS_SHIFT))


def probabilities(spec: SpecInfo, model: str = "sim-1") -> dict[str, float]:
    """Marginal probability of each defect kind for this spec (latent averaged out)."""
    q = careless_probability(spec)
    out = {}
    for kind in CATALOGUE:
        p = raw_probability(kind, spec, model)
        out[kind.name] = q * conditional_probability(p, True) + (1 - q) * conditional_probability(p, False)
    return out


def expected_viability(spec: SpecInfo, model: str = "sim-1") -> float:
    """P(no defect and no biting habit), the viability the rig should measure for attempt 0.
    (Habits are independent of the diligence latent and of the defects.)"""
    q = careless_probability(spec)
    total = 0.0
    for careless, weight in ((True, q), (False, 1 - q)):
        prod = 1.0
        for kind in CATALOGUE:
            prod *= 1 - conditional_probability(raw_probability(kind, spec, model), careless)
        total += weight * prod
    for habit in hb.CATALOGUE:
        total *= 1 - hb.bite_probability(habit, spec, model_factor(model))
    return total


def explain(spec: SpecInfo, model: str = "sim-1") -> list[dict]:
    """Per defect: base, the rules that fired, and the final marginal probability; then per
    habit the same, with ``bite`` (P(biting form)) and ``p_fail`` (P(it fails the rig))."""
    marg = probabilities(spec, model)
    rows = []
    for kind in CATALOGUE:
        rows.append(
            {
                "defect": kind.name,
                "kind": "defect",
                "stage": kind.stage,
                "applies": kind.applies(spec),
                "base": kind.base,
                "fired": [f"{r.why} (x{r.factor:g})" for r in kind.rules if r.fires(spec)],
                "p": round(marg[kind.name], 4),
                "p_fail": round(marg[kind.name], 4),
            }
        )
    for habit in hb.CATALOGUE:
        p = hb.probability(habit, spec, model_factor(model))
        rows.append(
            {
                "defect": habit.name,
                "kind": "habit",
                "stage": habit.stage,
                "applies": True,
                "base": habit.base,
                "fired": [f"{r.why} (x{r.factor:g})" for r in habit.rules if r.fires(spec)],
                "p": round(p, 4),
                "bite": habit.bite if habit.can_bite(spec) else 0.0,
                "p_fail": round(hb.bite_probability(habit, spec, model_factor(model)), 4),
            }
        )
    return rows


# --- seeded decisions -------------------------------------------------------------------


def _uniform(*key: object) -> float:
    """A uniform in [0, 1) fixed by the key (stable across processes and platforms)."""
    digest = hashlib.sha256("|".join(map(str, key)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def rng_for(*key: object) -> random.Random:
    return random.Random("|".join(map(str, ("sim",) + key)))


@dataclass
class Decision:
    careless: bool
    defects: frozenset[str]
    probabilities: dict[str, float] = field(default_factory=dict)
    fixed: frozenset[str] = frozenset()  # retries: named defects (and habits) that were fixed
    kept: frozenset[str] = frozenset()  # retries: defects (and habits) carried over from the failed attempt
    habits: dict[str, bool] = field(default_factory=dict)  # present habits -> True when in biting form
    breeding: frozenset[str] = frozenset()  # breeding defects: only reproduction reveals them
    hidden: frozenset[str] = frozenset()  # hidden violations: only a hidden layer catches them

    @property
    def bites(self) -> frozenset[str]:
        """The habits in their biting form (each one fails the rig)."""
        return frozenset(name for name, bites in self.habits.items() if bites)

    @property
    def failures(self) -> frozenset[str]:
        """Everything that makes the rig fail: defects and biting habits."""
        return self.defects | self.bites

    @property
    def viable(self) -> bool:
        return not self.failures


def decide_careless(spec: SpecInfo, seed: int, generation: int) -> bool:
    return _uniform("careless", seed, generation) < careless_probability(spec)


def habit_probabilities(spec: SpecInfo, model: str = "sim-1") -> dict[str, float]:
    """P(habit) per habit for this spec and model (see ``habits.py``)."""
    return {h.name: hb.probability(h, spec, model_factor(model)) for h in hb.CATALOGUE}


def _bites(name: str, spec: SpecInfo, *key: object) -> bool:
    habit = hb.HABITS[name]
    return habit.can_bite(spec) and _uniform(*key) < habit.bite


def decide(
    spec: SpecInfo,
    seed: int,
    generation: int,
    attempt: int = 0,
    model: str = "sim-1",
    previous: Iterable[str] | None = None,
    named: Iterable[str] = (),
    previous_habits: Mapping[str, bool] | None = None,
    previous_breeding: Iterable[str] | None = None,
    previous_hidden: Iterable[str] | None = None,
) -> Decision:
    """The defects and habits of one answer.

    ``attempt == 0`` (or no knowledge of the failed attempt): defect ``d`` is present when
    ``U(seed, generation, d) < p_d`` — common random numbers across spec variants; habit
    ``h`` likewise with ``U("habit", ...)``, in its biting form when ``U("bite", ...)`` is
    below the habit's bite rate.

    A retry starts from ``previous`` (the defects of the failed attempt, read from its files
    or re-derived) and ``previous_habits``: each defect or habit the diagnostics name is
    fixed with probability ``P_FIX_NAMED``, each other one stays (a habit in the same form)
    with ``P_KEEP_OTHER``, and an absent one appears with probability ``P_NEW_ON_RETRY x p``.

    Breeding defects (``breeding.py``) are drawn alongside with ``U("breeding", ...)``; a
    retry treats them like unnamed defects (no diagnostic can name them), starting from
    ``previous_breeding``. Hidden violations (``hidden.py``) likewise, with ``U("hidden", ...)``
    and ``previous_hidden``.
    """
    careless = decide_careless(spec, seed, generation)
    probs = {
        k.name: conditional_probability(raw_probability(k, spec, model), careless) for k in CATALOGUE
    }
    hprobs = habit_probabilities(spec, model)
    first = frozenset(n for n, p in probs.items() if _uniform("defect", seed, generation, n) < p)
    first_habits = {
        n: _bites(n, spec, "bite", seed, generation, n)
        for n, p in hprobs.items() if _uniform("habit", seed, generation, n) < p
    }
    bprobs = br.probabilities(spec, model_factor(model))
    first_breeding = frozenset(n for n, p in bprobs.items() if _uniform("breeding", seed, generation, n) < p)
    hidden_probs = hd.probabilities(spec, model_factor(model))
    first_hidden = frozenset(n for n, p in hidden_probs.items() if _uniform("hidden", seed, generation, n) < p)
    if attempt <= 0:
        return Decision(careless, first, probs, habits=first_habits, breeding=first_breeding,
                        hidden=first_hidden)
    prev = frozenset(previous) if previous is not None else first
    prev_h = dict(previous_habits) if previous_habits is not None else first_habits
    named = frozenset(named)
    present: set[str] = set()
    fixed: set[str] = set()
    kept: set[str] = set()
    for name, p in probs.items():
        u = _uniform("retry", seed, generation, attempt, name)
        if name in prev:
            if name in named:
                if u >= P_FIX_NAMED:
                    present.add(name)
                else:
                    fixed.add(name)
            elif u < P_KEEP_OTHER:
                present.add(name)
                kept.add(name)
        elif u < P_NEW_ON_RETRY * p:
            present.add(name)
    habits: dict[str, bool] = {}
    for name, p in hprobs.items():
        u = _uniform("habit-retry", seed, generation, attempt, name)
        if name in prev_h:
            if name in named:
                if u >= P_FIX_NAMED:
                    habits[name] = prev_h[name]
                else:
                    fixed.add(name)
            elif u < P_KEEP_OTHER:
                habits[name] = prev_h[name]
                kept.add(name)
        elif u < P_NEW_ON_RETRY * p:
            habits[name] = _bites(name, spec, "bite-retry", seed, generation, attempt, name)

    def unnamed(stream: str, probs_of: dict[str, float], prev: frozenset[str]) -> frozenset[str]:
        """A retry of mistakes no diagnostic names: kept at random, or new at random."""
        out: set[str] = set()
        for name, p in probs_of.items():
            u = _uniform(stream, seed, generation, attempt, name)
            if name in prev:
                if u < P_KEEP_OTHER:
                    out.add(name)
                    kept.add(name)
            elif u < P_NEW_ON_RETRY * p:
                out.add(name)
        return frozenset(out)

    breeding = unnamed("breeding-retry", bprobs,
                       frozenset(previous_breeding) if previous_breeding is not None else first_breeding)
    hidden = unnamed("hidden-retry", hidden_probs,
                     frozenset(previous_hidden) if previous_hidden is not None else first_hidden)
    return Decision(careless, frozenset(present), probs, frozenset(fixed), frozenset(kept), habits,
                    breeding, hidden)


def first_failure(failures: Iterable[str]) -> str | None:
    """The defect or biting habit the rig reports first (stages run in order; within one,
    by ``order``)."""
    keyed = []
    for name in failures:
        if name in KINDS:
            keyed.append(((STAGE_ORDER[KINDS[name].stage], KINDS[name].order), name))
        elif name in hb.HABITS:
            h = hb.HABITS[name]
            keyed.append(((STAGE_ORDER[h.stage], HABIT_ORDER[name]), name))
    return min(keyed)[1] if keyed else None


def failure_stage(name: str) -> str:
    """The rig stage at which a defect or a biting habit fails."""
    return KINDS[name].stage if name in KINDS else hb.HABITS[name].stage

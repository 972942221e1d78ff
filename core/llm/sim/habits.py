"""The sim's coding habits: ways of writing code that a model falls into, that the
distiller's features can see, and that cause real rig failures at a documented rate.

A habit is drawn per answer, with a probability the spec's prose lowers when it names the
habit (the way a real model follows guidance). A present habit always shows in the code
(the distiller's libcst feature in ``Habit.feature`` sees it); with probability
``Habit.bite`` it takes its *biting* form, which the rig catches at ``Habit.stage``, else
its harmless form (the same habit in a place where nothing goes wrong). Where a template has
no biting form (``bites_in``), the habit is always harmless there.

Draws use common random numbers, like the defects: habit ``h`` is present when
``U("habit", seed, draw, h) < p_h(spec)`` and bites when ``U("bite", seed, draw, h) <
bite``, so a spec that names a habit keeps exactly the subset of the habit's occurrences
that a spec that does not name it has.

``README.md`` beside this file holds the table of habits and their rates; keep them in step
(``tests/sim/test_sim_provider.py`` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.llm.sim.rules import Rule
from core.llm.sim.specinfo import SpecInfo, template_kind

# A habit's probability is capped here (a model never has a habit for sure).
H_MAX = 0.9


@dataclass(frozen=True)
class Habit:
    name: str
    feature: str  # the distiller feature (core/distill/features.py) that sees it
    base: float  # P(habit) for a spec that names none of it (before the model factor)
    bite: float  # P(biting form | habit), where the template has one
    stage: str  # rig stage at which the biting form fails
    summary: str  # what the biting form does
    harmless: str  # what the harmless form does
    rules: tuple[Rule, ...]  # phrases that lower the habit
    bites_in: tuple[str, ...] = ("prime", "echo", "generic")
    signature: str = ""  # words in rig diagnostics that point at the biting form

    def can_bite(self, spec: SpecInfo) -> bool:
        return template_kind(spec) in self.bites_in


def _rule(pattern: str, factor: float, why: str) -> Rule:
    return Rule("phrase", pattern, factor, why)


def _no_section(pattern: str, factor: float, why: str) -> Rule:
    return Rule("no-section", pattern, factor, why)


IMPL = r"implementation requirements?"
CONTRACT = r"http contract|\bcontract\b|endpoints|\bapi\b"


CATALOGUE: tuple[Habit, ...] = (
    Habit(
        name="swallowed_exception",
        feature="swallowed_exception",
        base=0.6,
        bite=0.92,
        stage="health",
        summary="Prime: `/parse` wraps the parser in `except Exception: pass` and answers 200 "
        "with no files, so the unsafe-path and reserved-path vectors (422) fail; Echo: "
        "`/reverse` swallows the missing-parameter KeyError and reverses \"\", so the 400 "
        "vector fails",
        harmless="`env_int` in config.py swallows the ValueError with `pass` and falls back "
        "to the default",
        rules=(
            _rule(r"swallow\w*|silenc\w+\b.{0,40}\b(errors?|exceptions?)|except\b[^\n]{0,30}:\s*`?\s*pass\b"
                  r"|(never|do not|don't)\s+(hide|ignore|silence|swallow)\b.{0,30}(errors?|exceptions?)"
                  r"|re-?raise", 0.12, "says not to swallow exceptions"),
            _rule(r"specific exceptions?|bare\s*`?except|catch\s*`?(Base)?Exception|broad except", 0.5,
                  "asks for specific exception handling"),
        ),
        bites_in=("prime",),
        signature=r"unsafe-path|reserved-path|\b422\b|\b400\b|status",
    ),
    Habit(
        name="unchecked_env",
        feature="unchecked_env_read",
        base=0.06,
        bite=0.8,
        stage="start",
        summary="`__main__` reads `int(os.environ[\"PORT\"])`; the rig sets no PORT, so the "
        "service dies with KeyError before it listens",
        harmless="`__main__` logs `os.environ[\"CAMBRIAN_GENERATION\"]` (the rig sets it)",
        rules=(
            _rule(r"os\.environ\.get|os\.getenv|environ\[|never index\b.{0,20}environ|KeyError"
                  r"|environment variables?\b.{0,60}\b(with|and|have) (a |its )?(documented )?default",
                  0.2, "says how to read environment variables safely"),
            _no_section(IMPL, 2.5, "no Implementation Requirements section"),
        ),
        signature=r"KeyError|PORT|environ",
    ),
    Habit(
        name="blocking_async",
        feature="blocking_in_async",
        base=0.1,
        bite=0.85,
        stage="start",
        summary="an `async` start-up hook checks PyPI with `urllib.request.urlopen`; with no "
        "network the hook raises and the service exits before it listens",
        harmless="an `async` start-up hook reads the README with a plain `open()`",
        rules=(
            _rule(r"block\w*\b.{0,30}\b(inside|in)\b.{0,10}`?async|never block|asyncio\.to_thread"
                  r"|run_in_executor|non-blocking|blocks? the event loop", 0.2,
                  "says not to block the event loop"),
            _rule(r"(start|serve)\w*\b.{0,80}\b(no|without)\b.{0,20}network|nothing outside the process",
                  0.6, "says start-up needs no network"),
            _no_section(IMPL, 2.0, "no Implementation Requirements section"),
        ),
        signature=r"URLError|urlopen|Name or service|network|resolution|unreachable",
    ),
    Habit(
        name="hardcoded_path",
        feature="hardcoded_abs_path",
        base=0.05,
        bite=0.75,
        stage="start",
        summary="`main()` writes a pid file under a hard-coded `/var/lib/<package>`; the rig's "
        "root is read-only, so the service dies with PermissionError/OSError before it listens",
        harmless="the pid file goes to a hard-coded `/tmp/<package>` (writable in the rig)",
        rules=(
            _rule(r"hard-?cod\w*\b.{0,40}\bpaths?|absolute (file ?system )?paths?|tmp_path"
                  r"|paths? (from|in) (the )?(configuration|environment|settings)", 0.2,
                  "says not to hard-code paths"),
            _no_section(IMPL, 2.5, "no Implementation Requirements section"),
        ),
        signature=r"PermissionError|Read-only|read-only|/var/lib|OSError",
    ),
    Habit(
        name="unchecked_input",
        feature="unchecked_input",
        base=0.3,
        bite=0.9,
        stage="health",
        summary="the request middleware logs `request.headers[\"User-Agent\"]`; the test client "
        "sends one, the rig's probes do not, so every probe gets a 500",
        harmless="the middleware logs `request.headers[\"Host\"]` (always sent)",
        rules=(
            _rule(r"validat\w*\b.{0,40}\b(input|requests?|boundary|headers?|parameters?|fields?)"
                  r"|at the boundary", 0.3, "asks to validate input"),
            _rule(r"(missing|absent|without)\b.{0,40}\b(headers?|parameters?|fields?|keys?|`?text`?)\b.{0,60}\b4\d\d",
                  0.5, "says what a missing input answers"),
            _no_section(CONTRACT, 2.5, "no HTTP contract section"),
        ),
        signature=r"\b500\b|Internal Server Error|KeyError",
    ),
)

HABITS: dict[str, Habit] = {h.name: h for h in CATALOGUE}


def probability(habit: Habit, spec: SpecInfo, model_factor: float = 1.0) -> float:
    """P(habit) for this spec: base x factors of the rules that fire x complexity x model
    factor (a bigger contract is more code to fall into a habit in)."""
    from core.llm.sim.defects import complexity_factor

    key = ("habit", habit.name, model_factor)
    if key not in spec.memo:
        p = habit.base
        for rule in habit.rules:
            if rule.fires(spec):
                p *= rule.factor
        spec.memo[key] = min(H_MAX, p * complexity_factor(spec) * model_factor)
    return spec.memo[key]


def bite_probability(habit: Habit, spec: SpecInfo, model_factor: float = 1.0) -> float:
    """P(the habit bites) = P(habit) x P(biting form), 0 where the template has no bite."""
    if not habit.can_bite(spec):
        return 0.0
    return probability(habit, spec, model_factor) * habit.bite

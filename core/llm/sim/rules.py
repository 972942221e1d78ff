"""Spec rules: the phrases and sections of a spec that move the sim's probabilities."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Literal

from core.llm.sim.specinfo import SpecInfo

RuleKind = Literal["phrase", "no-phrase", "section", "no-section", "custom"]


@dataclass(frozen=True)
class Rule:
    """``phrase``: fires when the regex matches the prose; ``no-phrase`` when it does not.
    ``section``/``no-section``: when a ``##`` heading matching the regex exists / does not."""

    kind: RuleKind
    pattern: str
    factor: float
    why: str
    check: Callable[[SpecInfo], bool] | None = None  # ``custom`` rules

    def fires(self, spec: SpecInfo) -> bool:
        if self.kind == "custom":
            return bool(self.check and self.check(spec))
        if self.kind in ("phrase", "no-phrase"):
            hit = re.search(self.pattern, spec.prose, re.I | re.S) is not None
            return hit if self.kind == "phrase" else not hit
        hit = spec.has_section(self.pattern)
        return hit if self.kind == "section" else not hit

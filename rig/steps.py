"""The typed record of one rig step, as every backend hands it to the verdict.

Steps are the facts a backend collected (exit codes through the Docker API, trusted runner
output); ``orchestrator.assemble`` alone turns them into a verdict. The in-sandbox runner
(stdlib only) sends the same fields as JSON; :meth:`Step.from_wire` reads them.

Names: build, gate, test, results, smoke, start, health, teardown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STEP_NAMES = ("build", "gate", "test", "results", "smoke", "start", "health", "teardown")


@dataclass
class Step:
    name: str
    ok: bool
    duration_ms: int = 0
    exit_code: int | None = None
    timed_out: bool = False
    oom: bool = False
    maybe_oom: bool = False        # exit 137 where no cgroup view could confirm an OOM kill
    rig_error: str | None = None   # the step's own plumbing failed (not the organism)
    signal: int | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    output_bytes: int = 0
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "Step":
        """From a runner's JSON step (unknown keys are ignored; types are enforced)."""
        def opt_int(v: Any) -> int | None:
            return v if isinstance(v, int) and not isinstance(v, bool) else None

        data = d.get("data")
        return cls(
            name=str(d.get("name")), ok=bool(d.get("ok")),
            duration_ms=max(0, opt_int(d.get("duration_ms")) or 0),
            exit_code=opt_int(d.get("exit_code")), timed_out=bool(d.get("timed_out")),
            oom=bool(d.get("oom")), maybe_oom=bool(d.get("maybe_oom")),
            rig_error=str(d["rig_error"]) if d.get("rig_error") else None,
            signal=opt_int(d.get("signal")),
            stdout_tail=str(d.get("stdout_tail") or ""), stderr_tail=str(d.get("stderr_tail") or ""),
            output_bytes=max(0, opt_int(d.get("output_bytes")) or 0),
            data=data if isinstance(data, dict) else {},
        )

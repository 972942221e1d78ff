"""What the inspector's Layers tab shows: every hidden probe layer that judged a generation
(sealed vectors, the dual-blind examiner's probes, the red team's probes), each probe with
its request, what the spec expects and what the artifact answered.

Pure: ``reads.generation_detail`` hands in the stored report and the expectations the rig
was given (the sealed vectors from the stored spec, the examiner's probe set with its
suspect/dismissed flags); the red team's block carries its own. People may read all of it:
only the writer never does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

LAYER_SHORT = {"sealed": "sealed", "examiner": "examiner", "redteam": "red team"}
LAYER_TITLES = {"sealed": "Sealed vectors", "examiner": "Examiner (Layer 2)", "redteam": "Red team (Layer 3)"}


@dataclass(frozen=True)
class LayerProbe:
    layer: str        # sealed | examiner | redteam
    name: str
    request: str      # "POST /echo"
    body: str         # the request body, compact ("" when none)
    expected: str     # "200, body contains {...}"
    actual: str       # "404" / "connection refused" / "not run"
    passed: bool | None  # None: not run
    error: str = ""
    body_excerpt: str = ""
    note: str = ""    # the spec sentence relied on; suspect / dismissed flags
    suspect: bool = False
    dismissed: bool = False


@dataclass(frozen=True)
class LayerView:
    kind: str
    mode: str         # gate | score | off | … as the report's `verification` says
    passed: int
    total: int
    probes: tuple[LayerProbe, ...]
    note: str = ""    # e.g. the red team's score, or why a layer was unavailable

    @property
    def title(self) -> str:
        return LAYER_TITLES[self.kind]


def _compact(value: Any, limit: int = 160) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def expectation(expect: Mapping[str, Any] | None) -> str:
    """One line for an expectation dict ({status, body?, body_contains?, body_has_keys?})."""
    if not expect:
        return "?"
    parts = [str(expect.get("status", "?"))]
    if expect.get("body") is not None:
        parts.append(f"body = {_compact(expect['body'], 80)}")
    if expect.get("body_contains") is not None:
        parts.append(f"body ⊇ {_compact(expect['body_contains'], 80)}")
    if expect.get("body_has_keys") is not None:
        parts.append("keys " + ", ".join(map(str, expect["body_has_keys"])))
    return ", ".join(parts)


def _actual(result: Mapping[str, Any] | None) -> tuple[str, bool | None]:
    if result is None:
        return "not run", None
    status, err = result.get("status"), result.get("error")
    if status is None:
        return _compact(err or "no answer", 80), bool(result.get("passed"))
    return str(status), bool(result.get("passed"))


def _probe(layer: str, spec: Mapping[str, Any], result: Mapping[str, Any] | None, note: str = "",
           suspect: bool = False, dismissed: bool = False) -> LayerProbe:
    actual, passed = _actual(result)
    return LayerProbe(
        layer=layer, name=str(spec.get("name", "?")),
        request=f"{spec.get('method', 'GET')} {spec.get('path', '?')}", body=_compact(spec.get("body")),
        expected=expectation(spec.get("expect")), actual=actual, passed=passed,
        error=str((result or {}).get("error") or ""), body_excerpt=str((result or {}).get("body_excerpt") or ""),
        note=note, suspect=suspect, dismissed=dismissed)


def layer_views(report: Mapping[str, Any] | None, sealed: list[Mapping[str, Any]],
                examiner: list[Mapping[str, Any]], examiner_flags: Mapping[str, Mapping[str, Any]]
                ) -> tuple[LayerView, ...]:
    """The layers that ran on this report, in the order the rig runs them.

    ``sealed``: the spec's sealed vectors (rig probe dicts). ``examiner``: the probe set the
    report was judged with (probe dicts with ``expect`` and ``relies_on``); ``examiner_flags``:
    per probe name, ``{suspect, dismissed, ran, failed}`` from the spec's evidence."""
    if not report:
        return ()
    health = ((report.get("checks") or {}).get("health") or {})
    policy = report.get("verification") or {}
    out: list[LayerView] = []
    results = {r.get("name"): r for r in health.get("sealed") or []}
    if results or (sealed and policy.get("sealed") not in (None, "off")):
        by_name = {v.get("name"): v for v in sealed}
        probes = [_probe("sealed", by_name.get(name) or {"name": name}, r) for name, r in results.items()]
        # a vector the spec holds that this report never ran (the spec gained it later)
        probes += [_probe("sealed", v, None) for name, v in by_name.items() if name not in results]
        out.append(_view("sealed", policy.get("sealed") or _mode(report, "sealed"), probes))
    results = {r.get("name"): r for r in health.get("examiner") or []}
    if results:
        by_name = {p.get("name"): p for p in examiner}
        probes = []
        for name, r in results.items():
            flags = examiner_flags.get(name) or {}
            note = _compact(by_name.get(name, {}).get("relies_on"), 200)
            if flags.get("dismissed"):
                note = "DISMISSED — stops counting" + (f" · {note}" if note else "")
            elif flags.get("suspect"):
                note = (f"SUSPECT — failed {flags.get('failed')}/{flags.get('ran')} artifacts of this spec"
                        + (f" · {note}" if note else ""))
            probes.append(_probe("examiner", by_name.get(name) or {"name": name}, r, note,
                                 bool(flags.get("suspect")), bool(flags.get("dismissed"))))
        counted = [p for p in probes if not p.dismissed]
        out.append(LayerView("examiner", policy.get("examiner") or _mode(report, "examiner"),
                             sum(1 for p in counted if p.passed), len(counted), tuple(probes)))
    block = report.get("redteam")
    if block:
        probes = [LayerProbe(
            layer="redteam", name=str(p.get("name", "?")), request=f"{p.get('method', 'GET')} {p.get('path', '?')}",
            body=_compact(p.get("body")), expected=expectation(p.get("expected")),
            actual=_actual({**(p.get("actual") or {}), "passed": p.get("passed")})[0],
            passed=bool(p.get("passed")), error=str((p.get("actual") or {}).get("error") or ""),
            body_excerpt=str((p.get("actual") or {}).get("body_excerpt") or ""),
            note=_compact(p.get("relies_on"), 200)) for p in block.get("probes") or []]
        if block.get("unavailable"):
            note = f"no score: {block.get('why') or 'unavailable'}"
        else:
            note = (f"score {block.get('score'):.2f} = 1 − {block.get('confirmed')} confirmed / "
                    f"{block.get('proposed')} proposed")
            if policy.get("redteam_threshold") is not None:
                note += f" · threshold {policy['redteam_threshold']:.2f}"
        mode = policy.get("redteam") or "every"
        if policy.get("redteam_threshold") is not None:
            mode = f"{mode}, gate below {policy['redteam_threshold']:.2f}"
        out.append(LayerView("redteam", mode, sum(1 for p in probes if p.passed), len(probes),
                             tuple(probes), note))
    return tuple(out)


def _mode(report: Mapping[str, Any], kind: str) -> str:
    """Reports written before the policy was stamped: the rig's own record of what it ran."""
    ran = (report.get("layers") or {}).get(kind)
    if isinstance(ran, dict) and "gate" in ran:
        return "gate" if ran["gate"] else "score"
    return "not recorded"


def _view(kind: str, mode: str, probes: list[LayerProbe]) -> LayerView:
    ran = [p for p in probes if p.passed is not None]
    return LayerView(kind, mode, sum(1 for p in ran if p.passed), len(ran), tuple(probes))


def layer_lines(views: tuple[LayerView, ...], number: int) -> list[str]:
    """Plain lines (the TUI's detail pane when no probe is listed; tests read them)."""
    if not views:
        return [f"#{number} ran no hidden layer (no sealed vectors in its spec, the examiner off or "
                "without probes, no red-team run)."]
    out: list[str] = []
    for v in views:
        head = f"{v.title} — {v.mode} — {v.passed}/{v.total} passed"
        out.append(head + (f" · {v.note}" if v.note else ""))
        for p in v.probes:
            mark = "·" if p.passed is None else ("✓" if p.passed else "✗")
            out.append(f"  {mark} {p.name}: {p.request}{(' ' + p.body) if p.body else ''}")
            out.append(f"      expected {p.expected}  → actual {p.actual}")
            if p.passed is False and p.error:
                out.append(f"      {_compact(p.error, 200)}")
            if p.note:
                out.append(f"      {p.note}")
        out.append("")
    return out[:-1]

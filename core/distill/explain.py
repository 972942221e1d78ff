"""What a distill run can and cannot say: the limits of each comparison (why a test could
not run, the smallest p-value its group sizes allow, the campaign size an effect needs),
and a descriptive ranking of the features that is never presented as significant.

The figures are exact (``power.py``: Fisher's test over every possible table). "A lone
finding" means one feature whose Benjamini–Hochberg q must fall below ALPHA among the
``m`` features of the comparison: q = p x m, so p must be below ALPHA / m.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from core.distill import power as P
from core.distill import stats as S

#: The effect a campaign is sized for when nothing better is known: a habit present in 80 %
#: of one group's generations and 20 % of the other's (large, and typical of the sim's habits).
PLANNING_RATES = (0.2, 0.8)  # (group A, group B): e.g. viable, failed
TARGET_POWER = 0.8
RANKED = 5  # rows of the descriptive ranking in the human report


def _descriptive_p(t: S.FeatureTest) -> float:
    return t.p if t.tested and t.p is not None else P.fisher_p(t.a.present, t.a.n, t.b.present, t.b.n)


def _rank_key(t: S.FeatureTest) -> tuple:
    """Largest difference of rates first, then the smaller p-value, then the name."""
    return (-round(abs((t.a.rate or 0.0) - (t.b.rate or 0.0)), 9), round(_descriptive_p(t), 9), t.feature)


def _varying(tests: Sequence[S.FeatureTest]) -> list[S.FeatureTest]:
    """Features present in some and absent from other generations of the comparison."""
    return [t for t in tests if 0 < t.a.present + t.b.present < t.a.n + t.b.n]


def _need(rate_a: float, rate_b: float, share_a: float, alpha: float) -> dict[str, Any]:
    total = P.needed_total(rate_a, rate_b, share_a, alpha, TARGET_POWER)
    out: dict[str, Any] = {"rates": [rate_a, rate_b], "alpha": S.sig(alpha), "power": TARGET_POWER,
                           "total": total, "max_total": P.MAX_TOTAL}
    if total is not None:
        na = max(1, round(total * share_a))
        out["group_sizes"] = [na, total - na]
    return out


def limits(analysis: S.Analysis, values: Mapping[int, Mapping[str, bool]],
           features: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per comparison: the group sizes, whether anything was tested and why not, the
    smallest attainable p-value, and the size an effect needs (planning and observed)."""
    out: dict[str, dict[str, Any]] = {}
    for comp, (ga, gb) in S.COMPARISONS.items():
        na, nb = len(analysis.groups[ga]), len(analysis.groups[gb])
        tests = [t for t in analysis.tests if t.comparison == comp]
        tested = [t for t in tests if t.tested]
        varying = _varying(tests)
        m = len(tested) or len(varying) or 1
        alpha_single = S.ALPHA / m
        entry: dict[str, Any] = {
            "groups": {ga: na, gb: nb}, "tested": bool(tested), "features_tested": len(tested),
            "features_varying": len(varying), "alpha_single": S.sig(alpha_single),
        }
        small = [(g, n) for g, n in ((ga, na), (gb, nb)) if n < S.MIN_GROUP]
        if small:
            entry["reason"] = "; ".join(
                f"the {g} group has {n} generation{'s' if n != 1 else ''}" for g, n in small
            ) + f" (each group needs at least {S.MIN_GROUP})"
        elif not tested:
            entry["reason"] = (f"no feature is present in at least {S.MIN_SUPPORT} and absent from at least "
                               f"{S.MIN_SUPPORT} of the {na + nb} generations")
        entry["min_p"] = P.min_attainable_p(na, nb, S.MIN_SUPPORT) if na and nb else None
        entry["min_p_any"] = P.min_attainable_p(na, nb) if na and nb else None
        best = entry["min_p_any"] if small else entry["min_p"]
        entry["can_be_significant"] = best is not None and best < alpha_single
        share_a = na / (na + nb) if na and nb else 0.5
        entry["share"] = round(share_a, 4)
        entry["detect"] = {"planning": _need(*PLANNING_RATES, share_a, alpha_single)}
        ordered = sorted(varying, key=_rank_key)
        strongest = ordered[0] if ordered else None
        if strongest is not None and abs((strongest.a.rate or 0) - (strongest.b.rate or 0)) >= S.MIN_RATE_DIFF:
            # planned with the observed rates, 0 and 1 read as 5 % and 95 %
            ra, rb = P.clamp_rate(strongest.a.rate or 0), P.clamp_rate(strongest.b.rate or 0)
            entry["detect"]["observed"] = {
                "feature": strongest.feature,
                "counts": {ga: [strongest.a.present, strongest.a.n], gb: [strongest.b.present, strongest.b.n]},
                **_need(ra, rb, share_a, alpha_single)}
        entry["sentence"] = _sentence(comp, ga, gb, entry)
        out[comp] = entry
    return out


def _total(d: dict[str, Any], ga: str, gb: str) -> str:
    if d.get("total") is None:
        return f"more than {d['max_total']} generations"
    a, b = d["group_sizes"]
    return f"about {d['total']} generations ({a} {ga} / {b} {gb})"


def _sentence(comp: str, ga: str, gb: str, e: dict[str, Any]) -> str:
    na, nb = e["groups"][ga], e["groups"][gb]
    head = f"{ga} {na} vs {gb} {nb}"
    parts = []
    if e.get("reason"):
        parts.append(f"not tested: {e['reason']}")
    if na and nb:
        mp = e["min_p_any"] if e.get("reason") and "group" in e["reason"] else e["min_p"]
        if mp is not None:
            parts.append(
                f"the most extreme table these sizes allow has p = {P.fmt_p(mp)}, while a lone finding "
                f"among {max(e['features_tested'], e['features_varying'], 1)} feature(s) needs "
                f"p < {P.fmt_p(e['alpha_single'])}"
                + ("" if e["can_be_significant"] else ": no feature can be significant here"))
    share = "at this campaign's split" if na and nb else "with balanced groups"
    pl = e["detect"]["planning"]
    ra, rb = pl["rates"]
    parts.append(f"to detect a feature in {P.pct(rb)} of {gb} and {P.pct(ra)} of {ga} generations "
                 f"({P.pct(TARGET_POWER)} power) takes {_total(pl, ga, gb)} {share}")
    ob = e["detect"].get("observed")
    if ob:
        (xa, na_), (xb, nb_) = ob["counts"][ga], ob["counts"][gb]
        parts.append(f"the strongest observed difference ({ob['feature']}: {xa}/{na_} {ga} vs {xb}/{nb_} {gb}) "
                     f"would take {_total(ob, ga, gb)}")
    return f"{head}: " + "; ".join(parts) + "."


def ranking(analysis: S.Analysis, values: Mapping[int, Mapping[str, bool]],
            features: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Per comparison, every varying feature ranked by the difference of its rates (then by
    its descriptive p-value). Descriptive only: ``significant`` is the real test's answer,
    and a p-value computed for an untested feature is marked ``descriptive``."""
    out: dict[str, list[dict[str, Any]]] = {}
    for comp, (ga, gb) in S.COMPARISONS.items():
        rows = []
        for t in sorted(_varying([t for t in analysis.tests if t.comparison == comp]), key=_rank_key):
            diff = (t.a.rate or 0.0) - (t.b.rate or 0.0)
            p = _descriptive_p(t)
            _, haldane = S._odds(t.a.present, t.a.n - t.a.present, t.b.present, t.b.n - t.b.present)
            rows.append({
                "feature": t.feature,
                "groups": {ga: t.a.to_json(), gb: t.b.to_json()},
                "difference": S._round(diff),
                "direction": ("helps" if diff > 0 else "hurts") if abs(diff) >= S.MIN_RATE_DIFF else "none",
                "odds_ratio_haldane": S._round(haldane),
                "p": S.sig(p),
                "descriptive": not t.tested,
                "q": S.sig(t.q),
                "significant": t.significant,
            })
        out[comp] = rows
    return out


def headline(report: Any) -> str:
    """What the run says, in one sentence."""
    n = len(report.analysed)
    merged = f" ({len(report.copies)} copies counted once)" if report.copies else ""
    if report.amendments:
        return (f"{len(report.amendments)} amendment(s) proposed from {n} distinct artifacts{merged}: "
                + ", ".join(f"{a.feature} (q={P.fmt_p(a.evidence.get('q') or 1)})" for a in report.amendments))
    if not n:
        return "nothing to analyse yet: no judged generation with Python code"
    features = sorted({t.feature for t in report.significant})
    if features:
        return (f"{len(features)} significant feature(s), no new amendment: "
                + "; ".join(f"{s.feature}: {s.reason}" for s in report.skipped[:2]))
    lim = report.limits.get("viable_vs_failed", {})
    top = (report.ranking.get("viable_vs_failed") or [None])[0]
    lead = f"no code feature differs significantly between viable and failed ({n} distinct artifacts{merged})"
    if lim.get("reason"):
        lead = f"nothing could be tested ({n} distinct artifacts{merged}): {lim['reason']}"
    extra = ""
    if top is not None:
        extra = (f"; strongest (not significant): {top['feature']} {top['direction']} "
                 f"(p={P.fmt_p(top['p'])}{' descriptive' if top['descriptive'] else ''})")
    ob = lim.get("detect", {}).get("observed")
    size = ""
    if ob and top is not None and ob["feature"] == top["feature"]:
        size = (f"; about {ob['total']} generations would detect a difference that size"
                if ob.get("total") is not None
                else f"; even {ob['max_total']} generations would not detect a difference that size")
    return lead + extra + size

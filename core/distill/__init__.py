"""The distiller (DESIGN §10): from the code of a campaign's generations back to its spec.

``distill_campaign`` extracts libcst features from every Python file of every generation,
compares viable with failed generations (and the top with the bottom half of the viable
ones), and stores a pending amendment for every feature that is significant after the
Benjamini–Hochberg correction. ``accept_amendment`` / ``reject_amendment`` /
``distill_preview`` are the review actions. See ``README.md`` in this folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.distill import explain as E
from core.distill import features as F
from core.distill import stats as S
from core.distill.amend import (
    DEFAULT_SECTION,
    FEATURE_SECTIONS,
    NEW_SECTION,
    TEXTS,
    AmendmentRefused,
    Skipped,
    accept_amendment,
    apply_text,
    distill_preview,
    propose,
    reject_amendment,
    target_section,
)
from core.models import Amendment

__all__ = [
    "AmendmentRefused", "DistillReport", "DEFAULT_SECTION", "FEATURE_SECTIONS", "NEW_SECTION",
    "TEXTS", "accept_amendment", "apply_text", "distill_campaign", "distill_preview",
    "reject_amendment", "target_section",
]


@dataclass
class DistillReport:
    campaign: str
    spec_hash: str
    generations: int  # in the campaign
    analysed: list[int]  # generations whose code was analysed (one per distinct artifact)
    excluded: list[dict[str, Any]]  # {generation, reason}
    groups: dict[str, list[int]]
    features: list[dict[str, Any]]
    significant: list[S.FeatureTest]
    amendments: list[Amendment]
    skipped: list[Skipped]
    unparsed: list[F.UnparsedFile]
    scores: dict[int, float] = field(default_factory=dict)
    copies: list[dict[str, Any]] = field(default_factory=list)  # {generation, same_as, artifact_hash}
    limits: dict[str, dict[str, Any]] = field(default_factory=dict)  # comparison -> what it can detect
    ranking: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # comparison -> descriptive rows

    @property
    def headline(self) -> str:
        """One sentence: what the distiller can say about this campaign (for the TUI's note)."""
        return E.headline(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "spec_hash": self.spec_hash,
            "generations": self.generations,
            "analysed": len(self.analysed),
            "artifacts": len(self.analysed),
            "copies": self.copies,
            "excluded": self.excluded,
            "groups": {k: {"n": len(v), "generations": v} for k, v in self.groups.items()},
            "amendments": [
                {"id": a.id, "feature": a.feature, "section": a.section, "text": a.text,
                 "status": a.status.value, "evidence": a.evidence}
                for a in self.amendments
            ],
            "significant": [t.to_json() for t in self.significant],
            "skipped": [s.to_json() for s in self.skipped],
            "features": self.features,
            "limits": self.limits,
            "ranking": self.ranking,
            "headline": self.headline,
            "unparsed": [u.to_json() for u in self.unparsed],
            "unparsed_count": len(self.unparsed),
            "rules": {
                "alpha": S.ALPHA, "min_group": S.MIN_GROUP, "min_support": S.MIN_SUPPORT,
                "min_rate_diff": S.MIN_RATE_DIFF, "unit": "distinct artifact (artifact hash)",
            },
        }


def _distinct_artifacts(candidates: list[tuple[Any, str]]) -> tuple[list[tuple[Any, str]], list[dict[str, Any]],
                                                                     list[dict[str, Any]]]:
    """One unit of evidence per artifact hash: the oldest generation holding it stands for
    all its copies. Copies whose verdicts disagree (a flaky verdict) are no evidence either
    way and are excluded. Returns (units, copies, excluded)."""
    by_hash: dict[str, list[tuple[Any, str]]] = {}
    for g, verdict in candidates:
        by_hash.setdefault(g.artifact_hash, []).append((g, verdict))
    units, copies, excluded = [], [], []
    for ah, members in by_hash.items():
        members.sort(key=lambda m: m[0].number)
        verdicts = {v for _g, v in members}
        first = members[0][0]
        if len(verdicts) > 1:
            numbers = [g.number for g, _v in members]
            for g, v in members:
                excluded.append({"generation": g.number, "reason": (
                    f"the same artifact ({ah[:19]}) was judged both viable and failed "
                    f"(generations {', '.join(map(str, numbers))}): no evidence either way")})
            continue
        units.append(members[0])
        copies += [{"generation": g.number, "same_as": first.number, "artifact_hash": ah} for g, _v in members[1:]]
    units.sort(key=lambda m: m[0].number)
    return units, copies, excluded


def _dismissed_probes(store: Any, spec_hash: str) -> set[str]:
    from core.examiner import records

    return {name for ps in records.sets_of(store, spec_hash) for name in ps.dismissed}


def _without_dismissed(report: dict[str, Any], dismissed: set[str]) -> dict[str, Any]:
    """The report's fitness, its examiner pass rate recomputed without the probes a person
    dismissed since (they stop counting wherever results are summed)."""
    fit = dict(report.get("fitness") or {})
    results = (((report.get("checks") or {}).get("health") or {}).get("examiner") or [])
    if dismissed and results:
        kept = [r for r in results if r.get("name") not in dismissed]
        if kept:
            fit["examiner_pass_rate"] = round(sum(1 for r in kept if r.get("passed")) / len(kept), 4)
        else:
            fit.pop("examiner_pass_rate", None)
    return fit


def distill_campaign(store: Any, campaign_id: str, *, create_amendments: bool = True) -> DistillReport:
    """Analyse one campaign and store pending amendments for its significant features.
    Evidence is counted per distinct artifact (by artifact hash), never per copy."""
    campaign = store.campaign(campaign_id)  # KeyError for an unknown campaign
    spec_hash = campaign["spec_hash"]
    gens = store.generations(campaign_id)
    cache = F.FeatureCache()
    gen_features: dict[int, F.GenerationFeatures] = {}
    verdicts: dict[int, str] = {}
    fitness: dict[int, dict[str, Any]] = {}
    artifacts: dict[int, str] = {}
    excluded: list[dict[str, Any]] = []
    unparsed: list[F.UnparsedFile] = []
    candidates: list[tuple[Any, str]] = []
    for g in gens:
        verdict = S.classify(g.outcome.value, g.status)
        if verdict is None:
            excluded.append({"generation": g.number, "reason": f"no verdict (outcome {g.outcome.value})"})
            continue
        if not g.artifact_hash:
            excluded.append({"generation": g.number, "reason": "no artifact (failed before the rig)"})
            continue
        candidates.append((g, verdict))
    units, copies, conflicting = _distinct_artifacts(candidates)
    dismissed = _dismissed_probes(store, spec_hash)
    excluded += conflicting
    for g, verdict in units:
        gf = F.generation_features(g.number, store.artifact_files(g.artifact_hash), cache)
        unparsed += gf.unparsed
        if gf.python_files == 0:
            excluded.append({"generation": g.number, "reason": "no Python files"})
            continue
        gen_features[g.number] = gf
        verdicts[g.number] = verdict
        artifacts[g.number] = g.artifact_hash
        report = store.report(g.number) or {}
        fitness[g.number] = _without_dismissed(report, dismissed)
    excluded.sort(key=lambda e: e["generation"])

    names = list(F.FEATURE_NAMES)
    values = {n: gf.values for n, gf in gen_features.items()}
    analysis = S.analyse(values, verdicts, fitness, names)

    file_cache: dict[str, dict[str, bytes]] = {}

    def load_file(gen: int, path: str) -> bytes | None:
        ah = artifacts.get(gen)
        if ah is None:
            return None
        if ah not in file_cache:
            file_cache[ah] = store.artifact_files(ah)
        return file_cache[ah].get(path)

    amendments: list[Amendment] = []
    skipped: list[Skipped] = []
    if create_amendments:
        amendments, skipped = propose(store, campaign_id=campaign_id, spec_hash=spec_hash,
                                      analysis=analysis, gen_features=gen_features, load_file=load_file)

    rows: list[dict[str, Any]] = []
    for name in names:
        feat = F.BY_NAME[name]
        row: dict[str, Any] = {"feature": name, "description": feat.description, "polarity": feat.polarity,
                               "groups": {}, "tests": {}}
        for group, members in analysis.groups.items():
            present = sum(1 for g in members if values[g].get(name))
            row["groups"][group] = S.GroupCount(len(members), present).to_json()
        row["count_total"] = sum(gen_features[g].counts.get(name, 0) for g in gen_features)
        for t in analysis.by_feature(name):
            tj = t.to_json()
            tj.pop("feature")
            tj.pop("groups")
            row["tests"][t.comparison] = tj
        rows.append(row)

    return DistillReport(
        campaign=campaign_id,
        spec_hash=spec_hash,
        generations=len(gens),
        analysed=sorted(gen_features),
        excluded=excluded,
        groups=analysis.groups,
        features=rows,
        significant=analysis.significant(),
        amendments=amendments,
        skipped=skipped,
        unparsed=unparsed,
        scores=analysis.scores,
        copies=copies,
        limits=E.limits(analysis, values, names),
        ranking=E.ranking(analysis, values, names),
    )

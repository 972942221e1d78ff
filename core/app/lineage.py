"""The generation tree's shape (pure: testable without a database)."""

from __future__ import annotations

from collections import Counter

from core.app.models import BAD_OUTCOMES, LineageModel


def downsample(seq: list, max_points: int) -> list:
    n = len(seq)
    if n <= max_points or max_points < 2:
        return list(seq)
    step = (n - 1) / (max_points - 1)
    return [seq[round(i * step)] for i in range(max_points)]


def build_lineage(campaign_id: str | None, rows: list[tuple], signature: tuple = (),
                  fertility: dict[int, str] | None = None) -> LineageModel:
    """rows: (number, parent, outcome[, failure_stage[, status[, bred_by]]]) ascending by
    number. A bred generation (bred_by set: an offspring wrote it, not the engine) nests
    under its breeder and never continues a line of descent, nor counts in the totals."""
    numbers = [r[0] for r in rows]
    bred = {r[0]: r[5] for r in rows if len(r) > 5 and r[5] is not None}
    parent: dict[int, int | None] = {}
    outcome: dict[int, str] = {}
    stage: dict[int, str | None] = {}
    intern: dict[str, str] = {}  # one str per distinct outcome/stage, not one per row
    for r in rows:
        parent[r[0]] = r[1]
        outcome[r[0]] = intern.setdefault(r[2], r[2])
        st = r[3] if len(r) > 3 else None
        if st and st != "none":
            stage[r[0]] = intern.setdefault(st, st)
    children: dict[int, list[int]] = {}
    roots: list[int] = []
    for n in numbers:
        p = parent[n]
        if p is None or p not in parent or p == n:
            roots.append(n)
        else:
            children.setdefault(p, []).append(n)
    # height of each subtree; children are (almost always) numbered after their parent,
    # so one pass in descending order settles it. A pass over a cycle-free graph.
    height: dict[int, int] = {}
    for n in reversed(numbers):
        kids = children.get(n)
        height[n] = 1 + (max((height.get(c, 1) for c in kids), default=0) if kids else 0)
    heir: dict[int, int] = {}
    for n, kids in children.items():
        best = None
        best_key = None
        for c in kids:
            if c in bred or (outcome.get(c) != "promoted" and c not in children):
                continue
            key = (height.get(c, 1), outcome.get(c) == "promoted", -c)
            if best_key is None or key > best_key:
                best, best_key = c, key
        if best is not None:
            heir[n] = best
    spine: list[int] = []
    for r in roots:
        cur: int | None = r
        guard = 0
        while cur is not None and guard <= len(numbers):
            spine.append(cur)
            cur = heir.get(cur)
            guard += 1
    counts = Counter(o for n, o in outcome.items() if n not in bred)
    # failed: a bad outcome, or a rig verdict of non-viable (what the inspector jumps between)
    failed = [r[0] for r in rows if r[0] not in bred
              and (r[2] in BAD_OUTCOMES or (len(r) > 4 and r[4] == "non-viable"))]
    return LineageModel(campaign_id=campaign_id, numbers=numbers, parent=parent, outcome=outcome, stage=stage,
                        children=children, heir=heir, spine=spine, signature=signature, counts=counts,
                        failed=failed, bred=bred, fertility=dict(fertility or {}))

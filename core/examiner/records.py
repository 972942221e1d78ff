"""Storage of examiner probe sets and dismissals (tables of migration M10_EXAMINER), on top of
``core.store.Store``. A probe set is written once per (spec version, examiner model) — the
first writer wins, so two engines that raced each keep their ledger row and use one set."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from core.models import utcnow
from core.store import Store


@dataclass
class ProbeSet:
    spec_hash: str
    model: str
    state: str  # ready | unavailable
    probes: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    call_ids: list[int] = field(default_factory=list)
    tokens: int = 0
    cost_usd: float = 0.0
    campaign_id: str | None = None
    created_at: str = ""
    dismissed: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {reason, evidence, at}

    @property
    def active(self) -> list[dict[str, Any]]:
        """The probes that count: every valid probe not dismissed by a person."""
        return [p for p in self.probes if p["name"] not in self.dismissed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec_hash": self.spec_hash, "model": self.model, "state": self.state,
            "reason": self.reason, "probes": [dict(p, dismissed=p["name"] in self.dismissed,
                                                   dismissal=self.dismissed.get(p["name"]))
                                              for p in self.probes],
            "dropped": self.dropped, "call_ids": self.call_ids, "tokens": self.tokens,
            "cost_usd": self.cost_usd, "campaign_id": self.campaign_id, "created_at": self.created_at,
        }


def load(store: Store, spec_hash: str, model: str) -> ProbeSet | None:
    row = store.conn.execute("SELECT * FROM examiner_probes WHERE spec_hash=? AND model=?",
                             (spec_hash, model)).fetchone()
    return _from_row(store, row) if row is not None else None


def sets_of(store: Store, spec_hash: str) -> list[ProbeSet]:
    rows = store.conn.execute("SELECT * FROM examiner_probes WHERE spec_hash=? ORDER BY created_at, model",
                              (spec_hash,)).fetchall()
    return [_from_row(store, r) for r in rows]


def _from_row(store: Store, row: Any) -> ProbeSet:
    dismissed = {
        r["probe"]: {"reason": r["reason"], "evidence": json.loads(r["evidence_json"]), "at": r["dismissed_at"]}
        for r in store.conn.execute("SELECT * FROM examiner_dismissals WHERE spec_hash=? AND model=?",
                                    (row["spec_hash"], row["model"]))}
    return ProbeSet(spec_hash=row["spec_hash"], model=row["model"], state=row["state"],
                    probes=json.loads(row["probes_json"]), dropped=json.loads(row["dropped_json"]),
                    reason=row["reason"], call_ids=json.loads(row["call_ids_json"]), tokens=row["tokens"],
                    cost_usd=row["cost_usd"], campaign_id=row["campaign_id"], created_at=row["created_at"],
                    dismissed=dismissed)


def save(store: Store, ps: ProbeSet) -> ProbeSet:
    """Write ``ps`` unless a set for its (spec, model) exists; return the stored one."""
    with store.write() as c:
        c.execute(
            "INSERT OR IGNORE INTO examiner_probes(spec_hash, model, state, probes_json, dropped_json, reason, "
            "call_ids_json, tokens, cost_usd, campaign_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (ps.spec_hash, ps.model, ps.state, json.dumps(ps.probes), json.dumps(ps.dropped), ps.reason,
             json.dumps(ps.call_ids), ps.tokens, ps.cost_usd, ps.campaign_id, ps.created_at or utcnow()))
    stored = load(store, ps.spec_hash, ps.model)
    assert stored is not None
    return stored


def dismiss(store: Store, spec_hash: str, model: str, probe: str, reason: str,
            evidence: dict[str, Any]) -> None:
    """Record a person's dismissal (idempotent: the first reason and evidence stay)."""
    with store.write() as c:
        c.execute("INSERT OR IGNORE INTO examiner_dismissals(spec_hash, model, probe, reason, evidence_json, "
                  "dismissed_at) VALUES (?,?,?,?,?,?)",
                  (spec_hash, model, probe, reason, json.dumps(evidence), utcnow()))


def probe_results(store: Store, spec_hash: str, model: str | None = None) -> list[tuple[int, str, bool]]:
    """(generation, probe name, passed) of every examiner result recorded for this spec (and
    examiner model, when given), over all its campaigns."""
    q = ("SELECT g.number, json_extract(e.value, '$.name'), json_extract(e.value, '$.passed') "
         "FROM generations g, json_each(g.report_json, '$.checks.health.examiner') e "
         "WHERE g.spec_hash=? AND g.report_json IS NOT NULL")
    args: list[Any] = [spec_hash]
    if model is not None:
        q += " AND json_extract(g.report_json, '$.examiner_set.model')=?"
        args.append(model)
    return [(int(n), str(name), bool(ok)) for n, name, ok in store.conn.execute(q + " ORDER BY g.number", args)]

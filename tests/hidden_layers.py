"""Judge one artifact by every verification layer the way the engine does (shared by the
layers corpus, tests/rig/test_layers_corpus.py, and the sim's hidden violations,
tests/sim/test_sim_hidden.py).

The hidden layers come from the production paths: the sealed vectors from the stored spec
(``sealed_probes``), the examiner's probes from ``ensure_probes`` (a real store, the sim
provider through the ledger: one ``examine`` call per spec), the red team's from ``propose``
on the artifact's files. The rig runs sealed and examiner probes in the generation's run,
scoring only, and the red team's in a second, fresh run, scored by ``score_block``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

LAYER_NAMES = ("sealed", "examiner", "redteam")


@dataclass
class Layers:
    """A store holding the spec, its examiner probe set, and its sealed vectors."""
    store: Any
    cid: str
    sim: Any
    spec_text: str
    examiner: list[dict[str, Any]]
    sealed: list[dict[str, Any]]


@dataclass
class Judged:
    report: dict[str, Any]  # the generation's run (Layer 1 + sealed + examiner, scoring)
    redteam: dict[str, Any]  # the red-team block
    failed: dict[str, list[str]] = field(default_factory=dict)  # layer -> failed probe names


@contextlib.contextmanager
def open_layers(home: Path, spec_text: str) -> Iterator[Layers]:
    """The layers of ``spec_text`` in a fresh home; its store is closed afterwards."""
    from core.engine.launch import create_campaign
    from core.examiner.service import ensure_probes, rig_layer
    from core.home import db_path
    from core.llm.ledger import LedgeredProvider
    from core.llm.sim import SimProvider
    from core.models import CampaignSettings
    from core.spec import sealed_probes
    from core.store import Store

    store = Store.open(db_path(home))
    cid = create_campaign(store, CampaignSettings(spec_hash="-", provider="sim", model="sim-1",
                                                  examiner="score", redteam="every"), spec_text)
    spec_hash = store.campaign(cid)["spec_hash"]
    sim = SimProvider()
    ps = asyncio.run(ensure_probes(store, spec_text, spec_hash, LedgeredProvider(sim, store, campaign_id=cid),
                                   "sim-1", campaign_id=cid))
    assert ps.state == "ready"
    try:
        yield Layers(store, cid, sim, spec_text, rig_layer(ps), sealed_probes(spec_text))
    finally:
        store.close()


def judge(art: Path, layers: Layers) -> Judged:
    from core.llm.ledger import LedgeredProvider
    from core.redteam.service import propose, rig_layer, score_block
    from rig.api import run_artifact

    rep = run_artifact(art, probes={"sealed": layers.sealed, "examiner": layers.examiner}, gate=[]).report.to_wire()
    health = rep["checks"].get("health") or {}
    files = {p.relative_to(art).as_posix(): p.read_bytes() for p in art.rglob("*") if p.is_file()}
    attack = asyncio.run(propose(layers.spec_text, files,
                                 LedgeredProvider(layers.sim, layers.store, campaign_id=layers.cid),
                                 "sim-1", generation=1, campaign_id=layers.cid))
    assert attack.unavailable is None, attack.unavailable
    rt = run_artifact(art, probes={"redteam": rig_layer(attack)}).report.to_wire()
    block = score_block(attack, rt, None)
    failed = {"sealed": [r["name"] for r in health.get("sealed") or () if not r["passed"]],
              "examiner": [r["name"] for r in health.get("examiner") or () if not r["passed"]],
              "redteam": [p["name"] for p in block["probes"] if not p["passed"]]}
    return Judged(rep, block, failed)


def caught_by(judged: Judged) -> dict[str, bool]:
    return {layer: bool(judged.failed[layer]) for layer in LAYER_NAMES}

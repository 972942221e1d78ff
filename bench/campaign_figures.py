"""What the two campaign benches (``examiner_campaign.py``, ``layers_campaign.py``) share:
their command line, and token sums over ledger rows."""

from __future__ import annotations

import argparse
from typing import Any, Iterable


def campaign_parser(doc: str | None, generations: int) -> argparse.ArgumentParser:
    """-n generations per campaign, -p parallelism, --seed; the caller adds its own."""
    ap = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    ap.add_argument("-n", type=int, default=generations)
    ap.add_argument("-p", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    return ap


def tokens(calls: Iterable[Any]) -> int:
    """Input plus output tokens of ledgered calls."""
    return sum(c.input_tokens + c.output_tokens for c in calls)


def per(total: float, count: int, digits: int | None = None) -> float:
    """``total`` per one of ``count`` (at least one), rounded."""
    return round(total / max(1, count), digits)


def two_campaigns(spec_path, n: int, p: int, seed: int, prefix: str, **settings: Any):
    """A sim campaign of ``n`` generations, then a second one of 2 on the same spec in the
    same fresh home (the ledger must show one ``examine`` call for both), each run to its
    end on the docker rig. Returns (home, campaign ids, wall seconds)."""
    import tempfile
    import time
    from pathlib import Path

    from core.engine.launch import create_campaign
    from core.engine.main import run_campaign
    from core.home import db_path
    from core.models import CampaignSettings
    from core.store import Store

    home = Path(tempfile.mkdtemp(prefix=prefix))
    text = Path(spec_path).read_text(encoding="utf-8")
    cids: list[str] = []
    t0 = time.monotonic()
    for gens in (n, 2):
        with Store.open(db_path(home)) as s:
            cid = create_campaign(s, CampaignSettings(
                spec_hash="-", generations=gens, parallelism=p, provider="sim", model="sim-1",
                seed=seed + len(cids), max_retries=1, backend="docker", **settings), text)
        run_campaign(home, cid)
        cids.append(cid)
    return home, cids, time.monotonic() - t0

"""Synthetic campaigns for the distiller tests: real store rows, real artifact files."""

from __future__ import annotations

from typing import Callable

from core.store import Store

SPEC = """\
---
name: tiny
spec-format: 1
port: 8402
---

# Tiny

A tiny service used by the distiller tests.

## System Prompt

You write complete, tested Python codebases.

## Implementation Requirements

- Python 3.11 and the standard library only.
- Start-up is fast.

## Testing

Every endpoint has a test.

## Acceptance Vectors

<!-- BEGIN FROZEN: acceptance-vectors -->
```spec-vector
name: health
method: GET
path: /health
expect:
  status: 200
```
<!-- END FROZEN: acceptance-vectors -->
"""

MONOTONIC = '''\
import time


def timed(func):
    start = time.monotonic()
    func()
    return time.monotonic() - start
'''

PLAIN = '''\
def timed(func):
    func()
    return 0.0
'''

DATACLASS = '''\
from dataclasses import dataclass


@dataclass
class Settings:
    port: int = 8402
'''

PLAIN_SETTINGS = '''\
class Settings:
    def __init__(self, port=8402):
        self.port = port
'''

TEST_FILE = '''\
from pkg.core import timed


def test_timed():
    assert timed(lambda: None) >= 0
'''


def generation_files(*, monotonic: bool, dataclass: bool, broken: bool = False, tag: int = 0) -> dict[str, bytes]:
    """``tag`` makes each generation's artifact distinct (identical artifacts are one piece
    of evidence for the distiller, however many generations hold them)."""
    files = {
        "pkg/__init__.py": f'"""Generation {tag}."""\n'.encode(),
        "pkg/core.py": (MONOTONIC if monotonic else PLAIN).encode(),
        "pkg/settings.py": (DATACLASS if dataclass else PLAIN_SETTINGS).encode(),
        "tests/test_core.py": TEST_FILE.encode(),
        "README.md": b"# pkg\n",
    }
    if broken:
        files["pkg/broken.py"] = b"def broken(:\n    return 1\n"
    return files


def report(viable: bool, number: int) -> dict:
    return {
        "generation": number,
        "status": "viable" if viable else "non-viable",
        "failure_stage": "none" if viable else "test",
        "fitness": {"tests_passed": 1 + number % 5, "tests_run": 1 + number % 5, "test_ms": 100 + (number * 37) % 90},
    }


def add_generation(store: Store, campaign: str, spec_hash: str, viable: bool,
                   files: dict[str, bytes]) -> int:
    g = store.create_generation(spec_hash=spec_hash, campaign_id=campaign)
    store.record_artifact(g.number, files)
    store.record_report(g.number, report(viable, g.number))
    store.set_outcome(g.number, "promoted" if viable else "failed")
    return g.number


def planted_campaign(store: Store, campaign: str = "c-planted", spec_text: str = SPEC,
                     n_per_group: int = 20, broken: tuple[int, ...] = (3, 27),
                     plan: Callable[[bool, int], dict[str, bool]] | None = None) -> tuple[str, list[int]]:
    """``n_per_group`` viable and failed generations. Monotonic clock in 90% of viable and
    10% of failed ones; a dataclass in exactly half of each group; ``broken`` indexes get
    a file with a syntax error."""
    spec_hash = store.add_spec(spec_text, label=campaign).hash
    store.create_campaign(campaign, spec_hash, {"generations": 2 * n_per_group})
    numbers = []
    cut = round(n_per_group * 0.9)
    for i in range(2 * n_per_group):
        viable = i < n_per_group
        k = i if viable else i - n_per_group
        if plan is not None:
            flags = plan(viable, k)
        else:
            monotonic = (k < cut) if viable else (k >= cut)
            flags = {"monotonic": monotonic, "dataclass": k % 2 == 0}
        files = generation_files(broken=i in broken, tag=i, **flags)
        numbers.append(add_generation(store, campaign, spec_hash, viable, files))
    return spec_hash, numbers

"""A writer process for the store concurrency and crash tests.

Each iteration is one transaction that creates a generation, records a report and
appends log chunks; a second transaction promotes or fails it. Run as
`python -m tests.store.worker DB WORKER_ID N [--slow]`.
"""

from __future__ import annotations

import sys
import time

from core.store import Store


def run(db: str, worker: int, n: int, slow: bool) -> None:
    store = Store.open(db)
    spec = store.add_spec(f"# worker spec {worker % 2}\n")
    for i in range(n):
        with store.write():
            g = store.create_generation(spec_hash=spec.hash, campaign_id=None)
            store.append_log(g.number, "stdout", [f"w{worker} i{i} line{k}" for k in range(5)])
            if slow:
                time.sleep(0.002)  # widen the window in which a SIGKILL lands mid-transaction
            store.append_log(g.number, "stderr", [f"w{worker} i{i} err"])
            store.record_report(g.number, {"status": "viable" if i % 3 else "non-viable",
                                           "failure_stage": "none" if i % 3 else "test",
                                           "fitness": {"i": i}})
        store.set_outcome(g.number, "promoted" if i % 3 else "failed")
        store.add_event("worker_tick", generation=g.number, data={"worker": worker, "i": i})
    store.close()


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), "--slow" in sys.argv)

"""The engine process: `python -m core.engine.main --home HOME CAMPAIGN_ID`.

Started detached (own session) by `cambrian campaign start`; holds the campaign's lease
with a heartbeat so that the TUI and other engines know it is alive.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from pathlib import Path

from core.quiet import silence_library_deprecations
from core.engine.reconcile import startup_reconcile
from core.engine.runner import CampaignRunner, install_signal_handlers
from core.engine.stop_reasons import no_space_reason, out_of_space
from core.home import cambrian_home, db_path
from core.store import Store


def run_campaign(home: Path, campaign_id: str, **runner_kw) -> str:
    """Run (or continue) a campaign in this process; returns its final state."""
    store = Store.open(db_path(home))
    try:
        if not store.acquire_lease(campaign_id):
            lease = store.lease(campaign_id)
            raise RuntimeError(f"campaign {campaign_id} is already run by engine pid {lease['pid']}")
        store.set_campaign_runtime(campaign_id, engine_pid=os.getpid())
        try:
            startup_reconcile(store, own_campaign=campaign_id)
            runner = CampaignRunner(store, campaign_id, home, **runner_kw)

            async def go() -> str:
                try:
                    install_signal_handlers(asyncio.get_running_loop(), runner)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass  # not the main thread (tests): no signal handlers
                return await runner.run()

            return asyncio.run(go())
        except BaseException as exc:
            reason = f"{type(exc).__name__}: {exc}"
            state, why = "crashed", f"engine crashed: {reason}"
            if out_of_space(exc):  # nothing is wrong with the campaign: free space, resume
                state, why = "stopped", f"out of disk space: {reason}"
                reason = no_space_reason(reason, home)
            # the smallest writes first: on a full disk the traceback event may not fit
            try:
                for n in store.in_progress(campaign_id):
                    store.set_outcome(n, "interrupted", why[:500])
                store.set_campaign_state(campaign_id, state, reason[:500])
                store.add_event("engine_crashed", campaign_id=campaign_id,
                                data={"error": reason, "traceback": traceback.format_exc()[-4000:]})
            except Exception:  # noqa: BLE001 - the store itself may be the problem
                pass
            raise
        finally:
            _drain_removals()
            store.release_lease(campaign_id)
    finally:
        store.close()


def _drain_removals(timeout: float = 30.0) -> None:
    """The rig removes containers in background threads (off the verdict's path); they are
    daemons, so an engine that returns (an abort, the end) joins them first — else a container
    of its own (e.g. an aborted run's probe) outlives it until another engine reconciles."""
    if "rig.backends.docker" not in sys.modules:
        return
    from rig.api import wait_removed

    try:
        wait_removed(timeout)
    except Exception:  # noqa: BLE001 - leaving is more important; reconcile removes the rest
        pass


def main(argv: list[str] | None = None) -> int:
    silence_library_deprecations()
    ap = argparse.ArgumentParser(prog="cambrian-engine")
    ap.add_argument("--home")
    ap.add_argument("campaign_id")
    args = ap.parse_args(argv)
    home = cambrian_home(args.home)
    try:
        state = run_campaign(home, args.campaign_id)
    except Exception as exc:  # noqa: BLE001
        print(f"engine: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"engine: campaign {args.campaign_id} {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

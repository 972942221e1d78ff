"""Headless entry points: ``cambrian distill`` and ``cambrian amendments`` (DESIGN §12).

Both return a process exit code: 0 success, 1 a refused or failed action (unknown
campaign or amendment, an amendment that cannot be applied), 2 a usage error. They parse
and print only: every read and write goes through the application layer (``core.app``),
as the TUI's do.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Sequence

from core.home import cambrian_home

STATUSES = ("pending", "accepted", "edited", "rejected")


def _app(home: str | os.PathLike[str] | None):
    from core.app import Cambrian

    return Cambrian(cambrian_home(home))


def _dump(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def _fmt(x: float | None, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec)


def _rate(g: dict[str, Any] | None) -> str:
    if not g or not g.get("n"):
        return "-"
    return f"{g['present']}/{g['n']}"


# --- distill ---------------------------------------------------------------------------


def render_report(data: dict[str, Any]) -> str:
    """The human-readable form of a distill report's JSON."""
    groups = data["groups"]
    copies = data.get("copies") or []
    merged = f" ({len(copies)} copies of them counted once)" if copies else ""
    out = [
        f"Campaign {data['campaign']}  spec {data['spec_hash'][:19]}",
        f"  {data['generations']} generations, {data['analysed']} distinct artifacts analysed{merged}: "
        f"viable {groups['viable']['n']}, failed {groups['failed']['n']} "
        f"(viable split top {groups['top']['n']} / bottom {groups['bottom']['n']} by fitness)",
    ]
    if data["excluded"]:
        out.append(f"  excluded: {len(data['excluded'])} "
                   f"(e.g. gen {data['excluded'][0]['generation']}: {data['excluded'][0]['reason']})")
    out.append("")
    unparsed = data["unparsed"]
    out.append(f"Unparsed Python files: {len(unparsed)}")
    for u in unparsed:
        where = f"line {u['line']}" if u["line"] else "?"
        out.append(f"  gen {u['generation']}  {u['file']}  {where}: {u['error']}")
    out.append("")
    out.append("Features (present/total)  viable vs failed; top vs bottom viable")
    head = f"  {'feature':<22}{'viable':>8}{'failed':>8}{'p':>9}{'q':>9}{'OR':>8}  {'dir':<6}" \
           f"{'top':>7}{'bottom':>8}{'q':>9}  dir"
    out.append(head)
    for row in data["features"]:
        g = row["groups"]
        vf = row["tests"].get("viable_vs_failed", {})
        tb = row["tests"].get("top_vs_bottom", {})
        mark = "*" if vf.get("significant") or tb.get("significant") else " "
        out.append(
            f"{mark} {row['feature']:<22}{_rate(g.get('viable')):>8}{_rate(g.get('failed')):>8}"
            f"{_fmt(vf.get('p')):>9}{_fmt(vf.get('q')):>9}{_fmt(vf.get('odds_ratio')):>8}  "
            f"{(vf.get('direction') if vf.get('tested') else 'n/a'):<6}"
            f"{_rate(g.get('top')):>7}{_rate(g.get('bottom')):>8}{_fmt(tb.get('q')):>9}  "
            f"{tb.get('direction') if tb.get('tested') else 'n/a'}"
        )
    out.append("  (* significant: q < {alpha}; n/a: not tested, see below)".format(alpha=data["rules"]["alpha"]))
    out.append("")
    limits = data.get("limits") or {}
    if limits:
        out.append("What the tests can detect")
        for comp in ("viable_vs_failed", "top_vs_bottom"):
            if comp in limits:
                out.append(f"  {limits[comp]['sentence']}")
        out.append("")
    ranked = (data.get("ranking") or {}).get("viable_vs_failed") or []
    if ranked and not data["significant"]:
        out.append("Descriptive ranking, viable vs failed (NOT significant: differences only)")
        for r in ranked[:5]:
            g = r["groups"]
            rates = "  ".join(f"{k} {_rate(v)}" for k, v in g.items())
            tag = "descriptive p" if r["descriptive"] else "p"
            out.append(f"  {r['feature']:<22} {rates}  {r['direction']:<5}  "
                       f"{tag}={_fmt(r['p'])}  OR~{_fmt(r['odds_ratio_haldane'])}")
        out.append("")
    if data.get("headline"):
        out.append(f"In short: {data['headline']}")
        out.append("")
    out.append(f"Amendments created: {len(data['amendments'])}")
    for a in data["amendments"]:
        ev = a["evidence"]
        out.append(f"  #{a['id']}  [{a['section']}]  {a['feature']} {ev['direction']} "
                   f"(p={_fmt(ev['p'])}, q={_fmt(ev['q'])}, OR={_fmt(ev['odds_ratio'])})")
        out.append(f"      {a['text']}")
    for s in data["skipped"]:
        out.append(f"  not proposed: {s['feature']}: {s['reason']}")
    return "\n".join(out)


def distill_main(home: str | os.PathLike[str] | None, campaign_id: str, as_json: bool) -> int:
    from core.app.commands import CommandRefused, Distill

    with _app(home) as app:
        try:
            data = app.run(Distill(campaign_id)).report
        except CommandRefused as exc:
            _err(exc.reason)
            return 1
    if as_json:
        _dump(data)
    else:
        print(render_report(data))
    return 0


# --- amendments ------------------------------------------------------------------------------


def _summary(a: Any) -> dict[str, Any]:
    """An amendment (``core.app.models.AmendmentView``) as ``--json`` prints it."""
    return {
        "id": a.id, "campaign": a.campaign_id, "spec_hash": a.spec_hash, "section": a.section,
        "feature": a.feature, "status": a.status, "text": a.text,
        "result_spec_hash": a.result_spec_hash, "created_at": a.created_at,
    }


def _detail(a: Any) -> dict[str, Any]:
    return {**_summary(a), "evidence": a.evidence}


def _render_detail(d: dict[str, Any], diff: str | None) -> str:
    ev = d["evidence"] or {}
    out = [
        f"Amendment #{d['id']}  {d['status']}  campaign {d['campaign']}",
        f"  spec     {d['spec_hash']}",
        f"  section  {d['section']}",
        f"  feature  {d['feature']}  ({ev.get('description', '')})",
        f"  text     {d['text']}",
    ]
    if d["result_spec_hash"]:
        out.append(f"  result   {d['result_spec_hash']}")
    if ev:
        groups = ev.get("groups", {})
        rates = ", ".join(f"{k} {v['present']}/{v['n']}" for k, v in groups.items())
        out.append(f"  evidence {ev.get('direction')} in {ev.get('comparison')}: {rates}; "
                   f"p={_fmt(ev.get('p'))} q={_fmt(ev.get('q'))} OR={_fmt(ev.get('odds_ratio'))}")
        for ex in ev.get("examples", []):
            out.append(f"  example  generation {ex['generation']}  {ex['file']}:{ex['line']}")
            out += [f"           {ln}" for ln in ex["code"].splitlines()]
    if diff:
        out.append("  preview:")
        out += [f"    {ln}" for ln in diff.splitlines()]
    return "\n".join(out)


def _ids(raw: Sequence[Any]) -> list[int]:
    out = []
    for x in raw:
        s = str(x).lstrip("#")
        if not s.isdigit():
            raise ValueError(f"not an amendment id: {x!r}")
        out.append(int(s))
    return out


def render_comparison(c: dict[str, Any]) -> str:
    """Before/after of a confirmation campaign, for people."""
    b, a = c["before"], c["after"]

    def side(name: str, d: dict[str, Any]) -> str:
        rate = "-" if d["rate"] is None else f"{d['rate']:.0%}"
        lo, hi = d["interval"]
        return (f"  {name:<7} {d['campaign']}  {d['state']:<9} viable {d['viable']}/{d['judged']} = {rate} "
                f"[{lo:.0%}, {hi:.0%}]  spec {d['spec_hash'][:19]}")

    out = [f"Confirmation of amendment #{c['amendment']}" if "amendment" in c else "Comparison",
           side("before", b), side("after", a)]
    if "difference" in c:
        d = c["difference"]
        out.append(f"  difference {d['value'] * 100:+.1f} points, 95 % interval "
                   f"[{d['interval'][0] * 100:+.1f}, {d['interval'][1] * 100:+.1f}] ({d['method']})")
        f = c["fisher"]
        out.append(f"  Fisher's exact test (independent samples): p = {f['p']:.3g} two-sided, "
                   f"{f['p_greater']:.3g} one-sided (after > before)")
    if "paired" in c:
        p = c["paired"]
        out.append(f"  paired by draw: {p['pairs']} first attempts, {p['only_after']} viable only after, "
                   f"{p['only_before']} only before, {p['both_viable']} both, {p['neither']} neither: "
                   f"exact McNemar p = {p['p']:.3g}")
    out.append(f"  => {c['verdict']}")
    return "\n".join(out)


def _wait(app: Any, cid: str, quiet: bool, poll_s: float = 1.0) -> str:
    """Follow a campaign to its end; its final state ("gone" when its engine died)."""
    printed: set[int] = set()

    def show(st: dict[str, Any]) -> None:
        if quiet:
            return
        for g in st["generations"]:
            if g["outcome"] not in ("in_progress", "tested") and g["generation"] not in printed:
                printed.add(g["generation"])
                print(f"  gen {g['generation']:>4}: {g['outcome']:<11} {(g['reason'] or '')[:70]}", flush=True)

    res = app.wait_campaign(cid, on_update=show, poll_s=poll_s)
    return "gone" if res.gone else res.status["state"]


def confirm_main(home: Any, amendment_id: int, generations: int | None, as_json: bool, wait: bool,
                 result: dict[str, Any] | None = None) -> int:
    """Start the confirmation campaign of an accepted amendment (and with ``wait`` follow
    it and print the before/after comparison)."""
    from core.app.commands import CommandRefused, ConfirmAmendment

    out: dict[str, Any] = dict(result or {})
    with _app(home) as app:
        try:
            started_cmd = app.run(ConfirmAmendment(amendment_id, generations))
        except CommandRefused as exc:
            if as_json:
                _dump({**out, "confirmation": {"ok": False, "error": exc.reason}})
            else:
                _err(f"no confirmation campaign: {exc.reason}")
            return 1
        cid = started_cmd.campaign_id
        settings = app.reads.campaign_status(cid)["settings"]
        original = started_cmd.original
        started = {"ok": True, "campaign": cid, "original": original, "generations": settings["generations"],
                   "seed": settings["seed"], "provider": settings["provider"]}
        if not as_json:
            print(f"confirmation campaign {cid} started: {settings['generations']} generations, seed "
                  f"{settings['seed']}, the settings and seed schedule of {original}"
                  + ("  [SIMULATED: sim provider]" if settings["provider"] == "sim" else ""), flush=True)
        code = 0
        if wait:
            state = _wait(app, cid, quiet=as_json)
            started["state"] = state
            if state == "gone":
                code = 1
                if not as_json:
                    _err(f"the engine of {cid} is gone; `cambrian campaign resume {cid}` continues it")
            report = app.reads.amendment_confirmation(amendment_id)
            started["comparison"] = report
            if not as_json and report is not None:
                print(render_comparison(report))
    if as_json:
        _dump({**out, "confirmation": started})
    return code


def amendments_main(home: str | os.PathLike[str] | None, action: str, ids: Sequence[Any] | None,
                    as_json: bool, text: str | None = None, confirm: int | None = None,
                    wait: bool = False) -> int:
    """``list [STATUS|CAMPAIGN ...]``, ``show ID...``, ``accept ID... [--text T] [--confirm [N]]``,
    ``reject ID...``, ``confirm ID [-n N]``, ``compare ID``. ``--text`` (an edit) and
    ``--confirm`` need exactly one id; ``confirm`` 0 means "as many generations as the
    original campaign"."""
    import difflib

    from core.app.commands import AcceptAmendment, CommandRefused, RejectAmendment

    ids = list(ids or [])
    if action not in ("list", "show", "accept", "reject", "confirm", "compare"):
        _err(f"unknown action {action!r} (list, show, accept, reject, confirm, compare)")
        return 2
    if action == "list":
        with _app(home) as app:
            rows = app.reads.amendments()
        statuses = {x for x in map(str, ids) if x in STATUSES}
        campaigns = {x for x in map(str, ids) if x not in STATUSES}
        rows = [a for a in rows if (not statuses or a.status in statuses)
                and (not campaigns or a.campaign_id in campaigns)]
        rows.sort(key=lambda a: (a.status != "pending", a.id))
        if as_json:
            _dump({"amendments": [_summary(a) for a in rows]})
        elif not rows:
            print("no amendments")
        else:
            for a in rows:
                print(f"#{a.id:<4} {a.status:<9} {a.campaign_id or '-':<14} [{a.section}] "
                      f"{a.feature}: {a.text}")
        return 0
    try:
        numbers = _ids(ids)
    except ValueError as exc:
        _err(str(exc))
        return 2
    if not numbers:
        _err(f"amendments {action} needs at least one id")
        return 2
    if text is not None and (action != "accept" or len(numbers) != 1):
        _err("--text edits one amendment: use it with 'accept' and a single id")
        return 2
    if (confirm is not None and action == "accept" or action in ("confirm", "compare")) and len(numbers) != 1:
        _err(f"{'--confirm' if action == 'accept' else action} takes a single amendment id")
        return 2
    if confirm is not None and confirm < 0:
        _err("--confirm N: N is a number of generations (0 or nothing: as many as the original campaign)")
        return 2
    if action == "confirm":
        return confirm_main(home, numbers[0], confirm or None, as_json, wait)
    if action == "compare":
        with _app(home) as app:
            try:
                app.reads.amendment(numbers[0])
            except KeyError:
                _err(f"no amendment {numbers[0]}")
                return 1
            report = app.reads.amendment_confirmation(numbers[0])
        if report is None:
            _err(f"amendment {numbers[0]} has no confirmation campaign "
                 f"(`cambrian amendments confirm {numbers[0]}` starts one)")
            return 1
        if as_json:
            _dump(report)
        else:
            print(render_comparison(report))
        return 0
    code = 0
    results: list[dict[str, Any]] = []
    with _app(home) as app:
        for n in numbers:
            try:
                a = app.reads.amendment(n)
            except KeyError:
                results.append({"id": n, "ok": False, "error": f"no amendment {n}"})
                code = 1
                continue
            if action == "show":
                d = _detail(a)
                d["confirmation"] = app.reads.amendment_confirmation(n)
                diff = None
                preview = app.reads.amendment_preview(n)
                if preview.problem is None and preview.old is not None and preview.new is not None:
                    old, new = preview.old.text, preview.new.text
                    diff = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                        "spec", f"spec+amendment-{n}", n=1))
                    d["preview_diff"] = diff
                else:
                    d["preview_error"] = preview.problem
                results.append({"ok": True, **d})
                if not as_json:
                    print(_render_detail(d, diff if a.status == "pending" else None))
                    if "preview_error" in d:
                        print(f"  cannot apply: {d['preview_error']}")
                    if d["confirmation"] is not None:
                        print(render_comparison(d["confirmation"]))
                continue
            try:
                if action == "accept":
                    done = app.run(AcceptAmendment(n, text))
                    results.append({"id": n, "ok": True, "status": done.status,
                                    "spec_hash": done.spec_hash, "parent_hash": done.parent_hash,
                                    "text": done.text})
                    if not as_json:
                        print(f"#{n} {done.status}: new spec version {done.spec_hash}")
                else:
                    done = app.run(RejectAmendment(n))
                    results.append({"id": n, "ok": True, "status": done.status})
                    if not as_json:
                        print(f"#{n} rejected")
            except CommandRefused as exc:
                results.append({"id": n, "ok": False, "error": exc.reason})
                code = 1
                if not as_json:
                    _err(exc.reason)
    for r in results:
        if not r["ok"] and "error" in r and r["error"].startswith("no amendment") and not as_json:
            _err(r["error"])
    if action == "accept" and confirm is not None:
        if code:
            if as_json:
                _dump({"action": action, "amendments": results})
            return code
        return confirm_main(home, numbers[0], confirm or None, as_json, wait,
                            result={"action": action, "amendments": results})
    if as_json:
        _dump({"action": action, "amendments": results})
    return code

"""The `cambrian` command: the TUI by default, every action also headless (DESIGN §12).

Heavy modules are imported inside the handlers so that `cambrian --help` and the
scripting commands start fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from core.app.forms import BACKENDS, CAMPAIGN_DEFAULTS, EVOLUTION_DEFAULTS
from core.app.providers import PROVIDERS
from core.home import cambrian_home
from core.quiet import silence_library_deprecations

# This module parses arguments and prints; ``core.app`` does the work (tests/test_layers.py).


def _app(args: argparse.Namespace):
    from core.app import Cambrian

    return Cambrian(cambrian_home(args.home))


def _latest_id(args: argparse.Namespace, kind: str, what: str) -> str | None:
    """``args.id``, or the newest run of ``kind`` when it was left out (read-only commands
    only: pausing or aborting "whatever is newest" would be a trap). The choice is named on
    stderr so ``--json`` output stays clean."""
    if args.id:
        return args.id
    with _app(args) as app:
        newest = app.reads.newest_id(kind)
    if newest is None:
        print(f"error: no {what} yet, so there is no latest one to show", file=sys.stderr)
        return None
    print(f"(latest {what}: {newest})", file=sys.stderr)
    return newest


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False, default=str))


# --- tui ------------------------------------------------------------------------------


def cmd_tui(args: argparse.Namespace) -> int:
    from cambrian_tui.settings import SettingsError, load_settings

    home = cambrian_home(args.home)
    try:
        settings = load_settings(home)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from cambrian_tui.app import run_app

    return run_app(home=home, mouse=not args.no_mouse, settings=settings)


def cmd_keys(args: argparse.Namespace) -> int:
    """Every binding id with its default and effective keys (what the keymap may name)."""
    from cambrian_tui.keys import SCOPES
    from cambrian_tui.settings import SettingsError, load_settings, settings_path

    home = cambrian_home(args.home)
    try:
        keymap = load_settings(home).keymap
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = [{"id": k.id, "default": k.keys, "keys": keymap.get(k.id, k.keys), "help": k.help}
            for keys in SCOPES.values() for k in keys]
    if args.json:
        _print_json({"settings": str(settings_path(home)), "bindings": rows})
        return 0
    print(f"settings file: {settings_path(home)}  (remap with [keymap] \"ID\" = \"KEYS\")")
    for r in rows:
        mark = "*" if r["keys"] != r["default"] else " "
        print(f"{mark} {r['id']:<30} {r['keys']:<24} {r['help']}")
    return 0


# --- spec -----------------------------------------------------------------------------


def cmd_spec_check(args: argparse.Namespace) -> int:
    from core.app.specs import check_spec_text

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{path}: cannot read: {exc}", file=sys.stderr)
        return 2
    res = check_spec_text(text)
    issues = res["issues"]
    if args.json:
        _print_json({"file": str(path), **{k: v for k, v in res.items() if k != "issues"}, "issues": issues})
    elif issues:
        for issue in issues:
            print(f"{path}:{issue['line']}: {issue['message']} [{issue['code']}]", file=sys.stderr)
        print(f"{path}: {len(issues)} problem(s)", file=sys.stderr)
    else:
        print(f"{path}: ok — {res['sections']} sections, {res['frozen']} FROZEN blocks, "
              f"{res['vectors']} vectors, {res['sealed']} sealed vectors, {res['hash']}")
    return 1 if issues else 0


def cmd_spec_list(args: argparse.Namespace) -> int:
    with _app(args) as app:
        listing = app.reads.spec_listing()
    if args.json:
        _print_json(listing)
        return 0
    print("Shipped genomes:")
    for s in listing["shipped"]:
        mark = "" if s["ok"] else f"  ✗ fails spec check: {s['problem']}"
        print(f"  {(s['hash'] or '-')[:19]}  {s['path']}{mark}")
    rows = listing["stored"]
    print(f"Stored spec versions: {len(rows)}")
    for r in rows:
        parent = (r["parent"] or "-")[:19]
        print(f"  {r['hash'][:19]}  parent {parent}  {r['origin']:<9} {r['label']}")
    return 0


def _spec_text(args: argparse.Namespace, ref: str) -> str:
    with _app(args) as app:
        return app.reads.spec_text_of(ref)


def cmd_spec_show(args: argparse.Namespace) -> int:
    try:
        sys.stdout.write(_spec_text(args, args.ref))
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 1
    return 0


def cmd_spec_diff(args: argparse.Namespace) -> int:
    import difflib

    try:
        a, b = _spec_text(args, args.a), _spec_text(args, args.b)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 1
    diff = difflib.unified_diff(a.splitlines(True), b.splitlines(True), args.a, args.b)
    sys.stdout.writelines(diff)
    return 0


# --- db, doctor -------------------------------------------------------------------------


def cmd_db_info(args: argparse.Namespace) -> int:
    with _app(args) as app:
        info = app.reads.db_info()
    if args.json:
        _print_json(info)
        return 0
    print(f"database   {info['path']}")
    print(f"schema     v{info['schema_version']}  journal {info['journal_mode']}  "
          f"{info['size_bytes'] / 1024:.0f} KiB  integrity {info['integrity']}")
    for table, n in info["tables"].items():
        print(f"  {table:<16} {n:>8}")
    if info["outcomes"]:
        print("outcomes   " + ", ".join(f"{k} {v}" for k, v in sorted(info["outcomes"].items())))
    return 0 if info["integrity"] == "ok" else 1


def cmd_doctor(args: argparse.Namespace) -> int:
    from cambrian_tui.doctor import run_doctor

    return run_doctor(cambrian_home(args.home), as_json=args.json, provider=args.provider,
                      base_url=args.base_url, api_key_env=args.api_key_env, model=args.model)


# --- rig --------------------------------------------------------------------------------


def cmd_rig_build_image(args: argparse.Namespace) -> int:
    from rig.image import main_build

    return main_build(force=args.force, if_missing=args.if_missing)


def cmd_verify(args: argparse.Namespace) -> int:
    if args.reproduce:
        from core.engine.verify_reproduce import verify_reproduce_main

        if args.backend != "docker":
            print("error: --reproduce needs the docker backend (the gateway socket is mounted into "
                  "the container)", file=sys.stderr)
            return 2
        return verify_reproduce_main(args.dir, provider=args.provider, model=args.model,
                                     base_url=args.base_url, api_key_env=args.api_key_env, seed=args.seed,
                                     as_json=args.json)
    from rig.verify import verify_main

    return verify_main(args.dir, backend=args.backend, as_json=args.json)


# --- generate, dev ------------------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> int:
    from core.prime.generate import generate_cli

    return generate_cli(args.spec, args.out, args.provider, args.seed, args.model, args.cassette, args.record,
                        json_out=args.json, stream=args.stream, base_url=args.base_url,
                        api_key_env=args.api_key_env, context_window=args.context_window,
                        continuation=args.continuation, max_tokens=args.max_tokens,
                        max_continuations=args.max_continuations)


def cmd_dev_fake_llm(args: argparse.Namespace) -> int:
    from core.llm.fake_server import main_fake_llm

    models = [m.strip() for m in (args.models or "").split(",") if m.strip()] or None
    return main_fake_llm(args.port, args.latency, api=args.api, models=models, context_window=args.context_window)


# --- campaigns ---------------------------------------------------------------------------


def cmd_campaign_start(args: argparse.Namespace) -> int:
    from core.app.commands import SpecRef, StartCampaign
    from core.app.providers import default_provider
    from core.engine.cli import start_main

    extra: dict[str, Any] = {"cassette": args.cassette} if args.cassette else {}
    for key in ("base_url", "api_key_env", "context_window", "continuation", "max_tokens",
                "max_continuations"):
        if getattr(args, key, None) is not None:
            extra[key] = getattr(args, key)
    command = StartCampaign(
        spec=SpecRef(path=args.spec), provider=args.provider or default_provider(), model=args.model,
        generations=args.n, parallelism=args.p, max_retries=args.max_retries, seed=args.seed,
        budget_usd=args.budget_usd, budget_tokens=args.budget_tokens, budget_wall_s=args.budget_wall_s,
        backend=args.backend, provider_settings=extra,
        reproduction=args.reproduce[0], reproduction_rate=args.reproduce[1], sealed_vectors=args.sealed,
        examiner=args.examiner, examiner_model=args.examiner_model,
        redteam=args.redteam[0], redteam_rate=args.redteam[1], redteam_threshold=args.redteam_threshold)
    return start_main(cambrian_home(args.home), command, wait=args.wait, as_json=args.json)


def cmd_campaign_status(args: argparse.Namespace) -> int:
    from core.engine.cli import status_main

    cid = _latest_id(args, "campaign", "campaign")
    return 1 if cid is None else status_main(cambrian_home(args.home), cid, args.json)


def cmd_campaign_list(args: argparse.Namespace) -> int:
    from core.engine.cli import list_main

    return list_main(cambrian_home(args.home), args.json)


def cmd_campaign_control(args: argparse.Namespace) -> int:
    from core.engine.cli import control_main

    return control_main(cambrian_home(args.home), args.id, args.campaign_cmd, args.json)


def cmd_campaign_wait(args: argparse.Namespace) -> int:
    from core.engine.cli import wait_main

    cid = _latest_id(args, "campaign", "campaign")
    return 1 if cid is None else wait_main(cambrian_home(args.home), cid, args.json)


def cmd_hosts(args: argparse.Namespace) -> int:
    import core.hosts.cli as hosts_cli

    home = cambrian_home(args.home)
    if args.hosts_cmd == "add":
        return hosts_cli.hosts_add_main(home, args.url, args.name, args.slots, args.identity,
                                        args.known_hosts, args.docker_socket, args.json)
    if args.hosts_cmd == "list":
        return hosts_cli.hosts_list_main(home, args.json)
    if args.hosts_cmd == "check":
        return hosts_cli.hosts_check_main(home, args.names, not args.no_calibrate, args.json)
    return hosts_cli.hosts_remove_main(home, args.name)


def cmd_examiner_show(args: argparse.Namespace) -> int:
    from core.examiner.cli import show_main

    return show_main(cambrian_home(args.home), args.spec, args.json)


def cmd_examiner_dismiss(args: argparse.Namespace) -> int:
    from core.examiner.cli import dismiss_main

    return dismiss_main(cambrian_home(args.home), args.spec, args.probe, args.reason, args.model, args.json)


def cmd_import(args: argparse.Namespace) -> int:
    from core.engine.cli import import_main

    return import_main(cambrian_home(args.home), args.dir, args.json)


def cmd_reverify(args: argparse.Namespace) -> int:
    from core.engine.cli import reverify_main

    return reverify_main(cambrian_home(args.home), args.gens, backend=args.backend, profile=args.profile,
                         as_json=args.json)


def cmd_distill(args: argparse.Namespace) -> int:
    from core.distill.cli import distill_main

    return distill_main(cambrian_home(args.home), args.campaign, args.json)


def cmd_amendments(args: argparse.Namespace) -> int:
    from core.distill.cli import amendments_main

    return amendments_main(cambrian_home(args.home), args.amend_cmd, args.ids, args.json,
                           text=getattr(args, "text", None), confirm=getattr(args, "confirm", None),
                           wait=getattr(args, "wait", False))


def cmd_serve(args: argparse.Namespace) -> int:
    import cambrian_tui.remote as remote

    home = cambrian_home(args.home)
    if args.web:
        return remote.serve_web_main(home, args.port or remote.DEFAULT_WEB_PORT)
    return remote.serve_ssh_main(home, args.port or remote.DEFAULT_SSH_PORT, host=args.host)


def reproduce_arg(value: str) -> tuple[str, float | None]:
    """``--reproduce off|every|sample[:RATE]`` → (mode, rate or None) (``--redteam`` too)."""
    mode, _, rate = value.strip().partition(":")
    if mode not in ("off", "every", "sample") or (rate and mode != "sample"):
        raise argparse.ArgumentTypeError(f"{value!r}: expected off, every, sample or sample:RATE (e.g. sample:0.25)")
    if not rate:
        return mode, None
    try:
        share = float(rate)
    except ValueError:
        share = -1.0
    if not 0 < share <= 1:
        raise argparse.ArgumentTypeError(f"{value!r}: the sample rate must be a number above 0 and at most 1")
    return mode, share


def _server_args(p: argparse.ArgumentParser, *, continuation: bool = True) -> None:
    """Where the anthropic/openai provider's server is and how to talk to it."""
    p.add_argument("--base-url", default=None,
                   help="the server: openai e.g. http://127.0.0.1:8080/v1 (llama.cpp), :11434/v1 (Ollama), "
                        ":8000/v1 (vLLM), :1234/v1 (LM Studio); anthropic default ANTHROPIC_BASE_URL or the API")
    p.add_argument("--api-key-env", default=None, metavar="VAR",
                   help="environment variable with the key (default ANTHROPIC_API_KEY / OPENAI_API_KEY; "
                        "a local server needs none)")
    p.add_argument("--context-window", type=int, default=None, metavar="TOKENS",
                   help="the model's context window (default: what the server says)")
    if continuation:
        p.add_argument("--continuation", choices=["prefill", "continue_final_message", "instruct"], default=None,
                       help="openai: how a cut-off answer is continued (default prefill; instruct on the OpenAI "
                            "API; continue_final_message for vLLM)")


def _answer_args(p: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    p.add_argument("--max-tokens", type=int, default=32_000 if defaults else None,
                   help="output limit of one call (default 32000; lowered to fit the context window)")
    p.add_argument("--max-continuations", type=int, default=3 if defaults else None,
                   help="continue calls for an answer cut off at the output limit (default 3)")


def _model_list(text: str) -> list[str]:
    from core.app.forms import parse_models

    try:
        models = parse_models(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not models:
        raise argparse.ArgumentTypeError("give at least one model name")
    return models


def cmd_evolve_start(args: argparse.Namespace) -> int:
    from core.app.commands import SpecRef, StartEvolution
    from core.app.providers import default_provider
    from core.evolution.cli import evolve_start_main

    extra = {key: getattr(args, key) for key in ("base_url", "api_key_env", "context_window")
             if getattr(args, key, None) is not None}
    command = StartEvolution(
        spec=SpecRef(path=args.spec), provider=args.provider or default_provider(), model=args.model,
        models=tuple(args.models or ()), budget_generations=args.budget_generations, budget_usd=args.budget_usd,
        screen_generations=args.screen_generations, full_generations=args.full_generations, parallelism=args.p,
        seed=args.seed, max_observations=args.max_observations, optimizer=args.optimizer,
        learn=not args.no_prior, backend=args.backend, provider_settings=extra, fitness=args.fitness)
    return evolve_start_main(cambrian_home(args.home), command, wait=args.wait, as_json=args.json)


def cmd_evolve(args: argparse.Namespace) -> int:
    import core.evolution.cli as ev
    from core.evolution.kinds import RUN_KIND

    home = cambrian_home(args.home)
    action = args.evolve_cmd
    if action in ("status", "best") and not args.id:
        args.id = _latest_id(args, RUN_KIND, "evolution run")
        if args.id is None:
            return 1
    if action == "status":
        return ev.evolve_status_main(home, args.id, args.json)
    if action == "resume":
        return ev.evolve_resume_main(home, args.id)
    if action in ("pause", "abort"):
        return ev.evolve_control_main(home, args.id, action, args.json)
    if action == "best":
        return ev.evolve_best_main(home, args.id, args.json, export=args.export)
    return ev.evolve_list_main(home, args.json)


# --- parser -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cambrian",
        description="Cambrian: evolve specs, regenerate code, judge it in a hardened rig.",
    )
    p.add_argument("--home", help="runtime home (default: $CAMBRIAN_HOME or data/ in the checkout)")
    p.set_defaults(func=cmd_tui, no_mouse=False)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str, parent=sub):
        sp = parent.add_parser(name, help=help, description=help)
        sp.set_defaults(func=func)
        return sp

    t = add("tui", cmd_tui, "open the full-screen app (default)")
    t.add_argument("--no-mouse", action="store_true", help="do not capture the mouse")

    k = add("keys", cmd_keys, "list every key binding id, its default and effective keys (for tui.toml)")
    k.add_argument("--json", action="store_true")

    sv = add("serve", cmd_serve, "serve the TUI over SSH (asyncssh, key auth) or in a browser (localhost)")
    mode = sv.add_mutually_exclusive_group(required=True)
    mode.add_argument("--ssh", action="store_true", help="SSH server; keys in <home>/ssh/authorized_keys")
    mode.add_argument("--web", action="store_true", help="textual-serve, bound to 127.0.0.1")
    sv.add_argument("--port", type=int, default=None)
    sv.add_argument("--host", default="127.0.0.1", help="SSH listen address (default 127.0.0.1)")

    spec = sub.add_parser("spec", help="check, list, show and diff specs").add_subparsers(
        dest="spec_cmd", metavar="ACTION", required=True)
    c = add("check", cmd_spec_check, "check a spec: grammar, FROZEN blocks, vectors", spec)
    c.add_argument("file")
    c.add_argument("--json", action="store_true")
    ls = add("list", cmd_spec_list, "list shipped genomes and stored spec versions", spec)
    ls.add_argument("--json", action="store_true")
    sh = add("show", cmd_spec_show, "print a spec (file path, hash, hash prefix or label)", spec)
    sh.add_argument("ref")
    df = add("diff", cmd_spec_diff, "unified diff of two specs", spec)
    df.add_argument("a")
    df.add_argument("b")

    db = sub.add_parser("db", help="database maintenance").add_subparsers(
        dest="db_cmd", metavar="ACTION", required=True)
    di = add("info", cmd_db_info, "schema version, table sizes, integrity", db)
    di.add_argument("--json", action="store_true")

    d = add("doctor", cmd_doctor, "what is installed and reachable, and how to fix it")
    d.add_argument("--json", action="store_true")
    d.add_argument("--provider", choices=["anthropic", "openai"], default=None,
                   help="also check a model server: reach it, list its models, learn the context window")
    _server_args(d)
    d.add_argument("--model", default=None, help="the model to check (default: the server's only one)")

    rig = sub.add_parser("rig", help="the test rig").add_subparsers(
        dest="rig_cmd", metavar="ACTION", required=True)
    bi = add("build-image", cmd_rig_build_image, "build the rig image from Debian packages and wheels", rig)
    bi.add_argument("--force", action="store_true", help="rebuild even when the image exists")
    bi.add_argument("--if-missing", action="store_true",
                    help="print nothing when the image exists (what ./cambrian runs on start)")

    v = add("verify", cmd_verify, "run the rig on an artifact directory and print the report")
    v.add_argument("dir")
    v.add_argument("--backend", choices=[b for _, b in BACKENDS], default="docker")
    v.add_argument("--json", action="store_true")
    v.add_argument("--reproduce", action="store_true",
                   help="when viable, ask the running offspring to breed through an LLM gateway served here "
                        "and judge what it writes (its spec must declare `reproduce`)")
    v.add_argument("--provider", choices=list(PROVIDERS), default=None,
                   help="--reproduce: who answers the offspring's model calls (default: sim without a key)")
    v.add_argument("--model", default=None)
    v.add_argument("--base-url", default=None)
    v.add_argument("--api-key-env", default=None, metavar="VAR")
    v.add_argument("--seed", type=int, default=0)

    g = add("generate", cmd_generate, "turn a spec into an artifact directory")
    g.add_argument("spec")
    g.add_argument("--out", required=True)
    g.add_argument("--provider", choices=list(PROVIDERS), default=None,
                   help="default: anthropic when ANTHROPIC_API_KEY is set, else sim")
    _server_args(g)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--model", default=None, help="openai: default the server's only model")
    g.add_argument("--cassette", default=None, help="cassette file for --provider replay")
    g.add_argument("--record", default=None, help="record the provider's answers to this cassette")
    _answer_args(g)
    g.add_argument("--stream", action="store_true", help="echo the answer to stderr as it streams")
    g.add_argument("--json", action="store_true")

    hosts = sub.add_parser("hosts", help="rig hosts: this machine's engine and others over SSH").add_subparsers(
        dest="hosts_cmd", metavar="ACTION", required=True)
    ha = add("add", cmd_hosts, "add a rig host: local, or ssh://[user@]host[:port] (drained until checked)", hosts)
    ha.add_argument("url")
    ha.add_argument("--name", default=None, help="default: from the address (e.g. box-2222)")
    ha.add_argument("--slots", type=int, default=None, help="parallel rig runs (default: its cores)")
    ha.add_argument("--identity", default=None, help="ssh private key file (default: your ssh config)")
    ha.add_argument("--known-hosts", default=None, help="known_hosts file (default: your ssh config)")
    ha.add_argument("--docker-socket", default=None, help="the engine's socket there (default /var/run/docker.sock)")
    ha.add_argument("--json", action="store_true")
    hl = add("list", cmd_hosts, "list rig hosts, their slots, facts and drain state", hosts)
    hl.add_argument("--json", action="store_true")
    hc = add("check", cmd_hosts, "preflight and calibrate hosts (all by default); a pass undrains", hosts)
    hc.add_argument("names", nargs="*")
    hc.add_argument("--no-calibrate", action="store_true", help="skip the short rig run")
    hc.add_argument("--json", action="store_true")
    hr = add("remove", cmd_hosts, "forget a rig host", hosts)
    hr.add_argument("name")

    camp = sub.add_parser("campaign", help="run and control campaigns").add_subparsers(
        dest="campaign_cmd", metavar="ACTION", required=True)
    cs = add("start", cmd_campaign_start, "start a campaign in a detached engine", camp)
    cs.add_argument("--spec", required=True, help="spec file")
    cs.add_argument("-n", type=int, default=CAMPAIGN_DEFAULTS["generations"],
                    help=f"generations (default {CAMPAIGN_DEFAULTS['generations']})")
    cs.add_argument("-p", type=int, default=CAMPAIGN_DEFAULTS["parallelism"],
                    help=f"parallel workers (default {CAMPAIGN_DEFAULTS['parallelism']})")
    cs.add_argument("--provider", choices=list(PROVIDERS), default=None,
                    help="default: anthropic when ANTHROPIC_API_KEY is set, else sim")
    _server_args(cs)
    cs.add_argument("--model", default=None)
    _answer_args(cs, defaults=False)
    cs.add_argument("--seed", type=int, default=0)
    cs.add_argument("--budget-usd", type=float, default=None)
    cs.add_argument("--budget-tokens", type=int, default=None)
    cs.add_argument("--budget-wall-s", type=float, default=None, help="wall-time budget in seconds")
    cs.add_argument("--max-retries", type=int, default=CAMPAIGN_DEFAULTS["max_retries"],
                    help="informed retries per failed generation")
    cs.add_argument("--backend", choices=[b for _, b in BACKENDS], default="docker")
    cs.add_argument("--cassette", default=None, help="cassette for --provider replay")
    cs.add_argument("--reproduce", type=reproduce_arg, default=("off", None), metavar="off|every|sample[:RATE]",
                    help="ask promoted offspring to breed through the LLM gateway: every one, a sample "
                         "(default rate 0.25), or off (default); the spec must declare `reproduce`")
    cs.add_argument("--sealed", choices=("gate", "score"), default="gate",
                    help="the spec's sealed vectors (never shown to the writer): a failed one makes the "
                         "artifact non-viable (gate, default) or is only measured (score)")
    cs.add_argument("--examiner", choices=("off", "score", "gate"), default="score",
                    help="Layer 2, the dual-blind examiner: probes written once per spec version from "
                         "the spec alone; measured only (score, default), a failed probe makes the "
                         "artifact non-viable (gate), or off")
    cs.add_argument("--examiner-model", default=None, help="the examiner's model (default: the campaign's)")
    cs.add_argument("--redteam", type=reproduce_arg, default=("off", None), metavar="off|every|sample[:RATE]",
                    help="Layer 3, the red team: a call that reads the spec and a viable artifact's code "
                         "and proposes probes to break it, run by a second rig run — for every viable "
                         "generation, a sample (default rate 0.25), or off (default; it costs one call "
                         "and one rig run per tested generation)")
    cs.add_argument("--redteam-threshold", type=float, default=None, metavar="X",
                    help="a viable generation whose red-team score (1 - confirmed/proposed) is below X "
                         "becomes non-viable (rule redteam_threshold; the original specified 0.7)")
    cs.add_argument("--wait", action="store_true", help="follow the campaign to its end")
    cs.add_argument("--json", action="store_true")
    for name, func, help_ in (("status", cmd_campaign_status, "state, generations and summary"),
                              ("pause", cmd_campaign_control, "finish in-flight work, start nothing new"),
                              ("resume", cmd_campaign_control, "resume a paused or crashed campaign"),
                              ("abort", cmd_campaign_control, "kill in-flight work and stop"),
                              ("wait", cmd_campaign_wait, "follow a campaign to its end")):
        sp = add(name, func, help_, camp)
        # read-only commands default to the newest campaign; control commands need the id
        read_only = func in (cmd_campaign_status, cmd_campaign_wait)
        sp.add_argument("id", nargs="?" if read_only else None,
                        help="campaign id" + (" (default: the newest)" if read_only else ""))
        sp.add_argument("--json", action="store_true")
    cl = add("list", cmd_campaign_list, "all campaigns", camp)
    cl.add_argument("--json", action="store_true")

    exm = sub.add_parser("examiner", help="the dual-blind examiner's probes: list, dismiss").add_subparsers(
        dest="examiner_cmd", metavar="ACTION", required=True)
    xs = add("show", cmd_examiner_show, "a spec's examiner probes, their evidence, suspects and dismissals", exm)
    xs.add_argument("spec", help="spec hash, unique prefix or label")
    xs.add_argument("--json", action="store_true")
    xd = add("dismiss", cmd_examiner_dismiss, "dismiss a wrong examiner probe: it stops counting "
             "for later generations (the evidence is kept)", exm)
    xd.add_argument("spec", help="spec hash, unique prefix or label")
    xd.add_argument("probe", help="the probe's name")
    xd.add_argument("--reason", required=True, help="why the probe is wrong (kept with the dismissal)")
    xd.add_argument("--model", default=None, help="only this examiner model's probe set")
    xd.add_argument("--json", action="store_true")

    imp = sub.add_parser("import", help="import history from elsewhere").add_subparsers(
        dest="import_cmd", metavar="SOURCE", required=True)
    ia = add("cambrian-artifacts", cmd_import, "import an original Cambrian artifacts tree", imp)
    ia.add_argument("dir")
    ia.add_argument("--json", action="store_true")
    rv = add("reverify", cmd_reverify, "run stored generations through today's rig and compare verdicts")
    rv.add_argument("gens", nargs="+", metavar="GEN", help="generation numbers (each valid one is judged)")
    rv.add_argument("--backend", choices=[b for _, b in BACKENDS], default="docker")
    rv.add_argument("--profile", choices=["cambrian", "original"], default="cambrian",
                    help="verdict rules: ours (default) or the original's, to reproduce recorded verdicts")
    rv.add_argument("--json", action="store_true")

    ev = sub.add_parser("evolve", help="evolve a spec: mutations, screening campaigns, Bayesian optimisation"
                        ).add_subparsers(dest="evolve_cmd", metavar="ACTION", required=True)
    es = add("start", cmd_evolve_start, "start an evolution run in a detached process", ev)
    es.add_argument("--spec", required=True)
    es.add_argument("--budget-generations", type=int, default=EVOLUTION_DEFAULTS["budget_generations"],
                    help="total generations across campaigns (base 12, then 4 per screening and 12 per "
                         "full campaign: 160 covers the sweep of models and hats and a few optimizer steps)")
    es.add_argument("--budget-usd", type=float, default=None)
    es.add_argument("--provider", choices=list(PROVIDERS), default=None)
    _server_args(es, continuation=False)
    es.add_argument("--model", default=None, help="the base spec's model (the first incumbent's)")
    es.add_argument("--models", type=_model_list, default=None, metavar="M1,M2,...",
                    help="choices of the model operator (sim: sim-1,sim-1-lite,sim-1-pro); each may be "
                         "[provider:]model[@base_url] to mix providers, e.g. "
                         "anthropic:claude-haiku-4-5,openai:qwen2.5-coder:7b@http://127.0.0.1:11434/v1")
    es.add_argument("--optimizer", choices=["bo", "random"], default="bo",
                    help="bo: scikit-optimize GP; random: uniform search over the same space")
    es.add_argument("--no-prior", action="store_true",
                    help="start BO cold instead of from what earlier runs in this home learned about "
                         "rewrites and crossovers (and sweep every hat and model, even those that never paid)")
    es.add_argument("--seed", type=int, default=0)
    es.add_argument("--fitness", choices=["viability", "fertility", "verified"], default="viability",
                    help="fertility: every campaign asks each promoted generation to breed, and a viable "
                         "but infertile one counts as a failure (the spec must declare `reproduce`); "
                         "verified: every campaign runs the dual-blind examiner, and a viable generation "
                         "that fails one of its (undismissed) probes counts as a failure")
    es.add_argument("--screen-generations", type=int, default=EVOLUTION_DEFAULTS["screen_generations"],
                    help="generations of a screening campaign")
    es.add_argument("--full-generations", type=int, default=EVOLUTION_DEFAULTS["full_generations"],
                    help="generations of a full campaign")
    es.add_argument("-p", type=int, default=EVOLUTION_DEFAULTS["parallelism"], help="parallel workers per campaign")
    es.add_argument("--backend", choices=[b for _, b in BACKENDS], default="docker")
    es.add_argument("--max-observations", type=int, default=None)
    es.add_argument("--wait", action="store_true")
    es.add_argument("--json", action="store_true")
    for name, help_ in (("status", "observations and the best variant so far"),
                        ("resume", "resume a paused or crashed run"), ("pause", "finish the current campaign, then wait"),
                        ("abort", "stop the run"), ("best", "the incumbent; --export writes its spec")):
        sp = add(name, cmd_evolve, help_, ev)
        read_only = name in ("status", "best")
        sp.add_argument("id", nargs="?" if read_only else None,
                        help="run id" + (" (default: the newest)" if read_only else ""))
        sp.add_argument("--json", action="store_true")
        if name == "best":
            sp.add_argument("--export", default=None, help="file or folder for the best spec and its metadata")
    el = add("list", cmd_evolve, "all evolution runs", ev)
    el.add_argument("--json", action="store_true")

    ds = add("distill", cmd_distill, "compare viable and failed code of a campaign; propose amendments")
    ds.add_argument("campaign")
    ds.add_argument("--json", action="store_true")
    am = sub.add_parser("amendments", help="review proposed spec amendments").add_subparsers(
        dest="amend_cmd", metavar="ACTION", required=True)
    for name, help_ in (("list", "list amendments (filter by status or campaign)"),
                        ("show", "evidence, the resulting spec diff, and the confirmation's before/after"),
                        ("accept", "accept (with --text: edit then accept): creates a new spec version"),
                        ("reject", "reject"),
                        ("confirm", "run the accepted amendment's spec with the original campaign's "
                                    "settings and seed schedule"),
                        ("compare", "before/after viability of the amendment's confirmation campaign")):
        sp = add(name, cmd_amendments, help_, am)
        sp.add_argument("ids", nargs="*" if name == "list" else "+")
        sp.add_argument("--json", action="store_true")
        if name == "accept":
            sp.add_argument("--text", default=None, help="edited amendment text (one id only)")
            sp.add_argument("--confirm", type=int, nargs="?", const=0, default=None, metavar="N",
                            help="then start a confirmation campaign of N generations "
                                 "(default: as many as the original campaign)")
        if name == "confirm":
            sp.add_argument("-n", dest="confirm", type=int, default=None,
                            help="generations (default: as many as the original campaign)")
        if name in ("accept", "confirm"):
            sp.add_argument("--wait", action="store_true",
                            help="follow the confirmation campaign and print the before/after comparison")

    dev = sub.add_parser("dev", help="developer tools").add_subparsers(
        dest="dev_cmd", metavar="ACTION", required=True)
    fl = add("fake-llm", cmd_dev_fake_llm, "run a loopback fake model server (Messages API, or --api openai)", dev)
    fl.add_argument("--port", type=int, default=8765)
    fl.add_argument("--latency", type=float, default=0.0, help="messages: seconds before each answer")
    fl.add_argument("--api", choices=("messages", "openai"), default="messages",
                    help="messages: the Anthropic Messages API; openai: /v1/chat/completions like llama.cpp's server")
    fl.add_argument("--models", default="", help="openai: the served model names, comma-separated")
    fl.add_argument("--context-window", type=int, default=8192,
                    help="openai: the context window /props reports (0: none)")

    return p


def main(argv: list[str] | None = None) -> int:
    silence_library_deprecations()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())

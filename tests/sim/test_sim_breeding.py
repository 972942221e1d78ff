"""The sim as an organism's model (reproduction) and its breeding defects, without Docker.
The real loop — a Prime bred through the gateway in the real rig — is in
``test_sim_reproduction.py``."""

from __future__ import annotations

import ast
import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.llm.base import LLMRequest
from core.llm.sim import SimProvider
from core.llm.sim import breeding as br
from core.llm.sim import defects as dm
from core.llm.sim.build import files_for
from core.llm.sim.provider import breed_key, read_organism_prompt
from core.llm.sim.retry import RetryContext, detect_breeding
from core.llm.sim.specinfo import parse_spec_text
from core.prime.parser import parse_files
from tests.sim.readme import readme_row

ROOT = Path(__file__).resolve().parents[2]
PRIME = (ROOT / "spec" / "prime.md").read_text(encoding="utf-8")
ECHO = (ROOT / "spec" / "echo.md").read_text(encoding="utf-8")
N_STAT = 3000


def organism_request(user: str, draw: int | None = 4, generation: int = 9, seed: int = 5) -> LLMRequest:
    """What the gateway hands the provider for one of a Prime's calls."""
    meta = {"generation": generation, "campaign_id": "c-x", "seed": seed, "asked_model": "sim-1"}
    if draw is not None:
        meta["draw"] = draw
    return LLMRequest(model="sim-1", system="You are Prime.", messages=[{"role": "user", "content": user}],
                      max_tokens=32000, purpose="reproduction", metadata=meta)


def ask(req: LLMRequest, **kw) -> str:
    return asyncio.run(SimProvider(**kw).complete(req)).text


def prime_prompt(tmp_path: Path, history: list[str], diagnostics: str | None, repair: bool) -> str:
    """The user message a sim-written Prime's own code assembles (its build_prompt and
    repair_prompt, run in a child interpreter with a deadline)."""
    files = files_for(PRIME, seed=0, generation=1, defects=set())
    for rel, content in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(content)
    script = (
        "import json, sys\n"
        "from prime.generator import GenerateJob, build_prompt, repair_prompt\n"
        "from prime.parser import ParseError\n"
        "a = json.loads(sys.stdin.read())\n"
        "job = GenerateJob(a['spec'], 3, 2, 'sim-1', a['history'], a['diagnostics'])\n"
        "system, user = build_prompt(job, 'sys')\n"
        "if a['repair']:\n"
        "    user = repair_prompt(user, ParseError('no-files', 1, 'the answer holds no file block'))\n"
        "print(json.dumps(user))\n")
    res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60, input=json.dumps({"spec": PRIME, "history": history,
                                                      "diagnostics": diagnostics, "repair": repair}))
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


# --- the organism's own calls -----------------------------------------------------------


@pytest.mark.parametrize("history,diagnostics,repair", [
    ([], None, False),
    (["gen 2 failed at health"], "health: 1 check failed", False),
    (["gen 2 failed at health"], None, True),
], ids=["plain", "history+diagnostics", "repair"])
def test_a_primes_own_prompt_is_read_back(tmp_path, history, diagnostics, repair):
    user = prime_prompt(tmp_path, history, diagnostics, repair)
    got = read_organism_prompt(user)
    assert got is not None
    assert got.spec == PRIME and got.repair is repair
    assert ("gen 2 failed at health" in got.history) is bool(history)
    assert got.diagnostics == (diagnostics or "")


def test_non_specs_are_not_organism_prompts():
    assert read_organism_prompt("Write the codebase for generation 3.") is None
    assert read_organism_prompt("# Prime\n\nno front matter\n") is None
    assert read_organism_prompt("---\nname: x\nnever closed\n") is None


def test_an_organism_call_is_answered_with_a_whole_codebase():
    text = ask(organism_request(PRIME), format_errors=False)
    files = {f.path: f.content for f in parse_files(text)}
    assert {"prime/app.py", "prime/generator.py", "prime/llm.py", "tests/test_api.py"} <= set(files)
    assert "manifest.json" not in files and not any(p.startswith("spec/") for p in files)
    for path, src in files.items():
        if path.endswith(".py"):
            ast.parse(src)  # (no syntax_error was drawn for this key, or it would say so)
    # the repair call gets the same codebase, well formed; history and diagnostics are read
    assert ask(organism_request(PRIME + "\n\nYour previous answer could not be parsed: x"),
               format_errors=False) == text
    retry = ask(organism_request(PRIME + "\n\nWhy the previous attempt failed:\nhealth"), format_errors=False)
    assert parse_files(retry)


def test_a_spec_that_is_not_in_the_user_message_is_not_seen():
    """What a Prime with swapped roles sends: the spec as system, the system prompt as user."""
    req = organism_request("Write every file of the codebase the specification describes.")
    req.system = PRIME
    text = ask(req)
    assert text.startswith("(simulated)") and "<file" not in text
    with pytest.raises(Exception):
        parse_files(text)


def test_organism_calls_draw_under_their_own_key_not_the_breeders():
    spec = parse_spec_text(PRIME)
    assert breed_key({"generation": 9, "draw": 4}) == "bred-4"
    assert breed_key({"generation": 9}) == "bred-9"
    # deterministic for one breeder, different across breeders
    assert ask(organism_request(PRIME, draw=4)) == ask(organism_request(PRIME, draw=4))
    assert ask(organism_request(PRIME, draw=4)) != ask(organism_request(PRIME, draw=5))
    # independent of the breeder's own draw: a viable breeder's grand-offspring fails at
    # about the rate any first attempt fails (a copy would never fail)
    pairs = [(dm.decide(spec, s, 0), dm.decide(spec, s, breed_key({"draw": 0}))) for s in range(N_STAT)]
    viable_breeders = [b for a, b in pairs if a.viable]
    p = dm.expected_viability(spec)
    rate = sum(b.viable for b in viable_breeders) / len(viable_breeders)
    assert abs(rate - p) < 4 * (p * (1 - p) / len(viable_breeders)) ** 0.5, (rate, p)
    # and the organism's answer is not the breeder's answer
    breeder = files_for(PRIME, seed=5, generation=4)
    bred = {f.path: f.content for f in parse_files(ask(organism_request(PRIME, draw=4, seed=5),
                                                       format_errors=False))}
    assert breeder != bred


def test_forcing_applies_to_organism_calls():
    text = ask(organism_request(PRIME), format_errors=False, force_defects={"manifest_not_written"})
    files = {f.path: f.content for f in parse_files(text)}
    assert '"manifest.json").write_text' not in files["prime/generator.py"]
    with pytest.raises(ValueError, match="unknown"):
        SimProvider(force_defects={"no_such_breeding_defect"})


# --- breeding defects -------------------------------------------------------------------


def test_readme_documents_every_breeding_defect():
    for kind in br.CATALOGUE:
        row = readme_row(kind.name)
        assert row is not None, kind.name
        assert f"| {kind.base:.2f} | `{kind.where}` |" in row, kind.name


def _forms(name: str) -> list[tuple[int, str]]:
    """(seed, form): one Prime per form of breeding defect ``name``."""
    out, seen = [], set()
    for seed in range(200):
        files = files_for(PRIME, seed=seed, generation=1, defects={name})
        form = "repr" if "str(response.content)" in files["prime/llm.py"] else "subscript" \
            if 'block["text"]' in files["prime/llm.py"] else ""
        if form not in seen:
            seen.add(form)
            out.append((seed, form))
        if len(seen) == len(br.KINDS[name].variants):
            return out
    raise AssertionError(f"{name}: forms seen {seen}")


@pytest.mark.parametrize("name", list(br.KINDS))
def test_a_breeding_defect_is_invisible_to_the_primes_tests(name):
    """Only the loop's modules change; the tests, the app and everything the vectors probe
    stay byte for byte; the code still parses; the retry detector sees it."""
    for seed, _form in _forms(name):
        clean = files_for(PRIME, seed=seed, generation=1, defects=set())
        bad = files_for(PRIME, seed=seed, generation=1, defects={name})
        changed = {p for p in clean if clean[p] != bad.get(p)} | (set(bad) - set(clean))
        assert changed and changed <= {"prime/llm.py", "prime/generator.py"}, changed
        for p in changed:
            ast.parse(bad[p])
        seen = detect_breeding(parse_spec_text(PRIME), RetryContext(None, 1, "health", "", files=bad))
        assert {k for k, v in seen.items() if v} == {name}
        seen = detect_breeding(parse_spec_text(PRIME), RetryContext(None, 1, "health", "", files=clean))
        assert not any(seen.values())


def test_breeding_defects_never_change_viability():
    spec = parse_spec_text(PRIME)
    with_breeding = 0
    for seed in range(N_STAT):
        d = dm.decide(spec, seed, 1)
        assert d.viable == (not d.defects and not d.bites)
        with_breeding += bool(d.breeding)
    p = br.p_sterile(spec)
    assert abs(with_breeding / N_STAT - p) < 4 * (p * (1 - p) / N_STAT) ** 0.5


def test_breeding_rates_follow_the_spec():
    prime = parse_spec_text(PRIME)
    probs = br.probabilities(prime)
    # prime.md names the system message, the user message, the manifest write and the exact copy
    assert probs == pytest.approx({"swapped_roles": 0.05, "prompt_without_spec": 0.03, "content_blocks": 0.12,
                                   "manifest_not_written": 0.05, "wrong_spec_copy": 0.04})
    no_loop = parse_spec_text(PRIME.replace("## Generation Loop\n", "## Steps\n"))
    assert br.probabilities(no_loop)["swapped_roles"] == pytest.approx(0.10)  # x2, its phrase x0.5
    assert "The system message is the system prompt." in PRIME
    unsaid = parse_spec_text(PRIME.replace("The system message is the system prompt.", ""))
    assert br.probabilities(unsaid)["swapped_roles"] == pytest.approx(0.10)
    assert br.probabilities(unsaid)["content_blocks"] == probs["content_blocks"]
    assert br.probabilities(parse_spec_text(ECHO)) == {k: 0.0 for k in br.KINDS}
    assert br.probabilities(prime, 1.6)["content_blocks"] == pytest.approx(0.192)


def test_a_retry_keeps_or_drops_breeding_defects_at_random_never_by_name():
    spec = parse_spec_text(PRIME)
    kept = total = 0
    for seed in range(N_STAT):
        d = dm.decide(spec, seed, 1, attempt=1, previous=set(), named={"content_blocks"},
                      previous_breeding={"content_blocks"})
        kept += "content_blocks" in d.breeding
        total += 1
    assert abs(kept / total - dm.P_KEEP_OTHER) < 0.03

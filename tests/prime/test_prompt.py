"""Prompt layout, bounded history digest, retry/repair/mutate requests, prompt size vs history."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.llm.anthropic_provider import AnthropicProvider
from core.llm.fake_server import FakeAnthropic
from core.prime.parser import ParseError
from core.prime.prompt import (
    HISTORY_MAX_CHARS,
    MUTATE_SYSTEM_PROMPT,
    RetryInfo,
    SectionAnswerError,
    build_generate_request,
    build_mutate_request,
    build_repair_request,
    history_digest,
    parse_section_answer,
)
from core.spec import DEFAULT_SYSTEM_PROMPT, parse_spec
from rig.schema import Diagnostics, Failure
from tests.llm.conftest import _no_network_violations  # noqa: F401  (the network guard)

ROOT = Path(__file__).parents[2]
ECHO = (ROOT / "spec/echo.md").read_bytes().decode()
PRIME = (ROOT / "spec/prime.md").read_bytes().decode()
TINY = "---\nname: tiny\nrequired-sections: []\n---\n# Tiny\n\n## Behaviour\n\nSay hi.\n"


class BareHistory:
    """The two methods every history source has (core.store.Store's names)."""

    def __init__(self, gens: list[dict]):
        self.gens = gens  # oldest first
        self.calls: list[tuple] = []

    def history(self, spec_hash: str, limit: int):
        self.calls.append(("history", limit))
        return list(reversed(self.gens))[:limit]

    def outcome_counts(self, spec_hash: str):
        counts: dict[str, int] = {}
        for g in self.gens:
            counts[g["outcome"]] = counts.get(g["outcome"], 0) + 1
        return counts


class FakeHistory(BareHistory):
    """Also counts failure summaries, like Store.failure_summaries."""

    def failure_summaries(self, spec_hash: str, limit: int = 5):
        self.calls.append(("failure_summaries", limit))
        counts: dict[str, int] = {}
        for g in self.gens:
            if g["outcome"] in ("failed", "timeout") and g.get("reason"):
                counts[g["reason"]] = counts.get(g["reason"], 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


def gens(n: int, reason_len: int = 60) -> list[dict]:
    out = []
    for i in range(n):
        if i % 7 == 3:
            out.append({"number": i, "outcome": "promoted", "failure_stage": "none", "reason": None})
        else:
            stage = ["test", "build", "health", "start"][i % 4]
            reason = f"{stage}: {(i % 11) + 1} of 12 checks failed, first test_case_{i % 23} " + "x" * reason_len
            out.append({"number": i, "outcome": "timeout" if i % 13 == 5 else "failed", "failure_stage": stage,
                        "reason": reason[: reason_len + 40]})
    return out


# --- layout ---------------------------------------------------------------------------------


def test_generate_request_layout():
    spec = parse_spec(ECHO)
    req = build_generate_request(spec, "", generation=5, model="m", seed=42, campaign_id="c9")
    assert req.system == spec.system_prompt and req.model == "m" and req.purpose == "generate"
    assert req.cache_prefix_blocks == 1 and req.max_tokens == 32000
    assert req.metadata == {"seed": 42, "generation": 5, "attempt": 0, "spec_hash": spec.hash,
                            "spec_name": "echo", "campaign_id": "c9"}
    assert len(req.messages) == 1 and req.messages[0]["role"] == "user"
    blocks = [b["text"] for b in req.messages[0]["content"]]
    assert all(b["type"] == "text" for b in req.messages[0]["content"])
    assert len(blocks) == 3
    assert blocks[0] == f'<spec name="echo" hash="{spec.hash}">\n{ECHO}\n</spec>'
    assert blocks[1] == "<history>\nno earlier generations of this spec\n</history>"
    assert blocks[2].startswith("<task>\nWrite the complete codebase for generation 5 of the spec above")
    assert blocks[2].endswith("</task>") and "</file:end>" in blocks[2] and "manifest.json" in blocks[2]


def test_spec_without_system_prompt_section_gets_the_default():
    req = build_generate_request(parse_spec(TINY), "", generation=0, model="m")
    assert req.system == DEFAULT_SYSTEM_PROMPT


def test_attribute_values_are_escaped():
    spec = parse_spec(TINY.replace("name: tiny", 'name: "a\\"b<c>&"'))
    first = build_generate_request(spec, "", model="m").messages[0]["content"][0]["text"]
    assert first.startswith('<spec name="a&quot;b&lt;c&gt;&amp;" hash="sha256:')


def test_history_block_and_digest_shape():
    h = FakeHistory(gens(30))
    digest = history_digest(h, "sha256:x")
    lines = digest.split("\n")
    assert lines[0] == "generations: 30 (failed 24, promoted 4, timeout 2)"
    assert lines[1] == "recent (newest first):"
    assert lines[2].startswith("- #29 failed at build: build: 8 of 12 checks failed")
    recent = [ln for ln in lines if ln.startswith("- #")]
    assert len(recent) == 8 and "- #24 promoted" in recent
    i = lines.index("frequent failures:")
    assert len(lines[i + 1:]) == 5 and all(ln.startswith("- ") and "x " in ln[:8] for ln in lines[i + 1:])
    assert all(len(ln) <= 160 for ln in lines)
    req = build_generate_request(parse_spec(ECHO), digest, model="m")
    assert req.messages[0]["content"][1]["text"] == f"<history>\n{digest}\n</history>"
    # bounded reads: only the last 8 rows are fetched
    assert ("history", 8) in h.calls and all(limit <= 8 for name, limit in h.calls if name == "history")


def test_digest_counts_frequent_failures_without_store_support():
    h = BareHistory(gens(50))
    digest = history_digest(h, "s")
    assert "frequent failures:" in digest and ("history", 200) in h.calls


def test_digest_is_bounded_whatever_the_history():
    huge = FakeHistory(gens(5000, reason_len=5000))
    digest = history_digest(huge, "s")
    assert len(digest) <= HISTORY_MAX_CHARS
    assert history_digest(FakeHistory([]), "s") == ""


# --- prompt size does not grow with the number of generations -------------------------------


def _store_with(store, spec_hash: str, start: int, stop: int) -> None:
    for i in range(start, stop):
        g = store.create_generation(spec_hash=spec_hash)
        if i % 7 == 3:
            store.set_outcome(g.number, "tested")
            store.set_outcome(g.number, "promoted")
        else:
            stage = ["test", "build", "health", "start"][i % 4]
            reason = f"{stage}: {(i % 11) + 1} of 12 checks failed, first test_case_{i % 23}"
            store.set_outcome(g.number, "timeout" if i % 13 == 5 else "failed", reason=reason,
                              failure_stage=stage)


@pytest.mark.parametrize("spec_file", ["echo.md", "prime.md"])
async def test_prompt_size_stays_flat_from_10_to_1000_generations(tmp_path, spec_file):
    from core.store import Store

    text = (ROOT / "spec" / spec_file).read_bytes().decode()
    spec = parse_spec(text)
    store = Store.open(tmp_path / "c.db")
    store.add_spec(text)
    sizes: dict[int, int] = {}
    done = 0
    async with FakeAnthropic() as fake:
        p = AnthropicProvider(api_key="k", base_url=fake.base_url)
        for n in (10, 100, 1000):
            _store_with(store, spec.hash, done, n)
            done = n
            digest = history_digest(store, spec.hash)
            assert f"generations: {n} " in digest
            req = build_generate_request(spec, digest, generation=n, model="claude-sonnet-4-6")
            await p.complete(req)
            sizes[n] = fake.last_input_tokens
        await p.aclose()
    store.close()
    print(f"\nprompt tokens for {spec_file} (fake-server count): {sizes}")
    lo, hi = min(sizes.values()), max(sizes.values())
    assert (hi - lo) / lo <= 0.05, sizes


# --- retry ------------------------------------------------------------------------------------


def test_retry_block_layout_and_file_relevance():
    diag = Diagnostics(
        stage="test", summary="2 of 5 tests failed", exit_code=1,
        failures=[Failure(test="tests/test_app.py::test_echo", error="AssertionError: 400 != 200",
                          file="echo/app.py", line=12)],
        stdout_tail="FAILED tests/test_app.py::test_echo\n", stderr_tail="",
    )
    files = {"README.md": "readme\n", "echo/app.py": "def make_app(): ...\n", "zz.py": "pass\n",
             "tests/test_app.py": "def test_echo(): ...\n", "manifest.json": "{}", "spec/echo.md": ECHO}
    req = build_generate_request(parse_spec(ECHO), "", RetryInfo(attempt=1, generation=4, diagnostics=diag,
                                                                  files=files), generation=5, model="m")
    blocks = [b["text"] for b in req.messages[0]["content"]]
    assert len(blocks) == 4 and req.metadata["attempt"] == 1
    retry = blocks[2]
    assert retry.startswith('<retry generation="4" attempt="1">\n') and retry.endswith("\n</retry>")
    for needle in ("stage: test", "summary: 2 of 5 tests failed", "exit_code: 1", "failures:",
                   "- tests/test_app.py::test_echo: AssertionError: 400 != 200 (echo/app.py:12)",
                   "stdout_tail:\nFAILED tests/test_app.py::test_echo"):
        assert needle in retry
    assert "stderr_tail" not in retry  # empty fields are left out
    order = [line.split('"')[1] for line in retry.split("\n") if line.startswith("<failed-file ")]
    assert order == ["echo/app.py", "tests/test_app.py", "zz.py", "README.md"]  # manifest/spec not resent
    assert '<failed-file path="echo/app.py" truncated="false">\ndef make_app(): ...\n</failed-file>' in retry
    assert "files of the failed attempt (4 of 4, most relevant first):" in retry


def test_retry_block_respects_its_budget():
    files = {f"f{i:02}.py": ("x = 1\n" * 2000) for i in range(20)}
    retry = build_generate_request(parse_spec(ECHO), "", RetryInfo(attempt=2, generation=1, files=files,
                                                                    summary="health failed", max_chars=30_000),
                                   model="m").messages[0]["content"][2]["text"]
    assert len(retry) <= 30_000
    assert "summary: health failed" in retry and "[omitted: " in retry
    assert retry.count("<failed-file") >= 1


def test_huge_single_file_is_truncated_not_dropped():
    retry = build_generate_request(parse_spec(ECHO), "", RetryInfo(files={"big.py": "y = 2\n" * 50_000}),
                                   model="m").messages[0]["content"][2]["text"]
    assert '<failed-file path="big.py" truncated="true">' in retry and "more lines)" in retry
    assert len(retry) <= 48_000


# --- repair -------------------------------------------------------------------------------------


def test_repair_request():
    orig = build_generate_request(parse_spec(ECHO), "", generation=3, model="m", seed=1)
    bad = 'Here:\n<file path="a.py">\nprint(1)\n'
    rep = build_repair_request(orig, bad, ParseError(2, "unterminated block for 'a.py'", "unterminated-block"))
    assert rep.purpose == "repair" and rep.system == orig.system and rep.model == "m"
    assert rep.messages[:1] == orig.messages and len(rep.messages) == 3
    assert rep.messages[1] == {"role": "assistant", "content": bad.rstrip()}
    fb = rep.messages[2]["content"][0]["text"]
    assert fb.startswith("<parse-error line=\"2\">unterminated block for 'a.py'</parse-error>\n")
    assert "Emit the whole answer again" in fb
    assert rep.metadata["repair"] == 1 and rep.metadata["seed"] == 1 and rep.cache_prefix_blocks == 1
    cut = build_repair_request(orig, bad, (2, "x"), stop_reason="max_tokens")
    assert "cut off at the output token limit" in cut.messages[2]["content"][0]["text"]


def test_repair_request_cuts_long_answers_around_the_error():
    lines = [f"line {i}" for i in range(20_000)]
    bad = "\n".join(lines)
    rep = build_repair_request(build_generate_request(parse_spec(ECHO), "", model="m"), bad, (15_000, "boom"),
                               max_answer_chars=10_000)
    shown = rep.messages[1]["content"]
    assert len(shown) <= 10_000 and "line 14999" in shown and "characters omitted" in shown
    assert shown.startswith("line 0\n")
    assert build_repair_request(build_generate_request(parse_spec(ECHO), "", model="m"), "", (1, "x")
                                ).messages[1]["content"] == "(empty answer)"


# --- mutate -------------------------------------------------------------------------------------


def test_mutate_request_and_answer():
    spec = parse_spec(ECHO)
    req = build_mutate_request(spec, "Testing", "Ask for property tests.\n", model="m", seed=3)
    assert req.purpose == "mutate" and req.system == MUTATE_SYSTEM_PROMPT
    blocks = [b["text"] for b in req.messages[0]["content"]]
    assert blocks[0].startswith('<spec name="echo"') and blocks[1] == (
        '<mutate section="Testing">\nAsk for property tests.\n</mutate>')
    assert req.metadata["section"] == "Testing" and req.metadata["seed"] == 3
    answer = 'Sure.\n<section name="Testing">\nUse hypothesis.\n\nNo sleeps.\n</section:end>\nDone.'
    assert parse_section_answer(answer, "Testing") == "Use hypothesis.\n\nNo sleeps.\n"
    with pytest.raises(SectionAnswerError, match="expected"):
        parse_section_answer('<section name="Other">\nx\n</section:end>', "Testing")
    with pytest.raises(SectionAnswerError, match="unterminated"):
        parse_section_answer('<section name="Testing">\nx\n', "Testing")
    with pytest.raises(SectionAnswerError, match="no "):
        parse_section_answer("nothing", "Testing")

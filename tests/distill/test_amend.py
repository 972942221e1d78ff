"""Distilling a campaign into amendments, and accepting / editing / rejecting them."""

from __future__ import annotations

import difflib

import pytest

from core.distill import (
    DEFAULT_SECTION,
    FEATURE_SECTIONS,
    NEW_SECTION,
    TEXTS,
    AmendmentRefused,
    accept_amendment,
    distill_campaign,
    distill_preview,
    reject_amendment,
    target_section,
)
from core.distill.features import FEATURES
from core.home import spec_dir
from core.models import Amendment, AmendmentStatus
from core.spec import check_spec, frozen_preserved, parse_spec
from core.store import Store
from tests.distill.synth import SPEC, add_generation, generation_files, planted_campaign


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "cambrian.db")
    yield s
    s.close()


@pytest.fixture
def planted(store):
    spec_hash, numbers = planted_campaign(store)
    report = distill_campaign(store, "c-planted")
    return spec_hash, numbers, report


def _pending(store, spec_hash, section, text, feature="manual"):
    return store.add_amendment(Amendment(campaign_id=None, spec_hash=spec_hash, section=section,
                                         text=text, feature=feature))


# --- distilling ---------------------------------------------------------------------------


def test_planted_feature_becomes_an_amendment(store, planted):
    spec_hash, numbers, report = planted
    assert len(report.analysed) == 40
    by_feature = {a.feature: a for a in report.amendments}
    assert set(by_feature) == {"monotonic_clock"}
    a = by_feature["monotonic_clock"]
    ev = a.evidence
    assert ev["p"] < 0.01 and ev["q"] < 0.05
    assert ev["direction"] == "helps"
    assert ev["groups"]["viable"] == {"n": 20, "present": 18, "rate": 0.9}
    assert ev["groups"]["failed"] == {"n": 20, "present": 2, "rate": 0.1}
    assert ev["odds_ratio"] == pytest.approx(81.0)
    assert a.section == "Implementation Requirements"
    assert "time.monotonic()" in a.text
    # stored, pending, against the campaign's spec
    stored = store.amendment(a.id)
    assert stored.status == AmendmentStatus.PENDING and stored.spec_hash == spec_hash
    assert stored.campaign_id == "c-planted" and stored.evidence["p"] == ev["p"]
    # examples come from viable generations and point at the code
    viable = set(numbers[:20])
    assert 1 <= len(ev["examples"]) <= 3
    for ex in ev["examples"]:
        assert ex["generation"] in viable
        assert ex["file"] == "pkg/core.py" and ex["line"] == 5
        assert "time.monotonic()" in ex["code"]


def test_feature_without_difference_yields_nothing(planted):
    _, _, report = planted
    row = next(r for r in report.features if r["feature"] == "dataclasses")
    assert row["groups"]["viable"]["present"] == 10 and row["groups"]["failed"]["present"] == 10
    vf = row["tests"]["viable_vs_failed"]
    assert vf["tested"] and vf["p"] == pytest.approx(1.0) and not vf["significant"]
    assert all(a.feature != "dataclasses" for a in report.amendments)


def test_malformed_files_are_counted_and_named(planted):
    _, numbers, report = planted
    assert len(report.unparsed) == 2
    assert {(u.generation, u.file) for u in report.unparsed} == {
        (numbers[3], "pkg/broken.py"), (numbers[27], "pkg/broken.py")}
    assert all(u.line == 1 or u.line == 2 for u in report.unparsed)
    j = report.to_json()
    assert j["unparsed_count"] == 2 and j["unparsed"][0]["file"] == "pkg/broken.py"


def test_harmful_feature_is_phrased_negatively_with_failed_examples(store):
    bare = "def f():\n    try:\n        return 1\n    except:\n        return 2\n"
    clean = "def f():\n    return 1\n"
    spec_hash = store.add_spec(SPEC).hash
    store.create_campaign("c-bare", spec_hash, {})
    failed = []
    for i in range(40):
        viable = i < 20
        k = i % 20
        has = (k >= 18) if viable else (k < 18)
        files = generation_files(monotonic=True, dataclass=False, tag=i)
        files["pkg/errors.py"] = (bare if has else clean).encode()
        n = add_generation(store, "c-bare", spec_hash, viable, files)
        if not viable:
            failed.append(n)
    report = distill_campaign(store, "c-bare")
    a = next(a for a in report.amendments if a.feature == "bare_except")
    assert a.evidence["direction"] == "hurts" and a.evidence["examples_from"] == "failed"
    assert a.text == TEXTS["bare_except"]["hurts"] and a.text.startswith("Never")
    assert {ex["generation"] for ex in a.evidence["examples"]} <= set(failed)
    assert a.evidence["examples"][0]["line"] == 4


def test_no_duplicate_when_pending_or_already_in_the_section(store, planted):
    spec_hash, _, report = planted
    again = distill_campaign(store, "c-planted")
    assert again.amendments == []
    assert any(s.feature == "monotonic_clock" and "already pending" in s.reason for s in again.skipped)
    assert len(store.amendments(campaign_id="c-planted")) == 1
    # a spec that already says it: nothing proposed
    text = SPEC.replace("- Start-up is fast.", "- Start-up is fast.\n- " + TEXTS["monotonic_clock"]["helps"])
    planted_campaign(store, campaign="c-said", spec_text=text)
    said = distill_campaign(store, "c-said")
    assert said.amendments == []
    assert any("already in" in s.reason for s in said.skipped)


def test_contrary_direction_is_reported_not_proposed(store):
    # a good habit that goes with failure: likely confounded, never turned into advice
    planted_campaign(store, campaign="c-contrary",
                     plan=lambda viable, k: {"monotonic": (k >= 18) if viable else (k < 18), "dataclass": False},
                     broken=())
    report = distill_campaign(store, "c-contrary")
    assert report.amendments == []
    assert any(s.feature == "monotonic_clock" and "not proposed" in s.reason for s in report.skipped)
    assert any(t.feature == "monotonic_clock" and t.direction == "hurts" for t in report.significant)


def test_generations_without_verdict_or_artifact_are_excluded(store):
    spec_hash = store.add_spec(SPEC).hash
    store.create_campaign("c-x", spec_hash, {})
    g = store.create_generation(spec_hash=spec_hash, campaign_id="c-x")  # in progress
    h = store.create_generation(spec_hash=spec_hash, campaign_id="c-x")
    store.set_outcome(h.number, "failed", "LLM error")  # never produced files
    report = distill_campaign(store, "c-x")
    reasons = {e["generation"]: e["reason"] for e in report.excluded}
    assert "no verdict" in reasons[g.number] and "no artifact" in reasons[h.number]
    assert report.amendments == [] and report.analysed == []


def test_unknown_campaign_raises_keyerror(store):
    with pytest.raises(KeyError):
        distill_campaign(store, "nope")


# --- mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["prime.md", "echo.md"])
def test_mapping_targets_real_sections_of_shipped_specs(name):
    path = spec_dir() / name  # shipped: a missing file is a failure, not a skip
    text = path.read_text(encoding="utf-8")
    spec = parse_spec(text)
    for f in FEATURES:
        assert f.name in FEATURE_SECTIONS and TEXTS[f.name]
        sec = target_section(text, f.name)
        assert spec.section(sec) is not None, (f.name, sec)
        assert sec not in ("Acceptance Vectors", "System Prompt")
    assert target_section(text, "trivial_asserts") == "Testing"
    if name == "prime.md":
        assert target_section(text, "retry_backoff") == "Generation Loop"
    else:
        assert target_section(text, "retry_backoff") == DEFAULT_SECTION


def test_mapping_falls_back_to_default_then_new_section():
    no_testing = SPEC.replace("## Testing\n\nEvery endpoint has a test.\n\n", "")
    assert check_spec(no_testing) == []
    assert target_section(no_testing, "trivial_asserts") == DEFAULT_SECTION
    bare = no_testing.replace("## Implementation Requirements\n\n- Python 3.11 and the standard library only.\n"
                              "- Start-up is fast.\n\n", "")
    assert check_spec(bare) == []
    assert target_section(bare, "trivial_asserts") == NEW_SECTION
    new = accept_text_into(bare, NEW_SECTION, TEXTS["trivial_asserts"]["hurts"])
    assert parse_spec(new).section(NEW_SECTION).body.strip() == TEXTS["trivial_asserts"]["hurts"]
    assert frozen_preserved(bare, new) == [] and check_spec(new) == []


def accept_text_into(spec_text, section, text):
    from core.distill import apply_text

    return apply_text(spec_text, section, text)


# --- accept / edit / reject ----------------------------------------------------------------


def _added_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    diff = list(difflib.ndiff(old.splitlines(), new.splitlines()))
    return [d[2:] for d in diff if d.startswith("+ ")], [d[2:] for d in diff if d.startswith("- ")]


def test_accept_creates_a_version_differing_only_by_the_amendment(store, planted):
    spec_hash, _, report = planted
    a = report.amendments[0]
    version = accept_amendment(store, a.id)
    assert version.parent_hash == spec_hash and version.origin.value == "amendment"
    old, new = store.spec_text(spec_hash), store.spec_text(version.hash)
    added, removed = _added_lines(old, new)
    assert removed == []
    assert [ln for ln in added if ln.strip()] == ["- " + a.text]
    assert frozen_preserved(old, new) == [] and check_spec(new) == []
    assert a.text in parse_spec(new).section("Implementation Requirements").body
    done = store.amendment(a.id)
    assert done.status == AmendmentStatus.ACCEPTED and done.result_spec_hash == version.hash
    with pytest.raises(AmendmentRefused, match="accepted, not pending"):
        accept_amendment(store, a.id)


def test_accept_into_prime_keeps_frozen_blocks(store):
    path = spec_dir() / "prime.md"  # shipped: a missing file is a failure, not a skip
    old = path.read_text(encoding="utf-8")
    h = store.add_spec(old).hash
    for f in ("monotonic_clock", "trivial_asserts", "retry_backoff"):
        text = next(iter(TEXTS[f].values()))
        aid = _pending(store, h, target_section(old, f), text, f)
        v = accept_amendment(store, aid)
        new = store.spec_text(v.hash)
        added, removed = _added_lines(old, new)
        assert removed == [] and [ln for ln in added if ln.strip()] in (["- " + text], [text])
        assert frozen_preserved(old, new) == [] and check_spec(new) == []


def test_edit_then_accept_stores_the_edited_text(store, planted):
    spec_hash, _, report = planted
    a = report.amendments[0]
    edited = "Use `time.monotonic()` for every duration and timeout."
    version = accept_amendment(store, a.id, edited_text=edited)
    done = store.amendment(a.id)
    assert done.status == AmendmentStatus.EDITED and done.text == edited
    assert done.result_spec_hash == version.hash
    new = store.spec_text(version.hash)
    assert edited in new and a.text not in new
    # accepting with the unchanged text counts as a plain accept
    aid = _pending(store, spec_hash, "Testing", "Name each test after the behaviour it checks.")
    accept_amendment(store, aid, edited_text="Name each test after the behaviour it checks.")
    assert store.amendment(aid).status == AmendmentStatus.ACCEPTED


def test_reject(store, planted):
    _, _, report = planted
    a = report.amendments[0]
    done = reject_amendment(store, a.id)
    assert done.status == AmendmentStatus.REJECTED and done.result_spec_hash is None
    with pytest.raises(AmendmentRefused, match="rejected, not pending"):
        reject_amendment(store, a.id)
    with pytest.raises(AmendmentRefused):
        accept_amendment(store, a.id)


@pytest.mark.parametrize("section,text,reason", [
    ("Acceptance Vectors", "Probe every endpoint twice.", "FROZEN"),
    ("Testing", "Add vectors.\n<!-- BEGIN FROZEN: acceptance-vectors -->\nx\n<!-- END FROZEN: acceptance-vectors -->",
     "FROZEN"),
    ("Testing", "<!-- END FROZEN: acceptance-vectors -->", "FROZEN"),
    ("Testing", "Fine.\n\n## Sneaky\n\nA new section.", "heading"),
    ("No Such Section", "Anything.", "no section"),
    ("Testing", "   ", "empty"),
])
def test_unsafe_amendments_are_refused_and_stay_pending(store, section, text, reason):
    h = store.add_spec(SPEC).hash
    aid = _pending(store, h, section, text)
    versions = len(store.spec_versions())
    with pytest.raises(AmendmentRefused) as exc:
        accept_amendment(store, aid)
    assert reason.lower() in exc.value.reason.lower()
    assert exc.value.amendment_id == aid and str(aid) in str(exc.value)
    assert store.amendment(aid).status == AmendmentStatus.PENDING
    assert store.amendment(aid).result_spec_hash is None
    assert len(store.spec_versions()) == versions
    with pytest.raises(AmendmentRefused):
        distill_preview(store, aid)


def test_invalid_parent_spec_is_refused(store):
    broken = SPEC.replace("<!-- END FROZEN: acceptance-vectors -->\n", "")
    h = store.add_spec(broken).hash
    aid = _pending(store, h, "Testing", "Test more.")
    with pytest.raises(AmendmentRefused, match="parent spec is not valid"):
        accept_amendment(store, aid)
    assert store.amendment(aid).status == AmendmentStatus.PENDING


def test_preview_does_not_store(store, planted):
    spec_hash, _, report = planted
    a = report.amendments[0]
    versions = len(store.spec_versions())
    old, new = distill_preview(store, a.id)
    assert old == store.spec_text(spec_hash)
    assert a.text in new and a.text not in old
    old2, edited = distill_preview(store, a.id, edited_text="Prefer the monotonic clock.")
    assert "Prefer the monotonic clock." in edited and a.text not in edited
    assert len(store.spec_versions()) == versions
    assert store.amendment(a.id).status == AmendmentStatus.PENDING
    # accepting produces exactly the previewed text
    v = accept_amendment(store, a.id)
    assert store.spec_text(v.hash) == new


def test_paragraph_style_when_section_is_prose(store):
    h = store.add_spec(SPEC).hash
    aid = _pending(store, h, "Testing", "Tests never sleep.")
    old, new = distill_preview(store, aid)
    assert "Every endpoint has a test.\n\nTests never sleep.\n\n## Acceptance Vectors" in new


def test_list_sections_get_a_bullet_once(store):
    h = store.add_spec(SPEC).hash
    aid = _pending(store, h, "Implementation Requirements", "- Already a bullet.")
    _, new = distill_preview(store, aid)
    assert "\n- Already a bullet.\n" in new and "- - " not in new
    _, new = distill_preview(store, aid, edited_text="Two lines:\nsecond line.")
    assert "\n- Two lines:\n  second line.\n" in new



def test_a_distiller_with_a_stale_view_does_not_duplicate(store, planted):
    """The interleaving of two distillers on one campaign: B read the amendment list before A
    inserted, then inserts after. The duplicate check runs again inside B's insert
    transaction, so B skips the feature instead of proposing it twice."""
    spec_hash, _, report = planted
    assert [a.feature for a in report.amendments] == ["monotonic_clock"]

    class StaleView:
        def __init__(self, inner):
            self._inner = inner

        def amendments(self, *a, **kw):
            return []  # what B saw before A's insert

        def __getattr__(self, name):
            return getattr(self._inner, name)

    again = distill_campaign(StaleView(store), "c-planted")
    assert again.amendments == []
    assert any(s.feature == "monotonic_clock" and "already pending" in s.reason for s in again.skipped)
    assert len(store.amendments(campaign_id="c-planted")) == 1

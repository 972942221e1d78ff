"""Verdict profiles: our rules, and the original Cambrian's.

Where Cambrian is deliberately stricter than the original project, the rule has a name.
Every report records its profile and, when a named rule decided a verdict the original
would have reached differently, which one (``stricter_rules``: ours failed where the
original would have gone on; ``lenient_rules``: ours passed where the original would have
failed). ``--profile original`` switches every rule off and applies the original's timeouts
(its last rig version), so that recorded history can be reproduced; the default stays ours.

The hardening (fresh container, no network, limits, no symlinks or devices in the artifact,
results collected by trusted code) is not a verdict rule: it holds under every profile.
"""

from __future__ import annotations

from dataclasses import dataclass

from rig.api import StageTimeouts
from rig.runner import (HEALTH_ENDPOINT, IMPORT_SMOKE, PROCESS_ALIVE, STRUCTURED_COUNTS,
                        SYNTAX_GATE)

DUPLICATE_PATHS = "duplicate_manifest_paths"
CREATED_AT_KEY = "manifest_created_at"
HASH_MATCH = "artifact_hash_match"
TAMPER_GATE = "tamper_gate"
BUILD_TIMEOUT = "build_timeout"
TEST_TIMEOUT = "test_timeout"
SEALED_VECTORS = "sealed_vectors"
EXAMINER_PROBES = "examiner_probes"


@dataclass(frozen=True)
class Rule:
    name: str
    ours: str
    original: str


RULES: dict[str, Rule] = {r.name: r for r in (
    Rule(DUPLICATE_PATHS, "a manifest that lists a path twice fails the manifest stage",
         "duplicates were accepted"),
    Rule(CREATED_AT_KEY, "the manifest's timestamp key is `created-at`",
         "M1-era manifests with `created_at` were accepted"),
    Rule(HASH_MATCH, "the listed files must hash to `artifact-hash`",
         "only the hash's format was checked"),
    Rule(SYNTAX_GATE, "every listed .py file parses (never executed), or build fails",
         "no such check"),
    Rule(TAMPER_GATE, "test code that rewrites pytest's verdict or touches the rig's plugin "
         "fails the test stage", "no such check"),
    Rule(STRUCTURED_COUNTS, "exact per-test results from the rig's pytest plugin; no results, "
         "zero tests or an unfinished session fail the test stage",
         "the test command's exit code decided; counts were read from its output"),
    Rule(IMPORT_SMOKE, "every non-test module imports in a fresh interpreter, or start fails",
         "no such check"),
    Rule(PROCESS_ALIVE, "the service must still be running after the probes",
         "not checked after the port opened"),
    Rule(HEALTH_ENDPOINT, "entry.health is probed (2xx) besides the vectors and contracts",
         "probed only when there were neither vectors nor contracts, then with GET /stats"),
    Rule(BUILD_TIMEOUT, "build times out after 120 s (or the spec's rig-timeouts)",
         "300 s"),
    Rule(TEST_TIMEOUT, "test times out after 180 s (or the spec's rig-timeouts)", "120 s"),
    Rule(SEALED_VECTORS, "a failed sealed vector (the spec's `sealed-vectors`, never shown to "
         "the writer) fails health when the campaign gates on them",
         "no sealed vectors; they only score under this profile"),
    Rule(EXAMINER_PROBES, "a failed examiner probe (Layer 2: written from the spec alone, never "
         "shown to the writer) fails health when the campaign gates on them",
         "no examiner; its probes only score under this profile"),
)}

# Timeouts of the original rig's last version (test-rig/test_rig.py): build 300 s, test
# 120 s, readiness 30 s, 10 s per probe request.
ORIGINAL_TIMEOUTS = StageTimeouts(build=300.0, test=120.0, start=30.0, health=30.0)


@dataclass(frozen=True)
class Profile:
    name: str
    rules: frozenset[str]
    timeouts: StageTimeouts
    spec_timeouts: bool  # a spec's `rig-timeouts` front matter applies
    # start and probe the built state in a second container while the tests run (ours); the
    # original started the service after the tests, in the workspace they left
    parallel_start: bool

    def on(self, rule: str) -> bool:
        return rule in self.rules


CAMBRIAN = Profile("cambrian", frozenset(RULES), StageTimeouts(), spec_timeouts=True,
                   parallel_start=True)
ORIGINAL = Profile("original", frozenset(), ORIGINAL_TIMEOUTS, spec_timeouts=False,
                   parallel_start=False)
PROFILES = {p.name: p for p in (CAMBRIAN, ORIGINAL)}


def get_profile(name: str | None) -> Profile:
    if name is None:
        return CAMBRIAN
    try:
        return PROFILES[name]
    except KeyError:
        from rig.api import RigSetupError

        raise RigSetupError(f"unknown verdict profile {name!r}: choose "
                            f"{' or '.join(PROFILES)}") from None

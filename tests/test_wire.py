"""Wire formats (DESIGN §6): loss-free round trips and precise validation errors."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from rig.hashing import artifact_hash_of, artifact_hash_of_dir
from rig.schema import Contract, Manifest, ViabilityReport

FIX = Path(__file__).parent / "fixtures" / "wire"


def load(name: str) -> dict:
    return json.loads((FIX / name).read_text())


@pytest.mark.parametrize(
    "name, model",
    [("manifest.json", Manifest), ("report_viable.json", ViabilityReport),
     ("report_nonviable.json", ViabilityReport)],
)
def test_round_trip_is_lossless(name, model):
    raw = load(name)
    obj = model.model_validate(raw)
    assert obj.to_wire() == raw
    # and again through text
    assert model.model_validate_json(obj.to_json()).to_wire() == raw


def test_contracts_round_trip():
    for c in load("manifest.json")["contracts"]:
        assert Contract.model_validate(c).to_wire() == c


def _fails_naming(model, data, field):
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    locs = [".".join(str(p) for p in e["loc"]) for e in info.value.errors()]
    assert any(field in loc for loc in locs), (field, locs)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda m: m.pop("spec-hash"), "spec-hash"),
        (lambda m: m.__setitem__("spec-hash", "sha256:XYZ"), "spec-hash"),
        (lambda m: m.__setitem__("artifact-hash", "md5:" + "0" * 32), "artifact-hash"),
        (lambda m: m.__setitem__("generation", -1), "generation"),
        (lambda m: m.__setitem__("cambrian-version", 2), "cambrian-version"),
        (lambda m: m.__setitem__("created-at", "yesterday"), "created-at"),
        (lambda m: m["token-usage"].pop("output"), "token-usage.output"),
        (lambda m: m["files"].remove("manifest.json"), "files"),
        (lambda m: m["files"].remove("spec/prime.md"), "files"),
        (lambda m: m["files"].append("../escape.py"), "files"),
        (lambda m: m["entry"].__setitem__("health", "http://example.com/health"), "entry.health"),
        (lambda m: m["entry"].pop("start"), "entry.start"),
        (lambda m: m["contracts"][0]["expect"].pop("status"), "contracts.0.expect.status"),
        (lambda m: m["contracts"][0].__setitem__("path", "health"), "contracts.0.path"),
        (lambda m: m["contracts"][0].__setitem__("type", "grpc"), "contracts.0.type"),
    ],
)
def test_invalid_manifest_names_field(mutate, field):
    data = copy.deepcopy(load("manifest.json"))
    mutate(data)
    _fails_naming(Manifest, data, field)


@pytest.mark.parametrize(
    "name, mutate, field",
    [
        ("report_viable.json", lambda r: r.__setitem__("status", "alive"), "status"),
        ("report_viable.json", lambda r: r.__setitem__("failure_stage", "deploy"), "failure_stage"),
        ("report_viable.json", lambda r: r["checks"].__setitem__("lint", {"passed": True, "duration_ms": 1}), "checks"),
        ("report_viable.json", lambda r: r["checks"]["test"].__setitem__("tests_passed", 13), "checks.test"),
        ("report_viable.json", lambda r: r["checks"]["build"].pop("passed"), "checks.build.passed"),
        ("report_viable.json", lambda r: r.__setitem__("completed_at", "soon"), "completed_at"),
        ("report_nonviable.json", lambda r: r.pop("diagnostics"), "diagnostics"),
        ("report_nonviable.json", lambda r: r.__setitem__("failure_stage", "none"), "failure_stage"),
        ("report_nonviable.json", lambda r: r["diagnostics"]["failures"][0].pop("error"),
         "diagnostics.failures.0.error"),
        ("report_nonviable.json", lambda r: r["diagnostics"].__setitem__("stage", "lint"), "diagnostics.stage"),
    ],
)
def test_invalid_report_names_field(name, mutate, field):
    data = copy.deepcopy(load(name))
    mutate(data)
    with pytest.raises(ValidationError) as info:
        ViabilityReport.model_validate(data)
    text = str(info.value)
    # model-level checks name the field in the message, field-level ones in the location
    assert field.split(".")[0] in text


def test_report_consistency_rules_name_the_field():
    data = load("report_viable.json")
    data["failure_stage"] = "test"
    with pytest.raises(ValidationError, match="failure_stage"):
        ViabilityReport.model_validate(data)


def test_artifact_hash_matches_independent_computation(tmp_path):
    files = {
        "prime/__main__.py": b"print('hi')\n",
        "spec/prime.md": "# Prime — ünïcode\n".encode(),
        "a.txt": b"",
        "manifest.json": b"{ignored}",
        "tests/test_x.py": b"def test_x():\n    assert 1 + 1 == 2\n",
    }
    # independent: concatenate the whole stream, hash once
    stream = b"".join(p.encode() + b"\0" + files[p] for p in sorted(files) if p != "manifest.json")
    expected = "sha256:" + hashlib.sha256(stream).hexdigest()
    assert artifact_hash_of(files) == expected
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    assert artifact_hash_of_dir(str(tmp_path), list(files)) == expected
    # order of the listing does not matter; content does
    assert artifact_hash_of_dir(str(tmp_path), list(reversed(list(files)))) == expected
    files["a.txt"] = b"x"
    assert artifact_hash_of(files) != expected

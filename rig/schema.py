"""Wire formats shared with the original Cambrian (DESIGN §6).

The manifest and contracts are kebab-case on the wire; the viability report is
snake_case. Unknown keys are kept (``extra="allow"``) so that artifacts written by
other Cambrian versions round-trip without loss. This module lives in ``rig`` because
the rig owns the verdict and must not depend on ``core``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)

HASH_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
STAGES = ("manifest", "build", "test", "start", "health")
FailureStage = Literal["none", "manifest", "build", "test", "start", "health"]


def _check_hash(value: str) -> str:
    if not HASH_RE.match(value):
        raise ValueError("must be 'sha256:' followed by 64 lowercase hex digits")
    return value


def _check_iso(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not an ISO-8601 timestamp: {value!r}") from exc
    return value


class _Wire(BaseModel):
    """Base: keep unknown keys, never emit keys that were absent."""

    model_config = ConfigDict(populate_by_name=True, extra="allow", frozen=False)

    @model_serializer(mode="wrap")
    def _drop_unset_none(self, handler):  # type: ignore[no-untyped-def]
        data = handler(self)
        if isinstance(data, dict):
            # An optional key absent on input stays absent on output.
            return {k: v for k, v in data.items() if v is not None or k in self._explicit_keys()}
        return data

    def _explicit_keys(self) -> set[str]:
        keys: set[str] = set()
        for name in self.model_fields_set:
            field = type(self).model_fields.get(name)
            keys.add(field.alias if field is not None and field.alias else name)
        return keys

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_wire(), indent=indent)


# --- contracts and vectors (§6.3) -------------------------------------------------


class Expectation(_Wire):
    status: int = Field(ge=100, le=599)
    body: Any = None
    body_contains: dict[str, Any] | None = None
    body_has_keys: list[str] | None = None


class Contract(_Wire):
    """An HTTP check. Spec vectors use the same schema."""

    name: str = Field(min_length=1)
    type: Literal["http"] = "http"
    method: Literal["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"] = "GET"
    path: str
    body: Any = None  # request body, JSON
    expect: Expectation

    @field_validator("path")
    @classmethod
    def _path_absolute(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("must start with '/'")
        return v


SpecVector = Contract


# --- manifest (§6.1) ---------------------------------------------------------------


class TokenUsage(_Wire):
    input: int = Field(ge=0)
    output: int = Field(ge=0)


class Entry(_Wire):
    build: str
    test: str
    start: str
    health: str

    @field_validator("health")
    @classmethod
    def _health_url(cls, v: str) -> str:
        if not re.match(r"^http://localhost:\d{1,5}/", v):
            raise ValueError("must be an http://localhost:PORT/path URL")
        return v

    @property
    def port(self) -> int:
        return int(re.match(r"^http://localhost:(\d+)", self.health).group(1))  # type: ignore[union-attr]

    @property
    def health_path(self) -> str:
        return "/" + self.health.split("/", 3)[3]


class Manifest(_Wire):
    cambrian_version: int = Field(alias="cambrian-version")
    generation: int = Field(ge=0)
    parent_generation: int = Field(alias="parent-generation", ge=0)
    spec_hash: str = Field(alias="spec-hash")
    artifact_hash: str = Field(alias="artifact-hash")
    producer_model: str = Field(alias="producer-model")
    token_usage: TokenUsage = Field(alias="token-usage")
    files: list[str]
    created_at: str = Field(alias="created-at")
    entry: Entry
    contracts: list[Contract] | None = None

    _h1 = field_validator("spec_hash", "artifact_hash")(classmethod(lambda cls, v: _check_hash(v)))
    _t = field_validator("created_at")(classmethod(lambda cls, v: _check_iso(v)))

    @field_validator("cambrian_version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v != 1:
            raise ValueError("only cambrian-version 1 is understood")
        return v

    @field_validator("files")
    @classmethod
    def _files(cls, v: list[str]) -> list[str]:
        if "manifest.json" not in v:
            raise ValueError("must include 'manifest.json'")
        if len(set(v)) != len(v):
            raise ValueError("contains duplicate paths")
        specs = [f for f in v if f.startswith("spec/") and f.endswith(".md")]
        if len(specs) != 1:
            raise ValueError(f"must hold exactly one spec/*.md file, found {len(specs)}")
        for f in v:
            if f.startswith("/") or ".." in f.split("/") or "\x00" in f or "\\" in f:
                raise ValueError(f"unsafe path {f!r}")
        return v

    @property
    def spec_file(self) -> str:
        return next(f for f in self.files if f.startswith("spec/") and f.endswith(".md"))


# --- viability report (§6.2) -------------------------------------------------------


class CheckResult(_Wire):
    """Result of one contract or spec vector probe."""

    name: str
    passed: bool
    status: int | None = None
    error: str | None = None


class StageCheck(_Wire):
    passed: bool
    duration_ms: int = Field(ge=0)
    tests_run: int | None = Field(default=None, ge=0)
    tests_passed: int | None = Field(default=None, ge=0)
    vectors: list[CheckResult] | None = None
    contracts: list[CheckResult] | None = None

    @model_validator(mode="after")
    def _counts(self) -> "StageCheck":
        if self.tests_run is not None and self.tests_passed is not None:
            if self.tests_passed > self.tests_run:
                raise ValueError("tests_passed cannot exceed tests_run")
        return self


class Failure(_Wire):
    test: str
    error: str
    file: str | None = None
    line: int | None = None


class Diagnostics(_Wire):
    stage: FailureStage
    summary: str
    exit_code: int | None = None
    failures: list[Failure] = Field(default_factory=list)
    stdout_tail: str = ""
    stderr_tail: str = ""


class ViabilityReport(_Wire):
    generation: int = Field(ge=0)
    status: Literal["viable", "non-viable"]
    failure_stage: FailureStage
    checks: dict[str, StageCheck]
    fitness: dict[str, Any] = Field(default_factory=dict)
    completed_at: str
    diagnostics: Diagnostics | None = None

    _t = field_validator("completed_at")(classmethod(lambda cls, v: _check_iso(v)))

    @field_validator("checks")
    @classmethod
    def _known_stages(cls, v: dict[str, StageCheck]) -> dict[str, StageCheck]:
        unknown = set(v) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stage(s): {sorted(unknown)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "ViabilityReport":
        if self.status == "viable":
            if self.failure_stage != "none":
                raise ValueError("failure_stage: a viable report has failure_stage 'none'")
            if self.diagnostics is not None:
                raise ValueError("diagnostics: a viable report carries no diagnostics")
        else:
            if self.failure_stage == "none":
                raise ValueError("failure_stage: a non-viable report names the failing stage")
            if self.diagnostics is None:
                raise ValueError("diagnostics: a non-viable report must carry diagnostics")
        return self

"""The llama-server build the real-server tests share (tests/llamacpp.py): skipped with the
reason where it cannot be built, a failure under CAMBRIAN_REQUIRE_LOCAL_LLM=1 (CI)."""

from __future__ import annotations

import pytest

from tests import llamacpp


def skip_or_fail(why: str) -> None:
    if llamacpp.required():
        pytest.fail(f"{llamacpp.REQUIRE_ENV}=1 but the real-server tests cannot run: {why}")
    pytest.skip(f"no local llama.cpp server: {why}")


@pytest.fixture(scope="module")
def built():
    why = llamacpp.skip_reason()
    if why:
        skip_or_fail(why)
    try:
        return llamacpp.wait_until_ready()
    except Exception as exc:  # noqa: BLE001 - any failure to build is the reason
        skip_or_fail(f"{type(exc).__name__}: {exc}")

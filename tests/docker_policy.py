"""The one policy for tests that need Docker: without a reachable engine they skip, with the
engine's error as the reason — or fail, under CAMBRIAN_REQUIRE_DOCKER=1 (CI)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unreachable_reason() -> str | None:
    """None when the Docker engine answers a ping, else why not (never empty)."""
    try:
        from rig.image import docker_client

        docker_client().ping()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no usable engine"
        return _reason(exc)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def skip_or_fail(why: str | BaseException) -> NoReturn:
    why = _reason(why) if isinstance(why, BaseException) else (why.strip() or "no error text")
    if os.environ.get("CAMBRIAN_REQUIRE_DOCKER") == "1":
        pytest.fail(f"CAMBRIAN_REQUIRE_DOCKER=1 but Docker is unreachable: {why}")
    pytest.skip(f"Docker unreachable: {why}")


def require_docker() -> None:
    why = unreachable_reason()
    if why is not None:
        skip_or_fail(why)

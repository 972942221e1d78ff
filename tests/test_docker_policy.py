"""The Docker test policy gives every skip a reason and fails instead under CI."""

from __future__ import annotations

import pytest

from tests import docker_policy


def test_skip_always_has_a_reason(monkeypatch):
    monkeypatch.delenv("CAMBRIAN_REQUIRE_DOCKER", raising=False)
    for why, expected in ((RuntimeError(""), "RuntimeError"), ("  ", "no error text"),
                          (OSError("conn refused\nmore"), "conn refused")):
        with pytest.raises(pytest.skip.Exception) as info:
            docker_policy.skip_or_fail(why)
        assert str(info.value.msg) == f"Docker unreachable: {expected}"


def test_required_docker_fails_instead_of_skipping(monkeypatch):
    monkeypatch.setenv("CAMBRIAN_REQUIRE_DOCKER", "1")
    with pytest.raises(pytest.fail.Exception, match="CAMBRIAN_REQUIRE_DOCKER=1 but Docker is unreachable: boom"):
        docker_policy.skip_or_fail("boom")

"""Test policies: every skip of a Docker or real-terminal test has a reason, and CI fails instead."""

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


def test_terminal_tools_skip_with_the_missing_names_or_fail_under_ci(monkeypatch):
    from tests.tui.termtools import require_tools

    monkeypatch.delenv("CAMBRIAN_REQUIRE_TERMINAL", raising=False)
    require_tools("sh")  # present: nothing happens
    with pytest.raises(pytest.skip.Exception) as info:
        require_tools("sh", "cambrian-no-such-tool")
    assert str(info.value.msg) == "not installed: cambrian-no-such-tool"
    monkeypatch.setenv("CAMBRIAN_REQUIRE_TERMINAL", "1")
    with pytest.raises(pytest.fail.Exception, match="CAMBRIAN_REQUIRE_TERMINAL=1 but not installed: cambrian-no-such"):
        require_tools("cambrian-no-such-tool")

"""The host book, the pool's choice of host and draining, and address parsing (no Docker)."""

from __future__ import annotations

import asyncio
import json

import pytest

from core.hosts.config import LOCAL, HostBook, HostError, parse_new
from core.hosts.pool import HostPool, Lease, NoHostLeft
from rig.remote import SshTarget, clock_skew_s


def test_ssh_addresses():
    t = SshTarget.parse("ssh://me@box.example:2222")
    assert (t.user, t.host, t.port, t.destination()) == ("me", "box.example", 2222, "me@box.example")
    assert SshTarget.parse("ssh://box").destination() == "box"
    for bad in ("box", "http://box", "ssh://", "ssh://box/x", "ssh://box?x=1", "ssh://box:http"):
        with pytest.raises(ValueError):
            SshTarget.parse(bad)
    assert parse_new("ssh://me@Box.Example:2222").name == "box-example-2222"


def test_clock_skew_parses_docker_times():
    assert clock_skew_s("2000-01-01T00:00:00.123456789Z") > 10 ** 8
    assert clock_skew_s("nonsense") is None and clock_skew_s(None) is None


def _book(tmp_path, *hosts) -> HostBook:
    book = HostBook(tmp_path)
    book.add(parse_new("local", slots=1))
    for name, slots in hosts:
        book.add(parse_new(f"ssh://u@{name}", name=name, slots=slots))
    return book


def test_local_is_implicit_until_written(tmp_path):
    book = HostBook(tmp_path)
    assert [h.name for h in book.hosts()] == [LOCAL] and not book.path.exists()
    book.add(parse_new("local", slots=3))
    assert [(h.name, h.slots) for h in book.hosts()] == [(LOCAL, 3)]
    with pytest.raises(HostError):
        book.add(parse_new("local"))


def test_bad_hosts_json_is_a_clear_error(tmp_path):
    (tmp_path / "hosts.json").write_text("{nope")
    with pytest.raises(HostError, match="not valid JSON"):
        HostBook(tmp_path).hosts()


def test_k_failures_in_a_row_drain_and_a_success_resets(tmp_path):
    book = _book(tmp_path, ("a", 1))
    book.note_failure("a", "link down", drain_after=3)
    book.note_failure("a", "link down", drain_after=3)
    book.note_success("a")
    assert book.get("a").failures == 0 and book.get("a").drained is None
    for _ in range(3):
        h = book.note_failure("a", "Docker gone", drain_after=3)
    assert h.drained and "3 infrastructure failures" in h.drained and "Docker gone" in h.drained
    assert json.loads(book.path.read_text())["hosts"][1]["drained"] == h.drained


def test_the_pool_takes_the_host_with_most_free_slots_and_skips_drained(tmp_path):
    book = _book(tmp_path, ("a", 2), ("b", 1))
    pool = HostPool(tmp_path)

    async def go():
        taken = []
        async with pool.slot(set()) as h1:
            taken.append(h1.name)  # a: 2 free
            async with pool.slot(set()) as h2:
                taken.append(h2.name)  # local, a and b: 1 free each -> local first
                async with pool.slot({"local"}) as h3:
                    taken.append(h3.name)
        return taken

    assert asyncio.run(go()) == ["a", "local", "a"]
    book.update("a", drained="test")
    book.update("b", drained="test")
    with pytest.raises(NoHostLeft, match="a drained"):
        asyncio.run(_enter(pool, {"local"}))


async def _enter(pool, exclude):
    async with pool.slot(exclude):
        pass


def test_the_pool_charges_the_failing_host(tmp_path):
    book = _book(tmp_path, ("a", 1))
    seen = []
    pool = HostPool(tmp_path, drain_after=2, on_event=lambda k, d: seen.append((k, d)))
    for _ in range(2):
        pool.failed(Lease(book.get("a"), None), "forward down")
    assert book.get("a").drained and seen[-1][1]["drained"]
    assert [s[0] for s in seen] == ["host_failure", "host_failure"]

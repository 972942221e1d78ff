"""The docker keeper's finite lifetime stays above every deadline the host enforces."""

from __future__ import annotations

import pytest

from rig.api import StageTimeouts
from rig.backends.docker import KILL_GRACE, container_lifetime

# the host's sequential deadlines besides the organism stages: inject 60, collector ready 30,
# collector result 30, trusted check 60, gate 60, teardown waits 15 + 3 * 10 + 2 grace periods
HOST_FIXED_S = 60 + 30 + 30 + 60 + 60 + 15 + 30 + 2 * KILL_GRACE


@pytest.mark.parametrize("t", [StageTimeouts(), StageTimeouts(build=1, test=1, smoke=1, start=1, health=1),
                               StageTimeouts(build=900, test=3600, smoke=60, start=120, health=120)])
def test_lifetime_exceeds_the_longest_possible_run(t):
    longest = t.manifest + t.build + t.test + t.smoke + t.start + t.health + HOST_FIXED_S
    life = container_lifetime(t)
    assert isinstance(life, int) and longest < life < 10 * longest

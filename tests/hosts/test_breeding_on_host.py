"""A breeding campaign whose only rig host is the stand-in remote host: the breeder runs
there, its model call comes back through the reverse-forwarded gateway socket to this
engine (ledgered against the campaign), and what it bred is judged there too."""

from __future__ import annotations

import pytest

from core.engine.main import run_campaign
from core.home import db_path
from core.models import Outcome
from core.store import Store
from tests.engine.test_reproduction_engine import REAL_KEY, Model, answer, llm, new_campaign  # noqa: F401 - llm: fixture
from tests.organisms import breeder_spec

pytestmark = pytest.mark.docker


def test_a_breeder_on_the_remote_host_breeds_through_this_engines_gateway(remote_host, llm, tmp_path):  # noqa: F811
    from core.app.hosts import add_host, check_rig_host, remove_host

    home = tmp_path / "home"
    home.mkdir()
    add_host(home, remote_host.url, name="box", identity=str(remote_host.key),
             known_hosts=str(remote_host.known_hosts), docker_socket=str(remote_host.docker_sock))
    check_rig_host(home, "box", calibrate=False)
    remove_host(home, "local")  # every rig run of this campaign goes to box
    model = Model(answer())
    cid = new_campaign(home, llm(model), breeder_spec())
    assert run_campaign(home, cid) == "completed"
    with Store.open(db_path(home)) as s:
        (parent,) = s.generations(cid)
        assert parent.outcome is Outcome.PROMOTED, parent.reason
        assert s.report(parent.number)["rig_host"]["name"] == "box"
        r = s.reproduction(parent.number)
        assert r["status"] == "fertile", r
        b = r["request"]["response"]["breeder"]
        assert b["errors"] == [] and len(b["answers"]) == 1
        assert b["key_seen"] is None and b["key"] != REAL_KEY
        assert "connected" not in b["outside"].values(), b["outside"]
        (bred,) = s.bred_generations(campaign_id=cid)
        assert bred.outcome is Outcome.PROMOTED and s.report(bred.number)["rig_host"]["name"] == "box"
        assert [c.purpose for c in s.llm_calls(generation=parent.number)].count("reproduction") == 1
    assert model.breed_calls == 1
    remote = remote_host.client()
    assert remote.api.containers(all=True, filters={"label": f"cambrian.campaign={cid}"}) == []

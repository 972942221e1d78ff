"""A generation that never reached the rig (failed at generate): the inspector's Report tab
keeps its reason under the "no viability report" row — as data, so a reason holding
brackets ("[no-files]") is shown whole — and says where the model's answer is."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from cambrian_tui.screens.inspector import InspectorScreen
from core.home import db_path
from core.models import Outcome
from core.store import Store
from tests.tui.conftest import settle
from tests.tui.pilot import SIZES, make_app, plain, until
from tests.tui.seed import SPEC_V1

pytestmark = pytest.mark.timeout(120)

REASON = ('no artifact: the answer could not be parsed after 2 repair calls: line 1: no <file path="…"> '
          'blocks found in the answer (2 lines read) [no-files]')


@pytest.mark.parametrize("size", SIZES)
async def test_a_generate_failure_keeps_its_reason_and_points_at_the_answer(tmp_path, empty_spec_dir, size):
    home = tmp_path / "home"
    with Store.open(db_path(home)) as st:
        spec = st.add_spec(SPEC_V1, label="tally").hash
        st.create_campaign("c-gen", spec, {"spec_hash": spec, "generations": 1, "provider": "openai",
                                           "model": "gemma"})
        g = st.create_generation(spec_hash=spec, campaign_id="c-gen")
        st.append_log(g.number, "llm", ["[engine] the model's answer (3 characters) — parse", "123"])
        st.set_outcome(g.number, Outcome.FAILED, REASON, failure_stage="generate")
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        app.screen.select_campaign("c-gen")
        await settle(pilot)
        app.screen.open_inspector(g.number)
        await until(pilot, lambda: isinstance(app.screen, InspectorScreen) and app.screen.detail is not None,
                    "the inspector")
        await settle(pilot)
        text = " ".join(plain(app.screen.query_one("#check-detail", Static)).split())
        assert "blocks found in the answer (2 lines read) [no-files]" in text
        assert "The model's answer is in the Rig log tab (5)" in text

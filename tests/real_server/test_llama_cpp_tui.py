"""The campaign form's "Test connection" against a real llama.cpp server (tests/llamacpp.py
builds and caches it; skipped with the reason where it cannot be built, a failure under
CAMBRIAN_REQUIRE_LOCAL_LLM=1): the same server through both of its APIs — provider ``openai``
at ``/v1`` and provider ``anthropic`` (Messages API) at its root — shows its model, the
context window from its ``/props`` and a local $0 price, in the form."""

from __future__ import annotations

import asyncio
import time

import pytest
from textual.widgets import Input, Select, Static

from cambrian_tui.app import CambrianApp
from cambrian_tui.screens.new_campaign import NewCampaignScreen
from tests import llamacpp
from tests.llm.conftest import _no_network_violations  # noqa: F401  (loopback only)
from tests.tui.conftest import _small_template, empty_spec_dir, seeded, settle  # noqa: F401 (fixtures)

CTX = 4096

pytestmark = [pytest.mark.local_llm, pytest.mark.timeout(int(llamacpp.BUILD_TIMEOUT_S) + 600)]


async def _tested(pilot, form, timeout: float = 120) -> str:
    """Press ctrl+t and wait for the report (a real server answers in its own time)."""
    await pilot.press("ctrl+t")
    deadline = time.monotonic() + timeout
    result = form.query_one("#nc-conn-result", Static)
    while not str(result.render()).startswith(("✓", "✗")):
        assert time.monotonic() < deadline, "no connection report"
        await asyncio.sleep(0.1)
    await pilot.pause()
    return str(result.render())


async def test_test_connection_reaches_a_real_llama_server(built, children, seeded, empty_spec_dir):
    server = llamacpp.LlamaServer(children, ctx_size=CTX)
    home, _ = seeded
    app = CambrianApp(home, spec_dir=empty_spec_dir, theme="textual-dark", show_home=False, live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, NewCampaignScreen)

        form.query_one("#nc-provider", Select).value = "openai"
        await settle(pilot, 1)
        form.query_one("#nc-openai-base_url", Input).value = server.openai_base_url
        await settle(pilot, 1)
        text = await _tested(pilot, form)
        assert text.startswith(f"✓ openai at {server.openai_base_url} (local)"), text
        assert f"models: {llamacpp.MODEL_ALIAS}" in text
        assert f"{llamacpp.MODEL_ALIAS}: context window {CTX} tokens (llama.cpp" in text
        assert "price: local" in text
        assert form.query_one("#nc-model", Input).value == llamacpp.MODEL_ALIAS  # its only model

        form.query_one("#nc-provider", Select).value = "anthropic"  # the same server's Messages API
        await settle(pilot, 1)
        form.query_one("#nc-anthropic-base_url", Input).value = server.messages_base_url
        await settle(pilot, 1)
        assert "provider" not in form.errors  # no ANTHROPIC_API_KEY needed for a server of one's own
        text = await _tested(pilot, form)
        assert text.startswith(f"✓ anthropic at {server.messages_base_url} (local)"), text
        assert llamacpp.MODEL_ALIAS in text and f"context window {CTX} tokens" in text
        assert isinstance(app.screen, NewCampaignScreen) and app.return_code is None

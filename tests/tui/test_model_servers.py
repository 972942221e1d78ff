"""Pilot tests of the start forms with model servers (issue 22): each provider its own fields,
presets, "Test connection" against a real loopback server (the fake OpenAI-compatible server of
``core.llm.fake_openai``, a real aiohttp server on 127.0.0.1) and against a closed port, the
settings a started campaign stores, model choices ``[provider:]model[@base_url]`` in the
evolution form, and the form at 80x24.

Nothing reaches beyond loopback (the network guard of tests/llm is on). Starting a campaign runs
the real StartCampaign handler (checks, the server's only model, the stored campaign); only the
detached engine's spawn is recorded instead of run, and the rig backend is "none" so no Docker
is needed for the preflight.
"""

from __future__ import annotations


import pytest
from textual.widgets import Button, Input, Select, Static

from cambrian_tui.screens.main import MainScreen
from cambrian_tui.screens.new_campaign import NewCampaignScreen
from cambrian_tui.screens.new_evolution import NewEvolutionScreen
from core.home import db_path
from core.llm.fake_openai import FakeOpenAIThread
from core.store import Store
from tests.llm.conftest import _no_network_violations  # noqa: F401  (loopback only)
from tests.llamacpp import free_port
from tests.tui.conftest import settle
from tests.tui.pilot import SIZES, make_app, plain, until

pytestmark = pytest.mark.timeout(180)

MODEL = "gemma-3-270m"


async def open_form(pilot, key: str = "n"):
    await pilot.press(key)
    await settle(pilot)
    return pilot.app.screen


def record_starts(monkeypatch) -> list:
    """Record the start commands that reach the application layer, and refuse them."""
    from core.app import commands

    seen: list = []
    for kind in (commands.StartCampaign, commands.StartEvolution):
        monkeypatch.setitem(commands.HANDLERS, kind, lambda app, cmd: seen.append(cmd) or (_ for _ in ()).throw(
            commands.CommandRefused("recorded, not started")))
    return seen


@pytest.fixture
def fake_openai():
    """A llama.cpp-like OpenAI-compatible server: one model, /props says an 8192-token window."""
    with FakeOpenAIThread(models=[MODEL], context_window=8192) as server:
        yield server


async def choose_provider(pilot, form, name: str) -> None:
    form.query_one("#nc-provider", Select).value = name
    await settle(pilot, 1)


async def type_into(pilot, widget: Input, text: str) -> None:
    """Focus a field, empty it and type (key by key, as a person does)."""
    widget.focus()
    widget.value = ""
    await pilot.press(*text)
    await settle(pilot, 1)


def conn_text(form) -> str:
    return plain(form.query_one("#nc-conn-result", Static))


def visible_on_screen(app, widget) -> bool:
    """The widget is shown and not covered: the screen's topmost widget at its middle is it (or inside it)."""
    region = widget.region
    if region.area == 0:
        return False
    try:
        hit, _ = app.screen.get_widget_at(region.x + region.width // 2, region.y + region.height // 2)
    except Exception:  # outside the screen
        return False
    return hit is widget or widget in hit.ancestors


# --- each provider its own fields ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_choosing_openai_shows_only_its_fields(seeded, empty_spec_dir, size):
    home, _ = seeded
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        form = await open_form(pilot)
        assert isinstance(form, NewCampaignScreen)
        ids = [w.id for w in form.query("*") if w.id and w.id.startswith("nc-")]  # (a Select has a "label" each)
        assert len(ids) == len(set(ids)), "duplicate widget ids"
        for name, other in (("openai", "anthropic"), ("anthropic", "openai"), ("sim", "openai")):
            await choose_provider(pilot, form, name)
            shown = {w.id for w in form.query(".prov-field") if w.display and w.id}
            hidden = {w.id for w in form.query(".prov-field") if not w.display and w.id}
            if name == "openai":
                assert shown == {"nc-preset", "nc-openai-base_url", "nc-openai-api_key_env",
                                 "nc-openai-context_window", "nc-openai-continuation"}
            elif name == "anthropic":
                assert shown == {"nc-preset", "nc-anthropic-base_url", "nc-anthropic-api_key_env",
                                 "nc-anthropic-context_window"}
            else:
                assert shown == set()
            assert {w for w in hidden if w.startswith(f"nc-{other}-")} == \
                {w.id for w in form.query(".prov-field") if w.id and w.id.startswith(f"nc-{other}-")}
            assert form.query_one("#nc-conn").display == (name in ("openai", "anthropic"))
        # openai names its model by the server: the sim default is not carried over
        await choose_provider(pilot, form, "openai")
        assert form.query_one("#nc-model", Input).value == ""
        # the values the form gives are the chosen provider's only
        form.query_one("#nc-openai-base_url", Input).value = "http://127.0.0.1:9/v1"
        form.query_one("#nc-anthropic-base_url", Input).value = "http://127.0.0.1:7"
        await settle(pilot, 1)
        values = form.values()
        assert values["provider"] == "openai" and values["base_url"] == "http://127.0.0.1:9/v1"
        assert values["continuation"] == ""  # "by server" is no value, not a bad one
        assert "continuation" not in form.errors


@pytest.mark.parametrize("size", SIZES)
async def test_a_preset_fills_provider_and_fields(seeded, empty_spec_dir, size):
    home, _ = seeded
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        form = await open_form(pilot)
        await choose_provider(pilot, form, "openai")
        preset = form.query_one("#nc-preset", Select)

        preset.value = "vllm"
        await settle(pilot, 1)
        assert form.provider_name == "openai"
        assert form.query_one("#nc-openai-base_url", Input).value == "http://127.0.0.1:8000/v1"
        assert form.query_one("#nc-openai-api_key_env", Input).value == ""
        assert form.query_one("#nc-openai-continuation", Select).value == "continue_final_message"
        assert "vllm serve" in conn_text(form)  # the preset's notes: how to start that server

        preset.value = "openai"
        await settle(pilot, 1)
        assert form.query_one("#nc-openai-base_url", Input).value == "https://api.openai.com/v1"
        assert form.query_one("#nc-openai-api_key_env", Input).value == "OPENAI_API_KEY"
        assert form.query_one("#nc-openai-continuation", Select).value == "instruct"

        preset.value = "llamacpp"
        await settle(pilot, 1)
        assert form.query_one("#nc-openai-base_url", Input).value == "http://127.0.0.1:8080/v1"
        assert form.query_one("#nc-openai-api_key_env", Input).value == ""
        assert form.query_one("#nc-openai-continuation", Select).value is Select.NULL  # by server

        preset.value = "llamacpp-messages"  # the same server's Messages API: provider anthropic
        await settle(pilot, 1)
        assert form.provider_name == "anthropic"
        assert form.query_one("#nc-anthropic-base_url", Input).value == "http://127.0.0.1:8080"
        assert not form.query_one("#nc-openai-base_url").display
        assert "provider" not in form.errors  # a server of one's own needs no ANTHROPIC_API_KEY

        # a base URL of one's own: the preset no longer describes the form
        await type_into(pilot, form.query_one("#nc-anthropic-base_url", Input), "http://127.0.0.1:9999")
        assert preset.value is Select.NULL


# --- Test connection ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_test_connection_shows_the_servers_models_window_and_price(seeded, empty_spec_dir, fake_openai,
                                                                         size):
    home, _ = seeded
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        form = await open_form(pilot)
        await choose_provider(pilot, form, "openai")
        await type_into(pilot, form.query_one("#nc-openai-base_url", Input), fake_openai.base_url)
        assert "base_url" not in form.errors
        await pilot.press("ctrl+t")
        await until(pilot, lambda: conn_text(form).startswith(("✓", "✗")), "the connection report")
        text = conn_text(form)
        assert text.startswith("✓ openai at " + fake_openai.base_url), text
        assert f"models: {MODEL}" in text
        assert f"{MODEL}: context window 8192 tokens" in text and "/props" in text
        assert "price: local" in text and "$0" in text
        # it really asked the server: its model list and llama.cpp's /props
        assert {"/v1/models", "/props"} <= {r.path for r in fake_openai.requests}
        # the server's only model is the one the campaign will use: the form says so
        assert form.query_one("#nc-model", Input).value == MODEL
        assert visible_on_screen(app, form.query_one("#nc-conn-result"))
        assert isinstance(app.screen, NewCampaignScreen) and form.errors == {}


@pytest.mark.parametrize("size", SIZES)
async def test_test_connection_to_a_closed_port_fails_at_the_form(seeded, empty_spec_dir, size):
    home, _ = seeded
    port = free_port()  # bound and released: nothing listens there
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        form = await open_form(pilot)
        await choose_provider(pilot, form, "openai")
        await type_into(pilot, form.query_one("#nc-openai-base_url", Input), f"http://127.0.0.1:{port}/v1")
        form.query_one("#nc-test", Button).press()  # the button does what ctrl+t does
        await until(pilot, lambda: conn_text(form).startswith(("✓", "✗")), "the connection report")
        text = conn_text(form)
        assert text.startswith(f"✗ openai at http://127.0.0.1:{port}/v1"), text
        assert "not reachable" in text
        assert isinstance(app.screen, NewCampaignScreen) and app.return_code is None
        # the form still works: fix the URL... (here: cancel) and nothing was started
        await pilot.press("escape")
        await settle(pilot, 1)
        assert isinstance(app.screen, MainScreen)


async def test_test_connection_needs_a_good_base_url_first(seeded, empty_spec_dir):
    home, _ = seeded
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        form = await open_form(pilot)
        await choose_provider(pilot, form, "openai")
        await pilot.press("ctrl+t")  # no base URL yet: said at the field, nothing tried
        await settle(pilot, 1)
        field = form.query_one("#nc-openai-base_url", Input)
        assert field.has_class("-error") and field.border_subtitle.startswith("required")
        assert not conn_text(form).startswith(("✓", "✗", "testing"))


# --- starting ----------------------------------------------------------------------------------------------------


async def test_a_campaign_on_an_openai_server_stores_its_settings(seeded, empty_spec_dir, fake_openai,
                                                                  monkeypatch):
    """The real StartCampaign handler (its checks, the server's only model found at start, the
    stored campaign); only the engine's spawn is recorded instead of run."""
    import core.engine.launch as launch

    home, _ = seeded
    spawned: list[str] = []
    monkeypatch.setattr(launch, "spawn_engine", lambda home_, cid: spawned.append(cid))
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        form = await open_form(pilot)
        await choose_provider(pilot, form, "openai")
        await type_into(pilot, form.query_one("#nc-openai-base_url", Input), fake_openai.base_url)
        await type_into(pilot, form.query_one("#nc-openai-context_window", Input), "4096")
        form.query_one("#nc-openai-continuation", Select).value = "instruct"
        form.query_one("#nc-backend", Select).value = "none"
        form.query_one("#nc-generations", Input).value = "2"
        assert form.query_one("#nc-model", Input).value == ""  # left to the server
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, MainScreen) or form.errors, "the start")
        await settle(pilot, 2)
        assert isinstance(app.screen, MainScreen), form.errors
    assert len(spawned) == 1
    with Store.open(db_path(home)) as st:
        settings = st.campaign(spawned[0])["settings"]
    assert settings["provider"] == "openai"
    assert settings["base_url"] == fake_openai.base_url
    assert settings["context_window"] == 4096 and settings["continuation"] == "instruct"
    assert settings["model"] == MODEL  # the server's only model, asked at start
    assert settings["generations"] == 2 and settings["backend"] == "none"
    assert not settings.get("api_key_env")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("raw, message", [
    ("127.0.0.1:8080", "not an http(s) base URL"),
    ("ftp://127.0.0.1/v1", "not an http(s) base URL"),
    ("http://127.0.0.1:8080/v1?x=1", "a base URL has no query or fragment"),
    ("http://127.0.0.1:99999/v1", "bad port"),
])
async def test_a_bad_base_url_is_refused_at_the_field(seeded, empty_spec_dir, monkeypatch, size, raw, message):
    home, _ = seeded
    seen = record_starts(monkeypatch)
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        form = await open_form(pilot)
        await choose_provider(pilot, form, "openai")
        field = form.query_one("#nc-openai-base_url", Input)
        await type_into(pilot, field, raw)
        assert field.has_class("-error") and message in field.border_subtitle  # said while typing
        await pilot.press("ctrl+s")
        await settle(pilot, 1)
        assert message in form.errors["base_url"] and message in plain(form.query_one("#nc-error", Static))
        assert field.has_focus and visible_on_screen(app, field)  # taken to the field to fix it
        await pilot.press("ctrl+t")  # nor is a bad URL tested
        await settle(pilot, 1)
        assert not conn_text(form).startswith(("✓", "✗", "testing"))
        assert seen == [] and isinstance(app.screen, NewCampaignScreen)


# --- the evolution form: model choices [provider:]model[@base_url] ---------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_evolution_model_choices_name_servers(seeded, empty_spec_dir, fake_openai, monkeypatch, size):
    home, _ = seeded
    seen = record_starts(monkeypatch)
    app = make_app(home, empty_spec_dir, initial_mode="evolution")
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        form = await open_form(pilot)
        assert isinstance(form, NewEvolutionScreen) and form.provider_name == "sim"
        assert not form.query_one("#nc-conn").display  # sim names no server
        models = form.query_one("#nc-models", Input)
        good = f"openai:{MODEL}@{fake_openai.base_url}"

        for bad, message in ((f"openai:{MODEL}@ftp://127.0.0.1/v1", "not an http(s) base URL"),
                             ("sim-1@http://127.0.0.1:9/v1", "the sim provider has no server"),
                             (f"openai:{MODEL}@http://127.0.0.1:99999/v1", "bad port")):
            await type_into(pilot, models, f"sim-1, {bad}")
            assert message in form.errors.get("models", ""), (bad, form.errors)
            assert models.has_class("-error")
            await pilot.press("ctrl+s")
            await settle(pilot, 1)
            assert seen == [] and message in plain(form.query_one("#nc-error", Static))

        await type_into(pilot, models, f"sim-1, {good}")
        assert "models" not in form.errors and not models.has_class("-error")
        assert form.query_one("#nc-conn").display  # a choice names a server: it can be tested
        await pilot.press("ctrl+t")
        await until(pilot, lambda: "✓" in conn_text(form) or "✗" in conn_text(form), "the connection report")
        text = conn_text(form)
        assert f"✓ openai at {fake_openai.base_url}" in text and "context window 8192" in text, text
        assert "/v1/models" in {r.path for r in fake_openai.requests}

        form.query_one("#nc-backend", Select).value = "none"
        await pilot.press("ctrl+s")
        await settle(pilot, 2)
        assert len(seen) == 1
        assert seen[0].models == ("sim-1", good) and seen[0].provider == "sim"


# --- a small terminal -------------------------------------------------------------------------------------------


async def test_the_server_form_is_usable_at_80x24(seeded, empty_spec_dir, fake_openai):
    """Every field of the openai form is reached by Tab and scrolled into view, Test
    connection works from the keyboard and its result can be read."""
    home, _ = seeded
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        form = await open_form(pilot)
        await choose_provider(pilot, form, "openai")
        wanted = {"nc-spec", "nc-spec_path", "nc-provider", "nc-model", "nc-preset", "nc-openai-base_url",
                  "nc-openai-api_key_env", "nc-openai-context_window", "nc-openai-continuation", "nc-test",
                  "nc-generations", "nc-label", "nc-cancel", "nc-start"}
        reached: set[str] = set()
        form.query_one("#nc-spec").focus()
        await settle(pilot, 1)
        for _ in range(40):
            w = app.focused
            assert w is not None
            if w.id in wanted:
                await pilot.pause(0.05)
                assert visible_on_screen(app, w), f"{w.id} is focused but not in view"
                reached.add(w.id)
            if w.id == "nc-openai-base_url":
                await pilot.press(*fake_openai.base_url)
            await pilot.press("tab")
            await settle(pilot, 1)
            if reached == wanted:
                break
        assert reached == wanted
        await pilot.press("ctrl+t")
        await until(pilot, lambda: conn_text(form).startswith(("✓", "✗")), "the connection report")
        assert conn_text(form).startswith("✓ openai")
        await settle(pilot, 1)
        assert visible_on_screen(app, form.query_one("#nc-conn-result"))  # scrolled into view
        assert isinstance(app.screen, NewCampaignScreen)


# --- unknown prices ----------------------------------------------------------------------------------------------


def _campaign_with_calls(home, cid: str, calls: list[tuple[float, str]]) -> int:
    """A finished campaign on an openai server: one failed generation whose LLM calls have
    these (cost, price_source); written with the engine's own Store calls."""
    from core.models import LLMCall
    from tests.tui.seed import SPEC_V1, _report

    with Store.open(db_path(home)) as st:
        spec = st.add_spec(SPEC_V1, label="tally").hash
        st.create_campaign(cid, spec, {"spec_hash": spec, "generations": 1, "provider": "openai",
                                       "model": "some-model", "base_url": "https://models.example/v1",
                                       "budget_usd": 5.0})
        g = st.create_generation(spec_hash=spec, campaign_id=cid)
        for cost, source in calls:
            st.record_llm_call(LLMCall(generation=g.number, campaign_id=cid, provider="openai", model="some-model",
                                       input_tokens=1000, output_tokens=500, cost_usd=cost, price_source=source))
        st.record_report(g.number, _report(g.number, "test"))
        st.set_outcome(g.number, "failed", reason="non-viable at test")
        st.set_campaign_state(cid, "completed", "1 generation")
        return g.number


@pytest.mark.parametrize("size", SIZES)
async def test_unknown_prices_are_shown_as_unknown_not_free(seeded, empty_spec_dir, size):
    from cambrian_tui.screens.inspector import InspectorScreen
    from cambrian_tui.widgets.charts import FitnessCharts
    from cambrian_tui.widgets.status_bar import StatusBar
    from textual.widgets import DataTable

    home, _ = seeded
    gen = _campaign_with_calls(home, "c-hosted", [(0.0, "unknown"), (0.0, "unknown")])
    app = make_app(home, empty_spec_dir)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        main = app.screen
        main.select_campaign("c-hosted")
        await settle(pilot)
        headline = plain(main.query_one(FitnessCharts).query_one("#headline"))
        assert "$? (unknown price)" in headline and "$0.00" not in headline
        bar = plain(main.query_one(StatusBar))
        assert "$0.00" not in bar
        if size[0] >= 100:  # a narrow bar drops the budget part first
            assert "$? (unknown price) / $5.00" in bar and "%" not in bar.split("budget", 1)[1].split("·")[0]
        main.open_inspector(gen)
        await settle(pilot)
        insp = app.screen
        assert isinstance(insp, InspectorScreen)
        table = insp.query_one("#llm", DataTable)
        costs = [str(table.get_row_at(i)[6]) for i in range(table.row_count)]
        assert costs == ["$? unknown", "$? unknown"]


def test_reads_say_how_many_calls_have_no_price(seeded):
    from core.app.fmt import money
    from core.app.reads import Reader

    home, _ = seeded
    _campaign_with_calls(home, "c-mixed", [(0.5, "configured"), (0.0, "unknown")])
    _campaign_with_calls(home, "c-local", [(0.0, "local")])
    reads = Reader(home)
    mixed = reads.campaign("c-mixed")
    assert (mixed.cost_usd, mixed.unpriced_calls) == (0.5, 1)
    s = reads.summary("c-mixed")
    assert s.unpriced_calls == 1 and s.cost_per_viable is None
    assert money(s.cost_usd, s.unpriced_calls) == "$0.50 + ? (1 call at an unknown price)"
    local = reads.campaign("c-local")
    assert local.unpriced_calls == 0 and money(local.cost_usd, local.unpriced_calls) == "$0.00"  # free, and known
    assert reads.summary(None).unpriced_calls == 1  # everything: the one unknown call

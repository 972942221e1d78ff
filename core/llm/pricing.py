"""Prices of calls, never guessed (DESIGN §8).

Every call's cost comes from a :class:`Quote` that says where its price came from
(``LLMResponse.price_source``, the ledger's ``price_source`` column):

==============  =========================================================================
source          when
==============  =========================================================================
``configured``  ``CAMBRIAN_HOME/prices.toml`` (or the file ``CAMBRIAN_PRICES`` names) has
                a price for this base URL and model, or a ``default`` for the base URL
``list``        the real Anthropic API (no base URL, or ``api.anthropic.com``; or an
                endpoint configured with ``list_prices = true``) and the model is in
                ``core/llm/prices.json``
``local``       the base URL is local (``core.llm.urls.is_local``): $0
``unknown``     anything else — an unknown model, a hosted server with no configured
                price. The call is recorded with ``cost_usd = 0`` and marked unknown
                everywhere it is shown; a dollar budget refuses to spend on it.
``simulated``   the sim provider (set by the ledger)
``replay``      an answer from a cassette: nothing is paid
==============  =========================================================================

A Claude price is never applied to another server's model: a local llama.cpp server reached
through the ``anthropic`` provider is ``local`` ($0), not the most expensive Claude.

``prices.json`` holds USD per million tokens for ``input`` (uncached), ``output``,
``cache_write`` (5-minute TTL cache creation) and ``cache_read`` (cache hits). Cost of a call::

    (input_tokens·input + output_tokens·output
     + cache_creation_input_tokens·cache_write + cache_read_input_tokens·cache_read) / 1e6

computed in ``Decimal`` and converted to the nearest float once. Model resolution in
``prices.json``: the exact id; then ``aliases``; then the id without a trailing
``-YYYYMMDD`` date or ``-latest`` (and its alias).

``prices.toml`` (one table per server; ``cache_read`` / ``cache_write`` default to ``input``)::

    [[endpoint]]
    base_url = "https://api.openai.com/v1"
    [endpoint.models."gpt-4.1"]
    input = 2.0
    output = 8.0
    cache_read = 0.5

    [[endpoint]]
    base_url = "http://gpu-box:8000/v1"     # a self-hosted vLLM: free
    default = { input = 0, output = 0 }

    [[endpoint]]
    base_url = "https://claude-proxy.example.com"
    list_prices = true                       # Claude models at prices.json rates

A configured endpoint matches a base URL with the same normal form, else the same server
root (scheme, host, port).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.llm import urls

PRICES_PATH = Path(__file__).with_name("prices.json")
PRICES_TOML = "prices.toml"
PRICE_SOURCES = ("list", "configured", "local", "unknown", "simulated", "replay")
_DATE_SUFFIX = re.compile(r"-(\d{8}|latest)$")
_MTOK = Decimal(1_000_000)
_ZERO = Decimal(0)


@dataclass(frozen=True)
class Price:
    model: str  # the entry used
    input: Decimal
    output: Decimal
    cache_write: Decimal
    cache_read: Decimal


FREE = Price("local", _ZERO, _ZERO, _ZERO, _ZERO)


@dataclass(frozen=True)
class Cost:
    usd: float
    exact: Decimal
    price: Price | None
    known: bool


def _cost(price: Price | None, input_tokens: int, output_tokens: int, cache_creation_input_tokens: int,
          cache_read_input_tokens: int) -> Cost:
    if price is None:
        return Cost(usd=0.0, exact=_ZERO, price=None, known=False)
    exact = (
        Decimal(input_tokens) * price.input
        + Decimal(output_tokens) * price.output
        + Decimal(cache_creation_input_tokens) * price.cache_write
        + Decimal(cache_read_input_tokens) * price.cache_read
    ) / _MTOK
    return Cost(usd=float(exact), exact=exact, price=price, known=True)


@dataclass(frozen=True)
class PriceTable:
    """Anthropic's list prices (``prices.json``)."""

    effective_date: str
    prices: dict[str, Price]
    aliases: dict[str, str]

    def resolve(self, model: str) -> str | None:
        for candidate in (model, _DATE_SUFFIX.sub("", model)):
            if candidate in self.prices:
                return candidate
            alias = self.aliases.get(candidate)
            if alias in self.prices:
                return alias
        return None

    def price_for(self, model: str) -> tuple[Price | None, bool]:
        key = self.resolve(model)
        if key is not None:
            return self.prices[key], True
        return None, False

    def cost(
        self,
        model: str,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_creation_input_tokens: int = 0,
        cache_read_input_tokens: int = 0,
    ) -> Cost:
        price, _ = self.price_for(model)
        return _cost(price, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens)


def _decimal(value: Any, where: str) -> Decimal:
    try:
        d = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"{where}: {value!r} is not a number") from exc
    if d < 0 or not d.is_finite():
        raise ValueError(f"{where}: a price is a finite number ≥ 0, not {value!r}")
    return d


def _price(name: str, p: Any, where: str) -> Price:
    if not isinstance(p, dict):
        raise ValueError(f"{where}: expected a table with input and output (USD per million tokens)")
    unknown = set(p) - {"input", "output", "cache_write", "cache_read"}
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)} (input, output, cache_write, cache_read)")
    if "input" not in p or "output" not in p:
        raise ValueError(f"{where}: input and output are required")
    inp = _decimal(p["input"], f"{where}.input")
    return Price(
        model=name,
        input=inp,
        output=_decimal(p["output"], f"{where}.output"),
        cache_write=_decimal(p.get("cache_write", p["input"]), f"{where}.cache_write"),
        cache_read=_decimal(p.get("cache_read", p["input"]), f"{where}.cache_read"),
    )


def load_prices(path: str | Path | None = None) -> PriceTable:
    data = json.loads(Path(path or PRICES_PATH).read_text(encoding="utf-8"))
    prices = {
        name: Price(
            model=name,
            input=Decimal(str(p["input"])),
            output=Decimal(str(p["output"])),
            cache_write=Decimal(str(p["cache_write"])),
            cache_read=Decimal(str(p["cache_read"])),
        )
        for name, p in data["models"].items()
    }
    if not prices:
        raise ValueError(f"{path or PRICES_PATH}: no models")
    return PriceTable(
        effective_date=str(data["effective_date"]),
        prices=prices,
        aliases=dict(data.get("aliases", {})),
    )


@lru_cache(maxsize=1)
def default_prices() -> PriceTable:
    return load_prices()


# --- configured prices --------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointPrices:
    base_url: str  # normal form
    models: dict[str, Price] = field(default_factory=dict)
    default: Price | None = None
    list_prices: bool = False


@dataclass(frozen=True)
class PriceConfig:
    path: str | None
    endpoints: tuple[EndpointPrices, ...] = ()

    def endpoint(self, base_url: str | None) -> EndpointPrices | None:
        if not base_url:
            return None
        try:
            want = urls.normalize(base_url)
            root = urls.root_of(base_url)
        except urls.BadBaseURL:
            return None
        for e in self.endpoints:
            if e.base_url == want:
                return e
        for e in self.endpoints:
            if urls.root_of(e.base_url) == root:
                return e
        return None


def parse_price_config(text: str, path: str | None = None) -> PriceConfig:
    where = path or PRICES_TOML
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{where}: not valid TOML: {exc}") from exc
    unknown = set(data) - {"endpoint"}
    if unknown:
        raise ValueError(f"{where}: unknown top-level key(s) {sorted(unknown)} (use [[endpoint]] tables)")
    endpoints = []
    for i, e in enumerate(data.get("endpoint", [])):
        at = f"{where}: endpoint #{i + 1}"
        if not isinstance(e, dict) or not isinstance(e.get("base_url"), str):
            raise ValueError(f"{at}: base_url (a string) is required")
        bad = set(e) - {"base_url", "models", "default", "list_prices"}
        if bad:
            raise ValueError(f"{at}: unknown key(s) {sorted(bad)} (base_url, models, default, list_prices)")
        try:
            base = urls.normalize(e["base_url"])
        except urls.BadBaseURL as exc:
            raise ValueError(f"{at}: {exc}") from exc
        models = e.get("models", {})
        if not isinstance(models, dict):
            raise ValueError(f"{at}: models is a table of model name → price")
        endpoints.append(EndpointPrices(
            base_url=base,
            models={name: _price(name, p, f"{at} model {name!r}") for name, p in models.items()},
            default=_price("default", e["default"], f"{at} default") if "default" in e else None,
            list_prices=bool(e.get("list_prices", False)),
        ))
    return PriceConfig(path, tuple(endpoints))


def price_config_path(home: str | Path | None = None) -> Path:
    explicit = os.environ.get("CAMBRIAN_PRICES")
    if explicit:
        return Path(explicit).expanduser()
    if home is None:
        from core.home import cambrian_home

        home = cambrian_home()
    return Path(home) / PRICES_TOML


def load_price_config(home: str | Path | None = None) -> PriceConfig:
    """The configured prices, or an empty config when the file does not exist. A file that
    exists but is wrong raises ValueError naming the problem (never priced silently)."""
    path = price_config_path(home)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return PriceConfig(None)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    return parse_price_config(text, str(path))


# --- quotes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """The price of one model at one server, and where it came from."""

    price: Price | None
    source: str  # list | configured | local | unknown
    where: str  # a sentence for people: which file/rule gave the price, or why there is none

    @property
    def known(self) -> bool:
        return self.price is not None

    def cost(self, input_tokens: int = 0, output_tokens: int = 0, cache_creation_input_tokens: int = 0,
             cache_read_input_tokens: int = 0) -> Cost:
        return _cost(self.price, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens)

    def usd(self, prompt_tokens: int, output_tokens: int) -> float | None:
        """Cost of prompt + output tokens at the uncached rates (budget bounds); None if unknown."""
        return self.cost(prompt_tokens, output_tokens).usd if self.known else None


class PriceBook:
    """Quotes prices: configured, then list, then local, else unknown (see the module docstring)."""

    def __init__(self, table: PriceTable | None = None, config: PriceConfig | None = None) -> None:
        self.table = table or default_prices()
        self.config = config or PriceConfig(None)

    @classmethod
    def load(cls, home: str | Path | None = None) -> "PriceBook":
        return cls(default_prices(), load_price_config(home))

    def quote(self, provider: str, base_url: str | None, model: str) -> Quote:
        ep = self.config.endpoint(base_url)
        cfg = self.config.path or PRICES_TOML
        if ep is not None:
            if model in ep.models:
                return Quote(ep.models[model], "configured", f"{cfg}: {model} at {ep.base_url}")
            if ep.list_prices:
                return self._list(model, f"{cfg}: list prices at {ep.base_url}")
            if ep.default is not None:
                return Quote(ep.default, "configured", f"{cfg}: default price at {ep.base_url}")
        if provider == "anthropic" and urls.is_anthropic_api(base_url):
            return self._list(model, "the Anthropic API")
        if urls.is_local(base_url):
            return Quote(FREE, "local", f"local server {base_url}: $0")
        where = base_url or ("the OpenAI API" if provider == "openai" else provider)
        return Quote(None, "unknown", f"no price for model {model!r} at {where}: add it to {cfg}")

    def _list(self, model: str, where: str) -> Quote:
        key = self.table.resolve(model)
        if key is None:
            return Quote(None, "unknown", f"{model!r} is not in prices.json ({self.table.effective_date}) "
                                          f"for {where}: add it there or to {self.config.path or PRICES_TOML}")
        return Quote(self.table.prices[key], "list", f"prices.json {self.table.effective_date} ({key}), {where}")


def list_price_quote(model: str) -> Quote:
    """The Anthropic API's list price of a model (what ``anthropic`` without a base URL pays)."""
    return PriceBook(default_prices()).quote("anthropic", None, model)


def cost_usd(
    model: str,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_creation_input_tokens: int = 0,
    cache_read_input_tokens: int = 0,
) -> Cost:
    """List-price cost on the Anthropic API (unknown model: ``known=False``, $0 recorded)."""
    return default_prices().cost(
        model, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens
    )

"""Per-model prices and the cost of one call (DESIGN §8).

Prices live in ``core/llm/prices.json``: USD per million tokens for ``input`` (uncached),
``output``, ``cache_write`` (5-minute TTL cache creation) and ``cache_read`` (cache hits), with
an ``effective_date``. Cost of a call::

    (input_tokens·input + output_tokens·output
     + cache_creation_input_tokens·cache_write + cache_read_input_tokens·cache_read) / 1e6

computed in ``Decimal`` and converted to the nearest float once, so the same usage always
gives the same figure.

Model resolution: the exact id; then ``aliases``; then the id without a trailing
``-YYYYMMDD`` date or ``-latest`` (and its alias). **Unknown model fallback:** priced at the
*most expensive* listed model (highest output price, then input price) so that budgets are
never under-counted, and flagged ``known=False`` (``LLMResponse.price_known``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

PRICES_PATH = Path(__file__).with_name("prices.json")
_DATE_SUFFIX = re.compile(r"-(\d{8}|latest)$")
_MTOK = Decimal(1_000_000)


@dataclass(frozen=True)
class Price:
    model: str  # the prices.json entry used
    input: Decimal
    output: Decimal
    cache_write: Decimal
    cache_read: Decimal


@dataclass(frozen=True)
class Cost:
    usd: float
    exact: Decimal
    price: Price
    known: bool


@dataclass(frozen=True)
class PriceTable:
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

    def price_for(self, model: str) -> tuple[Price, bool]:
        key = self.resolve(model)
        if key is not None:
            return self.prices[key], True
        return self.fallback(), False

    def fallback(self) -> Price:
        return max(self.prices.values(), key=lambda p: (p.output, p.input, p.model))

    def cost(
        self,
        model: str,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_creation_input_tokens: int = 0,
        cache_read_input_tokens: int = 0,
    ) -> Cost:
        price, known = self.price_for(model)
        exact = (
            Decimal(input_tokens) * price.input
            + Decimal(output_tokens) * price.output
            + Decimal(cache_creation_input_tokens) * price.cache_write
            + Decimal(cache_read_input_tokens) * price.cache_read
        ) / _MTOK
        return Cost(usd=float(exact), exact=exact, price=price, known=known)


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


def cost_usd(
    model: str,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_creation_input_tokens: int = 0,
    cache_read_input_tokens: int = 0,
) -> Cost:
    return default_prices().cost(
        model, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens
    )

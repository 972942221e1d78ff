"""Short human forms of figures, shared by the TUI and the command line (pure)."""

from __future__ import annotations


def human_tokens(n: int | float | None) -> str:
    if n is None:
        return "-"
    n = float(n)
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return f"{int(n)}"


def human_ms(ms: int | float | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{int(ms)} ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f} s"
    return f"{int(s // 60)}m{int(s % 60):02d}s"


def money(usd: float, unpriced: int = 0, digits: int = 2) -> str:
    """Dollars, honest about calls nobody knows the price of (``price_source`` "unknown": their
    recorded cost of 0 is not "free"): ``$?`` when nothing else was priced, else ``$x + ?``."""
    if not unpriced:
        return f"${usd:.{digits}f}"
    if not usd:
        return "$? (unknown price)"
    return f"${usd:.{digits}f} + ? ({unpriced} call{'s' if unpriced != 1 else ''} at an unknown price)"


def pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.0f}%"

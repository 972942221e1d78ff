"""Corpus service: a tiny aiohttp app (see spec/base.md)."""

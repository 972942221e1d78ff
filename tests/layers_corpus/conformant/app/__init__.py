"""Layers corpus: the Tally service (see spec/tally.md)."""

"""The offline, simulated LLM provider (DESIGN §8 "sim"). See ``README.md`` beside this file."""

from core.llm.sim.provider import MODELS, SimProvider

__all__ = ["MODELS", "SimProvider"]

"""Fit requests into a model's context window (prompt + answer must fit in it).

A local model's window is small (8k tokens is common) and the server refuses a request that
exceeds it (llama.cpp: "request (8340 tokens) exceeds the available context size (8192
tokens)"). With a known window (configured, or what the server says — ``core.llm.endpoints``)
every request of a generation is sized before it is sent:

* the **generate** call's ``max_tokens`` is lowered to what is left after the prompt;
* a **continuation** gets what is left after the prompt and the partial answer; when nothing
  useful is left the answer stays truncated ("the context window is full");
* a **repair** resends at most as much of the bad answer as leaves room for a new answer.

Token counts of text not yet sent are estimated from its characters: ``DEFAULT_CHARS_PER_TOKEN``
(3 characters a token: generous, code and English run nearer 4) until the server has reported
the prompt tokens of a request, then at the rate that request showed (5 % less, to stay safe).
Each message costs ``PER_MESSAGE_TOKENS`` more (the chat template), each request
``FIXED_TOKENS``, and ``margin`` is kept free. Without a known window nothing changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from core.llm.base import LLMRequest, LLMResponse

MIN_ANSWER_TOKENS = 256
DEFAULT_CHARS_PER_TOKEN = 3.0
PER_MESSAGE_TOKENS = 16
FIXED_TOKENS = 64
REPAIR_FEEDBACK_CHARS = 900  # the parse-error message and the instruction around it


class NoRoom(Exception):
    """The request cannot fit with a useful answer (``room`` tokens would be left)."""

    def __init__(self, message: str, room: int, prompt_tokens: int) -> None:
        super().__init__(message)
        self.room = room
        self.prompt_tokens = prompt_tokens


@dataclass
class ContextFit:
    window: int | None
    source: str = ""
    chars_per_token: float = DEFAULT_CHARS_PER_TOKEN
    calibrated: bool = False

    @property
    def margin(self) -> int:
        return max(64, math.ceil((self.window or 0) * 0.02))

    def tokens_of(self, chars: int) -> int:
        return math.ceil(chars / self.chars_per_token)

    def prompt_tokens(self, req: LLMRequest) -> int:
        return self.tokens_of(req.prompt_chars()) + PER_MESSAGE_TOKENS * (len(req.messages) + 1) + FIXED_TOKENS

    def room(self, req: LLMRequest) -> int | None:
        """Tokens left for the answer (None: no known window)."""
        if not self.window:
            return None
        return self.window - self.prompt_tokens(req) - self.margin

    def fit(self, req: LLMRequest, *, what: str = "the request") -> LLMRequest:
        """``req`` with ``max_tokens`` lowered to fit; :class:`NoRoom` when too little is left."""
        room = self.room(req)
        if room is None:
            return req
        if room < MIN_ANSWER_TOKENS:
            raise NoRoom(
                f"{what} (~{self.prompt_tokens(req)} tokens) leaves {max(room, 0)} tokens for the answer in the "
                f"model's context window of {self.window} tokens ({self.source or 'configured'})",
                room, self.prompt_tokens(req))
        return replace(req, max_tokens=min(req.max_tokens, room)) if room < req.max_tokens else req

    def learn(self, req: LLMRequest, resp: LLMResponse) -> None:
        """Calibrate characters per token from what the server counted."""
        if resp.usage_estimated or resp.prompt_tokens <= 0:
            return
        text_tokens = resp.prompt_tokens - PER_MESSAGE_TOKENS * (len(req.messages) + 1) - FIXED_TOKENS
        if text_tokens <= 0:
            return
        ratio = req.prompt_chars() / text_tokens * 0.95
        self.chars_per_token = min(8.0, max(1.0, ratio))
        self.calibrated = True

    def repair_answer_chars(self, original: LLMRequest, default: int) -> int:
        """How much of a bad answer a repair of ``original`` may resend."""
        room = self.room(original)
        if room is None:
            return default
        spare = room - self.tokens_of(REPAIR_FEEDBACK_CHARS) - PER_MESSAGE_TOKENS * 2 - MIN_ANSWER_TOKENS
        # half of what is spare for the excerpt, the rest (and the minimum) for the new answer
        return max(0, min(default, int(spare / 2 * self.chars_per_token)))

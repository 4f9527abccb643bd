"""What a simulated caller measured on one call, on its own clock: for call.py and the benchmark."""

import time
from dataclasses import dataclass, field


@dataclass
class CallLog:
    """The caller's figures of one call (``time.monotonic`` seconds).

    ``turn_secs`` holds each reply's latency, from the end of the caller's words to
    the bot's first audio after them. ``error`` says why a call failed.
    ``loop_lag_secs``, from the bot's own log, is the longest its event loop was
    blocked during the call (None when the bot does not say).
    """

    call_sid: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    ended_at: float | None = None
    greeting_secs: float | None = None
    lines_said: int = 0
    turn_secs: list[float] = field(default_factory=list)
    # Lines the bot answered with its silence prompt ("Are you still there?"), not a reply.
    silence_prompts: int = 0
    barge_in_secs: float | None = None
    underruns: int = 0
    ended: str = "the caller hung up"
    error: str | None = None
    loop_lag_secs: float | None = None

    @property
    def minutes(self) -> float:
        """How long the call lasted, in minutes (0 before it ended)."""
        if self.ended_at is None:
            return 0.0
        return max(0.0, self.ended_at - self.started_at) / 60

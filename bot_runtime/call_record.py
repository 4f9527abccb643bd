"""What happened on one call: the per-turn lines and the closing summary."""

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from loguru import logger


@dataclass
class CallRecord:
    """What happened on one call, for the per-turn lines and the closing summary."""

    call_sid: str
    started_at: float = field(default_factory=time.monotonic)
    greeting_latency_secs: float | None = None
    turn_latencies_secs: list[float] = field(default_factory=list)
    recording_sid: str | None = None
    answered_by: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    def add_tool_call(
        self,
        name: str,
        arguments: dict[str, Any],
        *,
        ms: int,
        result: Any = None,
        error: str | None = None,
    ) -> None:
        """A tool the LLM called: what with, what came back (or what went wrong), how long."""
        outcome = {"error": error} if error is not None else {"result": result}
        self.tool_calls.append({"name": name, "arguments": arguments, **outcome, "ms": ms})

    def add_turn_latency(self, secs: float) -> None:
        self.turn_latencies_secs.append(secs)
        logger.info(f"Turn {len(self.turn_latencies_secs)} latency: {secs * 1000:.0f} ms")

    def summary(self, *, ended_by: str | None) -> str:
        """One line: duration, turns, latency p50/max and how the call ended."""
        duration = time.monotonic() - self.started_at
        parts = [f"duration {duration:.1f} s", f"turns {len(self.turn_latencies_secs)}"]
        if self.greeting_latency_secs is not None:
            parts.append(f"greeting {self.greeting_latency_secs * 1000:.0f} ms")
        if self.turn_latencies_secs:
            p50 = statistics.median(self.turn_latencies_secs) * 1000
            worst = max(self.turn_latencies_secs) * 1000
            parts.append(f"latency p50 {p50:.0f} ms max {worst:.0f} ms")
        if self.answered_by:
            parts.append(f"answered by {self.answered_by}")
        if self.recording_sid:
            parts.append(f"recording {self.recording_sid}")
        parts.append(f"ended by {ended_by or 'pipeline stop'}")
        return "Call summary: " + ", ".join(parts)

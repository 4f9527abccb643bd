"""Call logs: each line tagged with its callSid, numbers masked, secrets redacted, one summary."""

import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from loguru import logger

from voice_agent.phone_numbers import mask

# An E.164 number anywhere in a log line, whoever wrote it (our code or a library's).
_PHONE_NUMBER = re.compile(r"(?<![\w+])\+[1-9]\d{6,14}(?!\d)")
# Shorter values are not worth redacting (and would mangle ordinary words).
_MIN_SECRET_CHARS = 6


def configure_logging(*, secrets: Iterable[str | None], level: str = "INFO") -> None:
    """Send logs to stderr, every line passing through the scrubber below.

    The scrubber is installed as loguru's patcher, so it applies to every sink,
    including any a hosting process adds later.
    """
    logger.remove()
    logger.configure(patcher=_scrubber([s for s in secrets if s]))
    logger.add(
        sys.stderr,
        level=level,
        format="{time:HH:mm:ss.SSS} | {level: <7} | {name}:{line} - {message}",
    )


def _scrubber(secrets: list[str]) -> Callable[[dict], None]:
    redactable = [s for s in secrets if len(s) >= _MIN_SECRET_CHARS]

    def scrub(record: dict) -> None:
        message = _PHONE_NUMBER.sub(lambda match: mask(match.group()), record["message"])
        for secret in redactable:
            message = message.replace(secret, "[redacted]")
        call_sid = record["extra"].get("call_sid")
        record["message"] = f"[{call_sid}] {message}" if call_sid else message

    return scrub


@dataclass
class CallRecord:
    """What happened on one call, for the per-turn lines and the closing summary."""

    call_sid: str
    started_at: float = field(default_factory=time.monotonic)
    greeting_latency_secs: float | None = None
    turn_latencies_secs: list[float] = field(default_factory=list)
    ended_by: str | None = None
    recording_sid: str | None = None
    answered_by: str | None = None

    def end(self, reason: str) -> bool:
        """Record how the call ended; only the first reason counts. True if it was the first."""
        if self.ended_by is not None:
            return False
        self.ended_by = reason
        logger.info(f"Ending call: {reason}")
        return True

    def add_turn_latency(self, secs: float) -> None:
        self.turn_latencies_secs.append(secs)
        logger.info(f"Turn {len(self.turn_latencies_secs)} latency: {secs * 1000:.0f} ms")

    def summary(self) -> str:
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
        parts.append(f"ended by {self.ended_by or 'pipeline stop'}")
        return "Call summary: " + ", ".join(parts)

"""What happened on one call: the log's per-turn lines and summary, and the call record document."""

import statistics
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from loguru import logger

from bot_runtime.call.ending import CallEnding
from bot_runtime.tools.specs import CallInfo
from bot_runtime.turns.turn_end import PreemptionCount


@dataclass
class CallRecord:
    """Everything the call produced, kept as it happens and sent as one document at the end.

    The transcript holds what was said in order; an agent turn the caller cut off
    holds only the words the caller heard (pipecat's assistant aggregator keeps
    the words of the audio played before the interruption).
    """

    info: CallInfo
    stream_sid: str
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_monotonic: float = field(default_factory=time.monotonic)
    greeting_latency_secs: float | None = None
    turn_latencies_secs: list[float] = field(default_factory=list)
    loop_lag_secs: float | None = None  # The longest the event loop was blocked meanwhile.
    recording_sid: str | None = None
    answered_by: str | None = None
    # The call's language and what chose it ("parameter", "called number", "default", or
    # "detected": heard in the caller's words, switching from the language it started in).
    language: str | None = None
    language_chosen_by: str | None = None
    language_switched_from: str | None = None
    transfer_to: str | None = None
    transfer_summary: str | None = None
    transcript: list[dict[str, Any]] = field(default_factory=list)
    keypad: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    service_events: list[dict[str, Any]] = field(default_factory=list)
    preemption: PreemptionCount = field(default_factory=PreemptionCount)

    @property
    def call_sid(self) -> str:
        return self.info.call_sid

    def learn_numbers(self, from_number: str | None, to_number: str | None) -> None:
        """The numbers Twilio's REST API looked up, for a stream whose TwiML did not pass them."""
        self.info = replace(self.info, from_number=from_number, to_number=to_number)

    def secs_since_start(self) -> float:
        return round(time.monotonic() - self.started_monotonic, 2)

    def caller_said(self, text: str, *, at_secs: float) -> None:
        """Add the caller's words. Two turns with nothing of the agent heard between them
        are kept as one: a pause at a comma ("Thanks, goodbye.") can end a turn, and the
        caller's next words then cut its reply off before any of it was heard."""
        last = self.transcript[-1] if self.transcript else None
        if last is not None and last["role"] == "caller":
            last["text"] = f"{last['text']} {text}"
            return
        self.transcript.append(
            {"role": "caller", "text": text, "at_secs": at_secs, "interrupted": False}
        )

    def agent_said(self, text: str, *, at_secs: float, interrupted: bool) -> None:
        self.transcript.append(
            {"role": "agent", "text": text, "at_secs": at_secs, "interrupted": interrupted}
        )

    def key_pressed(self, key: str) -> None:
        self.keypad.append({"key": key, "at_secs": self.secs_since_start()})

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

    def service_event(self, service: str, what: str, *, action: str) -> None:
        """A service failed or stalled, and what the call did about it."""
        self.service_events.append(
            {"service": service, "what": what, "action": action, "at_secs": self.secs_since_start()}
        )

    def add_turn_latency(self, secs: float) -> None:
        self.turn_latencies_secs.append(secs)
        logger.info(f"Turn {len(self.turn_latencies_secs)} latency: {secs * 1000:.0f} ms")

    def document(self, ending: CallEnding) -> dict[str, Any]:
        """The call record as the webhook sends it (docs/call-records.md names every key).

        Keys with nothing to say are null or empty, never missing. ``analysis`` is
        filled in after the call, when configured.
        """
        info = self.info.as_json()
        duration = time.monotonic() - self.started_monotonic
        return {
            "call_sid": info["call_sid"],
            "stream_sid": self.stream_sid,
            "direction": info["direction"],
            "from": info["from"],
            "to": info["to"],
            "parameters": info["parameters"],
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.started_at + timedelta(seconds=duration)),
            "duration_secs": round(duration, 1),
            "ended_reason": str(ending.reason) if ending.reason else None,
            "ended_detail": ending.detail,
            "answered_by": self.answered_by,
            "language": {
                "code": self.language,
                "chosen_by": self.language_chosen_by,
                "switched_from": self.language_switched_from,
            },
            "recording_sid": self.recording_sid,
            "transfer_to": self.transfer_to,
            "transfer_summary": self.transfer_summary,
            "transcript": self.transcript,
            "keypad": self.keypad,
            "tool_calls": self.tool_calls,
            "service_events": self.service_events,
            "latency": self._latency(),
            "analysis": None,
        }

    def summary(self, *, ended_by: str | None) -> str:
        """One log line: duration, turns, latency p50/max and how the call ended."""
        duration = time.monotonic() - self.started_monotonic
        parts = [f"duration {duration:.1f} s", f"turns {len(self.turn_latencies_secs)}"]
        if self.greeting_latency_secs is not None:
            parts.append(f"greeting {self.greeting_latency_secs * 1000:.0f} ms")
        if self.turn_latencies_secs:
            p50 = statistics.median(self.turn_latencies_secs) * 1000
            worst = max(self.turn_latencies_secs) * 1000
            parts.append(f"latency p50 {p50:.0f} ms max {worst:.0f} ms")
        if self.loop_lag_secs is not None:
            parts.append(f"loop lag max {self.loop_lag_secs * 1000:.0f} ms")
        if self.preemption.started:
            parts.append(
                f"preemptive replies {self.preemption.started}"
                f" ({self.preemption.discarded} thrown away)"
            )
        if self.answered_by:
            parts.append(f"answered by {self.answered_by}")
        if self.recording_sid:
            parts.append(f"recording {self.recording_sid}")
        parts.append(f"ended by {ended_by or 'pipeline stop'}")
        return "Call summary: " + ", ".join(parts)

    def _latency(self) -> dict[str, int | None]:
        turns = self.turn_latencies_secs
        return {
            "greeting_ms": _ms(self.greeting_latency_secs),
            "turn_p50_ms": _ms(statistics.median(turns)) if turns else None,
            "turn_max_ms": _ms(max(turns)) if turns else None,
            "loop_lag_max_ms": _ms(self.loop_lag_secs),
        }


def _ms(secs: float | None) -> int | None:
    return None if secs is None else round(secs * 1000)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

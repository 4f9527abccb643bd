"""The first call of a fresh bot process, its caller looked up: its greeting against later calls'.

On Pipecat Cloud each session runs in an instance of its own, so every call there is
the first call of a process: whatever a library sets up on first use lands in it.
"""

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.bots import new_call
from benchmarks.load import loop_lags_of, ms
from testkit.bot_server import REPO, BotServer, start_bot_server
from testkit.fakes import Fakes
from testkit.simulated_caller import SimulatedCaller

# How the bot is started: pipecat's development runner (`bot.py -t twilio`), or Pipecat
# Cloud's way (its base image imports bot() and awaits it for each websocket).
ENTRIES = {"dev_runner": None, "cloud": REPO / "testkit" / "cloud_host.py"}
WAIT_SECS = 15.0


@dataclass
class FreshStarts:
    """Greetings (caller's clock: ``start`` sent -> first bot media) and the bot's loop lag."""

    first_greeting_secs: list[float] = field(default_factory=list)  # one per fresh process
    later_greeting_secs: list[float] = field(default_factory=list)
    first_loop_lag_secs: list[float] = field(default_factory=list)
    later_loop_lag_secs: list[float] = field(default_factory=list)

    def __str__(self) -> str:
        first, later, first_lag, later_lag = (
            "-" if value is None else f"{value:g} ms" for value in self.figures("").values()
        )
        return (
            f"greeting: 1st call {first}, later calls {later} (medians)"
            f" | loop lag max: 1st call {first_lag}, later calls {later_lag}"
        )

    def figures(self, entry: str) -> dict[str, float | None]:
        """Medians of the greetings, the worst loop block; ``entry`` names the keys."""
        return {
            f"fresh_{entry}_first_greeting_ms": ms(_median(self.first_greeting_secs)),
            f"fresh_{entry}_later_greeting_ms": ms(_median(self.later_greeting_secs)),
            f"fresh_{entry}_first_loop_lag_ms": ms(max(self.first_loop_lag_secs, default=None)),
            f"fresh_{entry}_later_loop_lag_ms": ms(max(self.later_loop_lag_secs, default=None)),
        }


async def measure_fresh_starts(
    script: Path,
    env: dict[str, str],
    fakes: Fakes,
    *,
    entry: str,
    starts: int,
    calls: int,
    work: Path,
) -> FreshStarts:
    """Start the bot ``starts`` times; each time place ``calls`` calls one after another.

    The calls pass no ``from_number``, so the bot asks Twilio's REST API (the fake,
    which knows the call) who is calling, beside the greeting.
    """
    result = FreshStarts()
    host = ENTRIES[entry]
    for start in range(starts):
        server = await start_bot_server(
            # The cloud host imports bot() from the measured bot's own directory.
            env | ({"PYTHONPATH": str(script.parent)} if host else {}),
            log_path=work / f"fresh-{entry}-{script.parent.name}-{start}.log",
            script=host or script,
        )
        try:
            sids, greetings = [], []
            for _ in range(calls):
                sid, greeting = await _greeting_call(server, fakes)
                sids.append(sid)
                greetings.append(greeting)
            lags = await loop_lags_of(server.logs, sids)
        finally:
            await server.stop()
        result.first_greeting_secs.append(greetings[0])
        result.later_greeting_secs += greetings[1:]
        measured = [lags.get(sid) for sid in sids]
        if measured[0] is not None:
            result.first_loop_lag_secs.append(measured[0])
        result.later_loop_lag_secs += [lag for lag in measured[1:] if lag is not None]
    return result


async def _greeting_call(server: BotServer, fakes: Fakes) -> tuple[str, float]:
    """A call that hears the greeting out and hangs up: its callSid and its greeting time."""
    async with SimulatedCaller(server.url, call_sid=new_call(fakes)) as caller:
        assert caller.start_sent_at is not None
        heard_at = await caller.wait_for_bot_audio(timeout=WAIT_SECS)
        await caller.wait_for_bot_silence(timeout=WAIT_SECS)
    return caller.call_sid, heard_at - caller.start_sent_at


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None

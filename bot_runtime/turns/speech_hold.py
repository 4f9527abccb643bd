"""A pause in the bot's speech while the caller may be starting to talk, never a long one."""

import asyncio
import time

from loguru import logger
from pipecat.frames.frames import Frame, InterruptionFrame, OutputAudioRawFrame

# A hold ends by itself after this long: a caller who has said no word in two seconds of
# voice is not talking to the bot (and a lost release must not mute it for the call).
MAX_HOLD_SECS = 2.0


class SpeechHold:
    """Whether the bot's audio may go to the caller now.

    The barge-in rules hold it when the caller's own voice starts but no word has
    been heard yet (speech-to-text has not said whether it is "stop" or "mm-hm");
    the serializer then sends nothing, so the caller hears the bot stop within
    Twilio's small buffer. A cut-in's ``clear`` releases it, and so does the
    voice ending without words: the bot picks up where it paused, nothing lost.
    """

    def __init__(self, *, max_secs: float = MAX_HOLD_SECS) -> None:
        self._max_secs = max_secs
        self._released = asyncio.Event()
        self._released.set()
        self._held_at = 0.0
        self._clears = 0  # interruptions passed: audio held across one is stale

    @property
    def held(self) -> bool:
        """Whether the bot's audio is being held back now."""
        return not self._released.is_set() and self.held_secs < self._max_secs

    @property
    def held_secs(self) -> float:
        """How long the current hold has lasted (0 when released)."""
        return 0.0 if self._released.is_set() else time.monotonic() - self._held_at

    def hold(self) -> None:
        """Hold the bot's audio back, for at most ``max_secs``."""
        if not self.held:
            self._released.clear()
            self._held_at = time.monotonic()

    def release(self) -> float:
        """Let the bot's audio go on; returns how long it was held."""
        held_secs = self.held_secs
        self._released.set()
        return held_secs

    async def wait_released(self) -> None:
        """Wait until the hold is released or has lasted ``max_secs``."""
        remaining = self._max_secs - self.held_secs
        if self._released.is_set() or remaining <= 0:
            return
        try:
            await asyncio.wait_for(self._released.wait(), remaining)
        except TimeoutError:
            logger.debug(
                f"The bot's speech goes on: held for the longest pause, {self._max_secs:g} s"
            )

    async def passes(self, frame: Frame) -> bool:
        """Whether the line's serializer sends ``frame`` now; the bot's audio waits here
        while the hold is held, and is dropped if an interruption (a ``clear``) came
        meanwhile. An interruption itself releases the hold."""
        if isinstance(frame, InterruptionFrame):
            self._clears += 1
            self.release()
        elif isinstance(frame, OutputAudioRawFrame) and self.held:
            clears = self._clears
            await self.wait_released()
            return self._clears == clears
        return True

"""How a call ends: one latch, owned by the call, taken by the first way of ending it."""

from loguru import logger
from pipecat.frames.frames import Frame
from pipecat.turns.user_mute.base_user_mute_strategy import BaseUserMuteStrategy


class CallEnding:
    """Which ending the call has taken; the first one wins.

    Every way a call ends (goodbye, voicemail, transfer, fallback, the caller
    hanging up, the time limit) takes the latch first; whatever comes second
    leaves the call to the one already under way.
    """

    def __init__(self) -> None:
        self.reason: str | None = None

    @property
    def begun(self) -> bool:
        return self.reason is not None

    def begin(self, reason: str) -> bool:
        """Take the latch for ``reason``; False if the call was already ending."""
        if self.reason is not None:
            return False
        self.reason = reason
        logger.info(f"Ending call: {reason}")
        return True


class MuteWhileEnding(BaseUserMuteStrategy):
    """Mutes the caller once the call has begun to end (goodbye, transfer, fallback).

    The caller's voice must not interrupt (and `clear`) the last words.
    """

    def __init__(self, ending: CallEnding):
        super().__init__()
        self._ending = ending

    async def process_frame(self, frame: Frame) -> bool:
        return self._ending.begun

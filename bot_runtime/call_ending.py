"""How a call ends: one latch, owned by the call, taken by the first way of ending it."""

from enum import StrEnum

from loguru import logger
from pipecat.frames.frames import Frame
from pipecat.turns.user_mute.base_user_mute_strategy import BaseUserMuteStrategy

from bot_runtime.speech_hold import SpeechHold


class EndedReason(StrEnum):
    """Why a call ended, as the call record names it."""

    CALLER_HUNG_UP = "caller_hung_up"
    END_CALL = "end_call"
    TRANSFER = "transfer"
    VOICEMAIL = "voicemail"
    SILENCE = "silence"
    MAX_DURATION = "max_duration"
    SERVICE_FAILURE = "service_failure"


# How each reason reads in the log and the call summary; {detail} says more where there is more.
_DESCRIPTIONS = {
    EndedReason.CALLER_HUNG_UP: "caller hung up",
    EndedReason.END_CALL: "end_call tool",
    EndedReason.TRANSFER: "transferred ({detail})",
    EndedReason.VOICEMAIL: "left a voicemail",
    EndedReason.SILENCE: "caller silent",
    EndedReason.MAX_DURATION: "maximum duration {detail}",
    EndedReason.SERVICE_FAILURE: "service failure ({detail})",
}


class CallEnding:
    """Which ending the call has taken; the first one wins.

    Every way a call ends (goodbye, voicemail, transfer, fallback, the caller
    hanging up, the time limit) takes the latch first; whatever comes second
    leaves the call to the one already under way.
    """

    def __init__(self) -> None:
        self.reason: EndedReason | None = None
        self.detail: str | None = None

    @property
    def begun(self) -> bool:
        return self.reason is not None

    @property
    def description(self) -> str | None:
        """The ending in words, e.g. "transferred (keypad 0)"; None while the call goes on."""
        if self.reason is None:
            return None
        return _DESCRIPTIONS[self.reason].format(detail=self.detail)

    def begin(self, reason: EndedReason, detail: str | None = None) -> bool:
        """Take the latch; False if the call was already ending."""
        if self.reason is not None:
            return False
        self.reason, self.detail = reason, detail
        logger.info(f"Ending call: {self.description}")
        return True


class MuteWhileEnding(BaseUserMuteStrategy):
    """Mutes the caller once the call has begun to end (goodbye, transfer, fallback).

    The caller's voice must not interrupt (and `clear`) the last words, nor keep them
    paused: a pause for the caller's voice (``speech_hold``) ends with the muting, since
    a muted caller's words can no longer end it.
    """

    def __init__(self, ending: CallEnding, *, speech_hold: SpeechHold):
        super().__init__()
        self._ending = ending
        self._speech_hold = speech_hold

    async def process_frame(self, frame: Frame) -> bool:
        if self._ending.begun and self._speech_hold.held_secs:
            self._speech_hold.release()
        return self._ending.begun

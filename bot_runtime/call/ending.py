"""How a call ends: one latch, owned by the call, taken by the first way of ending it."""

import asyncio
from collections.abc import Awaitable
from enum import StrEnum

from loguru import logger
from pipecat.frames.frames import EndWorkerFrame, Frame
from pipecat.pipeline.worker import PipelineWorker
from pipecat.turns.user_mute.base_user_mute_strategy import BaseUserMuteStrategy

from bot_runtime.turns.speech_hold import SpeechHold

# How long an ending may take, from its first step to the pipeline's end, before the pipeline
# is stopped whatever the ending is doing. The longest ordinary ending, a fallback whose
# transfer fails, waits for three prompts (PLAYOUT_TIMEOUT_SECS each at most), a redirect
# (the REST client's 10 s) and a hang-up (HANG_UP_TIMEOUT_SECS); this leaves room for all.
ENDING_DEADLINE_SECS = 90.0


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


async def run_ending(work: Awaitable[None], *, worker: PipelineWorker, what: str) -> None:
    """Run an ending's steps so that, whatever fails or hangs in them, the call ends.

    The steps end the pipeline themselves. Should one raise, the pipeline is ended at
    once (which hangs up, unless the call was handed over) and one line says what
    failed; should the pipeline still run ``ENDING_DEADLINE_SECS`` after the ending
    began, it is cancelled. The call cancels this task, with its other side tasks,
    once the pipeline has ended.
    """
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + ENDING_DEADLINE_SECS
    deadline = asyncio.timeout_at(ends_at)
    try:
        async with deadline:
            await work
    except Exception as error:  # Last resort: nothing may leave the caller in silence.
        if not deadline.expired():
            logger.error(f"Ending the call at once: {what} failed ({_describe(error)})")
            await end_pipeline(worker, reason=f"{what} failed")
    await asyncio.sleep(ends_at - loop.time())
    logger.error(f"The call had not ended {ENDING_DEADLINE_SECS:g} s into {what}; stopping it")
    await worker.cancel(reason=f"{what} took too long")


async def end_pipeline(worker: PipelineWorker, *, reason: str) -> None:
    """End the pipeline after what it holds (the serializer then hangs up, unless the call
    was handed over); cancel it if even that fails."""
    try:
        await worker.queue_frame(EndWorkerFrame(reason=reason))
    except Exception as error:
        logger.error(f"Could not end the pipeline ({_describe(error)}); cancelling it")
        await worker.cancel(reason=reason)


def _describe(error: BaseException) -> str:
    """The error in one short line: its type and the start of its message, no traceback."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:160]}" if lines else type(error).__name__


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

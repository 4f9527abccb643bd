"""A call's turn taking on the shared models: when the caller's turn starts, and when it ends."""

from typing import TypedDict

from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from bot_runtime.turns.barge_in import BARGE_IN_LEVEL_DB, BARGE_IN_MIN_WORDS, CallerVoiceStart
from bot_runtime.turns.shared_models import (
    SILERO_TRAIL_SECS,
    SPECULATION_AFTER_SECS,
    SharedSileroVAD,
    SharedSmartTurn,
)
from bot_runtime.turns.speech_hold import SpeechHold
from bot_runtime.turns.turn_end import TranscriptCompleteFrame, TurnEnd


class CallerAudioEnd(FrameProcessor):
    """Put right after the user aggregator: the caller's audio goes no further.

    pipecat's user aggregator passes every frame on, so each 20 ms of caller audio
    would also travel through the LLM, the TTS, the output transport and the
    assistant aggregator, and past every observer at each step; none of them use it.
    Nor does anything after it use the speech-to-text's ``TranscriptCompleteFrame``.
    """

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, (InputAudioRawFrame, TranscriptCompleteFrame)):
            await self.push_frame(frame, direction)


class TurnDetection(TypedDict):
    """The LLMUserAggregatorParams fields that decide when the caller's turn starts and ends."""

    vad_analyzer: SharedSileroVAD
    user_turn_strategies: UserTurnStrategies


def turn_detection(
    *,
    start_secs: float,
    stop_secs: float,
    preemptive: bool,
    speech_hold: SpeechHold,
    reply_due_secs: float,
    barge_in_level_db: float = BARGE_IN_LEVEL_DB,
    barge_in_min_words: int = BARGE_IN_MIN_WORDS,
) -> TurnDetection:
    """A call's turn detection on the shared models.

    ``start_secs`` of voice start the caller's speech; ``stop_secs`` of quiet after
    the caller's words end it (the end-of-turn wait, counted from the words, not
    from Silero's trailing confidence). While the bot is quiet a turn starts by
    voice or by transcript; while it speaks, only the caller's own voice (within
    ``barge_in_level_db`` of their level) with ``barge_in_min_words`` words cuts it
    off, and that voice pauses it (``speech_hold``) until its words say which (see
    barge_in.py), from the end of a turn with words for ``reply_due_secs`` (the reply
    promise) and while it speaks. Smart-turn decides whether a stop ends the turn (see
    turn_end.py, which also starts ``preemptive`` replies).
    """
    vad_stop_secs = max(stop_secs - SILERO_TRAIL_SECS, SPECULATION_AFTER_SECS)
    vad = SharedSileroVAD(params=VADParams(start_secs=start_secs, stop_secs=vad_stop_secs))
    start = CallerVoiceStart(
        level_db=barge_in_level_db,
        min_words=barge_in_min_words,
        speech_hold=speech_hold,
        vad_hears_voice=lambda: vad.hears_voice,
        reply_due_secs=reply_due_secs,
    )
    turn_end = TurnEnd(
        turn_analyzer=SharedSmartTurn(vad),
        caller_speaking=lambda: vad.speaking,
        preemptive=preemptive,
    )
    return TurnDetection(
        vad_analyzer=vad, user_turn_strategies=UserTurnStrategies(start=[start], stop=[turn_end])
    )

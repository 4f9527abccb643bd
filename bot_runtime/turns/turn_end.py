"""When the caller's turn ends: no safety-net waits, and the reply started on their words."""

from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger
from pipecat.audio.turn.base_turn_analyzer import BaseTurnAnalyzer
from pipecat.frames.frames import (
    DataFrame,
    EagerEndOfTurnCancelFrame,
    Frame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.turns.types import ProcessFrameResult, UserTurnSpeculation
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy

from bot_runtime.turns.farewell import is_farewell


@dataclass
class TranscriptCompleteFrame(DataFrame):
    """From speech-to-text: the transcripts already sent hold all the caller said.

    Deepgram's answer to a ``Finalize`` is empty when its endpointing sent the words
    before the bot's VAD heard the end: nothing more is coming, so the turn need not
    wait. Goes no further than the user aggregator.
    """


@dataclass
class PreemptionCount:
    """A call's speculative replies: how many were started, heard, and thrown away."""

    started: int = 0
    confirmed: int = 0
    discarded: int = 0


class TurnEnd(TurnAnalyzerUserTurnStopStrategy):
    """pipecat's smart-turn stop strategy, without its waits for words already in.

    The turn ends as soon as smart-turn says the caller is done and the transcript
    is final, counting Deepgram's empty answer to a ``Finalize``
    (``TranscriptCompleteFrame``) as final; pipecat alone waits out the STT's
    safety net (0.35 s after the words with Deepgram) in that case.

    With ``preemptive``, the reply starts on each final transcript that arrives
    while the caller is quiet, before the turn is confirmed (LiveKit's preemptive
    generation), through pipecat's speculation: the LLM answers a provisional
    context and its LLM service holds the reply until the turn ends. The reply is
    heard only if the turn ends on the same words; if the caller goes on, or more
    words arrive, it is thrown away (the request is cancelled) and never reaches
    the voice, the transcript or the call record. A reply that wants a tool is
    withdrawn by the LLM service itself (a tool's effects cannot be held back), and
    the turn's end asks again.

    A clear goodbye ("OK, bye!") ends the turn once the caller is quiet, whatever
    smart-turn says: it takes so short a line for unfinished, and the caller would
    wait out its fallback silence for the bot's goodbye.
    """

    def __init__(
        self,
        *,
        turn_analyzer: BaseTurnAnalyzer,
        caller_speaking: Callable[[], bool],
        preemptive: bool,
    ) -> None:
        super().__init__(turn_analyzer=turn_analyzer)
        self._caller_speaking = caller_speaking
        self._preemptive = preemptive
        self._turn_text: Callable[[], str] = lambda: ""
        self._turn_open = False
        self._speculation: UserTurnSpeculation | None = None
        self._end_reason: str | None = None  # why this strategy asked for the turn's end
        self.preemption = PreemptionCount()

    def read_turn_text_from(self, aggregation: Callable[[], str]) -> None:
        """Where the turn's words so far are: the user aggregator's text, which the
        context gets when the turn ends (so a speculation answers exactly that)."""
        self._turn_text = aggregation

    async def handle_user_turn_started(self) -> None:
        await self._withdraw("a new turn began")
        await super().handle_user_turn_started()
        self._turn_open = True

    async def handle_user_turn_stopped(self) -> None:
        self._turn_open = False
        # Not asked for here: pipecat's fallback (quiet with words for TURN_END_FALLBACK_SECS).
        reason, self._end_reason = self._end_reason, None
        logger.debug(f"Caller's turn ended: {reason or 'no end heard, the fallback wait ran out'}")
        await self._withdraw("the turn ended without it")
        await super().handle_user_turn_stopped()

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        if isinstance(frame, TranscriptCompleteFrame):
            # pipecat: private. The strategy's own "final transcript in" flag and check, set
            # here as its finalized-transcript path does.
            if self._text:
                self._transcript_finalized = True
                await self._maybe_trigger_user_turn_stopped()
            return ProcessFrameResult.CONTINUE
        if isinstance(frame, EagerEndOfTurnCancelFrame) and self._speculation is not None:
            # The LLM withdrew it (it wants a tool, whose effects cannot be held back): the
            # turn's end asks again, and the tool runs then.
            self._speculation = None
            self.preemption.discarded += 1
            logger.debug("Preemptive reply thrown away: it wants a tool, run once the turn ends")
        if isinstance(frame, (VADUserStartedSpeakingFrame, InterimTranscriptionFrame)):
            self._end_reason = None  # An end asked for before they went on was refused.
            await self._withdraw("the caller went on")
        result = await super().process_frame(frame)
        if isinstance(frame, (TranscriptionFrame, VADUserStoppedSpeakingFrame)):
            await self._end_on_farewell()
        if isinstance(frame, TranscriptionFrame):
            await self._speculate()
        return result

    async def _end_on_farewell(self) -> None:
        # pipecat: private. The strategy's "the VAD heard the caller stop" and "smart-turn
        # says done" flags, and its check of both against the transcript.
        if self._vad_stopped and not self._turn_complete and is_farewell(self._turn_text()):
            self._turn_complete = True
            self._end_reason = "a goodbye, and the caller quiet"
            await self._maybe_trigger_user_turn_stopped()

    async def trigger_user_turn_stopped(
        self, *, enable_user_speaking_frames: bool | None = None
    ) -> None:
        speculation, self._speculation = self._speculation, None
        # pipecat: private. The strategy's "final transcript in" flag (else its wait ran out).
        heard = "smart-turn says done, " + (
            "the transcript final" if self._transcript_finalized else "speech-to-text's wait over"
        )
        self._end_reason = self._end_reason or heard
        if speculation is not None and speculation.text == self._turn_text():
            # The reply already answers these words: release it, do not ask again.
            self.preemption.confirmed += 1
            self._end_reason += "; the preemptive reply kept (it answers these words)"
            await self.trigger_user_turn_finalized(
                enable_user_speaking_frames=enable_user_speaking_frames,
                confirms_speculation=True,
            )
            return
        if speculation is not None:
            await self._discard(speculation, "the words changed")
        await super().trigger_user_turn_stopped(
            enable_user_speaking_frames=enable_user_speaking_frames
        )

    async def _speculate(self) -> None:
        if not (self._preemptive and self._turn_open) or self._caller_speaking():
            return
        text = self._turn_text()
        if not text.strip() or (self._speculation and self._speculation.text == text):
            return
        await self._withdraw("more words came")
        self._speculation = UserTurnSpeculation(text=text)
        self.preemption.started += 1
        logger.debug(f"Preemptive reply started on the caller's {len(text.split())} words so far")
        await self.trigger_user_turn_inference_triggered(speculation=self._speculation)

    async def _withdraw(self, reason: str) -> None:
        speculation, self._speculation = self._speculation, None
        if speculation is not None:
            await self._discard(speculation, reason)

    async def _discard(self, speculation: UserTurnSpeculation, reason: str) -> None:
        self.preemption.discarded += 1
        logger.debug(f"Preemptive reply to [{speculation.text}] thrown away: {reason}")
        await self.trigger_user_turn_speculation_cancelled()

"""How long the LLM and the voice take to answer: a service that stalls is named within seconds."""

import asyncio
from collections.abc import Awaitable, Callable

from pipecat.frames.frames import (
    Frame,
    FunctionCallsStartedFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from bot_runtime.side_tasks import SideTasks

# The limits below keep the promise that a caller hears a reply within 3 s of the end of their
# turn (turn taking takes about 0.3 s of that), with time left for a backup to answer.
# The LLM's first token: gpt-4.1-mini class models answer in 0.3-0.6 s, 1 s is rare; by 1.2 s
# the request is stuck, and a backup LLM (about 0.5 s) and the voice (0.1-0.2 s) still fit.
LLM_FIRST_TOKEN_SECS = 1.2
# A reply that stops half-way: tokens stream every few tens of ms, so 1.5 s without one is a
# stall, not a slow model.
LLM_TOKEN_GAP_SECS = 1.5
# The voice's first audio for a sentence: Cartesia answers in 90-150 ms; 0.8 s after the text
# was sent it is stuck, and a backup voice (Piper: about 0.2 s) still fits. The same limit
# holds between the words of a reply it is voicing (words come every few hundred ms).
TTS_FIRST_AUDIO_SECS = 0.8

LLM = "LLM"
TTS = "text-to-speech"


class ServiceWatch:
    """Starts a clock when the LLM or the voice is asked for something, stops it at the answer.

    A clock that runs out calls ``on_stall(service, what)``: the service accepted the
    work and said nothing (a hung request or a half-open socket, the commonest real
    outage: no error, no close). The voice owes the words of every text it was asked
    for until it has voiced them (pipecat passes each voiced word on as it is played);
    the texts not voiced yet are kept, so a backup voice can say them.
    """

    def __init__(self, tasks: SideTasks, *, watched: set[str]) -> None:
        """``watched``: the services (LLM, TTS) whose clocks run; a local model on this
        machine cannot hang like a remote service, and may be slow when calls share it."""
        self._tasks = tasks
        self._watched = watched
        self.on_stall: Callable[[str, str], Awaitable[None]] | None = None
        self._llm_clock: asyncio.Task | None = None
        self._tts_clock: asyncio.Task | None = None
        self._asked: list[str] = []
        self._asked_words = 0
        self._voiced_words = 0
        # While a tool runs, the reply waits for it (tools have their own time limit).
        self.tool_running = False

    def llm_asked(self) -> None:
        self.tool_running = False
        self._restart(LLM, f"no answer within {LLM_FIRST_TOKEN_SECS:g} s", LLM_FIRST_TOKEN_SECS)

    def tool_started(self) -> None:
        self.tool_running = True
        self.llm_answered()

    def llm_answered(self) -> None:
        """A token (or a function call) came: the reply may now take its time, token by token."""
        self._restart(LLM, f"stopped mid-reply for {LLM_TOKEN_GAP_SECS:g} s", LLM_TOKEN_GAP_SECS)

    def llm_done(self) -> None:
        self._stop(LLM)

    @property
    def unvoiced(self) -> list[str]:
        """The texts the voice was asked for and has not voiced (all of) yet, in order."""
        unvoiced, words = [], 0
        for text in self._asked:
            words += len(text.split())
            if words > self._voiced_words:
                unvoiced.append(text)
        return unvoiced

    def tts_asked(self, text: str) -> None:
        self._asked.append(text)
        self._asked_words += len(text.split())
        self._tts_progress()

    def tts_voiced(self, text: str) -> None:
        self._voiced_words += len(text.split())
        self._tts_progress()

    def tts_finished(self) -> None:
        """The voice closed its audio: whatever it was asked for is said (however it counted
        the words)."""
        self._asked.clear()
        self._asked_words = self._voiced_words = 0
        self._stop(TTS)

    def _tts_progress(self) -> None:
        """Words still owed restart the clock; none owed stops it."""
        if self._voiced_words < self._asked_words:
            self._restart(TTS, f"no audio within {TTS_FIRST_AUDIO_SECS:g} s", TTS_FIRST_AUDIO_SECS)
        else:
            self._stop(TTS)

    def stop_all(self) -> None:
        """The work was interrupted (the caller spoke, or the call is ending): nothing is owed."""
        self.tts_finished()
        self.tool_running = False
        self._stop(LLM)
        self._stop(TTS)

    def _restart(self, service: str, what: str, secs: float) -> None:
        self._stop(service)
        if service not in self._watched:
            return
        clock = self._tasks.start(self._run_out(service, what, secs))
        if service == LLM:
            self._llm_clock = clock
        else:
            self._tts_clock = clock

    def _stop(self, service: str) -> None:
        clock = self._llm_clock if service == LLM else self._tts_clock
        if clock is not None:
            clock.cancel()
        if service == LLM:
            self._llm_clock = None
        else:
            self._tts_clock = None

    async def _run_out(self, service: str, what: str, secs: float) -> None:
        await asyncio.sleep(secs)
        if self.on_stall is not None:
            await self.on_stall(service, what)


class _Tap(FrameProcessor):
    """Passes every frame on, telling the watch about the ones ``observe`` cares for."""

    def __init__(self, watch: ServiceWatch) -> None:
        super().__init__()
        self._watch = watch

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM:
            self.observe(frame)
        await self.push_frame(frame, direction)

    def observe(self, frame: Frame) -> None:
        raise NotImplementedError


class LLMTap(_Tap):
    """Between the LLM and the voice: tells the watch when the LLM starts, speaks and ends."""

    def observe(self, frame: Frame) -> None:
        if isinstance(frame, LLMFullResponseStartFrame):
            self._watch.llm_asked()
        elif isinstance(frame, LLMTextFrame):
            self._watch.llm_answered()
        elif isinstance(frame, FunctionCallsStartedFrame):
            self._watch.tool_started()
        elif isinstance(frame, LLMFullResponseEndFrame):
            self._watch.llm_done()
        elif isinstance(frame, InterruptionFrame):
            self._watch.stop_all()


class TTSTap(_Tap):
    """After the voice: tells the watch which words the voice has voiced, and when it is done."""

    def observe(self, frame: Frame) -> None:
        if isinstance(frame, TTSTextFrame):
            self._watch.tts_voiced(frame.text)
        elif isinstance(frame, TTSStoppedFrame):
            self._watch.tts_finished()

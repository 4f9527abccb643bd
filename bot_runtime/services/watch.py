"""How long the LLM and the voice take to answer: a service that stalls is named within seconds."""

import asyncio
import time
from collections.abc import Awaitable, Callable

from pipecat.frames.frames import (
    Frame,
    FunctionCallsStartedFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from bot_runtime.side_tasks import SideTasks

# The limits below keep the promise that a caller hears a reply within 3 s of the end of their
# turn (turn taking takes part of that), with time left for a backup to answer. Each is well
# past the service's usual time (the vendors' times: docs/performance.md).
# The LLM's first token: a model that has not begun by 1.2 s is stuck, and a backup LLM and
# the voice still fit in the promise.
LLM_FIRST_TOKEN_SECS = 1.2
# A reply that stops half-way: tokens stream every few tens of ms, so 1.5 s without one is a
# stall, not a slow model.
LLM_TOKEN_GAP_SECS = 1.5
# Silence the caller hears while the voice owes audio: Cartesia's first audio comes quickly,
# and once it streams, audio comes every few tens of ms (however slowly, even on a busy link);
# 0.8 s of silence is a stuck voice, and a backup voice still fits in the reply promise.
TTS_SILENCE_SECS = 0.8

# Before a clock runs out, the loop gets this long to handle an answer already waiting: a
# stall is silence from the service, not a process that did not get to read its socket.
CATCH_UP_SECS = 0.1

LLM = "LLM"
TTS = "text-to-speech"


class ServiceWatch:
    """Starts a clock when the LLM or the voice is asked for something, stops it at the answer.

    A clock that runs out calls ``on_stall(service, what)``: the service accepted the
    work and said nothing (a hung request or a half-open socket, the commonest real
    outage: no error, no close).

    The voice owes the words of every text it was asked for until it has voiced them
    (pipecat passes each word on as the voice times it); the texts not voiced yet are
    kept, so a backup voice can say them. Owing words is not a stall: a reply sent as
    several texts owes the later ones while the earlier ones play, and a voice streams
    its audio no faster than 1-3x real time on a slow day. The voice is stalled only
    when it owes words and the caller hears silence: no audio (nor word) has come for
    ``TTS_SILENCE_SECS`` beyond the end of the audio it already sent.
    """

    def __init__(self, tasks: SideTasks, *, watched: set[str]) -> None:
        """``watched``: the services (LLM, TTS) whose clocks run; a local model on this
        machine cannot hang like a remote service, and may be slow when calls share it."""
        self._tasks = tasks
        self._watched = watched
        self.on_stall: Callable[[str, str], Awaitable[None]] | None = None
        self._clocks = {service: _Clock(service, tasks, self._stalled) for service in watched}
        self._asked: list[str] = []
        self._asked_words = 0
        self._voiced_words = 0
        # When the audio the voice has sent so far will have played out (time.monotonic).
        self._audio_until = 0.0
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
        """More text for the voice: if it owed nothing, the clock starts now (an earlier
        text still owed keeps its clock: asking again is no sign of life)."""
        owed_before = self._owes_words
        self._asked.append(text)
        self._asked_words += len(text.split())
        if not owed_before or not self._running(TTS):
            self._tts_progress()

    def tts_audio(self, secs: float) -> None:
        """``secs`` of audio came from the voice: it plays after what came before it."""
        now = time.monotonic()
        self._audio_until = max(self._audio_until, now) + secs
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

    @property
    def _owes_words(self) -> bool:
        return self._voiced_words < self._asked_words

    def _tts_progress(self) -> None:
        """Words still owed restart the clock, to run out that long after the caller has heard
        the audio so far; none owed stops it."""
        if not self._owes_words:
            self._stop(TTS)
            return
        heard_in = max(0.0, self._audio_until - time.monotonic())
        self._restart(TTS, f"no audio for {TTS_SILENCE_SECS:g} s", heard_in + TTS_SILENCE_SECS)

    def stop_all(self) -> None:
        """The work was interrupted (the caller spoke, or the call is ending): nothing is owed,
        and the audio sent so far was cleared."""
        self.tts_finished()
        self._audio_until = 0.0
        self.tool_running = False
        self._stop(LLM)
        self._stop(TTS)

    def _running(self, service: str) -> bool:
        clock = self._clocks.get(service)
        return clock is not None and clock.running

    def _restart(self, service: str, what: str, secs: float) -> None:
        if clock := self._clocks.get(service):
            clock.run_out_in(secs, what)

    def _stop(self, service: str) -> None:
        if clock := self._clocks.get(service):
            clock.stop()

    async def _stalled(self, service: str, what: str) -> None:
        if self.on_stall is not None:
            await self.on_stall(service, what)


class _Clock:
    """One service's clock: runs out at a deadline that each sign of life moves on.

    One task sleeps until the deadline and looks again, so moving it costs nothing:
    a task per token or per audio frame would cost dozens of tasks a second per call.
    """

    def __init__(
        self, service: str, tasks: SideTasks, on_run_out: Callable[[str, str], Awaitable[None]]
    ) -> None:
        self._service = service
        self._tasks = tasks
        self._on_run_out = on_run_out
        self._deadline: float | None = None
        self._what = ""
        self._task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self._deadline is not None

    def run_out_in(self, secs: float, what: str) -> None:
        self._deadline, self._what = time.monotonic() + secs, what
        if self._task is None or self._task.done():
            self._task = self._tasks.start(self._run())

    def stop(self) -> None:
        self._deadline = None
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left > 0:
                await asyncio.sleep(left)
                continue
            # The deadline passed. On a loaded host this process may not have run for a
            # while, and an answer may be waiting, read or not, behind other work: let the
            # loop catch up (as long as it was late, at least CATCH_UP_SECS) and look again.
            missed = self._deadline
            await asyncio.sleep(max(CATCH_UP_SECS, -left))
            if self._deadline != missed:
                continue  # A sign of life came meanwhile and moved the deadline.
            self._deadline, self._task = None, None
            await self._on_run_out(self._service, self._what)
            return


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
    """After the voice: tells the watch what audio and words came, and when the voice is done."""

    def observe(self, frame: Frame) -> None:
        if isinstance(frame, TTSAudioRawFrame):
            samples = len(frame.audio) // 2 // max(1, frame.num_channels)
            self._watch.tts_audio(samples / frame.sample_rate)
        elif isinstance(frame, TTSTextFrame):
            self._watch.tts_voiced(frame.text)
        elif isinstance(frame, TTSStoppedFrame):
            self._watch.tts_finished()

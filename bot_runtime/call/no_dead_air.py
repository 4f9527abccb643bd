"""No dead air: a caller owed a reply hears one within seconds, from a backup or the apology."""

import asyncio
import time
from collections.abc import Callable

from loguru import logger
from pipecat.frames.frames import ErrorFrame, InterruptionFrame, LLMRunFrame, TTSSpeakFrame
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameProcessor

from bot_runtime import tracing
from bot_runtime.call.ending import CallEnding, Goodbyes
from bot_runtime.call.record import CallRecord
from bot_runtime.config.languages import DEFAULT_LANGUAGE, Language, base
from bot_runtime.services.build import BackedUp
from bot_runtime.services.watch import LLM, TTS, ServiceWatch
from bot_runtime.side_tasks import SideTasks

STT = "speech-to-text"
# Turn taking takes part of the promise, and the recorded apology a moment to start: the
# apology is started this much before the promise runs out (docs/performance.md).
APOLOGY_LEAD_SECS = 0.4
SAY_AGAIN = "Sorry, I didn't catch that. Could you say it again?"


def say_again_in(language: Language) -> str:
    """What asks the caller to repeat, in ``language``: its own line, the built-in one in
    English, else its silence prompt (never English words in another language's call)."""
    if language.say_again:
        return language.say_again
    return SAY_AGAIN if base(language.code) == DEFAULT_LANGUAGE else language.silence_prompt


class NoDeadAir:
    """Keeps the promise that a caller who finished a turn hears a reply in time.

    The clock starts at the end of the first turn that has not been answered and
    stops only when the bot is heard: the caller speaking again (or cutting off a
    reply they did not hear) neither resets it nor clears the debt; it only stands
    still while they speak, as no reply could be heard over them (a long line whose
    first words were taken for a whole turn must not run it out). A stalled or
    failed LLM or voice is replaced by its backup for the rest of the call, which
    must answer within the same promise; with no backup, or when the backup fails
    too, the caller hears the recorded apology (see ending.py). A deaf
    speech-to-text is reconnected once, and the caller asked to say it again.
    """

    def __init__(
        self,
        *,
        llm: BackedUp,
        tts: BackedUp,
        stt: FrameProcessor,
        watch: ServiceWatch,
        worker: PipelineWorker,
        ending: CallEnding,
        goodbyes: Goodbyes,
        record: CallRecord,
        promise_secs: float,
        language: Callable[[], Language],
        tasks: SideTasks,
    ) -> None:
        self._services = {LLM: llm, TTS: tts}
        self._language = language
        self._stt = stt
        self._watch = watch
        self._worker = worker
        self._ending = ending
        self._goodbyes = goodbyes
        self._record = record
        self._promise_secs = promise_secs
        self._tasks = tasks
        self._promise: asyncio.Task | None = None
        self._owing = False
        self._owed_since = 0.0  # when the caller last fell quiet owing a reply
        self._owed_secs = 0.0  # time owed (the caller quiet) before that
        self._retried: set[str] = set()
        self._stt_was_deaf = False
        self._on_backup: set[str] = set()
        watch.on_stall = self._service_stalled

    # --- the promise ------------------------------------------------------------------------

    def caller_is_speaking(self, speaking: bool) -> None:
        """The caller's turn began (True) or ended (False), with words or not."""
        if not self._owing:
            return
        if speaking:
            self._owed_secs += time.monotonic() - self._owed_since
            self._stop_clock()
        else:
            self._start_clock()

    def caller_finished_a_turn(self) -> None:
        """A turn with words: a reply is owed, from now unless one already was."""
        if not self._owing:
            self._owing = True
            self._owed_secs = 0.0
            self._start_clock()

    def bot_was_heard(self) -> None:
        self._owing = False
        self._retried.clear()
        self._stop_clock()

    def _start_clock(self) -> None:
        self._stop_clock()
        self._owed_since = time.monotonic()
        self._promise = self._tasks.start(self._keep_promise())

    def _stop_clock(self) -> None:
        if self._promise and not self._promise.done():
            self._promise.cancel()

    async def _keep_promise(self) -> None:
        await asyncio.sleep(max(0.0, self._promise_secs - APOLOGY_LEAD_SECS - self._owed_secs))
        if self._watch.tool_running:  # The reply waits for a tool, which has its own limit.
            self._owed_secs = 0.0
            self._start_clock()
            return
        self._fall_back("reply", f"no reply within {self._promise_secs:g} s")

    # --- what goes wrong --------------------------------------------------------------------

    async def service_failed(self, frame: ErrorFrame) -> None:
        """A service reported an error (refused, dropped, an error reply)."""
        service = self._service_of(frame.processor)
        if service is None or self._ending.begun:
            return
        logger.warning(f"{service} failed: {frame.error}")
        if service == STT:
            # Deepgram waits before reconnecting after an error: too long to leave a caller
            # unheard, and nothing they say gets through meanwhile.
            self._fall_back(service, f"{service} failed: {frame.error}")
        elif await self._to_backup(service, f"failed: {frame.error}"):
            return
        elif service in self._retried:
            self._fall_back(service, f"{service} failed twice: {frame.error}")
        else:
            # A dropped connection or an error reply is often transient: ask again, once.
            logger.info("Retrying the reply once")
            self._retried.add(service)
            await self._worker.queue_frame(LLMRunFrame())

    async def _service_stalled(self, service: str, what: str) -> None:
        if self._ending.begun:
            return
        logger.warning(f"{service} stalled: {what}")
        if not await self._to_backup(service, f"stalled: {what}"):
            # Asking a hung service again would only wait out the same silence.
            self._fall_back(service, f"{service} stalled: {what}")

    async def stt_deaf(self, _stt: FrameProcessor, reconnected: bool) -> None:
        """Speech-to-text heard the caller and said nothing: reconnected (or not) just now."""
        if self._ending.begun:
            return
        if not reconnected or self._stt_was_deaf:
            self._fall_back(STT, f"{STT} stopped answering")
            return
        self._stt_was_deaf = True
        self._record.service_event(STT, "stopped answering", action="reconnected")
        # Whatever the caller said went into the dead connection: ask for it again.
        text = say_again_in(self._language())
        await self._worker.queue_frame(TTSSpeakFrame(text, append_to_context=False))

    # --- what is done about it ----------------------------------------------------------------

    async def _to_backup(self, service: str, what: str) -> bool:
        """Hand the rest of the call to the service's backup; False if there is none (left)."""
        pair = self._services[service]
        if pair.backup is None or not pair.primary.is_usable:
            return False
        logger.warning(f"{service} {what}: the backup takes over for the rest of the call")
        self._record.service_event(service, what, action="backup took over")
        unvoiced = list(self._watch.unvoiced)
        # Stop what the failed service was doing (a request that may never end), then let
        # the switcher move to the backup: it does when the service can no longer work.
        self._on_backup_now(service)
        await pair.primary.queue_frame(InterruptionFrame())
        await pair.primary.push_error(f"{service} {what}", force_treat_as_permanent=True)
        await self._redo_reply(service, unvoiced)
        return True

    async def switched_by_itself(self, service: str) -> None:
        """The switcher moved to the backup on its own (the service gave up reconnecting)."""
        if service in self._on_backup or self._ending.begun:
            return
        self._on_backup_now(service)
        logger.warning(f"{service} can no longer work: the backup takes over")
        self._record.service_event(service, "gave up", action="backup took over")
        await self._redo_reply(service, list(self._watch.unvoiced))

    def _on_backup_now(self, service: str) -> None:
        self._on_backup.add(service)
        tracing.mark_call(
            self._record.info.call_sid,
            {"call.backup_used": True, "call.backups": sorted(self._on_backup)},
        )

    async def _redo_reply(self, service: str, unvoiced: list[str]) -> None:
        if service == TTS and unvoiced:
            for text in unvoiced:  # The reply was written: the backup voice says it.
                await self._worker.queue_frame(TTSSpeakFrame(text))
        else:
            await self._worker.queue_frame(LLMRunFrame())

    def _fall_back(self, service: str, cause: str) -> None:
        if self._ending.begun:
            return
        self._record.service_event(service, cause, action="fallback")
        self._goodbyes.fall_back(cause)

    def _service_of(self, processor: FrameProcessor | None) -> str | None:
        if processor is self._stt:
            return STT
        for service, pair in self._services.items():
            if processor in (pair.primary, pair.backup, pair.node):
                return service
        return None

"""The ways the bot ends a call: a goodbye, a voicemail message, or the fallback apology."""

from collections.abc import Awaitable

from pipecat.frames.frames import EndWorkerFrame
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameProcessor

from bot_runtime.call.ending import CallEnding, EndedReason, run_ending
from bot_runtime.call.playout import Playout
from bot_runtime.call.prompts import Prompt
from bot_runtime.call.transfer import Transfer
from bot_runtime.side_tasks import SideTasks


class Endings:
    """Each ending takes the call's latch, has its last words heard, then ends the pipeline.

    Ending the pipeline makes the serializer hang the call up through Twilio's REST
    API (a transfer lets go instead; see transfer.py). Nothing is cut short: the
    pipeline ends only once Twilio confirms the caller heard the last words. Should
    an ending fail or hang, ``run_ending`` ends the call anyway.
    """

    def __init__(
        self,
        *,
        ending: CallEnding,
        playout: Playout,
        worker: PipelineWorker,
        transfer: Transfer,
        goodbye: str,
        tasks: SideTasks,
    ) -> None:
        self._ending = ending
        self._playout = playout
        self._worker = worker
        self._transfer = transfer
        self._goodbye = goodbye
        self._tasks = tasks

    def say_goodbye(self, reason: EndedReason, detail: str | None = None) -> None:
        """Say goodbye, and end the call once the caller has heard it."""
        if self._ending.begin(reason, detail):
            self._start(self._leave_with(self._goodbye, reason=reason), what="the goodbye")

    def leave_voicemail(self, message: str, *, detector: FrameProcessor) -> None:
        """Leave ``message`` on the answering machine, then hang up.

        The detector waits for the machine's greeting to end before letting the
        message through, and past its verdict it passes nothing from upstream, so
        the message starts from the detector itself.
        """
        if self._ending.begin(EndedReason.VOICEMAIL):
            self._start(
                self._leave_with(message, reason=EndedReason.VOICEMAIL, via=detector),
                what="the voicemail message",
            )

    def fall_back(self, cause: str) -> None:
        """Play the recorded apology, then hand the caller to a person or hang up."""
        if self._ending.begin(EndedReason.SERVICE_FAILURE, cause):
            self._start(self._apologise_and_leave(), what="the fallback")

    async def caller_hung_up(self) -> None:
        """Nobody is listening any more: stop at once (the serializer sends no hang-up, since
        the socket is already closed)."""
        self._ending.begin(EndedReason.CALLER_HUNG_UP)
        await self._worker.cancel(reason="caller hung up")

    def _start(self, ending: Awaitable[None], *, what: str) -> None:
        self._tasks.start(run_ending(ending, worker=self._worker, what=what))

    async def _leave_with(
        self, last_words: str, *, reason: EndedReason, via: FrameProcessor | None = None
    ) -> None:
        await self._playout.say_last_words(last_words, via=via)
        await self._worker.queue_frame(EndWorkerFrame(reason=str(reason)))

    async def _apologise_and_leave(self) -> None:
        # Prompts bypass the speech services: they play when the TTS is what failed.
        await self._playout.play(Prompt.FALLBACK, interrupt=True)
        if self._transfer.available:
            await self._transfer.hand_over()
        else:
            await self._playout.play(Prompt.CALL_BACK)
            await self._worker.queue_frame(EndWorkerFrame(reason="service failure"))

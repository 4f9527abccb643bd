"""Handing the caller to a person: from the request (tool, keypad 0, fallback) to letting go."""

import asyncio
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

import aiohttp
from loguru import logger
from pipecat.frames.frames import EndWorkerFrame
from pipecat.pipeline.worker import PipelineWorker
from twilio.base.exceptions import TwilioRestException

from bot_runtime.after_call.summaries import transfer_brief
from bot_runtime.call.ending import CallEnding, EndedReason, run_ending
from bot_runtime.call.playout import LineSerializer, Playout
from bot_runtime.call.record import CallRecord
from bot_runtime.call.recorded_prompts import Prompt
from bot_runtime.config.settings import BotSettings
from bot_runtime.phone_numbers import mask
from bot_runtime.side_tasks import SideTasks
from bot_runtime.twilio import call_control
from bot_runtime.twilio.rest import describe_rest_error

# What proves the redirect did not happen: Twilio refused it, or it never reached Twilio. After
# anything else (a timeout, a dropped connection, an answer that is not Twilio's) the call may
# be on its new leg, and hanging it up would drop the caller from the transfer.
NOT_REDIRECTED = (TwilioRestException, aiohttp.ClientConnectorError)
# What sends the call on to the number: Twilio's REST redirect (an eval has a stand-in).
Redirect = Callable[..., Awaitable[None]]


class Transfer:
    """Transfers the call to TRANSFER_NUMBER with a REST redirect to ``<Dial>``.

    A transfer is asked for by the LLM's ``transfer_call`` tool, by keypad 0, or by
    the fallback after a service failure. The caller hears "Connecting you now" and
    a hold tone; meanwhile, with TRANSFER_WHISPER_URL, the LLM writes a brief that
    whoever answers hears first. The redirect ends this media stream, and the bot
    must then let go of the call: hanging it up would drop the caller from the new leg.
    """

    def __init__(
        self,
        *,
        settings: BotSettings,
        record: CallRecord,
        ending: CallEnding,
        playout: Playout,
        serializer: LineSerializer,
        worker: PipelineWorker,
        tasks: SideTasks,
        redirect: Redirect = call_control.redirect_to,
    ) -> None:
        self.number = settings.transfer_number
        self._settings = settings
        self._record = record
        self._ending = ending
        self._playout = playout
        self._serializer = serializer
        self._worker = worker
        self._tasks = tasks
        self._redirect = redirect

    @property
    def available(self) -> bool:
        return self.number is not None

    def request(self, reason: str) -> None:
        """Transfer the call, unless it is already ending (or there is nowhere to send it)."""
        if self.available and self._ending.begin(EndedReason.TRANSFER, reason):
            self._tasks.start(
                run_ending(self.hand_over(), worker=self._worker, what="the transfer")
            )

    async def hand_over(self) -> None:
        """Tell the caller, brief the person, redirect the call, then end without a hang-up."""
        assert self.number is not None
        whisper = self._settings.transfer_whisper_url
        brief = asyncio.ensure_future(self._brief()) if whisper else None
        await self._playout.play(Prompt.CONNECTING, interrupt=True)
        await self._playout.start_playing(Prompt.HOLD_TONE)
        whisper_url = _with_summary(whisper, await brief) if whisper and brief else None
        try:
            await self._redirect(
                self._settings.twilio,
                self._record.call_sid,
                number=self.number,
                whisper_url=whisper_url,
            )
        except NOT_REDIRECTED as error:
            logger.error(f"Transfer to {mask(self.number)} failed: {describe_rest_error(error)}")
            await self._playout.play(Prompt.CALL_BACK)
            await self._worker.queue_frame(EndWorkerFrame(reason="transfer failed"))
            return
        except Exception as error:  # The request went out; whether Twilio acted is unknown.
            logger.error(
                f"Transfer to {mask(self.number)} unconfirmed ({describe_rest_error(error)}): "
                "letting the call go without a hang-up (if it was not redirected, the "
                "stream's close ends it)"
            )
            self._serializer.release_call()
            await self._worker.queue_frame(EndWorkerFrame(reason="transfer unconfirmed"))
            return
        self._record.transfer_to = self.number
        self._serializer.release_call()
        logger.info(f"Call transferred to {mask(self.number)}")
        await self._worker.queue_frame(EndWorkerFrame(reason="transferred"))

    async def _brief(self) -> str:
        brief = await transfer_brief(self._record.transcript, settings=self._settings)
        self._record.transfer_summary = brief
        return brief


def _with_summary(url: str, summary: str) -> str:
    """The whisper Bin's URL with ``Summary`` in its query, which the Bin's {{Summary}} reads."""
    return f"{url}{'&' if '?' in url else '?'}{urlencode({'Summary': summary})}"

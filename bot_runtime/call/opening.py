"""The start of a call: the recording notice, the recording, and the greeting (or not, yet)."""

import asyncio

from loguru import logger
from pipecat.extensions.voicemail.voicemail_detector import VoicemailDetector
from pipecat.frames.frames import UserStoppedSpeakingFrame
from pipecat.processors.frame_processor import FrameDirection

from bot_runtime.call.playout import Playout
from bot_runtime.call.record import CallRecord
from bot_runtime.call.recorded_prompts import Prompt
from bot_runtime.config.settings import BotSettings
from bot_runtime.side_tasks import SideTasks
from bot_runtime.twilio import call_control
from bot_runtime.twilio.rest import REST_ERRORS, describe_rest_error


class CallOpening:
    """Opens the conversation once the stream runs.

    Inbound, the bot greets at once. Outbound, the callee answers with "Hello?"
    and talking over them sounds like a robocall: the bot waits for them, and
    greets first only if they stay silent.
    """

    def __init__(
        self,
        *,
        settings: BotSettings,
        greeting: str,
        outbound: bool,
        record: CallRecord,
        playout: Playout,
        voicemail: VoicemailDetector | None,
        tasks: SideTasks,
    ) -> None:
        self._settings = settings
        self._greeting = greeting
        self._outbound = outbound
        self._record = record
        self._playout = playout
        self._voicemail = voicemail
        self._tasks = tasks
        self._outbound_greeting: asyncio.Task | None = None

    async def open(self) -> None:
        if self._settings.record_calls:
            self._tasks.start(self._record_then_greet())
        else:
            await self._greet()

    def caller_spoke(self) -> None:
        """The callee spoke first: the conversation is open, no greeting needed."""
        if self._outbound_greeting and not self._outbound_greeting.done():
            self._outbound_greeting.cancel()

    async def _record_then_greet(self) -> None:
        if self._settings.recording_notice:
            await self._playout.play(Prompt.RECORDING_NOTICE)
        try:
            self._record.recording_sid = await call_control.start_recording(
                self._settings.twilio,
                self._record.call_sid,
                status_callback=self._settings.recording_status_callback,
            )
            logger.info(f"Recording started: {self._record.recording_sid}")
        except REST_ERRORS as error:
            logger.error(f"Recording could not start: {describe_rest_error(error)}")
        await self._greet()

    async def _greet(self) -> None:
        if self._outbound:
            self._outbound_greeting = self._tasks.start(self._greet_unless_callee_speaks())
        else:
            await self._playout.say(self._greeting)

    async def _greet_unless_callee_speaks(self) -> None:
        await asyncio.sleep(self._settings.outbound_greeting_delay_secs)
        logger.info("Callee silent after answering: greeting first")
        await self._playout.say(self._greeting)
        if self._voicemail:
            # Machines talk at once; silence is a person waiting. The detector decides on a
            # pause after speech, so hand it that pause (its "no answer" verdict is a person).
            await self._voicemail.queue_frame(UserStoppedSpeakingFrame(), FrameDirection.UPSTREAM)

"""One phone call's pipeline: services, turn taking, greeting, call control, ending, records."""

import asyncio
import itertools
from collections.abc import Awaitable

from fastapi import WebSocket
from loguru import logger
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.classifiers.llm.classifier import LLMClassifier
from pipecat.extensions.voicemail.voicemail_detector import VoicemailDetector
from pipecat.frames.frames import (
    EndWorkerFrame,
    ErrorFrame,
    Frame,
    FunctionCallResultProperties,
    LLMMessagesAppendFrame,
    LLMRunFrame,
    OutputTransportMessageFrame,
    TTSSpeakFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.observers.user_bot_latency_observer import UserBotLatencyObserver
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
    UserTurnStoppedMessage,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import FunctionCallParams
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from pipecat.turns.user_mute.base_user_mute_strategy import BaseUserMuteStrategy
from pipecat.workers.runner import WorkerRunner

from voice_agent import call_control, turn_taking
from voice_agent.call_facts import CallFacts
from voice_agent.call_log import CallRecord
from voice_agent.config import BotSettings, TwilioSettings
from voice_agent.keypad import DTMF_PREFIX, TransferKey, keypad_to_text
from voice_agent.phone_numbers import mask
from voice_agent.prompts import Prompt, PromptPlayer
from voice_agent.services import PHONE_SAMPLE_RATE, build_llm, build_stt, build_tts
from voice_agent.twilio_stream import GuardedTwilioSerializer, StreamStart

# How long a goodbye or prompt may take to play before the call moves on anyway.
PLAYOUT_TIMEOUT_SECS = 20.0
# After a failed reply is retried, how long the retry may take to be heard: the caller
# must hear something (the reply, or the fallback message) within 3 s of a failure.
RETRY_WINDOW_SECS = 1.5
KEYPAD_INSTRUCTION = (
    f"Key presses on the caller's phone keypad reach you as messages starting with "
    f"'{DTMF_PREFIX.strip()}', for example an order number followed by the pound key."
)


def build_serializer(start: StreamStart, twilio: TwilioSettings) -> GuardedTwilioSerializer:
    """The stream's serializer, with auto hang-up when there are credentials to hang up with.

    Without credentials the call still runs (a missing secret must not cost the
    caller the call), but ending the pipeline cannot end the phone call, so say
    once, clearly, what is missing.
    """
    auto_hang_up = not twilio.missing_credentials
    if not auto_hang_up:
        logger.warning(
            "No auto hang-up on this call: set "
            + " and ".join(twilio.missing_credentials)
            + " so the bot can end calls through Twilio's REST API"
        )
    return GuardedTwilioSerializer(
        start.stream_sid,
        call_sid=start.call_sid,
        account_sid=twilio.account_sid,
        auth_token=twilio.auth_token,
        api_key_sid=twilio.api_key,
        api_key_secret=twilio.api_secret,
        region=twilio.region,
        edge=twilio.edge,
        base_url=twilio.api_base_url,
        params=GuardedTwilioSerializer.InputParams(auto_hang_up=auto_hang_up),
    )


class MuteWhileEnding(BaseUserMuteStrategy):
    """Mutes the caller once the call has started to end (goodbye, transfer, fallback)."""

    def __init__(self, record: CallRecord):
        super().__init__()
        self._record = record

    async def process_frame(self, frame: Frame) -> bool:
        return self._record.ended_by is not None


class PhoneCall:
    """A conversation on one Twilio Media Stream, from greeting to hang-up."""

    def __init__(
        self,
        websocket: WebSocket,
        *,
        start: StreamStart,
        facts: CallFacts,
        settings: BotSettings,
    ):
        self.record = CallRecord(start.call_sid)
        self._settings = settings
        self._facts = facts
        self._silence_prompts = 0
        self._outbound_greeting: asyncio.Task | None = None
        self._side_tasks: list[asyncio.Task] = []
        self._mark_numbers = itertools.count(1)
        self._reply_watchdog: asyncio.Task | None = None
        self._failures = 0

        self.serializer = build_serializer(start, settings.twilio)
        self.transport = FastAPIWebsocketTransport(
            websocket,
            FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                serializer=self.serializer,
                session_timeout=int(settings.max_call_secs),
                # Endings wait for Twilio's mark echo, which proves the goodbye was heard.
                audio_out_end_silence_secs=0,
                # The bot's audio goes to Twilio in 80 ms media messages, not pipecat's
                # 40 ms: half the messages for the same audio cut a call's CPU by about 6%;
                # a barge-in still stops the audio at once (`clear` empties Twilio's buffer).
                audio_out_10ms_chunks=8,
            ),
        )
        self.context = LLMContext(tools=ToolsSchema(standard_tools=self._tools()))
        self.user_turns, self.assistant_turns = LLMContextAggregatorPair(
            self.context,
            user_params=LLMUserAggregatorParams(
                **turn_taking.turn_detection(
                    start_secs=settings.speech_start_secs, stop_secs=settings.turn_end_silence_secs
                ),
                user_idle_timeout=settings.silence_timeout_secs,
                # Once the call is ending, the caller's voice must not interrupt (and
                # `clear`) the goodbye or the transfer notice.
                user_mute_strategies=[MuteWhileEnding(self.record)],
            ),
        )
        self.prompts = PromptPlayer()
        self.stt = build_stt(settings)
        self.tts = build_tts(settings)
        system_instruction = (
            f"{settings.system_prompt}\n{KEYPAD_INSTRUCTION}\n\nAbout this call:\n"
            f"{facts.describe()}"
        )
        self.llm = build_llm(settings, system_instruction=system_instruction)
        # On outbound calls, listen first: a person, or a voicemail greeting? Until that is
        # decided, the detector's gate holds the bot's speech back.
        self.voicemail = (
            VoicemailDetector(classifier=LLMClassifier(llm=self.llm)) if facts.outbound else None
        )
        pipeline = Pipeline(
            [
                self.transport.input(),
                self.stt,
                *([self.voicemail.detector()] if self.voicemail else []),
                TransferKey(self._on_transfer_key),
                keypad_to_text(),
                self.user_turns,
                turn_taking.CallerAudioEnd(),
                self.llm,
                self.tts,
                *([self.voicemail.gate()] if self.voicemail else []),
                self.prompts,
                self.transport.output(),
                self.assistant_turns,
            ]
        )
        self.latency = UserBotLatencyObserver()
        self.worker = PipelineWorker(
            pipeline,
            params=PipelineParams(
                audio_in_sample_rate=PHONE_SAMPLE_RATE,
                audio_out_sample_rate=PHONE_SAMPLE_RATE,
                enable_metrics=True,
            ),
            enable_rtvi=False,  # Twilio rejects any JSON that is not Media Streams (error 31951).
            # Two observers that would see every frame: nothing here uses turn tracking, and
            # silence and MAX_CALL_SECS end idle calls.
            enable_turn_tracking=False,
            idle_timeout_secs=None,
            observers=[self.latency],
        )
        self._register_event_handlers()

    async def run(self, *, handle_sigint: bool = False) -> None:
        """Run the conversation until the call ends, then log its summary."""
        runner = WorkerRunner(handle_sigint=handle_sigint)
        await runner.add_workers(self.worker)
        try:
            await runner.run()
        finally:
            for task in self._side_tasks:
                task.cancel()
            logger.info(self.record.summary())

    def learn_caller_numbers(self, lookup: Awaitable[tuple[str | None, str | None] | None]) -> None:
        """Tell the LLM the caller's numbers once ``lookup`` finds them, without waiting for it."""
        self._start_side_task(self._add_looked_up_numbers(lookup))

    # --- set-up -----------------------------------------------------------------------

    def _tools(self) -> list[FunctionSchema]:
        tools = [
            FunctionSchema(
                name="end_call",
                description=(
                    "End the phone call. Call it when the caller says goodbye or has nothing "
                    "more to ask. It says goodbye for you, so do not say goodbye yourself."
                ),
                properties={},
                required=[],
                handler=self._on_end_call_tool,
            )
        ]
        if self._settings.transfer_number:
            tools.append(
                FunctionSchema(
                    name="transfer_call",
                    description=(
                        "Transfer the caller to a human colleague. Call it when the caller "
                        "asks for a person, or when you cannot help them."
                    ),
                    properties={},
                    required=[],
                    handler=self._on_transfer_tool,
                )
            )
        return tools

    def _register_event_handlers(self) -> None:
        self.transport.add_event_handler("on_client_connected", self._on_connected)
        self.transport.add_event_handler("on_client_disconnected", self._on_caller_hung_up)
        self.transport.add_event_handler("on_session_timeout", self._on_max_duration)
        self.user_turns.add_event_handler("on_user_turn_started", self._on_caller_spoke)
        self.user_turns.add_event_handler("on_user_turn_stopped", self._on_caller_turn_ended)
        self.user_turns.add_event_handler("on_user_turn_idle", self._on_caller_silent)
        self.worker.add_event_handler("on_pipeline_error", self._on_pipeline_error)
        if self.voicemail:
            self.voicemail.add_event_handler("on_voicemail_detected", self._on_voicemail)
            self.voicemail.add_event_handler("on_conversation_detected", self._on_person)
        self.latency.add_event_handler("on_first_bot_speech_latency", self._on_first_speech)
        self.latency.add_event_handler("on_latency_measured", self._on_turn_latency)

    # --- the start of the call ----------------------------------------------------------

    async def _on_connected(self, _transport, _websocket) -> None:
        if self._settings.record_calls:
            self._start_side_task(self._record_then_open())
        else:
            await self._open_conversation()

    async def _record_then_open(self) -> None:
        if self._settings.recording_notice:
            await self._play_and_wait(Prompt.RECORDING_NOTICE)
        try:
            self.record.recording_sid = await call_control.start_recording(
                self._settings.twilio,
                self.record.call_sid,
                status_callback=self._settings.recording_status_callback,
            )
            logger.info(f"Recording started: {self.record.recording_sid}")
        except call_control.REST_ERRORS as error:
            logger.error(f"Recording could not start: {call_control.describe(error)}")
        await self._open_conversation()

    async def _open_conversation(self) -> None:
        if self._facts.outbound:
            # The callee answers with "Hello?"; talking over them sounds like a robocall.
            self._outbound_greeting = self._start_side_task(self._greet_unless_callee_speaks())
        else:
            await self._say(self._settings.greeting)

    async def _greet_unless_callee_speaks(self) -> None:
        await asyncio.sleep(self._settings.outbound_greeting_delay_secs)
        logger.info("Callee silent after answering: greeting first")
        await self._say(self._settings.greeting)
        if self.voicemail:
            # Machines talk at once; silence is a person waiting. The detector decides on a
            # pause after speech, so hand it that pause (its "no answer" verdict is a person).
            await self.voicemail.queue_frame(UserStoppedSpeakingFrame(), FrameDirection.UPSTREAM)

    # --- during the call ----------------------------------------------------------------

    async def _on_caller_spoke(self, *_args) -> None:
        self._silence_prompts = 0
        self._stop_reply_watchdog()
        if self._outbound_greeting and not self._outbound_greeting.done():
            self._outbound_greeting.cancel()

    async def _on_caller_silent(self, *_args) -> None:
        self._silence_prompts += 1
        if self._silence_prompts == 1:
            await self._say(self._settings.silence_prompt)
        else:
            await self._say_goodbye_and_end("caller silent")

    async def _on_first_speech(self, _observer, latency: float) -> None:
        self.record.greeting_latency_secs = latency
        logger.info(f"First bot speech {latency * 1000:.0f} ms after the stream started")

    async def _on_turn_latency(self, _observer, latency: float) -> None:
        self.record.add_turn_latency(latency)
        self._stop_reply_watchdog()
        self._failures = 0  # The bot was heard again: whatever failed has recovered.

    # --- no dead air --------------------------------------------------------------------

    async def _on_caller_turn_ended(self, _aggregator, _strategy, message: UserTurnStoppedMessage):
        if message.content:
            self._start_reply_watchdog(self._settings.response_timeout_secs)

    def _start_reply_watchdog(self, secs: float) -> None:
        self._stop_reply_watchdog()
        self._reply_watchdog = self._start_side_task(self._expect_reply_within(secs))

    def _stop_reply_watchdog(self) -> None:
        if self._reply_watchdog and not self._reply_watchdog.done():
            self._reply_watchdog.cancel()

    async def _expect_reply_within(self, secs: float) -> None:
        await asyncio.sleep(secs)
        self._fall_back(f"no reply within {secs:g} s")

    async def _on_pipeline_error(self, _worker, frame: ErrorFrame) -> None:
        service = {self.stt: "speech-to-text", self.llm: "LLM", self.tts: "text-to-speech"}.get(
            frame.processor
        )
        if service is None or self.record.ended_by is not None:
            return
        self._failures += 1
        logger.warning(f"{service} failed: {frame.error}")
        if service == "speech-to-text":
            # Deepgram waits at least 4 s before reconnecting: too long to leave a caller
            # unheard, and without it nothing the caller says gets through.
            self._fall_back(f"{service} failed: {frame.error}")
        elif self._failures > 1:
            self._fall_back(f"{service} failed twice: {frame.error}")
        else:
            # A dropped connection or an error reply is often transient: ask for the reply
            # again, once, and fall back if it is not heard soon.
            logger.info("Retrying the reply once")
            await self.worker.queue_frame(LLMRunFrame())
            self._start_reply_watchdog(RETRY_WINDOW_SECS)

    def _fall_back(self, cause: str) -> None:
        """Play the pre-recorded apology, then hand the caller to a person or hang up."""
        if not self.record.end(f"service failure ({cause})"):
            return
        logger.error(f"Falling back: {cause}")
        self._start_side_task(self._apologise_and_leave())

    async def _apologise_and_leave(self) -> None:
        await self._play_and_wait(Prompt.FALLBACK, interrupt=True)
        if self._settings.transfer_number:
            await self._hand_over()
        else:
            await self._play_and_wait(Prompt.CALL_BACK)
            await self.worker.queue_frame(EndWorkerFrame(reason="service failure"))

    async def _add_looked_up_numbers(
        self, lookup: Awaitable[tuple[str | None, str | None] | None]
    ) -> None:
        numbers = await lookup
        if numbers is None:
            return
        from_number, to_number = numbers
        fact = (
            f"Looked up for this call: caller number (From) {from_number}, "
            f"called number (To) {to_number}."
        )
        await self.worker.queue_frame(
            LLMMessagesAppendFrame(messages=[{"role": "system", "content": fact}], run_llm=False)
        )

    # --- the end of the call ------------------------------------------------------------

    async def _on_end_call_tool(self, params: FunctionCallParams) -> None:
        await params.result_callback(
            {"status": "ending the call"}, properties=FunctionCallResultProperties(run_llm=False)
        )
        await self._say_goodbye_and_end("end_call tool")

    async def _on_transfer_tool(self, params: FunctionCallParams) -> None:
        await params.result_callback(
            {"status": "transferring"}, properties=FunctionCallResultProperties(run_llm=False)
        )
        self._transfer("transfer_call tool")

    async def _on_transfer_key(self) -> None:
        if self._settings.transfer_number:
            self._transfer("keypad 0")

    async def _on_max_duration(self, _transport, _websocket) -> None:
        await self._say_goodbye_and_end(f"maximum duration {self._settings.max_call_secs:g} s")

    async def _on_caller_hung_up(self, _transport, _websocket) -> None:
        # Nobody is listening any more: stop at once, and the serializer sends no hang-up
        # because the socket is already closed.
        self.record.end("caller hung up")
        await self.worker.cancel(reason="caller hung up")

    async def _say_goodbye_and_end(self, reason: str) -> None:
        """Say goodbye, and end the call once the caller has heard it (never cut it off)."""
        if self.record.end(reason):
            self._start_side_task(self._end_after_goodbye(reason))

    async def _end_after_goodbye(self, reason: str) -> None:
        mark_name = f"goodbye-{self.record.call_sid}"
        await self.worker.queue_frames(
            [self._last_words(self._settings.goodbye), self._mark(mark_name)]
        )
        await self._end_when_heard(mark_name, reason)

    async def _end_when_heard(self, mark_name: str, reason: str) -> None:
        await self._wait_until_heard(mark_name)
        await self.worker.queue_frame(EndWorkerFrame(reason=reason))

    async def _on_person(self, _detector) -> None:
        self.record.answered_by = "person"
        logger.info("Outbound call answered by a person")

    async def _on_voicemail(self, detector: VoicemailDetector) -> None:
        """Leave the message after the greeting (the detector waits for it), then hang up."""
        self.record.answered_by = "machine"
        if not self.record.end("left a voicemail"):
            return
        message = self._facts.extra.get("voicemail_message") or self._settings.voicemail_message
        mark_name = f"voicemail-{self.record.call_sid}"
        # Past a voicemail verdict the detector lets nothing through from upstream, so the
        # message starts from the detector itself.
        await detector.push_frame(self._last_words(message))
        await detector.push_frame(self._mark(mark_name))
        self._start_side_task(self._end_when_heard(mark_name, "left a voicemail"))

    def _transfer(self, reason: str) -> None:
        if self.record.end(f"transferred ({reason})"):
            self._start_side_task(self._hand_over())

    async def _hand_over(self) -> None:
        """Tell the caller, then redirect the call to TRANSFER_NUMBER with <Dial>.

        The redirect ends this media stream; the serializer must then leave the
        call alone, since hanging up would drop the caller from the new leg.
        """
        number = self._settings.transfer_number
        assert number is not None
        await self._play_and_wait(Prompt.CONNECTING, interrupt=True)
        await self.prompts.play(Prompt.HOLD_TONE)
        try:
            await call_control.transfer(self._settings.twilio, self.record.call_sid, to=number)
        except call_control.REST_ERRORS as error:
            logger.error(f"Transfer to {mask(number)} failed: {call_control.describe(error)}")
            await self._play_and_wait(Prompt.CALL_BACK)
            await self.worker.queue_frame(EndWorkerFrame(reason="transfer failed"))
            return
        self.serializer.release_call()
        logger.info(f"Call transferred to {mask(number)}")
        await self.worker.queue_frame(EndWorkerFrame(reason="transferred"))

    # --- mechanics ----------------------------------------------------------------------

    async def _say(self, text: str) -> None:
        await self.worker.queue_frame(TTSSpeakFrame(text))

    @staticmethod
    def _last_words(text: str) -> TTSSpeakFrame:
        """Speech that ends the call: nothing the caller says may cut it short."""
        frame = TTSSpeakFrame(text)
        frame.interruptible = False
        return frame

    def _mark(self, name: str) -> OutputTransportMessageFrame:
        """A Twilio mark to queue after some audio; its echo means the caller heard it."""
        frame = OutputTransportMessageFrame(message=self.serializer.mark_message(name))
        frame.interruptible = False
        return frame

    async def _wait_until_heard(self, mark_name: str) -> None:
        # pipecat sends audio faster than real time and Twilio buffers it, so "sent" is not
        # "heard": only the echo of a mark queued after the audio says the caller heard it.
        heard = await self.serializer.wait_for_mark(mark_name, timeout_secs=PLAYOUT_TIMEOUT_SECS)
        if not heard:
            logger.warning(f"Twilio did not confirm '{mark_name}' was played; going on anyway")

    async def _play_and_wait(self, prompt: Prompt, *, interrupt: bool = False) -> None:
        mark_name = f"{prompt.value}-{next(self._mark_numbers)}"
        await self.prompts.play(prompt, then=self._mark(mark_name), interrupt=interrupt)
        await self._wait_until_heard(mark_name)

    def _start_side_task(self, work: Awaitable[None]) -> asyncio.Task:
        task = asyncio.ensure_future(work)
        task.add_done_callback(_log_failure)
        self._side_tasks = [t for t in self._side_tasks if not t.done()] + [task]
        return task


def _log_failure(task: asyncio.Task) -> None:
    """Side tasks must never end a call, but their failures must not vanish either."""
    if not task.cancelled() and task.exception() is not None:
        logger.opt(exception=task.exception()).error("A side task of the call failed")

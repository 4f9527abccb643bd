"""One phone call: its parts put together, the pipeline's events sent to them, run to the end."""

import asyncio
import time
from collections.abc import Awaitable

from fastapi import WebSocket
from loguru import logger
from pipecat.evals.serializer import EvalConnectionFlags
from pipecat.extensions.voicemail.voicemail_detector import VoicemailDetector
from pipecat.frames.frames import ErrorFrame
from pipecat.processors.aggregators.llm_response_universal import (
    AssistantTurnStoppedMessage,
    UserTurnStoppedMessage,
)
from pipecat.workers.runner import WorkerRunner

from bot_runtime import tracing
from bot_runtime.after_call.deliveries import send_after_the_call
from bot_runtime.call.ending import CallEnding, EndedReason, Goodbyes
from bot_runtime.call.eval_line import no_redirect
from bot_runtime.call.facts import CallFacts
from bot_runtime.call.language_switch import detects
from bot_runtime.call.loop_lag import stop_watching, watch_loop_lag
from bot_runtime.call.no_dead_air import NoDeadAir
from bot_runtime.call.opening import CallOpening
from bot_runtime.call.pipeline import build_call_pipeline
from bot_runtime.call.playout import Playout
from bot_runtime.call.record import CallRecord
from bot_runtime.call.tool_calls import business_tool_schemas
from bot_runtime.call.transfer import Redirect, Transfer
from bot_runtime.config.languages import Language
from bot_runtime.config.settings import LOCAL, BotSettings
from bot_runtime.phone_line import SILENCE_PROMPT_MARK
from bot_runtime.services.deepgram import DeepgramSTT
from bot_runtime.services.watch import LLM, TTS, ServiceWatch
from bot_runtime.side_tasks import SideTasks
from bot_runtime.tools.builtin import call_tools
from bot_runtime.twilio.call_control import CallNotLive, redirect_to
from bot_runtime.twilio.stream import StreamStart

# How the log says what chose the call's language.
CHOSEN_BY = {
    "parameter": "the language parameter",
    "called number": "the number (agent file's [numbers])",
    "default": "default",
}


class PhoneCall:
    """A conversation on one Twilio Media Stream, from greeting to hang-up.

    The call owns its parts: the pipeline (pipeline.py), the opening (opening.py),
    the endings and their latch (ending.py, transfer.py), the no-dead-air watch
    (no_dead_air.py) and the record of what happened (record.py), all beside it in
    call/. This class wires the pipeline's events to them. With ``eval_flags`` the
    same call runs on pipecat's eval harness instead (eval_line.py), and a transfer
    stops short of Twilio.
    """

    def __init__(
        self,
        websocket: WebSocket,
        *,
        start: StreamStart,
        facts: CallFacts,
        settings: BotSettings,
        eval_flags: EvalConnectionFlags | None = None,
    ):
        # First: building the call and its first work (the caller lookup) count as its own.
        self.loop_lag = watch_loop_lag()
        self._settings = settings
        self._facts = facts
        self._start = start
        self._silence_prompts = 0
        self._caller_turn_at = 0.0
        self._agent_turn_at = 0.0
        # What the bot says from here on is read from the language when said: public, for
        # a call that changes language mid-call.
        self.language, chosen_by = settings.languages.choose(
            parameter=facts.language, called_number=facts.our_number
        )
        logger.info(f"Call language: {self.language.name}, chosen by {CHOSEN_BY[chosen_by]}")
        self.record = CallRecord(
            info=facts.info(start.call_sid, start.custom_parameters),
            stream_sid=start.stream_sid,
            language=self.language.code,
            language_chosen_by=chosen_by,
        )
        self.ending = CallEnding()
        # Set once Twilio has confirmed the call (or cannot be asked); the caller's turns
        # wait for it before the LLM. Calls that are not checked start confirmed.
        self.confirmed = asyncio.Event()
        self.confirmed.set()
        self.record_delivery: asyncio.Task | None = None  # Once the call has ended.
        self.tasks = SideTasks()
        self.watch = ServiceWatch(
            self.tasks,
            watched={
                service
                for service, provider in (
                    (LLM, settings.llm_provider),
                    (TTS, settings.tts_provider),
                )
                if provider != LOCAL
            },
        )
        tools = tracing.traced_tools(
            call_tools(
                end_call=self._say_goodbye,
                transfer_call=self._transfer if settings.transfer_number else None,
                business=business_tool_schemas(
                    [*settings.agent.tools, *settings.agent.python_tools],
                    call_info=lambda: self.record.info,  # The numbers may be looked up later.
                    record=self.record,
                ),
            )
        )
        self.pipeline = build_call_pipeline(
            websocket,
            start=start,
            facts=facts,
            settings=settings,
            language=self.language,
            tools=tools,
            ending=self.ending,
            on_transfer_key=self._on_transfer_key,
            on_key=self.record.key_pressed,
            watch=self.watch,
            confirmed=self.confirmed,
            on_language_heard=(
                self._on_language_heard if detects(settings, chosen_by=chosen_by) else None
            ),
            eval_flags=eval_flags,
        )
        self.record.preemption = self.pipeline.turn_end.preemption
        self._build_parts(redirect=redirect_to if eval_flags is None else no_redirect)
        self._handle_events()

    def _build_parts(self, *, redirect: Redirect) -> None:
        """The parts that act on the running pipeline: what is heard, endings, the watch."""
        p, settings = self.pipeline, self._settings
        self.playout = Playout(worker=p.worker, serializer=p.serializer, prompts=p.prompts)
        self.transfer = Transfer(
            settings=settings,
            record=self.record,
            ending=self.ending,
            playout=self.playout,
            serializer=p.serializer,
            worker=p.worker,
            tasks=self.tasks,
            redirect=redirect,
        )
        self.goodbyes = Goodbyes(
            ending=self.ending,
            playout=self.playout,
            worker=p.worker,
            hand_over=self.transfer.hand_over if self.transfer.available else None,
            goodbye=lambda: self.language.goodbye,
            tasks=self.tasks,
        )
        self.opening = CallOpening(
            settings=settings,
            greeting=self.language.greeting,
            outbound=self._facts.outbound,
            record=self.record,
            playout=self.playout,
            voicemail=p.voicemail,
            tasks=self.tasks,
        )
        self.no_dead_air = NoDeadAir(
            llm=p.llm,
            tts=p.tts,
            stt=p.stt,
            watch=self.watch,
            worker=p.worker,
            ending=self.ending,
            goodbyes=self.goodbyes,
            record=self.record,
            promise_secs=settings.response_timeout_secs,
            language=lambda: self.language,
            tasks=self.tasks,
        )

    async def run(self, *, handle_sigint: bool = False) -> None:
        """Run the conversation until the call ends, then log its summary."""
        runner = WorkerRunner(handle_sigint=handle_sigint)
        await runner.add_workers(self.pipeline.worker)
        try:
            await runner.run()
        finally:
            self.tasks.cancel_all()
            self.record.loop_lag_secs = stop_watching(self.loop_lag)
            logger.info(self.record.summary(ended_by=self.ending.description))
            # A stream for a call Twilio does not know is no call of the business's.
            not_live = self.ending.reason == EndedReason.NOT_LIVE
            if self._settings.record_delivery is not None and not not_live:
                self.record_delivery = send_after_the_call(
                    self.record.document(self.ending), settings=self._settings
                )
        await tracing.flushed()

    def confirm_with_twilio(
        self,
        check: Awaitable[tuple[str | None, str | None] | None],
        *,
        learn_numbers: bool,
        vouched_for: str | None,
    ) -> None:
        """Run Twilio's answer about the call (``confirm_call``) beside the greeting.

        A call Twilio says is not live ends at once, with no hang-up request (there
        is nothing of ours to hang up); until the answer, the caller's turns wait
        before the LLM (``HoldUntilConfirmed``). A stream that proved itself
        otherwise (``vouched_for`` says how: the stream secret, a client on this
        machine) is an operator's test call (scripts/call.py, the softphone): it
        goes on, without the hang-up. With ``learn_numbers`` the LLM is told the
        numbers.
        """
        self.confirmed.clear()
        self.tasks.start(self._confirm(check, learn_numbers=learn_numbers, vouched_for=vouched_for))

    async def _confirm(
        self,
        check: Awaitable[tuple[str | None, str | None] | None],
        *,
        learn_numbers: bool,
        vouched_for: str | None,
    ) -> None:
        try:
            numbers = await check
        except CallNotLive as problem:
            self.pipeline.serializer.release_call()  # Nothing of ours to hang up.
            if not vouched_for:
                # The caller's turns stay held: the cancel drops them, never the LLM.
                if self.ending.begin(EndedReason.NOT_LIVE, str(problem)):
                    await self.pipeline.worker.cancel(reason=str(EndedReason.NOT_LIVE))
                return
            logger.info(f"A test call, since {vouched_for}: {problem}")
            numbers = None
        except BaseException:
            self.confirmed.set()  # Whatever broke the check must not hold the call's replies.
            raise
        self.confirmed.set()
        if learn_numbers:
            await self._add_looked_up_numbers(numbers)

    def _handle_events(self) -> None:
        p = self.pipeline
        handlers = [
            (p.transport, "on_client_connected", self._on_connected),
            (p.transport, "on_client_disconnected", self._on_caller_hung_up),
            (p.transport, "on_session_timeout", self._on_max_duration),
            (p.user_turns, "on_user_turn_started", self._on_caller_spoke),
            (p.user_turns, "on_user_turn_stopped", self._on_caller_turn_ended),
            (p.assistant_turns, "on_assistant_turn_started", self._on_agent_turn_started),
            (p.assistant_turns, "on_assistant_turn_stopped", self._on_agent_turn_ended),
            (p.user_turns, "on_user_turn_idle", self._on_caller_silent),
            (p.worker, "on_pipeline_error", self._on_pipeline_error),
            (p.latency, "on_first_bot_speech_latency", self._on_first_speech),
            (p.latency, "on_latency_measured", self._on_turn_latency),
        ]
        if p.voicemail:
            handlers += [
                (p.voicemail, "on_voicemail_detected", self._on_voicemail),
                (p.voicemail, "on_conversation_detected", self._on_person),
            ]
        handlers += [(tts, "on_tts_request", self._on_tts_request) for tts in p.tts.services]
        if isinstance(p.stt, DeepgramSTT):
            handlers.append((p.stt, "on_deaf", self.no_dead_air.stt_deaf))
        for service, pair in ((LLM, p.llm), (TTS, p.tts)):
            if pair.backup is not None:
                handlers.append(
                    (pair.node.strategy, "on_service_switched", self._switched(service))
                )
        for source, event, handler in handlers:
            source.add_event_handler(event, handler)

    # --- the pipeline's events ------------------------------------------------------------

    async def _on_connected(self, _transport, _websocket) -> None:
        await self.opening.open()

    async def _on_caller_spoke(self, *_args) -> None:
        self._caller_turn_at = self.record.secs_since_start()
        self._silence_prompts = 0
        self.opening.caller_spoke()
        self.no_dead_air.caller_is_speaking(True)

    async def _on_caller_turn_ended(self, _aggregator, _strategy, message: UserTurnStoppedMessage):
        self.no_dead_air.caller_is_speaking(False)
        if message.content:
            self.record.caller_said(message.content, at_secs=self._caller_turn_at)
            # On an outbound call nothing is owed before the voicemail detector has heard a
            # person (it holds the bot's speech until then, and a machine gets the message).
            if not self.pipeline.voicemail or self.record.answered_by == "person":
                self.no_dead_air.caller_finished_a_turn()

    async def _on_agent_turn_started(self, _aggregator) -> None:
        self._agent_turn_at = self.record.secs_since_start()

    async def _on_agent_turn_ended(self, _aggregator, message: AssistantTurnStoppedMessage):
        if message.content:
            self.record.agent_said(
                message.content, at_secs=self._agent_turn_at, interrupted=message.interrupted
            )

    def _on_language_heard(self, old: Language, new: Language) -> None:
        """The caller speaks another of the agent's languages: the rest of the call is in it."""
        self.language = new
        self.pipeline.prompts.language = new.code
        self.record.language = new.code
        self.record.language_chosen_by = "detected"
        self.record.language_switched_from = old.code
        tracing.mark_call(self._start.call_sid, {"call.language": new.code})

    async def _on_caller_silent(self, *_args) -> None:
        self._silence_prompts += 1
        if self._silence_prompts == 1:
            await self.playout.say(self.language.silence_prompt, marked_as=SILENCE_PROMPT_MARK)
        else:
            self.goodbyes.say_goodbye(EndedReason.SILENCE)

    async def _on_first_speech(self, _observer, _since_pipeline_start: float) -> None:
        # From Twilio's `start`, as the caller waits, not from the pipeline's start (which
        # leaves out building the call).
        latency = time.monotonic() - self._start.received_at
        self.record.greeting_latency_secs = latency
        logger.info(f"First bot speech {latency * 1000:.0f} ms after Twilio's start message")

    async def _on_turn_latency(self, _observer, latency: float) -> None:
        self.record.add_turn_latency(latency)
        self.no_dead_air.bot_was_heard()

    async def _on_tts_request(self, _tts, _context_id: str, text: str) -> None:
        self.watch.tts_asked(text)

    def _switched(self, service: str):
        async def handler(_strategy, _to) -> None:
            await self.no_dead_air.switched_by_itself(service)

        return handler

    async def _on_pipeline_error(self, _worker, frame: ErrorFrame) -> None:
        await self.no_dead_air.service_failed(frame)

    async def _on_transfer_key(self) -> None:
        self._transfer("keypad 0")

    async def _on_max_duration(self, _transport, _websocket) -> None:
        self.goodbyes.say_goodbye(EndedReason.MAX_DURATION, f"{self._settings.max_call_secs:g} s")

    async def _on_caller_hung_up(self, _transport, _websocket) -> None:
        await self.goodbyes.caller_hung_up()

    async def _on_person(self, _detector) -> None:
        self.record.answered_by = "person"
        logger.info("Outbound call answered by a person")

    async def _on_voicemail(self, detector: VoicemailDetector) -> None:
        self.record.answered_by = "machine"
        message = self._facts.extra.get("voicemail_message") or self.language.voicemail_message
        self.goodbyes.leave_voicemail(message, detector=detector)

    # --- actions the LLM's tools and the keypad ask for ---------------------------------

    def _say_goodbye(self, _detail: str) -> None:
        self.goodbyes.say_goodbye(EndedReason.END_CALL)

    def _transfer(self, reason: str) -> None:
        self.transfer.request(reason)

    async def _add_looked_up_numbers(self, numbers: tuple[str | None, str | None] | None) -> None:
        if numbers is None:
            return
        from_number, to_number = numbers
        self.record.learn_numbers(from_number, to_number)
        fact = (
            f"Looked up for this call: caller number (From) {from_number}, "
            f"called number (To) {to_number}."
        )
        for llm in self.pipeline.llm.services:
            llm.append_system_instruction(fact)

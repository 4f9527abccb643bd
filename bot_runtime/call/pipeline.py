"""One call's pipeline: the Twilio (or eval) transport, turn taking, the three services, prompts."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket
from loguru import logger
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.classifiers.llm.classifier import LLMClassifier
from pipecat.evals.serializer import EvalConnectionFlags
from pipecat.extensions.voicemail.voicemail_detector import VoicemailDetector
from pipecat.frames.frames import Frame, LLMContextFrame
from pipecat.observers.user_bot_latency_observer import UserBotLatencyObserver
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMAssistantAggregator,
    LLMContextAggregatorPair,
    LLMUserAggregator,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.stt_service import STTService
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from pipecat.turns.user_mute.base_user_mute_strategy import BaseUserMuteStrategy

from bot_runtime import tracing
from bot_runtime.call.ending import CallEnding
from bot_runtime.call.eval_line import EvalLineSerializer, eval_transport
from bot_runtime.call.facts import CallFacts
from bot_runtime.call.keypad import DTMF_PREFIX, TransferKey, keypad_to_text
from bot_runtime.call.language_switch import LanguageSwitch, listening_settings
from bot_runtime.call.recorded_prompts import PromptPlayer
from bot_runtime.config.languages import Language
from bot_runtime.config.settings import BotSettings, TwilioSettings
from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from bot_runtime.services import noise_filter
from bot_runtime.services.build import (
    BackedUp,
    build_llm_with_backup,
    build_stt,
    build_tts_with_backup,
)
from bot_runtime.services.watch import LLMTap, ServiceWatch, TTSTap
from bot_runtime.turns import shared_models, turn_taking
from bot_runtime.turns.speech_hold import SpeechHold
from bot_runtime.turns.turn_end import TurnEnd
from bot_runtime.twilio.call_control import CONFIRM_TIMEOUT_SECS
from bot_runtime.twilio.stream import GuardedTwilioSerializer, StreamStart

KEYPAD_INSTRUCTION = (
    f"Key presses on the caller's phone keypad reach you as messages starting with "
    f"'{DTMF_PREFIX.strip()}', for example an order number followed by the pound key."
)


@dataclass
class CallPipeline:
    """The parts of one call's pipeline that the rest of the call talks to."""

    serializer: GuardedTwilioSerializer | EvalLineSerializer
    transport: FastAPIWebsocketTransport
    user_turns: LLMUserAggregator
    assistant_turns: LLMAssistantAggregator
    turn_end: TurnEnd
    stt: STTService
    llm: BackedUp
    tts: BackedUp
    prompts: PromptPlayer
    voicemail: VoicemailDetector | None
    latency: UserBotLatencyObserver
    language_switch: LanguageSwitch | None = None
    worker: PipelineWorker = field(init=False)


def build_call_pipeline(
    websocket: WebSocket,
    *,
    start: StreamStart,
    facts: CallFacts,
    settings: BotSettings,
    language: Language,
    tools: ToolsSchema,
    ending: CallEnding,
    on_transfer_key: Callable[[], Awaitable[None]],
    on_key: Callable[[str], None],
    watch: ServiceWatch,
    confirmed: asyncio.Event,
    on_language_heard: Callable[[Language, Language], None] | None = None,
    eval_flags: EvalConnectionFlags | None = None,
) -> CallPipeline:
    """Build the call's processors and worker, speaking ``language``; services connect when
    the worker starts.

    With ``on_language_heard``, the call listens for its caller's language and may switch
    to it once (see language_switch.py), which then calls it with the old and new language.
    With ``eval_flags`` the call is on pipecat's eval harness instead of a Twilio stream:
    the same pipeline, on the harness's transport, speaking RTVI to it.
    """
    # The barge-in rules pause the bot's speech on the caller's voice; the serializer holds it.
    speech_hold = SpeechHold()
    params = _transport_params(max_call_secs=settings.max_call_secs)
    if eval_flags is None:
        serializer = build_serializer(start, settings.twilio, speech_hold=speech_hold)
        transport = FastAPIWebsocketTransport(
            websocket, FastAPIWebsocketParams(**params, serializer=serializer)
        )
    else:
        serializer = EvalLineSerializer(ending=ending, speech_hold=speech_hold)
        transport = eval_transport(websocket, eval_flags, serializer, params=params)
    user_turns, assistant_turns, turn_end = _turn_aggregators(
        settings, tools=tools, ending=ending, speech_hold=speech_hold
    )
    languages = settings.languages
    listening = listening_settings(languages) if on_language_heard else None
    stt = build_stt(settings, language=language, listening=listening)
    tts = build_tts_with_backup(settings, language=language)

    def instruction(spoken: Language) -> str:
        lines = languages.instruction(spoken)
        return system_instruction(settings.system_prompt, facts, language_lines=lines)

    llm = build_llm_with_backup(
        settings, system_instruction=instruction(language), reminder=languages.reminder(language)
    )
    language_switch = (
        LanguageSwitch(
            languages=languages,
            language=language,
            tts=tts.services,
            llm=llm.services,
            instruction=instruction,
            on_switch=on_language_heard,
        )
        if on_language_heard
        else None
    )
    # On outbound calls, listen first: a person, or a voicemail greeting? Until that is
    # decided, the detector's gate holds the bot's speech back.
    voicemail = (
        VoicemailDetector(classifier=LLMClassifier(llm=llm.primary)) if facts.outbound else None
    )
    parts = CallPipeline(
        serializer=serializer,
        transport=transport,
        user_turns=user_turns,
        assistant_turns=assistant_turns,
        turn_end=turn_end,
        stt=stt,
        llm=llm,
        tts=tts,
        prompts=PromptPlayer(language=language.code),
        language_switch=language_switch,
        voicemail=voicemail,
        latency=UserBotLatencyObserver(),
    )
    keypad = TransferKey(on_transfer_key, on_key=on_key)
    pipeline = _pipeline(parts, keypad=keypad, watch=watch, confirmed=confirmed)
    parts.worker = _worker(
        pipeline,
        parts.latency,
        rtvi=eval_flags is not None,
        tracing=tracing.worker_options(
            call_sid=start.call_sid,
            attributes={
                "call.direction": facts.direction,
                "call.language": language.code,
                "call.eval": eval_flags is not None,
                "agent.file": settings.agent.shown_as if settings.agent.path else "",
                "call.backup_used": False,
            },
        ),
    )
    return parts


def _pipeline(
    p: CallPipeline, *, keypad: TransferKey, watch: ServiceWatch, confirmed: asyncio.Event
) -> Pipeline:
    """The processors in the order a call's frames pass them."""
    return Pipeline(
        [
            p.transport.input(),
            p.stt,
            *([p.language_switch] if p.language_switch else []),
            *([p.voicemail.detector()] if p.voicemail else []),
            keypad,
            keypad_to_text(),
            p.user_turns,
            turn_taking.CallerAudioEnd(),
            HoldUntilConfirmed(confirmed),
            p.llm.node,
            LLMTap(watch),
            p.tts.node,
            TTSTap(watch),
            *([p.voicemail.gate()] if p.voicemail else []),
            p.prompts,
            p.transport.output(),
            p.assistant_turns,
        ]
    )


def system_instruction(prompt: str, facts: CallFacts, *, language_lines: str | None) -> str:
    """The LLM's instruction for this call: the prompt, the keypad, the call's facts, and
    the language to speak (``language_lines``; None when the agent declares no languages).

    The language comes last, after the facts, which may be in another language.
    """
    instruction = f"{prompt}\n{KEYPAD_INSTRUCTION}\n\nAbout this call:\n{facts.describe()}"
    return f"{instruction}\n\n{language_lines}" if language_lines else instruction


def build_serializer(
    start: StreamStart, twilio: TwilioSettings, *, speech_hold: SpeechHold
) -> GuardedTwilioSerializer:
    """The stream's serializer, with auto hang-up when there are credentials to hang up with.

    Without credentials the call still runs (a missing secret must not cost the
    caller the call), but ending the pipeline cannot end the phone call, so say
    once, clearly, what is missing.
    """
    auto_hang_up = not twilio.missing_credentials
    if not auto_hang_up and not start.local_test:  # A local test call has no Twilio behind it.
        logger.warning(
            "No auto hang-up on this call: set "
            + " and ".join(twilio.missing_credentials)
            + " so the bot can end calls through Twilio's REST API"
        )
    return GuardedTwilioSerializer(
        start.stream_sid,
        speech_hold=speech_hold,
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


def _transport_params(*, max_call_secs: float) -> dict[str, Any]:
    """The transport's parameters but its serializer: a Twilio stream's, and an eval's too."""
    return {
        "audio_in_enabled": True,
        # Pipecat Cloud's Krisp VIVA, where the platform provides it (None elsewhere).
        "audio_in_filter": noise_filter.caller_audio_filter(),
        "audio_out_enabled": True,
        "session_timeout": int(max_call_secs),
        # Endings wait for Twilio's mark echo, which proves the goodbye was heard.
        "audio_out_end_silence_secs": 0,
        # The bot's audio goes to Twilio in 40 ms media messages (pipecat's default).
        # Twilio holds about one message ahead, and a pause for the caller's voice
        # (speech_hold.py) lets that play out: 80 ms messages saved some CPU but left
        # the bot audible longer when a caller barged in (docs/performance.md).
        "audio_out_10ms_chunks": 4,
    }


def _worker(
    pipeline: Pipeline, latency: UserBotLatencyObserver, *, rtvi: bool, tracing: dict[str, Any]
) -> PipelineWorker:
    """The call's worker; ``tracing``: the options that trace it (tracing.worker_options)."""
    return PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=PHONE_SAMPLE_RATE,
            audio_out_sample_rate=PHONE_SAMPLE_RATE,
            enable_metrics=True,
        ),
        # Twilio rejects any JSON that is not Media Streams (error 31951); the eval harness
        # speaks RTVI: it waits for bot-ready and watches the bot's RTVI events.
        enable_rtvi=rtvi,
        idle_timeout_secs=None,
        observers=[latency],
        # Two observers that would see every frame: silence and MAX_CALL_SECS end idle calls,
        # and only tracing's turn spans use turn tracking (its options turn it on).
        **({"enable_turn_tracking": False} | tracing),
    )


def _turn_aggregators(
    settings: BotSettings, *, tools: ToolsSchema, ending: CallEnding, speech_hold: SpeechHold
) -> tuple[LLMUserAggregator, LLMAssistantAggregator, TurnEnd]:
    detection = turn_taking.turn_detection(
        start_secs=settings.speech_start_secs,
        stop_secs=settings.turn_end_silence_secs,
        preemptive=settings.preemptive_replies,
        speech_hold=speech_hold,
        reply_due_secs=settings.response_timeout_secs,
        barge_in_level_db=settings.barge_in_level_db,
        barge_in_min_words=settings.barge_in_min_words,
    )
    user, assistant = LLMContextAggregatorPair(
        LLMContext(tools=tools),
        user_params=LLMUserAggregatorParams(
            **detection,
            # A turn with no words (a laugh, a bang the VAD took for speech) gets no answer:
            # pipecat's default would run the LLM again and answer the previous turn twice.
            empty_user_turn=None,
            # A turn with words ends after this much of the caller's quiet (no voice, no new
            # words), whatever the models made of it: smart-turn's own longest wait for a
            # line that sounds unfinished, rather than pipecat's 5 s.
            user_turn_stop_timeout=shared_models.TURN_END_FALLBACK_SECS,
            user_idle_timeout=settings.silence_timeout_secs,
            # Once the call is ending, the caller's voice must not interrupt (and
            # `clear`) the goodbye or the transfer notice.
            user_mute_strategies=[MuteWhileEnding(ending, speech_hold=speech_hold)],
        ),
    )
    (turn_end,) = detection["user_turn_strategies"].stop or []
    assert isinstance(turn_end, TurnEnd)
    turn_end.read_turn_text_from(user.aggregation_string)
    return user, assistant, turn_end


class MuteWhileEnding(BaseUserMuteStrategy):
    """Mutes the caller once the call has begun to end (goodbye, transfer, fallback).

    The caller's voice must not interrupt (and `clear`) the last words, nor keep them
    paused: a pause for the caller's voice (``speech_hold``) ends with the muting, since
    a muted caller's words can no longer end it.
    """

    def __init__(self, ending: CallEnding, *, speech_hold: SpeechHold):
        super().__init__()
        self._ending = ending
        self._speech_hold = speech_hold

    async def process_frame(self, frame: Frame) -> bool:
        if self._ending.begun and self._speech_hold.held_secs:
            self._speech_hold.release()
        return self._ending.begun


class HoldUntilConfirmed(FrameProcessor):
    """Holds the caller's turns back from the LLM until Twilio has confirmed the call.

    A stream naming a call Twilio does not know must cost no LLM request, and the
    caller may speak before Twilio answers. The greeting needs no LLM and plays
    meanwhile; the caller's words are kept, only their reply waits, and for at most
    ``CONFIRM_TIMEOUT_SECS`` (the check's own bound). A call that is not live is
    cancelled while its turn waits here.
    """

    def __init__(self, confirmed: asyncio.Event):
        super().__init__()
        self._confirmed = confirmed

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame) and not self._confirmed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._confirmed.wait(), CONFIRM_TIMEOUT_SECS)
        await self.push_frame(frame, direction)

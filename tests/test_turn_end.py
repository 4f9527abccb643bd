"""When a caller's turn ends: Deepgram's empty Finalize answer, a goodbye, preemptive replies."""

import asyncio

import pytest
from pipecat.audio.turn.base_turn_analyzer import BaseTurnAnalyzer, BaseTurnParams, EndOfTurnState
from pipecat.clocks.system_clock import SystemClock
from pipecat.frames.frames import (
    InputAudioRawFrame,
    LLMContextFrame,
    STTMetadataFrame,
    TranscriptionFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.worker import PipelineParams
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMUserAggregator,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.utils.asyncio.task_manager import TaskManager
from pipecat.utils.time import time_now_iso8601

from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from bot_runtime.services.deepgram import DeepgramSTT
from bot_runtime.services.first_phrase import FirstPhraseAggregator
from bot_runtime.turns import turn_taking
from bot_runtime.turns.speech_hold import SpeechHold
from bot_runtime.turns.turn_end import TranscriptCompleteFrame, TurnEnd
from testkit.bot_server import start_bot_server
from testkit.caller_audio import AUDIO, Line
from testkit.fakes import FakeDeepgram, Reply
from testkit.phone_audio import pcm16_bytes, read_wav_8k
from testkit.scenario import (
    TWILIO_CREDENTIALS,
    answered_call,
    bot_env,
    call_record,
    hear_greeting,
    records_env,
    user_text,
)

FRAME_BYTES = pcm16_bytes(0.02)
PHONE = PipelineParams(audio_in_sample_rate=PHONE_SAMPLE_RATE)


def audio_frames(pcm: bytes) -> list[InputAudioRawFrame]:
    return [
        InputAudioRawFrame(pcm[i : i + FRAME_BYTES], PHONE_SAMPLE_RATE, 1)
        for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)
    ]


@pytest.mark.parametrize("endpointing", [None, False], ids=["deepgram-default", "no-endpointing"])
async def test_an_empty_finalize_answer_after_a_final_says_the_transcript_is_complete(endpointing):
    """With Deepgram's default endpointing the words come final before the VAD's stop, and
    the Finalize it sends then is answered empty: the bot must take that as 'all in'."""
    speech = read_wav_8k(AUDIO / "saturday.wav")
    async with FakeDeepgram(transcripts=["What time do you open on Saturday?"]) as fake:
        stt = DeepgramSTT(
            api_key=fake.api_key,
            base_url=fake.base_url,
            settings=DeepgramSTT.Settings(
                model="nova-3-general", language="en", endpointing=endpointing
            ),
        )
        down, _ = await run_test(
            stt,
            frames_to_send=[
                *audio_frames(speech + bytes(pcm16_bytes(0.3))),
                SleepFrame(0.5),  # Endpointing's final, if any, arrives meanwhile.
                VADUserStoppedSpeakingFrame(stop_secs=0.2),
                SleepFrame(0.5),
            ],
            pipeline_params=PHONE,
        )
    said = [f for f in down if isinstance(f, (TranscriptionFrame, TranscriptCompleteFrame))]
    if endpointing is None:
        assert (
            fake.results[-1]["from_finalize"]
            and not fake.results[-1]["channel"]["alternatives"][0]["transcript"]
        )
        assert [type(f) for f in said] == [TranscriptionFrame, TranscriptCompleteFrame]
        assert not said[0].finalized  # pipecat alone would wait out its safety net
    else:
        # The Finalize answer carries the words: pipecat marks them final itself.
        assert [type(f) for f in said] == [TranscriptionFrame]
        assert said[0].finalized


@pytest.mark.parametrize("complete", [True, False], ids=["complete", "no-answer-yet"])
async def test_the_turn_ends_on_a_complete_transcript_without_the_safety_net(complete):
    """The stop strategy on the caller's real audio: once smart-turn says done and the
    transcript is complete, the LLM is asked, with the STT's safety net far away (30 s)."""
    detection = turn_taking.turn_detection(
        reply_due_secs=3.0,
        start_secs=0.1,
        stop_secs=0.25,
        preemptive=False,
        speech_hold=SpeechHold(),
    )
    user = LLMUserAggregator(LLMContext(), params=LLMUserAggregatorParams(**detection))
    line = Line.recorded("saturday")
    words_end = pcm16_bytes(line.words_end_secs) // FRAME_BYTES * FRAME_BYTES
    heard = TranscriptionFrame(line_text := "What time do you open on Saturday?", "", "")
    heard.timestamp = time_now_iso8601()
    down, _ = await run_test(
        user,
        frames_to_send=[
            STTMetadataFrame(service_name="DeepgramSTT", ttfs_p99_latency=30.0),
            *audio_frames(line.pcm[:words_end]),
            heard,
            *audio_frames(bytes(pcm16_bytes(0.6))),
            SleepFrame(0.5),  # smart-turn's verdict
            *([TranscriptCompleteFrame()] if complete else []),
            SleepFrame(0.3),
        ],
        pipeline_params=PHONE,
    )
    asked = [f for f in down if isinstance(f, LLMContextFrame)]
    stopped = [f for f in down if isinstance(f, UserStoppedSpeakingFrame)]
    if complete:
        assert len(asked) == 1 and len(stopped) == 1
        assert asked[0].context.messages[-1]["content"] == line_text
    else:
        # Still waiting for the transcript (the session's end then flushes what was said).
        assert stopped == []


class NeverDone(BaseTurnAnalyzer):
    """Smart-turn's verdict on a short line such as "OK, bye!": the caller is not done."""

    @property
    def speech_triggered(self) -> bool:
        return True

    @property
    def params(self) -> BaseTurnParams:
        return BaseTurnParams()

    def append_audio(self, buffer: bytes, is_speech: bool) -> EndOfTurnState:
        return EndOfTurnState.INCOMPLETE

    async def analyze_end_of_turn(self):
        return EndOfTurnState.INCOMPLETE, None

    def clear(self) -> None:
        pass


async def turn_ended_after(words: str) -> bool:
    """Whether the turn ended, at once, on ``words`` said and the caller quiet after them."""
    turn_end = TurnEnd(turn_analyzer=NeverDone(), caller_speaking=lambda: False, preemptive=False)
    turn_end.read_turn_text_from(lambda: words)
    stopped = asyncio.Event()

    async def on_stopped(_strategy, _params) -> None:
        stopped.set()

    turn_end.add_event_handler("on_user_turn_stopped", on_stopped)
    task_manager = TaskManager(loop=asyncio.get_running_loop())
    await turn_end.setup(
        FrameProcessorSetup(
            clock=SystemClock(),
            task_manager=task_manager,
            pipeline_worker=None,
            audio_in_sample_rate=PHONE_SAMPLE_RATE,
        )
    )
    await turn_end.handle_user_turn_started()
    for frame in (
        VADUserStartedSpeakingFrame(start_secs=0.1),
        VADUserStoppedSpeakingFrame(stop_secs=0.2),
        TranscriptionFrame(words, "", "", finalized=True),
    ):
        await turn_end.process_frame(frame)
    await asyncio.sleep(0)
    await turn_end.cleanup()
    return stopped.is_set()


@pytest.mark.parametrize(
    ("words", "ends"),
    [
        ("OK, bye!", True),
        ("No, that's everything. Thanks, goodbye.", True),
        ("Bye, and where is my order?", False),
        ("I'd like to check on", False),
    ],
)
async def test_a_clear_goodbye_ends_the_turn_without_waiting_for_smart_turn(words, ends):
    assert await turn_ended_after(words) is ends


def echo(request: dict) -> Reply:
    """The fake LLM repeats what it was told, so each reply names the words it answers."""
    return Reply(f"You said {user_text(request)}")


async def test_a_preemptive_reply_is_heard_when_the_turn_ends_on_its_words(bots, fakes, records):
    fakes.openai.responder = echo
    fakes.deepgram.transcripts.append("What time do you open on Saturday?")
    async with answered_call(bots.standard, fakes) as caller:
        await hear_greeting(caller)
        asked_before = len(fakes.openai.requests)
        spoken = await caller.say(AUDIO / "saturday.wav")
        await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=10)
        await caller.wait_for_bot_silence(timeout=10)
    summary = await bots.standard.wait_for_log(f"[{caller.call_sid}] Call summary:")
    # One request, made before the turn was confirmed, answered the turn: nothing asked twice.
    (request,) = fakes.openai.requests[asked_before:]
    assert user_text(request).endswith("What time do you open on Saturday?")
    assert "preemptive replies 1 (0 thrown away)" in summary
    record = await call_record(records, caller.call_sid)
    agent = [t["text"] for t in record["transcript"] if t["role"] == "agent"]
    assert agent[-1] == "You said What time do you open on Saturday?"


@pytest.fixture
async def patient(fakes, records, tmp_path):
    """A bot that waits 0.6 s of quiet before a turn may end: a pause shorter than that
    (with Deepgram's final in it) leaves the turn open, and the caller goes on."""
    env = {
        **bot_env(fakes),
        **TWILIO_CREDENTIALS,
        **records_env(records, "patient"),
        "TURN_END_SILENCE_SECS": "0.6",
    }
    server = await start_bot_server(env, log_path=tmp_path / "patient.log")
    try:
        yield server
    finally:
        await server.stop()


async def test_a_preemptive_reply_to_words_the_caller_went_on_from_is_never_heard(
    patient, fakes, records
):
    """A final arrives in a pause (Deepgram endpoints after 10 ms): the reply to it starts,
    and the caller goes on. Only the reply to the whole turn may be heard."""
    fakes.openai.responder = echo
    first, rest = "What time do you open on Saturday?", "The order number is four five six seven."
    fakes.deepgram.transcripts.append(f"{first} {rest}")
    saturday, order = Line.recorded("saturday"), Line.recorded("order_number")
    pcm = (
        saturday.pcm[: pcm16_bytes(saturday.words_end_secs)]
        + bytes(pcm16_bytes(0.35))
        + order.pcm[pcm16_bytes(order.words_start_secs) :]
    )
    async with answered_call(patient, fakes) as caller:
        await hear_greeting(caller)
        asked_before = len(fakes.openai.requests)
        voiced_before = len(fakes.cartesia.said)
        spoken = await caller.say(pcm)
        await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=10)
        await caller.wait_for_bot_silence(timeout=10)
    summary = await patient.wait_for_log(f"[{caller.call_sid}] Call summary:")
    asked = [user_text(r) for r in fakes.openai.requests[asked_before:]]
    assert asked[0].endswith(first), "the reply did not start on the first final"
    assert asked[-1].endswith(f"{first} {rest}")
    assert "preemptive replies 2 (1 thrown away)" in summary
    # Nothing of the reply to the first words reached the voice, the transcript or the record.
    voiced = fakes.cartesia.said[voiced_before:]
    assert " ".join(text.strip() for text in voiced) == f"You said {first} {rest}"
    record = await call_record(records, caller.call_sid)
    turns = [(t["role"], t["text"]) for t in record["transcript"]][1:]
    assert turns == [("caller", f"{first} {rest}"), ("agent", f"You said {first} {rest}")]


@pytest.mark.parametrize(
    ("reply", "voiced"),
    [
        ("Sure, I can help. We open at nine.", ["Sure,", "I can help.", "We open at nine."]),
        ("We open at nine. Yes, at nine.", ["We open at nine.", "Yes, at nine."]),
        ("That is 1,500 dollars, with tax.", ["That is 1,500 dollars,", "with tax."]),
    ],
)
async def test_a_reply_goes_to_the_voice_from_its_first_phrase(reply, voiced):
    """Streamed a word at a time, as the LLM writes it: only the first phrase goes early."""
    aggregator = FirstPhraseAggregator()
    out = []
    for _ in range(2):  # The second reply starts afresh.
        out.clear()
        for word in reply.split(" "):
            out += [a.text async for a in aggregator.aggregate(word + " ")]
        out.append((await aggregator.flush()).text)
    assert [text for text in out if text] == voiced

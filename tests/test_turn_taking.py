"""Shared per process: turn-taking models (each call with its own state), SDK clients, warm-ups."""

import statistics

import pytest
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams, VADState
from pipecat.frames.frames import InputAudioRawFrame, TextFrame
from pipecat.tests.utils import run_test
from threadpoolctl import threadpool_info

from bot_runtime.config.settings import BotSettings
from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from bot_runtime.services.build import build_llm
from bot_runtime.services.shared_clients import warm_up_openai_sdk
from bot_runtime.turns import shared_models, turn_taking
from bot_runtime.turns.speech_hold import SpeechHold
from bot_runtime.twilio.rest import warm_up_twilio_sdk
from bot_runtime.twilio.stream import CALLER_FRAME_SECS
from testkit.caller_audio import AUDIO, words_span
from testkit.phone_audio import (
    MEDIA_FRAME_SECS,
    pcm16_bytes,
    pcm16_to_ulaw,
    read_wav_8k,
    ulaw_to_pcm16,
)

PCM_FRAME_BYTES = pcm16_bytes(MEDIA_FRAME_SECS)  # PCM16, as Twilio's media messages arrive


def detection_for_one_call() -> tuple[shared_models.SharedSileroVAD, shared_models.SharedSmartTurn]:
    detection = turn_taking.turn_detection(
        reply_due_secs=3.0,
        start_secs=0.1,
        stop_secs=0.2,
        preemptive=False,
        speech_hold=SpeechHold(),
    )
    vad = detection["vad_analyzer"]
    (stop,) = detection["user_turn_strategies"].stop
    vad.set_sample_rate(PHONE_SAMPLE_RATE)
    smart_turn = stop._turn_analyzer
    smart_turn.set_sample_rate(PHONE_SAMPLE_RATE)
    return vad, smart_turn


async def feed(
    vad, smart_turn, pcm: bytes, *, frame_bytes: int = PCM_FRAME_BYTES
) -> list[tuple[int, VADState]]:
    """Play PCM through both analyzers as pipecat does; return (frame index, new VAD state)."""
    changes, state = [], vad._vad_state
    for index in range(0, len(pcm), frame_bytes):
        frame = pcm[index : index + frame_bytes]
        new_state = await vad.analyze_audio(frame)
        if smart_turn is not None:
            smart_turn.append_audio(frame, new_state in (VADState.SPEAKING, VADState.STOPPING))
        if new_state != state:
            changes.append((index // frame_bytes, new_state))
            state = new_state
    return changes


def test_every_call_shares_the_two_models_loaded_at_import():
    first, second = detection_for_one_call(), detection_for_one_call()
    assert first[0]._model.session is second[0]._model.session is shared_models.silero_session()
    assert first[1]._session is second[1]._session is shared_models.smart_turn_session()
    assert first[0]._model is not second[0]._model  # each call keeps its own recurrent state
    assert first[1]._model_executor is second[1]._model_executor


async def test_a_finished_question_ends_the_turn_with_the_early_answer():
    vad, smart_turn = detection_for_one_call()
    half_second = bytes(pcm16_bytes(0.5))
    question = half_second + read_wav_8k(AUDIO / "saturday.wav") + half_second
    changes = await feed(vad, smart_turn, question)

    states = [state for _, state in changes]
    assert VADState.SPEAKING in states and states[-1] == VADState.QUIET
    # The inference started while the VAD was still waiting out its stop time.
    speculation = smart_turn._speculation
    assert speculation is not None
    state, metrics = await smart_turn.analyze_end_of_turn()
    assert state == EndOfTurnState.COMPLETE and metrics is not None
    assert smart_turn._speculation is None


async def test_speaking_again_drops_the_early_answer():
    vad, smart_turn = detection_for_one_call()
    speech = read_wav_8k(AUDIO / "saturday.wav")[: pcm16_bytes(1.0)]  # one second of words
    await feed(
        vad, smart_turn, speech + bytes(pcm16_bytes(0.18))
    )  # a 180 ms pause, too short for a stop
    assert smart_turn._speculation is not None
    await feed(vad, smart_turn, speech[: pcm16_bytes(0.25)])  # the caller goes on talking
    assert vad.speaking and smart_turn._speculation is None


@pytest.mark.parametrize("wait_secs", [0.2, 0.25, 0.4])
async def test_the_caller_hears_the_configured_quiet_before_their_speech_ends(wait_secs):
    # Measured from the end of the words (the last 20 ms at -50 dBFS or louder), not from
    # where Silero's confidence falls, which trails the words. The audio goes through
    # mu-law and arrives in the serializer's frames, each line at several offsets against
    # the frames and VAD windows, as on a call.
    frame_bytes = pcm16_bytes(CALLER_FRAME_SECS)
    quiet = {}
    for name in ["saturday", "order_status", "order_number", "agree", "human", "goodbye", "long"]:
        words = read_wav_8k(AUDIO / f"{name}.wav")
        _, words_end = words_span(words)
        after_words = []
        for offset_ms in range(0, 40, 5):
            lead_secs = 1 + offset_ms / 1000
            pcm = ulaw_to_pcm16(
                pcm16_to_ulaw(bytes(pcm16_bytes(lead_secs)) + words + bytes(pcm16_bytes(1.0)))
            )
            detection = turn_taking.turn_detection(
                reply_due_secs=3.0,
                start_secs=0.1,
                stop_secs=wait_secs,
                preemptive=False,
                speech_hold=SpeechHold(),
            )
            vad = detection["vad_analyzer"]
            vad.set_sample_rate(PHONE_SAMPLE_RATE)
            changes = await feed(vad, None, pcm, frame_bytes=frame_bytes)
            stop = CALLER_FRAME_SECS * (1 + max(i for i, s in changes if s == VADState.QUIET))
            after_words.append(stop - lead_secs - words_end)
        quiet[name] = statistics.mean(after_words)
    # On average the wait is what was asked for, to within half a 32 ms VAD window; each
    # line's ending is Silero's judgment, a window or so either way.
    assert abs(statistics.mean(quiet.values()) - wait_secs) <= 0.016, quiet
    assert all(abs(secs - wait_secs) <= 0.05 for secs in quiet.values()), quiet


async def test_a_listening_caller_costs_no_vad_model_runs_and_is_heard_as_before():
    detection = turn_taking.turn_detection(
        reply_due_secs=3.0,
        start_secs=0.1,
        stop_secs=0.2,
        preemptive=False,
        speech_hold=SpeechHold(),
    )
    vad = detection["vad_analyzer"]
    vad.set_sample_rate(PHONE_SAMPLE_RATE)
    # pipecat's own Silero VAD, scoring every window, with the same stop time.
    reference = SileroVADAnalyzer(params=VADParams(start_secs=0.1, stop_secs=vad.params.stop_secs))
    reference.set_sample_rate(PHONE_SAMPLE_RATE)
    quiet = bytes(pcm16_bytes(2.0))  # two seconds of the line's silence
    words = [read_wav_8k(AUDIO / f"{name}.wav") for name in ["saturday", "order_status", "agree"]]
    call = ulaw_to_pcm16(pcm16_to_ulaw(quiet + quiet.join(words) + quiet))

    ours, theirs = await feed(vad, None, call), await feed(reference, None, call)
    assert [state for _, state in ours] == [state for _, state in theirs]
    for (our_frame, state), (their_frame, _) in zip(ours, theirs, strict=True):
        if state == VADState.STARTING:  # The caller's words are heard from the same frame.
            assert our_frame == their_frame
        else:  # Ends are judged with the model's state of that call: within 40 ms.
            assert abs(our_frame - their_frame) <= 2, (state, our_frame, their_frame)

    # While the caller listens in silence, the model is not run at all.
    state_before = vad._model._state
    assert await feed(vad, None, quiet) == []
    assert vad._model._state is state_before


async def test_caller_audio_goes_no_further_than_turn_taking():
    audio = InputAudioRawFrame(
        audio=bytes(PCM_FRAME_BYTES), sample_rate=PHONE_SAMPLE_RATE, num_channels=1
    )
    down, _ = await run_test(
        turn_taking.CallerAudioEnd(),
        frames_to_send=[audio, TextFrame("hello")],
        expected_down_frames=[TextFrame],
    )
    assert down[0].text == "hello"


@pytest.mark.parametrize("base_url", [None, "http://127.0.0.1:9/v1"])
def test_calls_share_one_openai_client(base_url):
    env = {"OPENAI_API_KEY": "sk-x", "DEEPGRAM_API_KEY": "dg", "CARTESIA_API_KEY": "ca"}
    settings = BotSettings.from_env(env | ({"OPENAI_BASE_URL": base_url} if base_url else {}))
    first = build_llm(settings, system_instruction="a")
    second = build_llm(settings, system_instruction="b")
    assert first._client is second._client


def test_the_process_does_numpy_matrix_work_on_one_blas_thread():
    # Extra OpenBLAS threads spin after each small product of smart-turn's features,
    # doubling the CPU an end-of-turn inference costs on a loaded machine.
    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas and all(pool["num_threads"] == 1 for pool in blas)


def test_the_openai_sdk_warms_up_without_a_network():
    assert warm_up_openai_sdk()


def test_the_twilio_sdk_warms_up_without_a_request():
    assert warm_up_twilio_sdk()

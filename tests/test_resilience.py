"""No dead air: when a speech service fails mid-call, the caller hears the fallback message."""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace

import pytest

from testkit.bot_server import start_bot_server
from testkit.caller_audio import AUDIO, caller_line
from testkit.fakes import FakeCartesia, FakeDeepgram, FakeOpenAI, Fakes
from testkit.paced_media import Utterance
from testkit.scenario import (
    TRANSFER_NUMBER,
    TWILIO_CREDENTIALS,
    answered_call,
    bot_audio_secs,
    call_record,
    hear_greeting,
    records_env,
    scripted_reply,
    wait_for_hang_up,
    wait_for_redirect,
)
from testkit.simulated_caller import SimulatedCaller

FALLBACK_SECS = 2.26  # prompts/fallback.wav


@pytest.fixture
async def fragile(request, fakes, records, tmp_path):
    """A bot with speech services of its own, for the test to kill; Twilio is the shared fake."""
    transfer = getattr(request, "param", {}).get("transfer", False)
    async with (
        FakeDeepgram() as deepgram,
        FakeOpenAI(responder=scripted_reply) as openai,
        FakeCartesia() as cartesia,
    ):
        own = Fakes(deepgram=deepgram, openai=openai, cartesia=cartesia, twilio=fakes.twilio)
        env = {
            **own.service_env(),
            **TWILIO_CREDENTIALS,
            **records_env(records, "fragile"),
            "RESPONSE_TIMEOUT_SECS": "2",
            **({"TRANSFER_NUMBER": TRANSFER_NUMBER} if transfer else {}),
        }
        server = await start_bot_server(env, log_path=tmp_path / "fragile.log")
        try:
            yield SimpleNamespace(
                server=server, deepgram=deepgram, openai=openai, cartesia=cartesia
            )
        finally:
            await server.stop()


@asynccontextmanager
async def greeted_call(fragile, fakes) -> AsyncIterator[SimulatedCaller]:
    """A call to the fragile bot, once its greeting has played."""
    async with answered_call(fragile.server, fakes) as caller:
        await hear_greeting(caller, timeout_secs=15)
        yield caller


async def say_and_hear_answer(
    fragile, caller: SimulatedCaller, name: str
) -> tuple[Utterance, float]:
    """Say the recorded line ``name``; return when it went out and when the bot's answer began."""
    fragile.deepgram.transcripts.append(caller_line(name))
    spoken = await caller.say(AUDIO / f"{name}.wav")
    return spoken, await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=10)


async def ended_by(fragile, caller) -> str:
    return await fragile.server.wait_for_log(f"[{caller.call_sid}] Call summary:")


# Each test below tells one failure end to end (a service dies, the caller speaks, the call
# ends one way or another), so they read alike on purpose: the differences are the point.


async def test_tts_failure_plays_the_fallback_then_hangs_up(fragile, fakes, records):
    async with greeted_call(fragile, fakes) as caller:
        await fragile.cartesia.kill()
        spoken, heard_at = await say_and_hear_answer(fragile, caller, "order_status")
        await wait_for_hang_up(fakes, caller.call_sid, timeout_secs=15)
    # The turn ends ~0.5 s after the speech; the failure follows at once: well within 3 s.
    assert heard_at - spoken.ended_at < 3.5
    # With the TTS dead, what the caller heard can only be the recorded prompts (the
    # first phrase, "Hi,", may already end a turn, so they can start mid-sentence).
    assert bot_audio_secs(caller, since=spoken.started_at) >= FALLBACK_SECS
    summary = await ended_by(fragile, caller)
    assert "ended by service failure (text-to-speech failed twice" in summary
    assert "Retrying the reply once" in fragile.server.logs()
    record = await call_record(records, caller.call_sid)
    assert record["ended_reason"] == "service_failure"
    assert record["ended_detail"].startswith("text-to-speech failed twice")


@pytest.mark.parametrize("fragile", [{"transfer": True}], indirect=True)
async def test_llm_failure_plays_the_fallback_then_transfers(fragile, fakes, records):
    async with greeted_call(fragile, fakes) as caller:
        await fragile.openai.kill()
        spoken, heard_at = await say_and_hear_answer(fragile, caller, "saturday")
        await wait_for_redirect(fakes, caller.call_sid, timeout_secs=15)
    assert heard_at - spoken.ended_at < 3.5
    (update,) = [form for sid, form in fakes.twilio.updates if sid == caller.call_sid]
    assert f"<Dial>{TRANSFER_NUMBER}</Dial>" in update["Twiml"]
    assert caller.call_sid not in fakes.twilio.hangups
    summary = await ended_by(fragile, caller)
    # A refused connection keeps the SDK retrying quietly: the LLM's first-token limit
    # names it as stalled, or, when the preemptive reply started the request early enough
    # for the retries to give up first, the error's one retry runs out the reply's time.
    assert "ended by service failure (LLM " in summary or (
        "LLM failed: Error during completion: Connection error." in fragile.server.logs()
        and "ended by service failure (no reply within" in summary
    )
    record = await call_record(records, caller.call_sid)
    assert (record["ended_reason"], record["transfer_to"]) == ("service_failure", TRANSFER_NUMBER)


async def test_stt_failure_plays_the_fallback_then_hangs_up(fragile, fakes):
    async with greeted_call(fragile, fakes) as caller:
        killed_at = time.monotonic()
        await fragile.deepgram.kill()
        heard_at = await caller.wait_for_bot_audio(after=killed_at, timeout=10)
        await wait_for_hang_up(fakes, caller.call_sid, timeout_secs=15)
    assert heard_at - killed_at < 3.0
    summary = await ended_by(fragile, caller)
    assert "ended by service failure (speech-to-text failed" in summary

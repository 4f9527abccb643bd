"""No dead air: when a speech service fails mid-call, the caller hears the fallback message."""

import time
from types import SimpleNamespace

import pytest

from testkit.bot_server import start_bot_server
from testkit.caller_audio import AUDIO, caller_line
from testkit.fakes import FakeCartesia, FakeDeepgram, FakeOpenAI
from testkit.simulated_caller import TEST_ACCOUNT_SID, SimulatedCaller
from tests.conftest import (
    AGENT_NUMBER,
    AUTH_TOKEN,
    CALLER_NUMBER,
    TRANSFER_NUMBER,
    scripted_reply,
)
from tests.test_calls import wait_until

INBOUND = {"from_number": CALLER_NUMBER, "to_number": AGENT_NUMBER}
FALLBACK_SECS = 2.26  # prompts/fallback.wav


@pytest.fixture
async def fragile(request, fakes, tmp_path):
    """A bot with speech services of its own, for the test to kill; Twilio is the shared fake."""
    transfer = getattr(request, "param", {}).get("transfer", False)
    async with (
        FakeDeepgram() as deepgram,
        FakeOpenAI(responder=scripted_reply) as openai,
        FakeCartesia() as cartesia,
    ):
        env = {
            "OPENAI_API_KEY": openai.api_key,
            "OPENAI_BASE_URL": openai.base_url,
            "DEEPGRAM_API_KEY": deepgram.api_key,
            "DEEPGRAM_BASE_URL": deepgram.base_url,
            "CARTESIA_API_KEY": cartesia.api_key,
            "CARTESIA_URL": cartesia.url,
            "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_API_BASE_URL": fakes.twilio.base_url,
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


async def greeted_call(fragile, fakes) -> SimulatedCaller:
    caller = SimulatedCaller(fragile.server.url, custom_parameters=INBOUND)
    await caller.__aenter__()
    fakes.twilio.register_call(sid=caller.call_sid, from_=CALLER_NUMBER, to=AGENT_NUMBER)
    await caller.wait_for_bot_audio(timeout=15)
    await caller.wait_for_bot_silence(timeout=15)
    return caller


def audio_secs_after(caller: SimulatedCaller, t: float) -> float:
    return sum(len(m.pcm) for m in caller.media if m.arrived_at > t) / 16000


async def ended_by(fragile, caller) -> str:
    return await fragile.server.wait_for_log(f"[{caller.call_sid}] Call summary:")


async def test_tts_failure_plays_the_fallback_then_hangs_up(fragile, fakes):
    fragile.deepgram.transcripts.append(caller_line("order_status"))
    caller = await greeted_call(fragile, fakes)
    try:
        await fragile.cartesia.kill()
        spoken = await caller.say(AUDIO / "order_status.wav")
        heard_at = await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=10)
        await wait_until(
            lambda: caller.call_sid in fakes.twilio.hangups, timeout_secs=15, what="hang-up"
        )
    finally:
        await caller.__aexit__(None, None, None)
    # The turn ends ~0.5 s after the speech; the failure follows at once: well within 3 s.
    assert heard_at - spoken.ended_at < 3.5
    # With the TTS dead, what the caller heard can only be the recorded prompts (the
    # first phrase, "Hi,", may already end a turn, so they can start mid-sentence).
    assert audio_secs_after(caller, spoken.started_at) >= FALLBACK_SECS
    summary = await ended_by(fragile, caller)
    assert "ended by service failure (text-to-speech failed twice" in summary
    assert "Retrying the reply once" in fragile.server.logs()


@pytest.mark.parametrize("fragile", [{"transfer": True}], indirect=True)
async def test_llm_failure_plays_the_fallback_then_transfers(fragile, fakes):
    fragile.deepgram.transcripts.append(caller_line("saturday"))
    caller = await greeted_call(fragile, fakes)
    try:
        await fragile.openai.kill()
        spoken = await caller.say(AUDIO / "saturday.wav")
        heard_at = await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=10)
        await wait_until(
            lambda: any(sid == caller.call_sid for sid, _ in fakes.twilio.updates),
            timeout_secs=15,
            what="the transfer",
        )
    finally:
        await caller.__aexit__(None, None, None)
    assert heard_at - spoken.ended_at < 3.5
    (update,) = [form for sid, form in fakes.twilio.updates if sid == caller.call_sid]
    assert f"<Dial>{TRANSFER_NUMBER}</Dial>" in update["Twiml"]
    assert caller.call_sid not in fakes.twilio.hangups
    summary = await ended_by(fragile, caller)
    assert "ended by service failure (LLM failed twice" in summary


async def test_stt_failure_plays_the_fallback_then_hangs_up(fragile, fakes):
    caller = await greeted_call(fragile, fakes)
    try:
        killed_at = time.monotonic()
        await fragile.deepgram.kill()
        heard_at = await caller.wait_for_bot_audio(after=killed_at, timeout=10)
        await wait_until(
            lambda: caller.call_sid in fakes.twilio.hangups, timeout_secs=15, what="hang-up"
        )
    finally:
        await caller.__aexit__(None, None, None)
    assert heard_at - killed_at < 3.0
    summary = await ended_by(fragile, caller)
    assert "ended by service failure (speech-to-text failed" in summary


async def test_llm_that_stalls_is_caught_by_the_reply_deadline(fragile, fakes):
    fragile.deepgram.transcripts.append(caller_line("saturday"))
    fragile.openai.first_token_delay_secs = 6
    caller = await greeted_call(fragile, fakes)
    try:
        spoken = await caller.say(AUDIO / "saturday.wav")
        heard_at = await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=10)
        await wait_until(
            lambda: caller.call_sid in fakes.twilio.hangups, timeout_secs=15, what="hang-up"
        )
    finally:
        await caller.__aexit__(None, None, None)
    # RESPONSE_TIMEOUT_SECS is 2 here: the fallback follows the deadline at once.
    assert 2.0 <= heard_at - spoken.ended_at < 2.0 + 1.5
    summary = await ended_by(fragile, caller)
    assert "ended by service failure (no reply within 2 s)" in summary

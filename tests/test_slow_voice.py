"""A voice that streams its audio no faster than it plays is slow, not stalled.

Cartesia usually makes audio faster than real time; over a busy link, under load or
with a slower voice it comes at 1-3x. The caller hears every reply without a gap, so
no call may end for it: every turn is answered, and no stall is logged.
"""

import asyncio
from types import SimpleNamespace

import pytest

from testkit.bot_server import start_bot_server
from testkit.caller_audio import Line
from testkit.fakes import CartesiaTiming, FakeCartesia, Fakes, Reply
from testkit.scenario import (
    TWILIO_CREDENTIALS,
    answered_call,
    bot_env,
    call_record,
    hear_greeting,
    records_env,
)

# Three sentences, voiced into one context from the first phrase on: about 3.4 s of speech.
LONG_REPLY = (
    "Sure, I can help with that. We open at nine on Saturday and close at five in the "
    "afternoon. Is there anything else I can do for you today?"
)
# Lines with no pause inside (a pause can end the turn, and the rest then cuts the reply off).
QUESTIONS = [Line.recorded("saturday")]


@pytest.fixture(scope="module")
async def slow_voice(fakes, records, tmp_path_factory):
    """A bot whose voice streams at a rate a test sets, on the shared fakes otherwise."""
    async with FakeCartesia(timing=CartesiaTiming.at(1.0)) as cartesia:
        own = Fakes(
            deepgram=fakes.deepgram, openai=fakes.openai, cartesia=cartesia, twilio=fakes.twilio
        )
        env = bot_env(own) | TWILIO_CREDENTIALS | records_env(records, "patient")
        log = tmp_path_factory.mktemp("slow-voice") / "bot.log"
        bot = await start_bot_server(env, log_path=log)
        yield SimpleNamespace(bot=bot, cartesia=cartesia)
        await bot.stop()


async def converse(slow_voice, fakes, records) -> None:
    """One call: the greeting, then a question answered at length and heard to its end; the call
    stays up and its record shows no service trouble."""
    async with answered_call(slow_voice.bot, fakes) as caller:
        await hear_greeting(caller)
        for question in QUESTIONS:
            spoken = await caller.say(question.pcm)
            await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=10)
            await caller.wait_for_bot_silence(timeout=15)
            assert not caller.closed_by_server, f"the call ended after {question.label}"
        sid = caller.call_sid
    assert sid not in fakes.twilio.hangups
    record = await call_record(records, sid)
    assert record["service_events"] == []
    assert [turn["text"] for turn in record["transcript"] if turn["role"] == "agent"][1:] == [
        LONG_REPLY
    ] * len(QUESTIONS)


@pytest.fixture
def long_replies(fakes):
    """Every caller line is heard as a question and answered with ``LONG_REPLY``."""
    fakes.deepgram.default_transcript = "Can you tell me when you open?"
    fakes.openai.responder = lambda request: Reply(LONG_REPLY)
    yield
    fakes.deepgram.default_transcript = ""


@pytest.mark.parametrize("realtime_factor", [1.0, 2.0, 4.0])
async def test_five_calls_at_once_on_a_voice_at_one_to_four_times_real_time_all_go_on(
    slow_voice, fakes, records, long_replies, realtime_factor
):
    # Word timestamps after each sentence's audio: the words of a sentence come late.
    slow_voice.cartesia.timing = CartesiaTiming.at(realtime_factor, timestamps_trail=True)
    await asyncio.gather(*(converse(slow_voice, fakes, records) for _ in range(5)))
    assert " stalled: " not in slow_voice.bot.logs()

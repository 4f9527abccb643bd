"""Services that hang (open connection, no answer) while the caller keeps saying "hello?".

Each test is one call to a bot whose speech services are its own fakes, made to stall
at the start of a reply or in the middle of one. The caller's first unanswered turn
must get audio within 3 s: the backup's reply, or the recorded apology.
"""

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import SimpleNamespace

import pytest

from bot_runtime.call.no_dead_air import SAY_AGAIN
from testkit.bot_server import start_bot_server
from testkit.caller_audio import Line
from testkit.fakes import FakeCartesia, FakeDeepgram, FakeOpenAI, Fakes, Reply
from testkit.scenario import (
    TWILIO_CREDENTIALS,
    answered_call,
    bot_audio_secs,
    call_record,
    hear_greeting,
    records_env,
    rest_requests_for,
    wait_for_hang_up,
    wait_until,
)
from testkit.simulated_caller import SimulatedCaller

PROMISE_SECS = 3.0
FALLBACK_SECS = 2.26  # prompts/fallback.wav
TWO_SENTENCES = "Sure, I can help with that. Let me look it up for you now."
# The stream's pieces up to the first sentence and one word of the next ("Let"): the
# voice can tell the first sentence has ended, and the rest never comes.
AFTER_FIRST_SENTENCE = 7
BACKUP_REPLY = "This is the backup speaking, how can I help?"
HELLO = Line.recorded("saturday")


@pytest.fixture(scope="module")
async def stalling(fakes, records, tmp_path_factory):
    """A bot without backups and one with a backup LLM and the local voice as backup TTS,
    on speech fakes of their own that a test can make stall."""
    logs = tmp_path_factory.mktemp("stalling")
    async with (
        FakeDeepgram(default_transcript="Hello?") as deepgram,
        FakeOpenAI(responder=lambda request: Reply(TWO_SENTENCES)) as openai,
        FakeOpenAI(responder=lambda request: Reply(BACKUP_REPLY)) as backup,
        FakeCartesia() as cartesia,
    ):
        own = Fakes(deepgram=deepgram, openai=openai, cartesia=cartesia, twilio=fakes.twilio)
        env = own.service_env() | TWILIO_CREDENTIALS | records_env(records, "fragile")
        backups = {
            "BACKUP_OPENAI_BASE_URL": backup.base_url,
            "BACKUP_OPENAI_API_KEY": backup.api_key,
            "BACKUP_TTS_PROVIDER": "local",
        }
        plain, backed = await asyncio.gather(
            start_bot_server(env, log_path=logs / "plain.log"),
            start_bot_server(env | backups, log_path=logs / "backed.log"),
        )
        yield SimpleNamespace(
            plain=plain, backed=backed, deepgram=deepgram, openai=openai, backup=backup,
            cartesia=cartesia,
        )  # fmt: skip
        await asyncio.gather(plain.stop(), backed.stop())


@pytest.fixture(autouse=True)
def nothing_stalls(request):
    """Each test makes its own service stall; the next starts with all of them working."""
    yield
    if "stalling" in request.fixturenames:
        own = request.getfixturevalue("stalling")
        own.deepgram.stall = None
        own.openai.first_token_delay_secs = 0
        own.openai.stall_after_pieces = None
        own.cartesia.stall_after_transcripts = None


@asynccontextmanager
async def caller_who_keeps_asking(
    bot, fakes, *, then_stall: Callable[[], None], gap_secs: tuple[float, float] = (2, 4)
) -> AsyncIterator[tuple[SimulatedCaller, list]]:
    """A call whose caller, once greeted, says a short line every 2-4 s (``gap_secs``) until
    it ends; ``then_stall`` makes a service stall once the greeting has been heard.

    Yields the caller and the times their words ended, one per line, as they happen.
    """
    async with answered_call(bot, fakes) as caller:
        await hear_greeting(caller)
        then_stall()
        words_ended: list[float] = []

        async def keep_asking() -> None:
            while not caller.closed_by_server:
                spoken = await caller.say(HELLO.pcm)
                words_ended.append(spoken.started_at + HELLO.words_end_secs)
                await asyncio.sleep(random.uniform(*gap_secs))

        asking = asyncio.create_task(keep_asking())
        try:
            yield caller, words_ended
        finally:
            asking.cancel()
            await asyncio.gather(asking, return_exceptions=True)


async def first_audio_after_first_line(caller: SimulatedCaller, words_ended: list) -> float:
    """How long after the first line's words the caller first heard the bot."""
    await wait_until(lambda: bool(words_ended), timeout_secs=10, what="the first line")
    heard_at = await caller.wait_for_bot_audio(after=words_ended[0], timeout=10)
    return heard_at - words_ended[0]


async def ends_with_one_hang_up(fakes, caller: SimulatedCaller, stalling) -> None:
    """The call ends with exactly one REST action, and leaves no service connection open."""
    await wait_for_hang_up(fakes, caller.call_sid, timeout_secs=20)
    await asyncio.sleep(0.5)
    assert [(r.method, r.form) for r in rest_requests_for(fakes, caller.call_sid)] == [
        ("POST", {"Status": "completed"})
    ]
    await nothing_left_open(stalling)


async def nothing_left_open(stalling) -> None:
    await wait_until(
        lambda: (
            stalling.deepgram.open_connections == 0
            and stalling.cartesia.open_connections == 0
            and stalling.openai.open_streams == 0
            and stalling.backup.open_streams == 0
        ),
        timeout_secs=5,
        what="every service connection of the call to close",
    )


# Each test below tells one stall end to end, so they read alike on purpose: the service, the
# moment it stalls and whether there is a backup are the differences that matter.


async def test_an_llm_that_hangs_before_its_first_word_brings_the_apology_in_time(
    fakes, records, stalling
):
    def hang() -> None:
        stalling.openai.first_token_delay_secs = 60

    async with caller_who_keeps_asking(stalling.plain, fakes, then_stall=hang) as (
        caller,
        words_ended,
    ):
        waited = await first_audio_after_first_line(caller, words_ended)
        await ends_with_one_hang_up(fakes, caller, stalling)
    assert waited < PROMISE_SECS
    assert bot_audio_secs(caller, since=words_ended[0]) >= FALLBACK_SECS  # The apology.
    record = await call_record(records, caller.call_sid)
    (event,) = record["service_events"]
    assert (event["service"], event["action"]) == ("LLM", "fallback")
    assert "no answer within" in event["what"]


async def test_a_backup_llm_answers_when_the_first_hangs_and_no_apology_is_played(
    fakes, records, stalling
):
    def hang() -> None:
        stalling.openai.first_token_delay_secs = 60

    async with caller_who_keeps_asking(stalling.backed, fakes, then_stall=hang) as (
        caller,
        words_ended,
    ):
        waited = await first_audio_after_first_line(caller, words_ended)
        await wait_until(
            lambda: BACKUP_REPLY in stalling.cartesia.said,
            timeout_secs=5,
            what="the backup's reply to be voiced",
        )
        assert not caller.closed_by_server  # The call goes on, on the backup.
    assert waited < PROMISE_SECS
    assert caller.call_sid not in fakes.twilio.hangups
    record = await call_record(records, caller.call_sid)
    assert [(e["service"], e["action"]) for e in record["service_events"]] == [
        ("LLM", "backup took over")
    ]
    assert record["ended_reason"] == "caller_hung_up"
    await nothing_left_open(stalling)


async def test_an_llm_that_stops_mid_reply_is_caught_and_the_apology_follows(
    fakes, records, stalling
):
    def stop_mid_reply() -> None:
        stalling.openai.stall_after_pieces = AFTER_FIRST_SENTENCE

    async with caller_who_keeps_asking(stalling.plain, fakes, then_stall=stop_mid_reply) as (
        caller,
        words_ended,
    ):
        waited = await first_audio_after_first_line(caller, words_ended)
        await ends_with_one_hang_up(fakes, caller, stalling)
    assert waited < PROMISE_SECS
    record = await call_record(records, caller.call_sid)
    event = record["service_events"][0]
    assert (event["service"], event["action"]) == ("LLM", "fallback")
    assert "mid-reply" in event["what"]


async def test_a_voice_that_hangs_brings_the_apology_in_time(fakes, records, stalling):
    def hang() -> None:
        stalling.cartesia.stall_after_transcripts = len(stalling.cartesia.transcripts)

    async with caller_who_keeps_asking(stalling.plain, fakes, then_stall=hang) as (
        caller,
        words_ended,
    ):
        waited = await first_audio_after_first_line(caller, words_ended)
        await ends_with_one_hang_up(fakes, caller, stalling)
    assert waited < PROMISE_SECS
    assert bot_audio_secs(caller, since=words_ended[0]) >= FALLBACK_SECS
    record = await call_record(records, caller.call_sid)
    assert record["service_events"][0]["service"] == "text-to-speech"


async def test_a_backup_voice_says_the_rest_when_the_first_stops_mid_reply(
    fakes, records, stalling
):
    def hang_after_one_sentence() -> None:
        # The first sentence of the reply is voiced; the voice hangs on the second.
        stalling.cartesia.stall_after_transcripts = len(stalling.cartesia.transcripts) + 1

    # The caller's next line comes after the reply, which it would cut off.
    async with caller_who_keeps_asking(
        stalling.backed, fakes, then_stall=hang_after_one_sentence, gap_secs=(5, 6)
    ) as (caller, words_ended):
        waited = await first_audio_after_first_line(caller, words_ended)
        await asyncio.sleep(3)  # The second sentence, from the backup voice.
        heard = bot_audio_secs(caller, since=words_ended[0])
        assert not caller.closed_by_server
    assert waited < PROMISE_SECS
    record = await call_record(records, caller.call_sid)
    assert ("text-to-speech", "backup took over") in [
        (e["service"], e["action"]) for e in record["service_events"]
    ]
    # More was heard than the first sentence alone (about 0.7 s of the fake's voice).
    assert heard > 1.5


async def test_a_deaf_speech_to_text_is_reconnected_then_given_up_with_the_apology(
    fakes, records, stalling
):
    def go_deaf() -> None:
        stalling.deepgram.stall = "silent"

    async with caller_who_keeps_asking(stalling.plain, fakes, then_stall=go_deaf) as (
        caller,
        words_ended,
    ):
        waited = await first_audio_after_first_line(caller, words_ended)
        # The caller was asked to say it again; this time the interim words come, no final.
        await wait_until(
            lambda: SAY_AGAIN in stalling.cartesia.said, timeout_secs=5, what="say again"
        )
        stalling.deepgram.stall = "after_interim"
        await ends_with_one_hang_up(fakes, caller, stalling)
    assert waited < PROMISE_SECS
    record = await call_record(records, caller.call_sid)
    assert [(e["service"], e["action"]) for e in record["service_events"]] == [
        ("speech-to-text", "reconnected"),
        ("speech-to-text", "fallback"),
    ]
    assert len(stalling.deepgram.sessions) >= 2  # It did reconnect.

"""Noise on the line while the bot talks: it goes on talking and answers none of it."""

import time

from bot_runtime.services import noise_filter
from testkit.noise_calls import SETTLE_SECS, get_the_bot_talking, play_noise
from testkit.noise_set import NOISES
from testkit.scenario import answered_call, hear_greeting


async def test_noise_under_the_bots_speech_neither_stops_it_nor_gets_an_answer(bots, noisy_line):
    # Every sound of the set, one after another, under one long answer: a cough, a knock,
    # a door, a laugh, "mm-hm", "okay", babble and a TV 12 dB below the caller (both
    # transcribed as words), street noise, line hiss.
    fakes, bot = noisy_line, bots.control  # It logs its turn decisions (LOG_LEVEL=DEBUG).
    async with answered_call(bot, fakes) as caller:
        await hear_greeting(caller)
        await get_the_bot_talking(caller, fakes)
        pauses = f"[{caller.call_sid}] The bot pauses"
        results, paused = [], set()
        for noise in NOISES:
            before = bot.logs().count(pauses)
            results.append(await play_noise(caller, fakes, noise))
            if bot.logs().count(pauses) > before:
                paused.add(noise.name)
        still_talking = caller.first_media_after(time.monotonic() - SETTLE_SECS) is not None
    assert [r.noise for r in results if r.cleared] == []
    assert [r.noise for r in results if r.replied] == []
    assert still_talking
    # The caller's own "mm-hm" paused the bot until it was clearly no barge-in, and the
    # caller heard the pause; sound that is not the caller's voice at their level paused
    # nothing. (The bot's decision, from its log: a loaded host's late audio is no pause.)
    assert "mm_hm" in paused
    assert next(r for r in results if r.noise == "mm_hm").paused_secs >= 0.1
    assert paused.isdisjoint({"babble", "tv", "street", "hiss"})


def test_without_krisp_the_bot_says_so_once_and_filters_nothing(bots):
    # Pipecat Cloud provides the Krisp SDK and model; this machine has neither.
    assert bots.standard.logs().count("Krisp VIVA not available here") == 1
    assert noise_filter.caller_audio_filter() is None

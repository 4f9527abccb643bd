"""A caller who talks over the bot stops it, also with a TV, voices or a street behind them."""

from testkit.noise_calls import (
    BARGE_INS,
    SHORT_BARGE_INS,
    barge_in,
    get_the_bot_talking,
    just_after_an_interim,
)
from testkit.noise_set import BY_NAME
from testkit.scenario import answered_call, hear_greeting, user_text


async def test_barge_ins_stop_the_bot_clean_and_with_background_noise_under_them(bots, noisy_line):
    fakes = noisy_line
    backgrounds = [None, BY_NAME["babble"], BY_NAME["tv"], BY_NAME["street"]]
    async with answered_call(bots.standard, fakes) as caller:
        await hear_greeting(caller)
        await get_the_bot_talking(caller, fakes)
        for line, background in zip(BARGE_INS, backgrounds, strict=False):
            clears = len(caller.clears)
            await barge_in(caller, fakes, line, background=background)
            # The bot stopped, and answered the caller's words (not the TV's).
            assert len(caller.clears) > clears, line
            assert user_text(fakes.openai.requests[-1]).endswith(line.heard), line


async def test_a_short_barge_in_heard_only_in_a_final_is_answered(bots, noisy_line):
    """A short line ("Hold on a second.") said just after one of Deepgram's interim results
    (one a second) is over before the next: its words come only in the endpointing final."""
    fakes = noisy_line
    async with answered_call(bots.standard, fakes) as caller:
        await hear_greeting(caller)
        await get_the_bot_talking(caller, fakes)
        for line in SHORT_BARGE_INS:
            for _ in range(3):  # A loaded machine can put an interim first: say it again.
                await just_after_an_interim(fakes)
                results = len(fakes.deepgram.results)
                await barge_in(caller, fakes, line)
                heard = [r for r in fakes.deepgram.results[results:] if words_in(r)]
                if heard[0]["is_final"]:
                    break
            else:
                raise AssertionError(f"an interim result came first every time: {line.name}")
            # The bot stopped, and answered the caller's words.
            assert user_text(fakes.openai.requests[-1]).endswith(line.heard), line


def words_in(result: dict) -> bool:
    """Whether a Deepgram result carries words."""
    return bool(result["channel"]["alternatives"][0]["transcript"])

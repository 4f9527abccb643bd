"""A caller who talks over the bot stops it, also with a TV, voices or a street behind them."""

from testkit.noise_calls import BARGE_INS, barge_in, get_the_bot_talking
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

"""One benchmark call as a caller lives it: greeting, questions, a barge-in, what was heard."""

import asyncio
import bisect
import time
from collections.abc import Sequence
from dataclasses import dataclass

from testkit.call_log import CallLog
from testkit.caller_audio import Line
from testkit.paced_media import Utterance
from testkit.scenario import INBOUND
from testkit.simulated_caller import SimulatedCaller

# The bots' answers, from the fake LLM: long enough (about 2.4 s) to be interrupted.
REPLY = "Sure, I can help with that. Let me look it up for you, it will only take a moment now."
# What the fake STT hears for every caller line (many calls share one fake). One phrase, so
# a Finalize always gets all of it and no late final arrives to interrupt the answer.
HEARD = "What time do you open on Saturday?"
# How long the bot must be quiet before the caller takes it as the end of its turn.
QUIET_SECS = 0.6
# The caller barges in this long after the bot's answer started playing.
BARGE_IN_AFTER_SECS = 0.6
WAIT_SECS = 15.0


@dataclass(frozen=True)
class CallPlan:
    """What the caller says: one line per question, then a line that barges in.

    The lines have no pause inside them: a pause as long as the VAD's stop time
    makes any bot take the turn mid-line (the turn detector's call, not the
    pipeline's speed), which would blur what this benchmark times.
    """

    questions: Sequence[Line]
    barge_in: Line

    @classmethod
    def default(cls) -> "CallPlan":
        return cls(
            questions=[Line.recorded("saturday"), Line.recorded("order_status", from_secs=0.56)],
            barge_in=Line.recorded("saturday"),
        )


async def run_call(url: str, plan: CallPlan, *, call_sid: str) -> CallLog:
    """Call the bot at ``url`` and follow ``plan``, timing everything on the caller's side."""
    result = CallLog(call_sid=call_sid)
    try:
        async with SimulatedCaller(url, custom_parameters=INBOUND, call_sid=call_sid) as caller:
            call = _Call(caller, result)
            try:
                await call.converse(plan)
            finally:
                result.underruns = call.underruns()
    except Exception as error:  # Any failure is a failed call, reported with its cause.
        result.error = f"{type(error).__name__}: {error}"
    result.ended_at = time.monotonic()
    return result


class _Call:
    """The caller's side of one call while it runs."""

    def __init__(self, caller: SimulatedCaller, result: CallLog) -> None:
        self.caller = caller
        self.result = result
        self.lines: list[Utterance] = []  # when each line's audio went out

    async def converse(self, plan: CallPlan) -> None:
        caller = self.caller
        assert caller.start_sent_at is not None
        greeting_at = await caller.wait_for_bot_audio(timeout=WAIT_SECS)
        self.result.greeting_secs = greeting_at - caller.start_sent_at
        await caller.wait_for_bot_silence(quiet_secs=QUIET_SECS, timeout=WAIT_SECS)
        for index, line in enumerate(plan.questions):
            answer_at = await self.ask(line)
            if index < len(plan.questions) - 1:
                await caller.wait_for_bot_silence(quiet_secs=QUIET_SECS, timeout=WAIT_SECS)
        # Talk over the last answer: the bot must stop (Twilio `clear`) and answer again.
        await asyncio.sleep(max(0.0, answer_at + BARGE_IN_AFTER_SECS - time.monotonic()))
        barging_from = time.monotonic()
        answer = asyncio.ensure_future(self.ask(plan.barge_in))
        try:
            await self.wait_for_clear(after=barging_from)
        finally:
            await answer
        onset = self.lines[-1].started_at + plan.barge_in.words_start_secs
        # What the caller notices: the bot falling silent, for a pause for their voice or
        # for the `clear` (which cuts the play-out short), whichever came first.
        self.result.barge_in_secs = self.caller.bot_quiet_from(onset) - onset
        await caller.wait_for_bot_silence(quiet_secs=QUIET_SECS, timeout=WAIT_SECS)

    async def ask(self, line: Line) -> float:
        """Say ``line``; record the time from the end of its words to the bot's first audio."""
        spoken = await self.caller.say(line.pcm)
        self.lines.append(spoken)
        words_end = spoken.started_at + line.words_end_secs
        answer_at = await self.caller.wait_for_bot_audio(after=spoken.ended_at, timeout=WAIT_SECS)
        self.result.turn_secs.append(answer_at - words_end)
        return answer_at

    async def wait_for_clear(self, *, after: float) -> None:
        deadline = time.monotonic() + WAIT_SECS
        while not any(t > after for t in self.caller.clears):
            if time.monotonic() > deadline:
                raise TimeoutError("no clear after the caller barged in")
            await asyncio.sleep(0.005)

    def underruns(self) -> int:
        """Gaps over 100 ms inside one bot answer, on the caller's play-out clock.

        Each answer plays between two moments the turn changes hands (the end of a
        caller line, or a ``clear``); more than one stretch of speech in between
        means the bot's audio ran dry mid-answer.
        """
        boundaries = sorted([*self.caller.clears, *(line.ended_at for line in self.lines)])
        stretches = [0] * (len(boundaries) + 1)
        for start, _ in self.caller.bot_segments(gap_secs=0.1, speech_only=True):
            stretches[bisect.bisect_right(boundaries, start)] += 1
        return sum(max(0, n - 1) for n in stretches)

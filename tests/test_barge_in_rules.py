"""The barge-in rules on their own: which sounds, at which level, with which words, cut in."""

import asyncio
import math

import numpy as np
import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)

from bot_runtime.call.ending import CallEnding, EndedReason
from bot_runtime.call.pipeline import MuteWhileEnding
from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from bot_runtime.turns.barge_in import RESUME_AFTER_SECS, CallerVoiceStart
from bot_runtime.turns.speech_hold import MAX_HOLD_SECS, SpeechHold
from bot_runtime.turns.speech_level import counted_words

FRAME_SECS = 0.04
START_SECS = 0.1


class Call:
    """The strategy as pipecat's turn controller drives it, with the turn state it keeps."""

    def __init__(self, *, min_words: int = 1, max_pause_secs: float = MAX_HOLD_SECS) -> None:
        self.hold = SpeechHold(max_secs=max_pause_secs)
        self.vad_hears_voice = False
        self.strategy = CallerVoiceStart(
            level_db=8.0,
            min_words=min_words,
            speech_hold=self.hold,
            vad_hears_voice=lambda: self.vad_hears_voice,
            reply_due_secs=3.0,
        )
        self.turns = 0
        self.in_turn = False
        self.resets = 0
        self.strategy.add_event_handler("on_user_turn_started", self._started)
        self.strategy.add_event_handler("on_reset_aggregation", self._reset)

    async def _started(self, _strategy, _params) -> None:
        if self.in_turn:  # The controller starts no second turn inside one.
            return
        self.turns += 1
        self.in_turn = True
        await self.strategy.handle_user_turn_started()

    async def end_turn(self) -> None:
        self.in_turn = False
        await self.strategy.handle_user_turn_stopped()

    async def _reset(self, _strategy) -> None:
        self.resets += 1

    async def send(self, *frames) -> None:
        for frame in frames:
            await self.strategy.process_frame(frame)

    async def speech(self, dbfs: float, secs: float, *words: str) -> None:
        """Sound at ``dbfs`` that the VAD takes for speech, and what speech-to-text hears."""
        self.vad_hears_voice = True
        for _ in range(math.ceil(START_SECS / FRAME_SECS)):  # what set the VAD off
            await self.send(audio(dbfs))
        await self.send(VADUserStartedSpeakingFrame(start_secs=START_SECS))
        for _ in range(round(secs / FRAME_SECS)):
            await self.send(audio(dbfs))
        for text in words[:-1]:
            await self.send(InterimTranscriptionFrame(text, "", ""))
        await self.send(VADUserStoppedSpeakingFrame())
        self.vad_hears_voice = False
        if words:
            await self.send(TranscriptionFrame(words[-1], "", ""))

    async def voice_over_the_answer(self) -> None:
        """After a turn of the caller's, the bot answering, a voiced window at their level."""
        await self.callers_turn(-20.0)
        await self.send(BotStartedSpeakingFrame())
        self.later(1.0)
        self.vad_hears_voice = True  # not yet speech to the VAD
        await self.send(audio(-20.0))

    async def callers_turn(self, dbfs: float) -> None:
        """A turn of the caller's while the bot is quiet: it also sets their level."""
        await self.speech(dbfs, 1.0, "What time do you open?")
        await self.end_turn()

    def later(self, secs: float) -> None:
        """As if ``secs`` had passed (the strategy keeps time with time.monotonic)."""
        self.strategy._speech_ended_at -= secs
        self.strategy._reply_due_until -= secs
        self.strategy._voice_heard_at -= secs


def audio(dbfs: float) -> InputAudioRawFrame:
    samples = round(FRAME_SECS * PHONE_SAMPLE_RATE)
    tone = np.sin(np.arange(samples) * 2 * np.pi * 300 / PHONE_SAMPLE_RATE)
    pcm = (tone * np.sqrt(2) * 32768 * 10 ** (dbfs / 20)).astype(np.int16).tobytes()
    return InputAudioRawFrame(audio=pcm, sample_rate=PHONE_SAMPLE_RATE, num_channels=1)


async def test_the_callers_level_is_measured_on_their_own_turns():
    call = Call()
    assert call.strategy.caller_level_dbfs is None
    await call.callers_turn(-20.0)
    assert call.turns == 1
    assert call.strategy.caller_level_dbfs == pytest.approx(-20.0, abs=0.5)
    assert call.strategy.threshold_dbfs == pytest.approx(-28.0, abs=0.5)


@pytest.mark.parametrize(
    ("dbfs", "words", "cuts_in"),
    [
        (-20.0, ["Wait,", "Wait, that is not right."], True),  # the caller, saying words
        (-23.0, ["Hold on"], True),  # a little quieter: still the caller
        (-32.0, ["And now the", "And now the weather."], False),  # a TV 12 dB down
        (-20.0, ["Okay."], False),  # an acknowledgement
        (-20.0, ["Mm-hmm."], False),
        (-20.0, [""], False),  # a laugh or a cough: no words
    ],
)
async def test_while_the_bot_speaks_only_the_callers_voice_with_words_cuts_in(dbfs, words, cuts_in):
    call = Call()
    await call.callers_turn(-20.0)
    await call.send(BotStartedSpeakingFrame())
    call.later(1.0)  # the bot has been answering for a second
    await call.speech(dbfs, 0.6, *words)
    assert call.turns == 1 + cuts_in


async def test_with_no_words_required_the_voice_alone_cuts_in_but_not_a_quiet_one():
    call = Call(min_words=0)
    await call.callers_turn(-20.0)
    await call.send(BotStartedSpeakingFrame())
    call.later(1.0)
    await call.speech(-32.0, 0.6)
    assert call.turns == 1
    call.later(1.0)
    await call.speech(-20.0, 0.3)
    assert call.turns == 2


async def test_an_acknowledgement_is_dropped_and_the_bot_quiet_hears_any_voice():
    call = Call()
    await call.callers_turn(-20.0)
    await call.send(BotStartedSpeakingFrame())
    await call.speech(-20.0, 0.5, "Okay.")
    await call.send(BotStoppedSpeakingFrame())
    call.later(1.0)
    await call.speech(-40.0, 0.3)  # a quiet caller, with the bot quiet: their turn
    assert call.turns == 2
    assert call.resets == 1  # the "Okay." does not join it


async def test_before_the_caller_has_spoken_a_nominal_phone_level_is_the_reference():
    call = Call()
    call.strategy._reply_due_until = float("-inf")
    await call.send(BotStartedSpeakingFrame())  # the greeting
    await call.speech(-40.0, 0.6, "Hello there")
    assert call.turns == 0
    await call.speech(-24.0, 0.6, "Hello there")
    assert call.turns == 1


async def test_noise_while_the_reply_is_being_written_does_not_cancel_it():
    call = Call()
    await call.callers_turn(-20.0)  # the reply to it is on its way, not yet heard
    call.later(0.9)
    await call.speech(-20.0, 0.4)  # a cough the VAD took for speech
    assert call.turns == 1
    assert call.hold.held  # the reply waits until the sound is over, and is not cancelled
    await call.speech(-20.0, 0.6, "Sorry, one more thing")  # the caller again: cuts in
    assert call.turns == 2


async def test_words_that_come_late_for_the_callers_last_turn_still_cut_in():
    # A speech-to-text that transcribes once the caller stops (the local Whisper): the
    # words of their last phrase come after the turn ended, the reply on its way.
    call = Call(min_words=0)
    await call.callers_turn(-20.0)
    await call.send(TranscriptionFrame("Goodbye.", "", ""))
    assert call.turns == 2


async def test_the_callers_voice_pauses_the_bot_until_its_words_say_go_on_or_stop():
    call = Call()
    await call.callers_turn(-20.0)
    await call.send(BotStartedSpeakingFrame())
    call.later(1.0)
    # "Mm-hmm": the bot pauses as the voice starts, and stays paused until it has ended.
    await call.speech(-20.0, 0.4, "Mm-hmm.")
    assert call.hold.held
    await call.send(audio(-90.0))  # the final came; the bot waits a moment for more words
    assert call.hold.held
    call.later(RESUME_AFTER_SECS)
    await call.send(audio(-90.0))
    assert not call.hold.held
    assert call.turns == 1  # no turn, nothing to clear: the bot goes on from where it paused
    # The caller then says words: the bot pauses, and their turn starts (its `clear`, not
    # the voice ending, releases the pause).
    call.later(1.0)
    await call.speech(-20.0, 0.6, "Wait,", "Wait, that is not right.")
    assert call.turns == 2
    assert call.hold.held


async def test_the_vads_first_voiced_window_pauses_the_bot_and_a_blip_lets_it_go_on():
    call = Call()
    await call.voice_over_the_answer()
    assert call.hold.held
    call.vad_hears_voice = False  # a blip: the VAD never called it speech
    call.later(RESUME_AFTER_SECS)
    await call.send(audio(-90.0))
    assert not call.hold.held
    assert call.turns == 1


async def test_a_long_voice_with_no_words_pauses_the_bot_once_for_the_longest_pause():
    call = Call(max_pause_secs=0.05)
    await call.voice_over_the_answer()
    assert call.hold.held
    await asyncio.sleep(0.06)
    await call.send(audio(-20.0), audio(-20.0))  # a hum, on and on: the bot talks on
    assert not call.hold.held and not call.hold.held_secs
    call.vad_hears_voice = False
    call.later(RESUME_AFTER_SECS)
    await call.send(audio(-90.0))
    call.vad_hears_voice = True  # once it has ended, the next voice pauses the bot again
    await call.send(audio(-20.0))
    assert call.hold.held


async def test_the_call_ending_mutes_the_caller_and_ends_a_pause_their_words_no_longer_can():
    call, ending = Call(), CallEnding()
    mute = MuteWhileEnding(ending, speech_hold=call.hold)
    await call.voice_over_the_answer()
    assert call.hold.held
    assert not await mute.process_frame(audio(-20.0))
    ending.begin(EndedReason.END_CALL)  # the goodbye is on its way
    assert await mute.process_frame(audio(-20.0))
    assert not call.hold.held


@pytest.mark.parametrize(
    ("bot_speaking", "dbfs"), [(True, -32.0), (False, -20.0)], ids=["tv-12-db-down", "bot-quiet"]
)
async def test_a_background_voice_or_a_quiet_bot_pauses_nothing(bot_speaking, dbfs):
    call = Call()
    await call.callers_turn(-20.0)
    if bot_speaking:
        await call.send(BotStartedSpeakingFrame())
    call.later(5.0)  # long past the reply's start
    call.vad_hears_voice = True
    await call.send(*(audio(dbfs) for _ in range(3)), VADUserStartedSpeakingFrame(start_secs=0.1))
    await call.send(*(audio(dbfs) for _ in range(10)))
    assert not call.hold.held


def test_acknowledgements_do_not_count_as_words():
    assert counted_words("Mm-hmm. Okay, yeah.") == 0
    assert counted_words("Okay, but what about Sunday?") == 4
    assert counted_words("No.") == 1

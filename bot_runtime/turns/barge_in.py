"""When the caller's voice may cut the bot off: their own voice, loud as they speak, saying words.

While the bot speaks, pipecat's default start strategies stop it for anything the VAD
takes for speech (a TV, voices in the room) and for any transcript (an "mm-hm"). Here,
while the bot has the floor (below), the caller's turn starts only when both hold:

- the sound is the caller's voice at the caller's own level: within ``level_db`` of
  the level measured on their earlier turns (background voices, a TV or a radio are
  well below it), before they have spoken, of a nominal phone speech level;
- the words heard since that voice began, acknowledgements ("okay", "mm-hmm",
  "yeah": ``ACKNOWLEDGEMENTS``) left out, number at least ``min_words`` (interim
  results count; words add up across pauses shorter than ``BURST_GAP_SECS``, and
  words that arrive that long after the voice stopped still count). A laugh or a
  cough has no words and a lone "okay" none that count, so the bot goes on. With
  ``min_words=0`` the voice alone is enough.

Words come from speech-to-text a while after the voice starts (Deepgram's interim
results come at intervals; see docs/performance.md), so waiting for them would leave the bot talking
over a caller who really speaks. Instead the bot pauses (``SpeechHold``) as soon as
the VAD hears voice at the caller's level while it speaks, on its first voiced window
rather than after ``start_secs``: a caller who says words then cuts it off, and when
the voice ends with none that count (a laugh, "mm-hm") it goes on
``RESUME_AFTER_SECS`` later from where it paused, having lost nothing.

The bot has the floor from the end of a caller's turn with words (a reply is on its
way) until it stops speaking: a cough while the reply is being written must not cancel
it. Otherwise the caller's voice or any transcript starts their turn, as with pipecat's
default VAD and transcription strategies.
"""

import time
from collections import deque
from collections.abc import Callable

from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_start.base_user_turn_start_strategy import BaseUserTurnStartStrategy

from bot_runtime.turns.speech_hold import SpeechHold
from bot_runtime.turns.speech_level import (
    NOMINAL_SPEECH_DBFS,
    counted_words,
    frame_dbfs,
    learned_level,
    level_of,
    tail_level,
)

# The defaults of BARGE_IN_LEVEL_DB and BARGE_IN_MIN_WORDS (see docs/turn-taking.md).
BARGE_IN_LEVEL_DB = 8.0
BARGE_IN_MIN_WORDS = 1
# The loudness of what the VAD hears now: the last 0.32 s of the speech (from the frames
# that set the VAD off).
LOUDNESS_WINDOW_SECS = 0.32
# Speech after a pause this long is a new utterance: its words are counted afresh.
BURST_GAP_SECS = 0.8
# A paused bot goes on once the VAD has heard no voice for this long with no words that cut
# in. The VAD's own stop time comes first (it hears voice until then), and Deepgram's final
# result comes soon after the speech ends (docs/performance.md): a short "stop" still cuts in
# in time.
RESUME_AFTER_SECS = 0.3


class CallerVoiceStart(BaseUserTurnStartStrategy):
    """Starts the caller's turn; while the bot speaks, only for their own voice saying words.

    It takes the place of pipecat's default start strategies (VAD, transcription) and
    needs the user aggregator's VAD: it reads the VAD's start and stop frames and the
    caller's audio frames, and ``vad_hears_voice()`` (the VAD's state as each audio
    frame arrives, from its first voiced window to its stop) to pause the bot early.
    """

    def __init__(
        self,
        *,
        level_db: float,
        min_words: int,
        speech_hold: SpeechHold,
        vad_hears_voice: Callable[[], bool],
        reply_due_secs: float,
        **kwargs,
    ) -> None:
        """``reply_due_secs``: after a turn with words, the bot holds the floor this long for
        its reply to start (the call's reply promise, RESPONSE_TIMEOUT_SECS)."""
        super().__init__(**kwargs)
        self._reply_due_secs = reply_due_secs
        self._level_db = level_db
        self._min_words = min_words
        self._speech_hold = speech_hold
        self._vad_hears_voice = vad_hears_voice
        self._voice_heard_at = float("-inf")
        # The levels of the frames since the VAD began hearing voice, until it calls it speech.
        self._voiced: list[float] = []
        self._pause_spent = False  # a pause ran its longest: none again until the voice ends
        self._caller_level: float | None = None
        self._bot_speaking = False
        self._reply_due_until = float("-inf")  # a reply to the caller is on its way until then
        self._in_turn = False
        self._turn_words = False  # the caller's turn now has words
        # Levels (and lengths) of the last LOUDNESS_WINDOW_SECS of frames, and of the frames
        # since the VAD heard speech start.
        self._recent: deque[tuple[float, float]] = deque()
        self._speech: list[tuple[float, float]] | None = None
        self._speech_bot_quiet = False  # the bot was quiet all through this speech
        self._speech_ended_at = float("-inf")
        self._loud = False  # the caller's voice was heard in this utterance
        self._final_words = 0
        self._interim_words = 0
        self._stale_words = False  # words in the aggregation that started no turn
        self._start_reason = ""  # why this strategy asked for the caller's turn to start

    @property
    def caller_level_dbfs(self) -> float | None:
        """The caller's speech level measured so far in this call (None before they spoke)."""
        return self._caller_level

    @property
    def threshold_dbfs(self) -> float:
        """How loud speech must be to cut the bot off."""
        reference = self._caller_level if self._caller_level is not None else NOMINAL_SPEECH_DBFS
        return reference - self._level_db

    async def handle_user_turn_started(self) -> None:
        logger.debug(f"Caller's turn started: {self._start_reason}")
        self._in_turn = True
        self._turn_words = False
        self._stale_words = False

    async def handle_user_turn_stopped(self) -> None:
        self._in_turn = False
        if self._turn_words:  # The LLM is writing the reply now.
            self._reply_due_until = time.monotonic() + self._reply_due_secs
        # The words were the turn's. The voice stays the caller's for a moment: words of it
        # that come after the turn ended (speech-to-text running late) still cut in.
        self._final_words = 0
        self._interim_words = 0

    @property
    def _bot_has_floor(self) -> bool:
        return self._bot_speaking or time.monotonic() < self._reply_due_until

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        if isinstance(frame, InputAudioRawFrame):
            return await self._on_audio(frame)
        if isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
            self._reply_due_until = float("-inf")
            self._speech_bot_quiet = False
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            return await self._on_speech_started(frame)
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._on_speech_stopped()
        elif isinstance(frame, (TranscriptionFrame, InterimTranscriptionFrame)):
            return await self._on_words(frame)
        return ProcessFrameResult.CONTINUE

    async def _on_audio(self, frame: InputAudioRawFrame) -> ProcessFrameResult:
        secs = len(frame.audio) / 2 / frame.sample_rate / max(1, frame.num_channels)
        self._recent.append((frame_dbfs(frame.audio), secs))
        while sum(s for _, s in self._recent) - self._recent[0][1] >= LOUDNESS_WINDOW_SECS:
            self._recent.popleft()
        hears_voice = self._vad_hears_voice()
        if hears_voice:
            self._voice_heard_at = time.monotonic()
        self._maybe_go_on()
        if self._speech is None:
            self._check_voice_before_speech(hears_voice)
            return ProcessFrameResult.CONTINUE
        self._speech.append(self._recent[-1])
        self._check_loudness()
        return await self._maybe_cut_in()

    def _check_voice_before_speech(self, hears_voice: bool) -> None:
        """Voice the VAD has not called speech yet: at the caller's level, the bot pauses."""
        if not hears_voice:
            self._voiced.clear()
            return
        self._voiced.append(self._recent[-1][0])
        loudness = level_of(self._voiced)
        if loudness is not None and loudness >= self.threshold_dbfs:
            self._maybe_pause()

    def _check_loudness(self) -> None:
        """Whether the last LOUDNESS_WINDOW_SECS of the speech reach the caller's level."""
        assert self._speech is not None
        if self._loud:  # Once heard, the utterance stays the caller's: no need to look again.
            return
        loudness = tail_level(self._speech, secs=LOUDNESS_WINDOW_SECS)
        self._loud = self._loud or (loudness is not None and loudness >= self.threshold_dbfs)

    async def _on_speech_started(self, frame: VADUserStartedSpeakingFrame) -> ProcessFrameResult:
        if time.monotonic() - self._speech_ended_at > BURST_GAP_SECS:
            await self._drop_stale_words()
            self._new_utterance()
        # The sound that set the VAD off: the frames of its start time.
        self._speech, secs = [], 0.0
        for level, length in reversed(self._recent):
            if secs >= frame.start_secs:
                break
            self._speech.insert(0, (level, length))
            secs += length
        self._speech_bot_quiet = not self._bot_speaking
        self._voiced.clear()
        self._check_loudness()
        if not self._bot_has_floor:
            await self._start_turn("their voice, the bot quiet")
            return ProcessFrameResult.STOP
        return await self._maybe_cut_in()

    def _on_speech_stopped(self) -> None:
        self._speech_ended_at = time.monotonic()
        speech, self._speech = self._speech, None
        # Only the caller's own turns, with the bot quiet, tell how loud the caller is.
        if speech and self._in_turn and self._speech_bot_quiet:
            self._caller_level = learned_level(self._caller_level, speech)

    async def _on_words(
        self, frame: TranscriptionFrame | InterimTranscriptionFrame
    ) -> ProcessFrameResult:
        if not frame.text.strip():
            return ProcessFrameResult.CONTINUE
        if not self._bot_has_floor:
            # pipecat's transcription strategy: words the VAD missed still start a turn.
            await self._start_turn("words the voice detector missed, the bot quiet")
            self._turn_words = True
            return ProcessFrameResult.STOP
        self._turn_words = self._turn_words or self._in_turn
        words = counted_words(frame.text)
        if isinstance(frame, TranscriptionFrame):
            self._final_words += words
            self._interim_words = 0
            # Words the caller said while the bot spoke that cut nothing off.
            self._stale_words |= not self._in_turn and self._bot_speaking
        else:
            self._interim_words = words
        return await self._maybe_cut_in()

    async def _maybe_cut_in(self) -> ProcessFrameResult:
        if not self._bot_has_floor or self._in_turn or not self._callers_voice:
            return ProcessFrameResult.CONTINUE
        words = self._final_words + self._interim_words
        if words < self._min_words:
            self._maybe_pause()
            return ProcessFrameResult.CONTINUE
        await self._start_turn(f"cut the bot off, their own voice with {words} words that count")
        self._turn_words = words > 0
        return ProcessFrameResult.STOP

    async def _start_turn(self, reason: str) -> None:
        # Said when the turn does start (handle_user_turn_started): one already going on
        # is not started again.
        self._start_reason = reason
        await self.trigger_user_turn_started()

    def _maybe_pause(self) -> None:
        """The caller's voice, no words that cut in yet: the bot pauses while it sounds.

        Also before its reply is heard: a caller who goes on after a pause the turn ended
        on must not hear the reply start over them (nor have it recorded as heard).
        """
        if not self._bot_has_floor or self._in_turn or not self._vad_hears_voice():
            return
        if self._pause_spent or self._speech_hold.held_secs:
            return
        self._speech_hold.hold()
        logger.debug("The bot pauses: the caller's voice, no words yet")

    def _maybe_go_on(self) -> None:
        """The voice stopped without cutting in (or went on too long): the bot goes on."""
        voice_ended = time.monotonic() - self._voice_heard_at >= RESUME_AFTER_SECS
        if voice_ended:
            self._pause_spent = False
        if not self._speech_hold.held_secs or self._in_turn:
            return  # Not paused, or the caller's turn started: its `clear` ends the pause.
        if voice_ended:
            paused_secs = self._speech_hold.release()
            logger.debug(f"The bot goes on after a {paused_secs:.2f} s pause: no words cut in")
        elif not self._speech_hold.held:
            self._speech_hold.release()
            self._pause_spent = True
            logger.debug("The bot goes on: a long voice with no words that cut in")

    @property
    def _callers_voice(self) -> bool:
        """The caller's own voice is speaking, or stopped less than BURST_GAP_SECS ago."""
        recent = self._speech is not None or (
            time.monotonic() - self._speech_ended_at <= BURST_GAP_SECS
        )
        return self._loud and recent

    def _new_utterance(self) -> None:
        self._loud = False
        self._final_words = 0
        self._interim_words = 0

    async def _drop_stale_words(self) -> None:
        # Words that started no turn (an "okay", a TV) must not join the caller's next turn.
        if self._stale_words and not self._in_turn:
            await self.trigger_reset_aggregation()
        self._stale_words = False

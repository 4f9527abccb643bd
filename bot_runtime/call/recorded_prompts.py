"""Pre-recorded audio prompts, played straight to the caller with no TTS service involved."""

import wave
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from bot_runtime.phone_line import PHONE_SAMPLE_RATE

PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"
RECORD_COMMAND = "uv run scripts/record_prompts.py --language"


class Prompt(Enum):
    """The prompts shipped in prompts/, each an 8 kHz mono 16-bit WAV.

    The default language's are in prompts/, another language's in prompts/<code>/.
    """

    RECORDING_NOTICE = "recording_notice"
    FALLBACK = "fallback"
    CONNECTING = "connecting"
    HOLD_TONE = "hold_tone"
    CALL_BACK = "call_back"

    @property
    def spoken(self) -> bool:
        """Whether the prompt has words, so that each language needs its own recording (the
        hold tone has none: every language plays the default's)."""
        return self is not Prompt.HOLD_TONE


@dataclass(frozen=True)
class RecordedPrompts:
    """Every declared language's prompts, read from disk once, at start-up."""

    default: str
    by_language: Mapping[str, Mapping[Prompt, bytes]]

    def audio(self, prompt: Prompt, language: str | None = None) -> bytes:
        """The prompt in ``language``; the default language's where it has none."""
        prompts = self.by_language.get(language or self.default)
        return (prompts or self.by_language[self.default])[prompt]


_loaded: RecordedPrompts | None = None


def read_prompt(path: Path) -> bytes:
    """A prompt's PCM; a file the phone line cannot play raises ValueError naming it."""
    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (
            PHONE_SAMPLE_RATE,
            1,
            2,
        ):
            raise ValueError(f"{path} must be 8 kHz mono 16-bit PCM")
        return wav.readframes(wav.getnframes())


def load_prompts(
    *, default: str = "en", languages: Iterable[str] = (), directory: Path = PROMPTS_DIR
) -> RecordedPrompts:
    """Read every prompt now, at start-up: a missing or malformed file stops the bot here,
    not in the middle of a call, and no call reads the disk on the event loop.

    A language other than ``default`` takes its prompts from ``directory``/<code>/ and
    the default's for the ones it lacks; one line names the languages that lack some.
    """
    global _loaded
    defaults = {prompt: read_prompt(directory / f"{prompt.value}.wav") for prompt in Prompt}
    by_language: dict[str, Mapping[Prompt, bytes]] = {default: defaults}
    lacking: list[str] = []
    for code in dict.fromkeys(languages):
        if code == default:
            continue
        own = {
            prompt: read_prompt(path)
            for prompt in Prompt
            if (path := directory / code / f"{prompt.value}.wav").is_file()
        }
        missing = [prompt.value for prompt in Prompt if prompt.spoken and prompt not in own]
        if len(missing) == sum(prompt.spoken for prompt in Prompt):
            lacking.append(f"{code} has none")
        elif missing:
            lacking.append(f"{code} lacks {', '.join(missing)}")
        by_language[code] = defaults | own
    if lacking:
        logger.warning(
            f"Recorded prompts: {'; '.join(lacking)}. Those calls hear the {default} ones "
            f"instead; make them with `{RECORD_COMMAND} CODE`"
        )
    _loaded = RecordedPrompts(default=default, by_language=by_language)
    return _loaded


def prompt_audio(prompt: Prompt, language: str | None = None) -> bytes:
    """The prompt's PCM in ``language``, as read at start-up (read now if it was not)."""
    return (_loaded or load_prompts()).audio(prompt, language)


class PromptPlayer(FrameProcessor):
    """Sits just before the output transport and plays prompts into it.

    Prompts bypass the speech services on purpose: the fallback message must play
    when the TTS service is the thing that failed. ``language`` is the call's, which
    may change once the caller is heard.
    """

    def __init__(self, *, language: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.language = language

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)

    async def play(
        self, prompt: Prompt, *, then: Frame | None = None, interrupt: bool = False
    ) -> None:
        """Queue the prompt's audio for the caller, followed by ``then`` (e.g. a mark).

        With ``interrupt``, whatever the bot was saying stops first: the services
        above are interrupted, and the output drops its queued audio and sends
        Twilio a `clear`, ahead of the prompt so that the clear cannot drop it.
        """
        if interrupt:
            await self.push_frame(InterruptionFrame(), FrameDirection.UPSTREAM)
            await self.push_frame(InterruptionFrame())
        audio = OutputAudioRawFrame(
            audio=prompt_audio(prompt, self.language),
            sample_rate=PHONE_SAMPLE_RATE,
            num_channels=1,
        )
        audio.interruptible = False  # Prompts carry what the caller must hear in full.
        await self.push_frame(audio)
        if then is not None:
            await self.push_frame(then)

"""A call that hears its caller's language: the first words in another declared language
switch the call to it, once (speech-to-text, voice, the LLM's instruction, the words)."""

from collections.abc import Callable

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    LLMUpdateSettingsFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    TTSUpdateSettingsFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.services.openai.llm import OpenAILLMService

from bot_runtime.config.languages import Language, Languages, base
from bot_runtime.config.settings import BotSettings
from bot_runtime.services.deepgram import DeepgramSTT
from bot_runtime.services.shared_clients import SharedClientOpenAILLMService

# Deepgram's multilingual model: asked for `language=multi`, it names the language of each
# result's words ("languages"), which pipecat hands on as the transcription's language.
MULTILINGUAL = "multi"
MULTILINGUAL_MODEL = "nova-3"
# What Deepgram's nova-3 multilingual model hears (developers.deepgram.com, "Nova-3 Language
# Prompting", the 55 languages of October 2026), by base code: a caller speaking another
# language is never heard as speaking it.
MULTILINGUAL_LANGUAGES = frozenset([
    "af", "ar", "be", "bn", "bs", "bg", "ca", "zh", "hr", "cs", "da", "nl", "en", "et", "fi",
    "fr", "gl", "de", "el", "gu", "he", "hi", "hu", "id", "it", "ja", "kn", "ko", "lv", "lt",
    "mk", "ms", "mr", "no", "fa", "pl", "pt", "ro", "ru", "sr", "sk", "sl", "es", "sv", "tl",
    "ta", "te", "th", "tr", "uk", "vi", "xh", "zu",
])  # fmt: skip
# A final this short ("OK", "gracias" at the end of an English call) says too little about
# the language the caller speaks to move the whole call.
MIN_WORDS = 2


def detects(settings: BotSettings, *, chosen_by: str) -> bool:
    """Whether a call listens for its caller's language: the agent file asks for it
    (detect_language), nothing chose the call's language (no parameter, no mapped number),
    there is another language to switch to, and Deepgram hears the call."""
    languages = settings.languages
    return (
        languages.detect
        and chosen_by == "default"
        and len(languages.by_code) > 1
        and settings.stt_provider == "deepgram"
    )


def detection_warnings(settings: BotSettings) -> list[str]:
    """What keeps detect_language from hearing every declared language, one line each (the
    bot starts: each call still gets the language chosen for it)."""
    languages = settings.languages
    if not languages.detect:
        return []
    if settings.stt_provider != "deepgram":
        return [
            "detect_language needs Deepgram (the local Whisper does not switch a call): each "
            "call stays in the language its parameter, number or the default chose"
        ]
    unheard = [
        lang.name
        for lang in languages.by_code.values()
        if base(lang.code) not in MULTILINGUAL_LANGUAGES
    ]
    if not unheard:
        return []
    return [
        f"detect_language: Deepgram's multilingual model does not recognise "
        f"{', '.join(unheard)}: a caller speaking it is not switched to it"
    ]


def listening_settings(languages: Languages) -> DeepgramSTT.Settings:
    """Deepgram's settings while the call's language is unknown: the multilingual model,
    hinted with the declared languages so that it leans towards them."""
    hints = list(dict.fromkeys(base(code) for code in languages.by_code))
    return DeepgramSTT.Settings(
        model=MULTILINGUAL_MODEL, language=MULTILINGUAL, extra={"language_hint": hints}
    )


class LanguageSwitch(FrameProcessor):
    """Sits after speech-to-text on a call that listens for its caller's language.

    The call starts in the agent's default language. The first final transcript of at
    least ``MIN_WORDS`` words that Deepgram hears in another declared language switches
    the call to that language, before the transcript goes on to the LLM (so the reply to
    those very words is in it): Deepgram is reconnected with that language and its model
    once the caller's turn ends (pipecat defers it); the Cartesia voices (the backup's
    too) take the language's voice; the LLM's instruction and its reminder after tool
    results name the language; then ``on_switch(old, new)`` moves the rest of the call
    (its words, prompts and record). It happens once: a call never switches back.
    """

    def __init__(
        self,
        *,
        languages: Languages,
        language: Language,
        tts: list[FrameProcessor],
        llm: list[FrameProcessor],
        instruction: Callable[[Language], str],
        on_switch: Callable[[Language, Language], None],
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self._languages = languages
        self._language = language
        self._tts = [service for service in tts if isinstance(service, CartesiaTTSService)]
        self._llm = [s for s in llm if isinstance(s, SharedClientOpenAILLMService)]
        self._instruction = instruction
        self._on_switch = on_switch
        self._switched = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame) and not self._switched:
            heard = self._heard_in(frame)
            if heard is not None:
                await self._switch_to(heard)
        await self.push_frame(frame, direction)

    def _heard_in(self, frame: TranscriptionFrame) -> Language | None:
        """The declared language, other than the call's, that ``frame``'s words are in."""
        if frame.language is None or len(frame.text.split()) < MIN_WORDS:
            return None
        heard = self._languages.find(str(frame.language))
        return heard if heard is not None and heard.code != self._language.code else None

    async def _switch_to(self, language: Language) -> None:
        old, self._language, self._switched = self._language, language, True
        # The hints were for the multilingual model; the language's own model takes none.
        stt = DeepgramSTT.Settings(
            model=language.stt_model, language=language.code, extra={"language_hint": None}
        )
        await self.push_frame(STTUpdateSettingsFrame(delta=stt), FrameDirection.UPSTREAM)
        voice = CartesiaTTSService.Settings(voice=language.voice_id, language=language.code)
        for service in self._tts:
            await self.push_frame(TTSUpdateSettingsFrame(delta=voice, service=service))
        instruction = OpenAILLMService.Settings(system_instruction=self._instruction(language))
        for service in self._llm:
            service.reminder = self._languages.reminder(language)
            await self.push_frame(LLMUpdateSettingsFrame(delta=instruction, service=service))
        self._on_switch(old, language)
        logger.info(
            f"Call language: switched to {language.name} from {old.name}, heard in the "
            "caller's words"
        )

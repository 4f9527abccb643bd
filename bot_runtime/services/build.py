"""The call's speech-to-text, LLM and text-to-speech services, built from the settings."""

from dataclasses import dataclass
from functools import cached_property

# The Deepgram SDK imports its streaming client on the first connect, inside the first
# caller's greeting. Importing it here moves that to start-up.
import deepgram.listen.v1.client  # noqa: F401
from pipecat.pipeline.llm_switcher import LLMSwitcher
from pipecat.pipeline.service_switcher import ServiceSwitcher, ServiceSwitcherStrategyFailover
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.services.llm_service import LLMService
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService

from bot_runtime.config.languages import DEFAULT_LANGUAGE, Language, base
from bot_runtime.config.settings import LOCAL, BotSettings
from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from bot_runtime.services.deepgram import DeepgramSTT
from bot_runtime.services.first_phrase import CartesiaPhraseFirstTTS
from bot_runtime.services.shared_clients import SharedClientOpenAILLMService, warm_up_openai_sdk
from bot_runtime.turns import shared_models


def prepare_services(settings: BotSettings) -> None:
    """Do now, once per process, the set-up that would otherwise make the first call slow.

    The turn-taking models are loaded and run once. Each service is built once and
    dropped. That loads the chosen local models (kept for every call) and does the
    cloud SDKs' first-use work: the first Deepgram client, the shared OpenAI client and
    the OpenAI SDK's first streamed request each cost the first call time that later
    ones do not pay (docs/performance.md).
    """
    shared_models.prepare_models()
    build_stt(settings)
    build_tts_with_backup(settings)
    build_llm_with_backup(settings, system_instruction=settings.system_prompt)
    if settings.llm_provider != LOCAL:
        warm_up_openai_sdk()


def default_language(settings: BotSettings) -> Language:
    """The agent's default language: what a call speaks unless something chose another."""
    return settings.languages.by_code[settings.languages.default]


def build_stt(
    settings: BotSettings,
    *,
    language: Language | None = None,
    listening: DeepgramSTT.Settings | None = None,
) -> STTService:
    """Deepgram streaming speech-to-text at the phone's sample rate, in the call's
    ``language`` with its model (or with ``listening``'s, on a call that listens for its
    caller's language), or local Whisper in the call's language.

    Phone audio is 8 kHz end to end: asking every service for 8 kHz means nothing on
    the path resamples (resampling 20 ms chunks is what makes phone bots sound choppy).
    """
    language = language or default_language(settings)
    if settings.stt_provider == LOCAL:
        from bot_runtime.services import local_models, local_services

        return local_services.LocalWhisperSTTService(
            model=local_models.whisper(), language=base(language.code)
        )
    return DeepgramSTT(
        api_key=settings.deepgram_api_key,
        base_url=settings.deepgram_base_url or "",
        sample_rate=PHONE_SAMPLE_RATE,
        settings=listening
        or DeepgramSTT.Settings(model=language.stt_model, language=language.code),
    )


@dataclass(frozen=True)
class BackedUp:
    """A service and its backup, if any; ``node`` is what the pipeline holds: the service,
    or a switcher that moves to the backup when the service can no longer work."""

    primary: FrameProcessor
    backup: FrameProcessor | None = None

    @cached_property
    def node(self) -> FrameProcessor:
        if self.backup is None:
            return self.primary
        if isinstance(self.primary, LLMService):
            return LLMSwitcher([self.primary, self.backup], ServiceSwitcherStrategyFailover)
        return ServiceSwitcher([self.primary, self.backup], ServiceSwitcherStrategyFailover)

    @property
    def services(self) -> list[FrameProcessor]:
        return [self.primary] if self.backup is None else [self.primary, self.backup]


def build_llm_with_backup(
    settings: BotSettings, *, system_instruction: str, reminder: str | None = None
) -> BackedUp:
    """The call's LLM, and BACKUP_OPENAI_* as its backup when set; both tell the model
    ``reminder`` after a tool's result (see SharedClientOpenAILLMService)."""
    primary = build_llm(settings, system_instruction=system_instruction, reminder=reminder)
    backup = settings.backup_llm
    if backup is None:
        return BackedUp(primary)
    return BackedUp(
        primary,
        SharedClientOpenAILLMService(
            api_key=backup.api_key or "not-needed",
            base_url=backup.base_url,
            settings=OpenAILLMService.Settings(
                model=backup.model, system_instruction=system_instruction
            ),
            reminder=reminder,
        ),
    )


def build_tts_with_backup(settings: BotSettings, *, language: Language | None = None) -> BackedUp:
    """The call's voice in its ``language``, and BACKUP_TTS_PROVIDER's voice as its backup
    when set.

    A backup Cartesia speaks the language too, with BACKUP_CARTESIA_VOICE_ID in the
    default language and the language's own voice in the others. The local backup voice
    speaks English only: a call in another language goes without it rather than hear its
    words with English sounds (the recorded apology covers a failed voice).
    """
    language = language or default_language(settings)
    primary = build_tts(settings, language=language)
    backup = settings.backup_tts
    if backup is None:
        return BackedUp(primary)
    if backup.provider == LOCAL:
        if base(language.code) != DEFAULT_LANGUAGE:
            return BackedUp(primary)
        from bot_runtime.services import local_models, local_services

        return BackedUp(
            primary, local_services.LocalPiperTTSService(voice=local_models.piper_voice())
        )
    options = {"url": backup.url} if backup.url else {}
    return BackedUp(
        primary,
        CartesiaPhraseFirstTTS(
            api_key=backup.api_key or "",
            sample_rate=PHONE_SAMPLE_RATE,
            settings=CartesiaTTSService.Settings(
                model=settings.cartesia_model,
                voice=(
                    backup.voice_id
                    if language.code == settings.languages.default
                    else language.voice_id
                ),
                language=language.code,
            ),
            **options,
        ),
    )


def build_llm(
    settings: BotSettings, *, system_instruction: str, reminder: str | None = None
) -> LLMService:
    """OpenAI (or any OpenAI-compatible server) with the call's system instruction, or SmolLM2.

    SmolLM2 gets the system prompt alone: it ignores the call's facts and the keypad
    instructions, and every prompt token delays its first word on a CPU.
    """
    if settings.llm_provider == LOCAL:
        from bot_runtime.services import local_models, local_services

        return local_services.LocalLLMService(
            llm=local_models.smollm2(), system_instruction=settings.system_prompt
        )
    return SharedClientOpenAILLMService(
        api_key=settings.openai_api_key or "not-needed",
        base_url=settings.openai_base_url,
        settings=OpenAILLMService.Settings(
            model=settings.openai_model, system_instruction=system_instruction
        ),
        reminder=reminder,
    )


def build_tts(settings: BotSettings, *, language: Language | None = None) -> TTSService:
    """Cartesia streaming text-to-speech in the call's ``language``, with its voice, producing
    8 kHz audio directly; or local Piper."""
    language = language or default_language(settings)
    if settings.tts_provider == LOCAL:
        from bot_runtime.services import local_models, local_services

        return local_services.LocalPiperTTSService(voice=local_models.piper_voice())
    options = {"url": settings.cartesia_url} if settings.cartesia_url else {}
    return CartesiaPhraseFirstTTS(
        api_key=settings.cartesia_api_key,
        sample_rate=PHONE_SAMPLE_RATE,
        settings=CartesiaTTSService.Settings(
            model=settings.cartesia_model, voice=language.voice_id, language=language.code
        ),
        **options,
    )

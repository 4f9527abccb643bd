"""The call's speech-to-text, LLM and text-to-speech services, built from the settings."""

from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.services.deepgram.stt import DeepgramSTTService
from pipecat.services.llm_service import LLMService
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService

from voice_agent.config import LOCAL, BotSettings
from voice_agent.shared_clients import SharedClientOpenAILLMService

# Phone audio is 8 kHz end to end: asking every service for 8 kHz means nothing on the path
# resamples (resampling 20 ms chunks is what makes phone bots sound choppy).
PHONE_SAMPLE_RATE = 8000


def load_local_models(settings: BotSettings) -> None:
    """Load the chosen local models now, once per process, so that no call waits for one.

    The local stack is imported only when chosen: the Docker image does not install it.
    """
    if LOCAL not in (settings.stt_provider, settings.llm_provider, settings.tts_provider):
        return
    from voice_agent import local_models

    if settings.stt_provider == LOCAL:
        local_models.whisper()
    if settings.llm_provider == LOCAL:
        local_models.smollm2()
    if settings.tts_provider == LOCAL:
        local_models.piper_voice()


def build_stt(settings: BotSettings) -> STTService:
    """Deepgram streaming speech-to-text at the phone's sample rate, or local Whisper."""
    if settings.stt_provider == LOCAL:
        from voice_agent import local_models

        return local_models.LocalWhisperSTTService(model=local_models.whisper())
    return DeepgramSTTService(
        api_key=settings.deepgram_api_key,
        base_url=settings.deepgram_base_url or "",
        sample_rate=PHONE_SAMPLE_RATE,
        settings=DeepgramSTTService.Settings(model="nova-3-general", language="en"),
    )


def build_llm(settings: BotSettings, *, system_instruction: str) -> LLMService:
    """OpenAI (or any OpenAI-compatible server) with the call's system instruction, or SmolLM2.

    SmolLM2 gets the system prompt alone: it ignores the call's facts and the keypad
    instructions, and every prompt token delays its first word on a CPU.
    """
    if settings.llm_provider == LOCAL:
        from voice_agent import local_models

        return local_models.LocalLLMService(
            llm=local_models.smollm2(), system_instruction=settings.system_prompt
        )
    return SharedClientOpenAILLMService(
        api_key=settings.openai_api_key or "not-needed",
        base_url=settings.openai_base_url,
        settings=OpenAILLMService.Settings(
            model=settings.openai_model, system_instruction=system_instruction
        ),
    )


def build_tts(settings: BotSettings) -> TTSService:
    """Cartesia streaming text-to-speech, producing 8 kHz audio directly, or local Piper."""
    if settings.tts_provider == LOCAL:
        from voice_agent import local_models

        return local_models.LocalPiperTTSService(voice=local_models.piper_voice())
    options = {"url": settings.cartesia_url} if settings.cartesia_url else {}
    return CartesiaTTSService(
        api_key=settings.cartesia_api_key,
        sample_rate=PHONE_SAMPLE_RATE,
        settings=CartesiaTTSService.Settings(voice=settings.cartesia_voice_id),
        **options,
    )

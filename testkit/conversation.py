"""scripts/call.py's side of a call: lines spoken one at a time, each reply heard and transcribed.

The caller's lines are prepared with the local speech models (Piper speaks typed text,
Whisper transcribes WAV lines and the bot's replies), loaded only when a call needs them.
"""

import asyncio
import sys
import threading
import time
import wave
from pathlib import Path
from types import ModuleType

from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from testkit.call_log import CallLog
from testkit.caller_audio import Line
from testkit.phone_audio import pcm16_bytes, stereo_to_mono
from testkit.simulated_caller import SimulatedCaller

GREETING_TIMEOUT_SECS = 10.0
REPLY_TIMEOUT_SECS = 15.0
# A pause this long ends a reply; shorter ones are between the sentences of one reply.
REPLY_PAUSE_SECS = 1.2
REPLY_MAX_SECS = 120.0
SILENCE_AROUND_LINE_SECS = 0.3


class UsageError(Exception):
    """Options or files that need fixing; one line, exit 2."""


def local_speech_stack() -> tuple[ModuleType, ModuleType]:
    """The local models and the caller's speech helpers, or a one-line error naming the fix."""
    try:
        from bot_runtime.services import local_models
        from testkit import local_speech
    except ImportError as error:
        raise UsageError(
            f"the local speech stack is not installed ({error}): run `uv sync --group local`"
        ) from None
    return local_models, local_speech


def read_any_wav(path: str) -> bytes:
    """Any 16-bit PCM WAV, mono or stereo, as 8 kHz mono PCM16."""
    try:
        with wave.open(path, "rb") as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
            pcm = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as error:
        raise UsageError(f"--wav {path}: not a readable WAV file ({error})") from None
    if width != 2:
        raise UsageError(f"--wav {path}: need 16-bit PCM, got {8 * width}-bit")
    if channels == 2:
        pcm = stereo_to_mono(pcm)
    elif channels != 1:
        raise UsageError(f"--wav {path}: need mono or stereo, got {channels} channels")
    return local_speech_stack()[0].resample(pcm, rate, PHONE_SAMPLE_RATE)


def _with_silence(pcm: bytes) -> bytes:
    """A line with a short pause around it, as a person takes a breath before speaking."""
    pause = bytes(pcm16_bytes(SILENCE_AROUND_LINE_SECS))
    return pause + pcm + pause


async def prepare_line(kind: str, value: str) -> Line:
    """The line for ``--say TEXT``, ``--wav FILE`` or ``--digits KEYS``."""
    _, speech = local_speech_stack()
    if kind == "digits":
        return Line.keys(value)
    if kind == "say":
        pcm = await speech.synthesize(value, sample_rate=PHONE_SAMPLE_RATE)
        return Line.speech(value, _with_silence(pcm))
    pcm = read_any_wav(value)
    words = await speech.transcribe(pcm, sample_rate=PHONE_SAMPLE_RATE)
    return Line.speech(f"{words} ({Path(value).name})", _with_silence(pcm))


def show(log: CallLog, who: str, text: str) -> None:
    """One line of the live transcript, timed from the start of the call."""
    print(f"[{time.monotonic() - log.started_at:6.1f}s] {who}: {text}", flush=True)


async def converse(
    caller: SimulatedCaller,
    log: CallLog,
    script: list[Line],
    typed: asyncio.Queue[str | None] | None,
) -> None:
    """Hear the greeting, then do the scripted lines, then the typed ones (if any)."""
    assert caller.start_sent_at is not None
    try:
        first = await caller.wait_for_bot_audio(timeout=GREETING_TIMEOUT_SECS)
    except TimeoutError:
        show(log, "bot", f"(no greeting within {GREETING_TIMEOUT_SECS:g} s)")
    else:
        log.greeting_secs = first - caller.start_sent_at
        await _hear_reply(caller, log, first)
    for line in script:
        if not await _do(caller, log, line):
            return
    while typed is not None and not caller.closed_by_server:
        print("you> ", end="", flush=True)
        text = await typed.get()
        if text is None or text.strip() in ("", "/quit"):
            return
        if text.startswith("/press "):
            line = Line.keys(text.removeprefix("/press ").strip())
        else:
            line = await prepare_line("say", text.strip())
        if not await _do(caller, log, line):
            return


async def _do(caller: SimulatedCaller, log: CallLog, line: Line) -> bool:
    """Say or press ``line``, then wait for and transcribe the reply; False if the call ended."""
    if caller.closed_by_server:
        return False
    log.lines_said += 1
    show(log, "caller", line.label)
    try:
        if line.digits:
            await caller.press(line.digits)
            stopped_at = time.monotonic()
        else:
            spoken = await caller.say(line.pcm)
            stopped_at = spoken.started_at + line.words_end_secs
        first = await caller.wait_for_bot_audio(after=stopped_at, timeout=REPLY_TIMEOUT_SECS)
    except TimeoutError:
        show(log, "bot", f"(no reply within {REPLY_TIMEOUT_SECS:g} s)")
        return True
    except (ConnectionError, ValueError) as error:
        show(log, "call", f"ended: {error}")
        return False
    latency = max(0.0, first - stopped_at)
    log.turn_secs.append(latency)
    await _hear_reply(caller, log, first, latency=latency)
    return not caller.closed_by_server


async def _hear_reply(
    caller: SimulatedCaller, log: CallLog, first: float, *, latency: float | None = None
) -> None:
    """Wait for the bot to finish, then print what Whisper heard in its reply."""
    try:
        until = await caller.wait_for_bot_silence(
            quiet_secs=REPLY_PAUSE_SECS, timeout=REPLY_MAX_SECS
        )
    except TimeoutError:
        until = None
    pcm = caller.heard_pcm(first, until)
    words = await local_speech_stack()[1].transcribe(pcm, sample_rate=PHONE_SAMPLE_RATE)
    timing = f" ({latency:.2f} s)" if latency is not None else " (greeting)"
    show(log, f"bot{timing}", words or "(nothing intelligible)")


def typed_lines() -> asyncio.Queue[str | None]:
    """Lines typed at the prompt; a daemon thread reads them, so exiting never waits on it."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        for text in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, text.rstrip("\n"))
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=read, name="call-input", daemon=True).start()
    return lines

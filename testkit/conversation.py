"""scripts/call.py's side of a call: lines spoken one at a time, each reply heard and transcribed.

The caller's lines are prepared with the local speech models (Piper speaks typed text,
Whisper transcribes WAV lines and the bot's replies), loaded only when a call needs them.
"""

import asyncio
import dataclasses
import sys
import threading
import time
import wave
from pathlib import Path
from types import ModuleType

from bot_runtime.phone_line import PHONE_SAMPLE_RATE, SILENCE_PROMPT_MARK
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
# A mark is echoed when the audio before it has played: the silence prompt's comes just
# before the prompt's first audio, within this much of it.
MARK_BEFORE_AUDIO_SECS = 0.5


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


async def prepare_line(
    kind: str, value: str, *, over_after_secs: float = 1.0, language: str = "en"
) -> Line:
    """The line for ``--say TEXT``, ``--say-over TEXT``, ``--wav FILE`` or ``--digits KEYS``;
    ``--say-over`` is said ``over_after_secs`` into the bot's reply before it. A WAV's
    words are transcribed as ``language`` (a Whisper code)."""
    _, speech = local_speech_stack()
    if kind == "digits":
        return Line.keys(value)
    if kind in ("say", "say-over"):
        pcm = await speech.synthesize(value, sample_rate=PHONE_SAMPLE_RATE)
        line = Line.speech(value, _with_silence(pcm))
        if kind == "say-over":
            line = dataclasses.replace(line, over_bot_after_secs=over_after_secs)
        return line
    pcm = read_any_wav(value)
    words = await speech.transcribe(pcm, sample_rate=PHONE_SAMPLE_RATE, language=language)
    return Line.speech(f"{words} ({Path(value).name})", _with_silence(pcm))


def show(log: CallLog, who: str, text: str) -> None:
    """One line of the live transcript, timed from the start of the call."""
    print(f"[{time.monotonic() - log.started_at:6.1f}s] {who}: {text}", flush=True)


async def converse(
    caller: SimulatedCaller,
    log: CallLog,
    script: list[Line],
    typed: asyncio.Queue[str | None] | None,
    *,
    language: str = "en",
) -> None:
    """Hear the greeting, then do the scripted lines, then the typed ones (if any).

    The bot's words are transcribed as ``language`` (a Whisper code): the call's.
    """
    assert caller.start_sent_at is not None
    try:
        first = await caller.wait_for_bot_audio(timeout=GREETING_TIMEOUT_SECS)
    except TimeoutError:
        show(log, "bot", f"(no greeting within {GREETING_TIMEOUT_SECS:g} s)")
    else:
        log.greeting_secs = first - caller.start_sent_at
        await _hear_reply(
            caller, log, first, label="greeting", cut_in=_cut_in(script, 0), language=language
        )
    for index, line in enumerate(script):
        if not await _do(caller, log, line, cut_in=_cut_in(script, index + 1), language=language):
            return
    while typed is not None and not caller.closed_by_server:
        print("you> ", end="", flush=True)
        text = await typed.get()
        if text is None or text.strip() in ("", "/quit"):
            return
        if text.startswith("/press "):
            line = Line.keys(text.removeprefix("/press ").strip())
        else:
            line = await prepare_line("say", text.strip(), language=language)
        if not await _do(caller, log, line, language=language):
            return


def _cut_in(script: list[Line], index: int) -> float | None:
    """When the line at ``index`` (if any) cuts into the reply before it."""
    return script[index].over_bot_after_secs if index < len(script) else None


async def _do(
    caller: SimulatedCaller,
    log: CallLog,
    line: Line,
    *,
    cut_in: float | None = None,
    language: str = "en",
) -> bool:
    """Say or press ``line``, then wait for and transcribe the reply; False if the call ended.

    ``cut_in``: the next line is said that long into this reply, over the bot.
    """
    if caller.closed_by_server:
        return False
    log.lines_said += 1
    over = line.over_bot_after_secs is not None
    show(log, "caller (over the bot)" if over else "caller", line.label)
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
    if _silence_prompt_between(caller, stopped_at, first):
        # The bot heard no turn to answer and asked whether anyone is there: no reply.
        log.silence_prompts += 1
        label = f"silence prompt, {latency:.2f} s after the line; no reply to it"
    else:
        log.turn_secs.append(latency)
        label = f"{latency:.2f} s"
    await _hear_reply(caller, log, first, label=label, cut_in=cut_in, language=language)
    return not caller.closed_by_server


def _silence_prompt_between(caller: SimulatedCaller, since: float, first: float) -> bool:
    """Whether the bot's audio at ``first`` is its silence prompt: it sends a mark so named
    just before it."""
    return any(
        name.startswith(SILENCE_PROMPT_MARK) and since <= at <= first + MARK_BEFORE_AUDIO_SECS
        for at, name in caller.marks_echoed
    )


async def _hear_reply(
    caller: SimulatedCaller,
    log: CallLog,
    first: float,
    *,
    label: str,
    cut_in: float | None = None,
    language: str = "en",
) -> None:
    """Wait for the bot to finish (or, with ``cut_in``, that long into its reply), then
    print what Whisper heard of it."""
    timeout = REPLY_MAX_SECS if cut_in is None else max(0.0, first + cut_in - time.monotonic())
    try:
        until = await caller.wait_for_bot_silence(quiet_secs=REPLY_PAUSE_SECS, timeout=timeout)
    except TimeoutError:
        until = None
        if cut_in is not None:
            label += f"; cut in {cut_in:g} s into it"
    pcm = caller.heard_pcm(first, until)
    words = await local_speech_stack()[1].transcribe(
        pcm, sample_rate=PHONE_SAMPLE_RATE, language=language
    )
    show(log, f"bot ({label})", words or "(nothing intelligible)")


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

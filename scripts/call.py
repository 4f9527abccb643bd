"""Call the bot as Twilio would, from a terminal, and hear (transcribed) what it says back.

    uv run scripts/call.py --say "What time do you open on Saturday?"
    uv run scripts/call.py --wav caller.wav --digits 12# --record call.wav
    uv run scripts/call.py --interactive

The caller's lines are spoken one at a time, each after the bot's previous reply has
finished. The bot's side of the transcript is what this caller heard, transcribed by
the local Whisper model: it checks end to end that the bot's audio is intelligible.
"""

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import load_dotenv
from loguru import logger
from websockets.exceptions import InvalidHandshake, InvalidURI

from testkit.simulated_caller import (
    DTMF_DIGITS,
    FRAME_SECS,
    QUIET_RMS,
    SAMPLE_RATE,
    TEST_ACCOUNT_SID,
    SimulatedCaller,
    audioop,
)

PROG = "call.py"
EXIT_CALL_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEFAULT_URL = "ws://localhost:7860/ws"
# Fictional numbers (555-01xx) so the bot knows who is calling without a REST lookup.
DEFAULT_PARAMETERS = {"from_number": "+15555550123", "to_number": "+15555550199"}
GREETING_TIMEOUT_SECS = 10.0
REPLY_TIMEOUT_SECS = 15.0
# A pause this long ends a reply; shorter ones are between the sentences of one reply.
REPLY_PAUSE_SECS = 1.2
REPLY_MAX_SECS = 120.0
SILENCE_AROUND_LINE_SECS = 0.3


class UsageError(Exception):
    """Options or files that need fixing; one line, exit 2."""


@dataclass(frozen=True)
class Line:
    """One thing the caller does: speak (``pcm``, with the words if known) or press keys."""

    label: str
    pcm: bytes = b""
    digits: str = ""


@dataclass
class CallLog:
    """What this caller saw, for the live transcript and the summary."""

    started_at: float = field(default_factory=time.monotonic)
    greeting_secs: float | None = None
    latencies: list[float] = field(default_factory=list)
    turns: int = 0
    ended: str = "the caller hung up"

    def say(self, who: str, text: str) -> None:
        print(f"[{time.monotonic() - self.started_at:6.1f}s] {who}: {text}", flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog="--say, --wav and --digits are done in the order given.",
    )
    parser.add_argument("--url", default=DEFAULT_URL, help=f"bot websocket (default {DEFAULT_URL})")
    parser.add_argument(
        "--say",
        action="append",
        dest="lines",
        type=lambda t: ("say", t),
        metavar="TEXT",
        help="say TEXT (spoken by the local Piper voice)",
    )
    parser.add_argument(
        "--wav",
        action="append",
        dest="lines",
        type=lambda p: ("wav", p),
        metavar="FILE",
        help="play a WAV file (16-bit PCM, any rate; mixed to mono, resampled to 8 kHz)",
    )
    parser.add_argument(
        "--digits",
        action="append",
        dest="lines",
        type=lambda d: ("digits", d),
        metavar="KEYS",
        help=f"press keypad keys, from {DTMF_DIGITS}",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a <Stream> <Parameter> (customParameters), e.g. --param customer_id=42",
    )
    parser.add_argument(
        "--account-sid",
        default=None,
        help="accountSid to send (default: TWILIO_ACCOUNT_SID, else a test SID)",
    )
    parser.add_argument("--record", type=Path, metavar="FILE", help="write a stereo WAV")
    parser.add_argument(
        "--interactive", action="store_true", help="type lines at a prompt after the scripted ones"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # The transcript is the output; the libraries' progress logs would bury it.
    logger.remove()
    logger.add(sys.stderr, level="WARNING", format="{level}: {message}")
    load_dotenv(".env")  # TWILIO_ACCOUNT_SID and STREAM_SECRET, as the bot reads them.
    try:
        parameters = _parameters(args.param, stream_secret=os.environ.get("STREAM_SECRET"))
        _check_files(args.lines or [], args.record)
        return asyncio.run(_run(args, parameters))
    except UsageError as error:
        return _fail(str(error), EXIT_USAGE)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (OSError, InvalidURI, InvalidHandshake, TimeoutError) as error:
        return _fail(f"cannot connect to {args.url}: {error}", EXIT_CALL_FAILED)


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def _parameters(options: list[str], *, stream_secret: str | None) -> dict[str, str]:
    """customParameters: defaults, STREAM_SECRET if set, then --param (NAME=VALUE)."""
    parameters = dict(DEFAULT_PARAMETERS)
    if stream_secret:
        parameters["stream_secret"] = stream_secret
    given: set[str] = set()
    for option in options:
        name, equals, value = option.partition("=")
        if not equals or not name.strip():
            raise UsageError(f"--param {option}: write it as NAME=VALUE, e.g. customer_id=42")
        if name in given:
            raise UsageError(f"--param {option}: {name!r} is given twice")
        given.add(name)
        parameters[name] = value
    return parameters


def _check_files(lines: list[tuple[str, str]], record: Path | None) -> None:
    """Refuse missing inputs and bad keys before the call, not in the middle of it."""
    for kind, value in lines:
        if kind == "wav" and not Path(value).is_file():
            raise UsageError(f"--wav {value}: no such file")
        if kind == "digits" and (not value or any(d not in DTMF_DIGITS for d in value)):
            raise UsageError(f"--digits {value}: keys must be from {DTMF_DIGITS}")
    if record and not record.resolve().parent.is_dir():
        raise UsageError(f"--record {record}: the folder does not exist")


def _local_models():
    """The local speech stack, or a one-line error naming how to install it."""
    try:
        from bot_runtime import local_models
        from testkit import local_speech
    except ImportError as error:
        raise UsageError(
            f"the local speech stack is not installed ({error}): run `uv sync --group local`"
        ) from None
    return local_models, local_speech


def _read_wav(path: str) -> bytes:
    """Any 16-bit PCM WAV as 8 kHz mono PCM16."""
    try:
        with wave.open(path, "rb") as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
            pcm = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as error:
        raise UsageError(f"--wav {path}: not a readable WAV file ({error})") from None
    if width != 2:
        raise UsageError(f"--wav {path}: need 16-bit PCM, got {8 * width}-bit")
    if channels == 2:
        pcm = audioop.tomono(pcm, 2, 0.5, 0.5)
    elif channels != 1:
        raise UsageError(f"--wav {path}: need mono or stereo, got {channels} channels")
    return _local_models()[0].resample(pcm, rate, SAMPLE_RATE)


def _with_silence(pcm: bytes) -> bytes:
    """A line with a short pause around it, as a person takes a breath before speaking."""
    pause = b"\x00\x00" * round(SAMPLE_RATE * SILENCE_AROUND_LINE_SECS)
    return pause + pcm + pause


async def _prepare(kind: str, value: str) -> Line:
    _, speech = _local_models()
    if kind == "digits":
        return Line(label=f"[keys {value}]", digits=value)
    if kind == "say":
        pcm = await speech.synthesize(value, sample_rate=SAMPLE_RATE)
        return Line(label=value, pcm=_with_silence(pcm))
    pcm = _read_wav(value)
    words = await speech.transcribe(pcm, sample_rate=SAMPLE_RATE)
    return Line(label=f"{words} ({Path(value).name})", pcm=_with_silence(pcm))


def _speech_secs(pcm: bytes) -> float:
    """Where the speech in ``pcm`` ends (trailing silence excluded), in seconds."""
    frame = round(SAMPLE_RATE * FRAME_SECS) * 2
    ends = [
        i + frame
        for i in range(0, len(pcm), frame)
        if audioop.rms(pcm[i : i + frame], 2) > QUIET_RMS
    ]
    return (ends[-1] if ends else len(pcm)) / 2 / SAMPLE_RATE


async def _run(args: argparse.Namespace, parameters: dict[str, str]) -> int:
    models, _ = _local_models()
    print("Loading the local speech models...", flush=True)
    await asyncio.to_thread(models.whisper)
    script = [await _prepare(kind, value) for kind, value in args.lines or []]
    typed = _typed_lines() if args.interactive else None
    account_sid = args.account_sid or os.environ.get("TWILIO_ACCOUNT_SID") or TEST_ACCOUNT_SID

    log = CallLog()
    caller = SimulatedCaller(args.url, custom_parameters=parameters, account_sid=account_sid)
    try:
        async with caller:
            log.started_at = time.monotonic()
            print(f"Connected to {args.url}: call {caller.call_sid}, stream {caller.stream_sid}")
            await _converse(caller, log, script, typed)
    except asyncio.CancelledError:
        log.ended = "interrupted (Ctrl-C): the caller hung up"
        raise
    finally:
        if caller.closed_by_server:
            log.ended = f"the bot ended the call (websocket closed, code {caller.close_code})"
        if args.record and caller.start_sent_at is not None:
            caller.stereo_wav(args.record)
        if caller.start_sent_at is not None:
            _print_summary(log, caller, args.record)
    return 0


async def _converse(
    caller: SimulatedCaller,
    log: CallLog,
    script: list[Line],
    typed: asyncio.Queue[str | None] | None,
) -> None:
    assert caller.start_sent_at is not None
    try:
        first = await caller.wait_for_bot_audio(timeout=GREETING_TIMEOUT_SECS)
    except TimeoutError:
        log.say("bot", f"(no greeting within {GREETING_TIMEOUT_SECS:g} s)")
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
            line = Line(label=f"[keys {text[7:].strip()}]", digits=text[7:].strip())
        else:
            line = await _prepare("say", text.strip())
        if not await _do(caller, log, line):
            return


async def _do(caller: SimulatedCaller, log: CallLog, line: Line) -> bool:
    """Say or press ``line``, then wait for and transcribe the reply; False if the call ended."""
    if caller.closed_by_server:
        return False
    log.turns += 1
    log.say("caller", line.label)
    try:
        if line.digits:
            await caller.press(line.digits)
            stopped_at = time.monotonic()
        else:
            spoken = await caller.say(line.pcm)
            stopped_at = spoken.started_at + _speech_secs(line.pcm)
        first = await caller.wait_for_bot_audio(after=stopped_at, timeout=REPLY_TIMEOUT_SECS)
    except TimeoutError:
        log.say("bot", f"(no reply within {REPLY_TIMEOUT_SECS:g} s)")
        return True
    except (ConnectionError, ValueError) as error:
        log.say("call", f"ended: {error}")
        return False
    latency = max(0.0, first - stopped_at)
    log.latencies.append(latency)
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
    words = await _local_models()[1].transcribe(pcm, sample_rate=SAMPLE_RATE)
    timing = f" ({latency:.2f} s)" if latency is not None else " (greeting)"
    log.say(f"bot{timing}", words or "(nothing intelligible)")


def _typed_lines() -> asyncio.Queue[str | None]:
    """Lines typed at the prompt; a daemon thread reads them, so exiting never waits on it."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        for text in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, text.rstrip("\n"))
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=read, name="call-input", daemon=True).start()
    return lines


def _barge_ins(caller: SimulatedCaller) -> int:
    """Clears that cut the bot off: the bot sends one at every caller turn, speaking or not,
    and only those that stopped play-out leave a segment ending at that very moment."""
    cut_at = {end for _start, end in caller.bot_segments()}
    return sum(1 for cleared_at in caller.clears if cleared_at in cut_at)


def _print_summary(log: CallLog, caller: SimulatedCaller, record: Path | None) -> None:
    print("--- call summary ---")
    print(f"turns: {log.turns} (bot replies heard: {len(log.latencies)})")
    if log.greeting_secs is not None:
        print(f"greeting: first bot audio {log.greeting_secs:.2f} s after the stream started")
    if log.latencies:
        p50, worst = statistics.median(log.latencies), max(log.latencies)
        print(f"reply latency (caller stops -> bot audio): p50 {p50:.2f} s, max {worst:.2f} s")
    print(f"barge-ins: {_barge_ins(caller)} (bot speech cut short by a clear)")
    print(f"ended: {log.ended}")
    if record:
        print(f"recording: {record} (caller left, bot right)")


if __name__ == "__main__":
    sys.exit(main())

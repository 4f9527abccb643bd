"""The call simulator's command line (scripts/call.py): options, checks, the call, its summary."""

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import load_dotenv
from websockets.exceptions import InvalidHandshake, InvalidURI

from bot_runtime.config.languages import LANGUAGE_PARAMETER, base, canonical
from bot_runtime.phone_line import STREAM_SECRET_PARAMETER
from testkit import conversation
from testkit.call_log import CallLog
from testkit.conversation import REPLY_MAX_SECS, UsageError
from testkit.media_stream import DTMF_DIGITS, TEST_ACCOUNT_SID
from testkit.scenario import INBOUND
from testkit.simulated_caller import SimulatedCaller

PROG = "call.py"
DESCRIPTION = (
    "Call the bot as Twilio would, from a terminal, and hear (transcribed) what it says back."
)
EXIT_CALL_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEFAULT_URL = "ws://localhost:7860/ws"
# Into a reply, where a caller who has heard enough cuts in.
DEFAULT_OVER_AFTER_SECS = 1.0
START_THE_BOT = "uv run bot.py -t twilio"
# Long enough for a bot behind a tunnel to accept a connection; a local one does at once.
REACH_TIMEOUT_SECS = 5.0
# Made-up numbers, so the bot knows who is calling without a REST lookup.
DEFAULT_PARAMETERS = INBOUND
# The caller's lines, done in the order given: (option, kind, metavar, help).
LINE_OPTIONS = [
    ("--say", "say", "TEXT", "say TEXT (spoken by the local Piper voice)"),
    (
        "--say-over",
        "say-over",
        "TEXT",
        "say TEXT over the bot, --after seconds into its reply before it (a barge-in)",
    ),
    (
        "--wav",
        "wav",
        "FILE",
        "play a WAV file (16-bit PCM, any rate; mixed to mono, resampled to 8 kHz)",
    ),
    ("--digits", "digits", "KEYS", f"press keypad keys, from {DTMF_DIGITS}"),
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog="--say, --say-over, --wav and --digits are done in the order given; "
        "each waits for the bot's reply to the one before to end, but --say-over.",
    )
    parser.add_argument("--url", default=DEFAULT_URL, help=f"bot websocket (default {DEFAULT_URL})")
    for option, kind, metavar, help_text in LINE_OPTIONS:
        parser.add_argument(
            option,
            action="append",
            dest="lines",
            type=lambda value, kind=kind: (kind, value),
            metavar=metavar,
            help=help_text,
        )
    parser.add_argument(
        "--after",
        type=_seconds,
        default=DEFAULT_OVER_AFTER_SECS,
        metavar="SECS",
        help="how far into the bot's reply each --say-over starts "
        f"(default {DEFAULT_OVER_AFTER_SECS:g})",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a <Stream> <Parameter> (customParameters), e.g. --param customer_id=42",
    )
    parser.add_argument(
        "--language",
        metavar="CODE",
        help="the call's language, one the agent file declares (e.g. es): sent as the "
        "`language` parameter; the bot's words are transcribed in it",
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


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= REPLY_MAX_SECS:
        raise argparse.ArgumentTypeError(f"{value!r}: give seconds from 0 to {REPLY_MAX_SECS:g}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    """Run one call from the command line; the exit code says how it went.

    Set the logs up first (scripts/call.py does): the transcript goes to stdout.
    """
    args = _parser().parse_args(argv)
    load_dotenv(".env")  # TWILIO_ACCOUNT_SID and STREAM_SECRET, as the bot reads them.
    try:
        parameters = _parameters(
            args.param, stream_secret=os.environ.get("STREAM_SECRET"), language=args.language
        )
        _check_files(args.lines or [], args.record)
        return asyncio.run(_run(args, parameters))
    except BotUnreachable as error:
        return _fail(str(error), EXIT_CALL_FAILED)
    except UsageError as error:
        return _fail(str(error), EXIT_USAGE)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (OSError, InvalidURI, InvalidHandshake, TimeoutError) as error:
        return _fail(f"cannot connect to {args.url}: {error}", EXIT_CALL_FAILED)


class BotUnreachable(Exception):
    """Nothing listens at the bot's URL; one line, exit 1."""


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def _parameters(
    options: list[str], *, stream_secret: str | None, language: str | None = None
) -> dict[str, str]:
    """customParameters: defaults, STREAM_SECRET if set, --language, then --param (NAME=VALUE)."""
    parameters = dict(DEFAULT_PARAMETERS)
    if stream_secret:
        parameters[STREAM_SECRET_PARAMETER] = stream_secret
    given: set[str] = set()
    if language is not None:
        if canonical(language) is None:
            raise UsageError(f"--language {language}: give a language code, e.g. es or pt-BR")
        parameters[LANGUAGE_PARAMETER] = language
        given.add(LANGUAGE_PARAMETER)
    for option in options:
        name, equals, value = option.partition("=")
        if not equals or not name.strip():
            raise UsageError(f"--param {option}: write it as NAME=VALUE, e.g. customer_id=42")
        if name in given:
            twice = "by --language too" if name == LANGUAGE_PARAMETER else "twice"
            raise UsageError(f"--param {option}: {name!r} is given {twice}")
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


def _whisper_language(code: str | None, known: list[str]) -> str:
    """The Whisper code for the call's language ("pt-BR" -> "pt"); English without one."""
    if code is None:
        return "en"
    if base(code) not in known:
        raise UsageError(f"--language {code}: the local Whisper cannot transcribe {base(code)!r}")
    return base(code)


async def _check_reachable(url: str) -> None:
    """Fail in a moment, naming the command that starts the bot, when nothing listens at
    ``url``: loading the speech models first would keep the caller waiting for nothing."""
    parts = urlsplit(url)
    if not parts.hostname:
        return  # Not a URL: the websocket client says so.
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, port), REACH_TIMEOUT_SECS
        )
    except (OSError, TimeoutError) as error:
        reason = "connection refused" if isinstance(error, ConnectionRefusedError) else error
        start = START_THE_BOT + (f" --port {port}" if port != 7860 else "")
        raise BotUnreachable(
            f"no bot answers at {url} ({reason or 'timed out'}): is it running? "
            f"Start it in another terminal with `{start}`"
        ) from None
    writer.close()


async def _run(args: argparse.Namespace, parameters: dict[str, str]) -> int:
    await _check_reachable(args.url)
    models, _ = conversation.local_speech_stack()
    print("Loading the local speech models...", flush=True)
    whisper = await asyncio.to_thread(models.whisper)
    language = _whisper_language(parameters.get(LANGUAGE_PARAMETER), whisper.supported_languages)
    if language != "en" and any(kind.startswith("say") for kind, _ in args.lines or []):
        print(
            f"{PROG}: note: --say speaks with the local Piper voice, which is English only; "
            "for a caller speaking another language, play recordings with --wav",
            file=sys.stderr,
        )
    script = [
        await conversation.prepare_line(kind, value, over_after_secs=args.after, language=language)
        for kind, value in args.lines or []
    ]
    typed = conversation.typed_lines() if args.interactive else None
    account_sid = args.account_sid or os.environ.get("TWILIO_ACCOUNT_SID") or TEST_ACCOUNT_SID

    log = CallLog()
    caller = SimulatedCaller(args.url, custom_parameters=parameters, account_sid=account_sid)
    try:
        async with caller:
            log.started_at = time.monotonic()
            print(f"Connected to {args.url}: call {caller.call_sid}, stream {caller.stream_sid}")
            await conversation.converse(caller, log, script, typed, language=language)
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


def _barge_ins(caller: SimulatedCaller) -> int:
    """Clears that cut the bot off: the bot sends one at every caller turn, speaking or not,
    and only those that stopped play-out leave a segment ending at that very moment."""
    cut_at = {end for _start, end in caller.bot_segments()}
    return sum(1 for cleared_at in caller.clears if cleared_at in cut_at)


def _print_summary(log: CallLog, caller: SimulatedCaller, record: Path | None) -> None:
    print("--- call summary ---")
    prompts = f", silence prompts: {log.silence_prompts}" if log.silence_prompts else ""
    print(f"turns: {log.lines_said} (bot replies heard: {len(log.turn_secs)}{prompts})")
    if log.greeting_secs is not None:
        print(f"greeting: first bot audio {log.greeting_secs:.2f} s after the stream started")
    if log.turn_secs:
        p50, worst = statistics.median(log.turn_secs), max(log.turn_secs)
        print(f"reply latency (caller stops -> bot audio): p50 {p50:.2f} s, max {worst:.2f} s")
    print(f"barge-ins: {_barge_ins(caller)} (bot speech cut short by a clear)")
    print(f"ended: {log.ended}")
    if record:
        print(f"recording: {record} (caller left, bot right)")

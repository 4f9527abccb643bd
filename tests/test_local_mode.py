"""Keyless local mode end to end: the bot on Whisper, SmolLM2 and Piper, heard by a caller."""

import asyncio
import re
import subprocess
import sys
import wave

import pytest

from bot_runtime.config.settings import DEFAULT_GREETING
from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from bot_runtime.services import local_models
from testkit import local_speech
from testkit.bot_server import REPO, BotServer, free_port, start_bot_server
from testkit.caller_audio import AUDIO, caller_line
from testkit.phone_audio import read_wav_8k
from testkit.scenario import INBOUND
from testkit.simulated_caller import SimulatedCaller

# Generous: two calls, three models and this test's own Whisper share two cores.
TIMEOUT_SECS = 45
# A pause this long ends a reply (shorter ones fall between its sentences).
REPLY_PAUSE_SECS = 1.2
MODEL_LOADS = ("Loaded local STT model", "Loaded local LLM", "Loaded local TTS voice")


@pytest.fixture(scope="session")
async def local_bot(tmp_path_factory):
    """The bot with no cloud key at all: every service is local."""
    log_path = tmp_path_factory.mktemp("local-bot") / "bot.log"
    server = await start_bot_server({"SILENCE_TIMEOUT_SECS": "30"}, log_path=log_path)
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def transcriber():
    """This process's own Whisper, to hear the bot as a caller would."""
    await asyncio.to_thread(local_models.whisper)

    async def transcribe(pcm: bytes) -> str:
        return await local_speech.transcribe(pcm, sample_rate=PHONE_SAMPLE_RATE)

    return transcribe


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))


def call_script(*args: str, timeout_secs: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "scripts/call.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_secs,
    )


async def greeting_and_reply(bot: BotServer) -> tuple[bytes, bytes]:
    """One call: hear the greeting, say a line from testkit/audio, hear the reply."""
    async with SimulatedCaller(bot.url, custom_parameters=INBOUND) as caller:
        greeting_at = await caller.wait_for_bot_audio(timeout=TIMEOUT_SECS)
        greeting_end = await caller.wait_for_bot_silence(
            quiet_secs=REPLY_PAUSE_SECS, timeout=TIMEOUT_SECS
        )
        spoken = await caller.say(AUDIO / "saturday.wav")
        reply_at = await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=TIMEOUT_SECS)
        reply_end = await caller.wait_for_bot_silence(
            quiet_secs=REPLY_PAUSE_SECS, timeout=TIMEOUT_SECS
        )
    return caller.heard_pcm(greeting_at, greeting_end), caller.heard_pcm(reply_at, reply_end)


async def test_keyless_bot_greets_and_answers_intelligibly(local_bot, transcriber):
    greeting, reply = await greeting_and_reply(local_bot)
    heard_greeting = await transcriber(greeting)
    heard_reply = await transcriber(reply)
    # Whisper must recognise the known greeting, and find words in the unscripted reply.
    assert len(words(heard_greeting) & words(DEFAULT_GREETING)) >= 3, heard_greeting
    assert words(heard_reply), "the reply was not intelligible speech"


async def test_models_load_once_before_the_first_call_and_serve_concurrent_calls(
    local_bot, transcriber
):
    calls = await asyncio.gather(greeting_and_reply(local_bot), greeting_and_reply(local_bot))
    for _greeting, reply in calls:
        assert words(await transcriber(reply)), "a concurrent call got no intelligible reply"
    lines = local_bot.logs().splitlines()
    first_call = next(i for i, line in enumerate(lines) if "Call started" in line)
    for load in MODEL_LOADS:
        loads = [i for i, line in enumerate(lines) if load in line]
        assert len(loads) == 1, f"{load!r} logged {len(loads)} times"
        assert loads[0] < first_call, f"{load!r} came after a call started"


@pytest.mark.parametrize("name", ["order_status", "saturday", "agree", "human", "goodbye"])
async def test_local_stt_hears_the_caller_lines(transcriber, name):
    heard = await transcriber(read_wav_8k(AUDIO / f"{name}.wav"))
    expected = words(caller_line(name))
    assert len(words(heard) & expected) >= 0.8 * len(expected), heard


async def test_call_script_talks_to_the_bot_and_records_the_call(local_bot, tmp_path):
    record = tmp_path / "call.wav"
    result = await asyncio.to_thread(
        call_script,
        *("--url", local_bot.url, "--wav", str(AUDIO / "saturday.wav")),
        *("--say-over", "Sorry, and on Sunday?", "--after", "0.5"),
        *("--digits", "1#", "--param", "customer_id=42", "--record", str(record)),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "bot (greeting): " in out and "caller: What time do you open on Saturday?" in out
    assert "caller: [keys 1#]" in out
    # --say-over cuts into the reply before it, half a second in.
    assert "; cut in 0.5 s into it): " in out
    assert "caller (over the bot): Sorry, and on Sunday?" in out
    assert re.search(r"reply latency .*: p50 \d+\.\d+ s, max \d+\.\d+ s", out), out
    assert "ended: the caller hung up" in out
    with wave.open(str(record)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, PHONE_SAMPLE_RATE)
        assert wav.getnframes() > 5 * PHONE_SAMPLE_RATE


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--param", "customer_id"], 2, "--param customer_id: write it as NAME=VALUE"),
        (["--wav", "/nonexistent/hello.wav"], 2, "--wav /nonexistent/hello.wav: no such file"),
        (["--digits", "12x"], 2, "--digits 12x: keys must be from"),
        (["--language", "Spanish"], 2, "--language Spanish: give a language code, e.g. es"),
        (["--url", "ws://127.0.0.1:{port}/ws"], 1, "no bot answers at ws://127.0.0.1:"),
    ],
)
async def test_call_script_errors_are_one_line_without_a_traceback(args, code, message):
    args = [arg.format(port=free_port()) for arg in args]
    result = await asyncio.to_thread(call_script, *args)
    assert result.returncode == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"call.py: error: {message}"), result.stderr
    assert "Loading" not in result.stdout  # Said before the models load, in a moment.
    if "--url" in args:
        assert "`uv run bot.py -t twilio --port " in lines[0]


async def test_a_looping_short_window_is_transcribed_again_the_standard_way(
    transcriber, monkeypatch
):
    # A 3 s window makes Whisper repeat "Yes, that works for me." until stopped.
    monkeypatch.setattr(local_models, "SHORT_WINDOW_SECS", 3)
    heard = await transcriber(read_wav_8k(AUDIO / "agree.wav"))
    assert heard.lower().count("works") == 1, heard
    assert words(caller_line("agree")) <= words(heard), heard


async def test_a_clear_goodbye_ends_a_local_call_as_end_call_does(local_bot, transcriber):
    async with SimulatedCaller(local_bot.url, custom_parameters=INBOUND) as caller:
        await caller.wait_for_bot_audio(timeout=TIMEOUT_SECS)
        await caller.wait_for_bot_silence(quiet_secs=REPLY_PAUSE_SECS, timeout=TIMEOUT_SECS)
        spoken = await caller.say(AUDIO / "goodbye.wav")
        await caller.wait_closed(timeout=TIMEOUT_SECS)  # The bot ended the call.
        goodbye = caller.heard_pcm(spoken.ended_at)
    summary = await local_bot.wait_for_log(f"[{caller.call_sid}] Call summary:")
    assert "ended by end_call tool" in summary
    # What the caller heard last was the goodbye (to its end), not an apology for mistakes.
    assert {"goodbye", "calling"} <= words(await transcriber(goodbye)), summary


@pytest.mark.parametrize(
    ("said", "goodbye"),
    [
        ("No, that's everything. Thanks, goodbye.", True),
        ("Goodbye.", True),
        ("OK, bye bye!", True),
        ("Thank you so much, have a nice day.", True),
        ("Thanks.", False),
        ("Can you say goodbye to my wife?", False),
        ("I want to buy a bike.", False),
        ("Goodbye, and where is my order?", False),
    ],
)
def test_only_a_clear_goodbye_counts_as_one(said, goodbye):
    from bot_runtime.turns.farewell import is_farewell

    assert is_farewell(said) is goodbye

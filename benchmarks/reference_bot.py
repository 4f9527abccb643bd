"""The reference bot: what `pipecat init` generates for Twilio with Deepgram, OpenAI and Cartesia.

It is generated afresh at benchmark time with pipecat's own CLI (the installed
pipecat-ai, so both bots run the same library), then pointed at the loopback fakes
with the smallest edits a user would make: the template reads API keys from the
environment but hard-codes the Deepgram, Cartesia and Twilio REST hosts. OpenAI
needs no edit: its SDK reads OPENAI_BASE_URL. Nothing else in it is changed.
"""

import shutil
import subprocess
import sys
from pathlib import Path

INIT_ARGS = [
    "-t", "twilio",
    "-m", "cascade",
    "--stt", "deepgram_stt",
    "--llm", "openai_llm",
    "--tts", "cartesia_tts",
    "--no-deploy-to-cloud",
]  # fmt: skip
GENERATE_TIMEOUT_SECS = 120


class TemplateChanged(RuntimeError):
    """The generated code no longer has the line an adaptation edits."""


def generate_reference_bot(parent: Path, *, twilio_base_url: str) -> Path:
    """Run `pipecat init` into ``parent``, adapt the result, and return its bot.py."""
    shutil.rmtree(parent / "reference-bot", ignore_errors=True)  # A previous run's, with --logs.
    subprocess.run(
        [sys.executable, "-m", "pipecat.cli.main", "init", "reference-bot", *INIT_ARGS],
        cwd=parent,
        check=True,
        capture_output=True,
        timeout=GENERATE_TIMEOUT_SECS,
    )
    bot = parent / "reference-bot" / "server" / "bot.py"
    bot.write_text(point_at_fakes(bot.read_text(), twilio_base_url=twilio_base_url))
    return bot


def point_at_fakes(source: str, *, twilio_base_url: str) -> str:
    """The three edits that send the generated bot's traffic to the fakes instead of the cloud.

    Each replaces one exact piece of the template, and fails loudly if the template
    changed, so the reference is never silently a different program.
    """
    edits = [
        # Deepgram: the service takes base_url; the template passes only the key.
        (
            'DeepgramSTTService(api_key=os.getenv("DEEPGRAM_API_KEY"))',
            'DeepgramSTTService(api_key=os.getenv("DEEPGRAM_API_KEY"), '
            'base_url=os.environ["DEEPGRAM_BASE_URL"])',
        ),
        # Cartesia: the service takes the websocket url.
        (
            'api_key=os.getenv("CARTESIA_API_KEY"),',
            'api_key=os.getenv("CARTESIA_API_KEY"), url=os.environ["CARTESIA_URL"],',
        ),
        # Twilio REST: the caller lookup builds its URL from a literal host.
        ("https://api.twilio.com/", f"{twilio_base_url.rstrip('/')}/"),
    ]
    for old, new in edits:
        if source.count(old) != 1:
            raise TemplateChanged(f"expected exactly one {old!r} in the generated bot.py")
        source = source.replace(old, new)
    return source

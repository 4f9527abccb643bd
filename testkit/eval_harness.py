"""pipecat's eval harness (`pipecat eval run`) as a user runs it, with the command the docs give."""

import asyncio
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from testkit.bot_server import REPO

# pipecat's CLI, installed beside this interpreter: what `uv run pipecat` runs.
PIPECAT = Path(sys.executable).parent / "pipecat"
# The bot URL the docs' commands name: the development runner's default.
DOCUMENTED_URL = "ws://localhost:7860/ws"
HARNESS_TIMEOUT_SECS = 60


@dataclass
class HarnessRun:
    """How a run of the harness ended: its exit code and what it printed."""

    code: int
    out: str


def documented_command(page: str, scenarios: str) -> list[str]:
    """The eval command ``page`` (README.md, docs/...) gives for ``scenarios``, after `uv run`."""
    line = next(
        line
        for line in (REPO / page).read_text().splitlines()
        if line.startswith(f"uv run pipecat eval run {scenarios} ")
    )
    words = shlex.split(line, comments=True)
    assert DOCUMENTED_URL in words, line
    return words[2:]


async def run_harness(words: list[str], *, bot_url: str, logs: Path) -> HarnessRun:
    """`pipecat eval run ...` from the project's folder, against ``bot_url`` in place of the
    documented URL, its per-scenario logs in ``logs`` (not the project's folder)."""
    args = [bot_url if word == DOCUMENTED_URL else word for word in words]
    assert args[0] == "pipecat", args
    process = await asyncio.create_subprocess_exec(
        PIPECAT,
        *args[1:],
        "--logs-dir",
        str(logs),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(HARNESS_TIMEOUT_SECS):
        out, _ = await process.communicate()
    return HarnessRun(process.returncode, out.decode(errors="replace"))

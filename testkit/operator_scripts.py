"""The operator's scripts run as a test runs them: output captured, TwiML and CSV files read.

Their fixtures (a clean project folder, the fake Twilio) are in testkit.operator_fixtures.
"""

import asyncio
import csv
import io
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The caller ID of the project's Twilio account, and the number tests call.
FROM = "+14155550999"
TO = "+14155550123"
# Options that make dialout.py fetch a call's status often, so a test need not wait.
FAST_POLLING = ["--poll-interval", "0.02"]


@dataclass
class Result:
    """How a script run ended: its exit code, stdout and stderr."""

    code: int
    out: str
    err: str


async def start_script(script: str, *args: str) -> asyncio.subprocess.Process:
    """scripts/``script`` as a user runs it: a process of its own, in the current env and cwd."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "scripts" / script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process) -> Result:
    async with asyncio.timeout(30):
        out, err = await process.communicate()
    return Result(process.returncode, out.decode(), err.decode())


async def run_script(script: str, *args: str) -> Result:
    return await finish(await start_script(script, *args))


async def call_main(main: Callable[[list[str]], int], *args: str) -> Result:
    """A script's ``main(argv)`` in a thread (it may run its own event loop), output captured."""

    def run() -> Result:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(args))
        return Result(code, out.getvalue(), err.getvalue())

    return await asyncio.to_thread(run)


async def until(condition: Callable[[], bool]) -> None:
    """Wait up to 10 s for ``condition`` to hold."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting")


def stream_of(twiml: str) -> tuple[str, dict[str, str]]:
    """The Stream URL and Parameters of TwiML, checking it is one <Connect><Stream> and no more.

    Nothing may follow <Connect>, and no Parameter may be given twice.
    """
    response = ET.fromstring(twiml)
    assert response.tag == "Response"
    assert [child.tag for child in response] == ["Connect"]
    streams = list(response[0])
    assert [stream.tag for stream in streams] == ["Stream"]
    parameters = [(p.get("name"), p.get("value")) for p in streams[0]]
    names = [name for name, _ in parameters]
    assert len(names) == len(set(names)), f"duplicate parameters: {names}"
    return streams[0].get("url"), dict(parameters)


def write_csv(path: Path, header: list[str], *rows: list[str]) -> Path:
    with path.open("w", newline="") as file:
        csv.writer(file).writerows([header, *rows])
    return path


def read_results(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def final_lines(path: Path) -> dict[str, dict[str, str]]:
    """The last line of each row of a campaign's results file: its outcome."""
    return {line["row"]: line for line in read_results(path)}

"""Headless Chromium with a recorded caller for its microphone, and the softphone server."""

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import wave
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page, WebSocket, async_playwright

from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from testkit.bot_server import REPO
from testkit.caller_audio import AUDIO

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; .ci/run installs it
# Chromium's defaults that reach out to the network or use a GPU, switched off (chromium() adds
# a fresh profile and the fake microphone).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_TIMEOUT_SECS = 30
VIEWPORT = {"width": 1400, "height": 860}


def write_caller_wav(path: Path, script: Sequence[str | float | bytes]) -> Path:
    """A microphone recording: recorded lines (names in testkit/audio), other sounds (8 kHz
    PCM16) and pauses (seconds).

    Chromium loops the file, so end the script with a pause longer than the call.
    """
    pcm = bytearray()
    for step in script:
        if isinstance(step, bytes):
            pcm += step
        elif isinstance(step, str):
            with wave.open(str(AUDIO / f"{step}.wav"), "rb") as line:
                pcm += line.readframes(line.getnframes())
        else:
            pcm += b"\x00\x00" * round(step * PHONE_SAMPLE_RATE)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(PHONE_SAMPLE_RATE)
        wav.writeframes(bytes(pcm))
    return path


@contextlib.asynccontextmanager
async def chromium(
    *, microphone: Path, allow_microphone: bool = True
) -> AsyncIterator[BrowserContext]:
    """Chromium on a fresh profile whose microphone plays ``microphone`` (a WAV).

    Without ``allow_microphone`` the page asks for the microphone and is refused, as when a
    person clicks "Block".
    """
    flags = [
        *FLAGS,
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
    ]
    if allow_microphone:
        flags.append("--use-fake-ui-for-media-stream")
    with tempfile.TemporaryDirectory(prefix="softphone-chromium-") as profile:
        async with async_playwright() as playwright:
            # Playwright's own browser is never downloaded: it drives Debian's chromium.
            context = await playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=flags, viewport=VIEWPORT
            )
            try:
                yield context
            finally:
                await context.close()


@contextlib.asynccontextmanager
async def softphone_server(env: dict[str, str], *args: str) -> AsyncIterator[str]:
    """``scripts/softphone.py`` on a free port with exactly ``env``; yields the page's URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "scripts/softphone.py",
        "--port",
        "0",
        *args,
        cwd=REPO,
        env={"PATH": os.environ["PATH"], "PYTHON_DOTENV_DISABLED": "1", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), STARTUP_TIMEOUT_SECS)
        if not line.startswith(b"Softphone at "):
            # Not its start-up line: say what came instead (reading on would wait for ever).
            raise RuntimeError(f"softphone.py did not start as expected: {line.decode()!r}")
        yield line.split()[2].decode()
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


@dataclass(frozen=True)
class LogEntry:
    """One line of the page's event list: its kind (reply, barge-in, mark, end, ...) and text."""

    kind: str
    text: str


class SoftphonePage:
    """The softphone page in a browser tab, driven as a person would, with its websocket traffic.

    ``sent`` holds every message the page sent on the stream, parsed, in order: the
    page's side of the Media Streams protocol, as the bot received it.
    """

    def __init__(self, page: Page) -> None:
        self.page = page
        self.sent: list[dict[str, Any]] = []
        page.on("websocket", self._watch)

    @classmethod
    async def open(cls, context: BrowserContext, url: str) -> "SoftphonePage":
        page = context.pages[0] if context.pages else await context.new_page()
        softphone = cls(page)
        await page.goto(url)
        await page.wait_for_function("document.querySelectorAll('#parameters tr').length > 0")
        return softphone

    async def call(self, stream_url: str) -> None:
        await self.page.fill("#url", stream_url)
        await self.page.click("#call")

    async def wait_for(self, kind: str, *, timeout_secs: float, nth: int = 0) -> LogEntry:
        """The ``nth`` event of ``kind`` on the page (the first by default), waiting for it."""
        entry = self.page.locator(f'#log li[data-kind="{kind}"] span').nth(nth)
        await entry.wait_for(timeout=timeout_secs * 1000)
        return LogEntry(kind, await entry.inner_text())

    async def wait_until_ended(self, *, timeout_secs: float) -> None:
        await self.page.wait_for_function(
            "document.getElementById('phase').textContent === 'Call ended'",
            timeout=timeout_secs * 1000,
        )

    async def log(self) -> list[LogEntry]:
        items = await self.page.locator("#log li").all()
        return [
            LogEntry(
                await item.get_attribute("data-kind") or "", await item.locator("span").inner_text()
            )
            for item in items
        ]

    async def text(self, selector: str) -> str:
        return (await self.page.locator(selector).inner_text()).strip()

    def _watch(self, websocket: WebSocket) -> None:
        websocket.on("framesent", lambda payload: self.sent.append(json.loads(payload)))

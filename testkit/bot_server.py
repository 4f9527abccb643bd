"""Runs the real bot under pipecat's development runner (`bot.py -t twilio`) for tests."""

import asyncio
import os
import random
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_SECS = 90


def free_port() -> int:
    """A free port below the kernel's ephemeral range (32768 and up on Linux).

    A port from bind(("", 0)) is free only until it is released: the next server that
    binds port 0 (a fake service in another test process) may be given it before the
    bot, which binds it seconds later, once its models have loaded.
    """
    while True:
        port = random.randrange(20000, 32000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


@dataclass
class BotServer:
    """A bot process on loopback and the file its logs go to."""

    process: asyncio.subprocess.Process
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_for_log(self, text: str, *, timeout_secs: float = 10.0) -> str:
        """Wait until ``text`` appears in the logs; return the first line holding it."""
        deadline = asyncio.get_running_loop().time() + timeout_secs
        while True:
            for line in self.logs().splitlines():
                if text in line:
                    return line
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{text!r} not logged within {timeout_secs} s")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def start_bot_server(
    env: dict[str, str], *, log_path: Path, script: Path = REPO / "bot.py"
) -> BotServer:
    """Start `bot.py -t twilio` with exactly ``env`` (plus PATH) and wait until it listens.

    The environment is built from scratch so no real key from the developer's shell
    or .env file can reach a test (PYTHON_DOTENV_DISABLED stops .env loading).
    ``script`` runs another bot (the benchmark's reference bot) the same way, from
    its own directory, with this project's interpreter.
    """
    port = free_port()
    full_env = {"PATH": os.environ["PATH"], "PYTHON_DOTENV_DISABLED": "1", **env}
    log = log_path.open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        script.name,
        "-t",
        "twilio",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        cwd=script.parent,
        env=full_env,
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
    )
    log.close()
    server = BotServer(process=process, port=port, log_path=log_path)
    deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT_SECS
    while True:
        if process.returncode is not None:
            raise RuntimeError(f"{script.name} exited at start-up:\n{server.logs()[-3000:]}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                await server.stop()
                raise TimeoutError(
                    f"{script.name} did not listen within {STARTUP_TIMEOUT_SECS} s"
                ) from None
            await asyncio.sleep(0.2)
            continue
        writer.close()
        return server

"""The bot under pipecat's development runner (`uv run bot.py -t twilio`), with its own logs."""

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from loguru import logger

from bot_runtime.logs import configure_logging

_running = False


def running() -> bool:
    """Whether this process serves calls through pipecat's development runner.

    Only there may a local test client's call (uuid ids, no Twilio behind it) be
    accepted; Pipecat Cloud imports ``bot()`` without starting this runner.
    """
    return _running


def run_dev_runner(*, log_secrets: list[str]) -> None:
    """Start pipecat's development runner, then log the way the bot does on Pipecat Cloud.

    The runner replaces every log sink with its own DEBUG one on stderr, which
    floods the log with library detail (the whole LLM context of every turn
    among it) and drops the bot's filter of expected warnings. Its server's
    lifespan puts the bot's configuration back once the runner is set up, before
    the first call, and says where calls go: the runner's own banner is written
    for its browser client, which a Twilio bot does not use.
    """
    from pipecat.runner import run

    global _running
    _running = True
    runner_lifespan = run.app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[object]:
        configure_logging(secrets=log_secrets)
        logger.info(_where_calls_go(f"{run.RUNNER_HOST}:{run.RUNNER_PORT}", _proxy(sys.argv)))
        async with runner_lifespan(app) as state:
            yield state

    run.app.router.lifespan_context = lifespan
    run.main()


def _proxy(argv: list[str]) -> str | None:
    """The runner's -x/--proxy (the public host of a tunnel), read as the runner reads it."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-x", "--proxy")
    return parser.parse_known_args(argv[1:])[0].proxy


def _where_calls_go(address: str, proxy: str | None) -> str:
    line = f"Ready for calls: Twilio Media Streams on ws://{address}/ws"
    if proxy:
        line += (
            f"; through your tunnel, point the number's webhook at https://{proxy}/ (TwiML) or "
            f"use a TwiML Bin from `uv run scripts/render_twiml.py --url wss://{proxy}/ws`"
        )
    else:
        line += " (scripts/call.py and scripts/softphone.py call it there)"
    return line

"""The bot under pipecat's development runner (`uv run bot.py -t twilio`), with its own logs."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bot_runtime.logs import configure_logging


def run_dev_runner(*, log_secrets: list[str]) -> None:
    """Start pipecat's development runner, then log the way the bot does on Pipecat Cloud.

    The runner replaces every log sink with its own DEBUG one on stderr, which
    floods the log with library detail and drops the bot's filter of expected
    warnings. Its server's lifespan puts the bot's configuration back once the
    runner is set up, before the first call.
    """
    from pipecat.runner import run

    runner_lifespan = run.app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[object]:
        configure_logging(secrets=log_secrets)
        async with runner_lifespan(app) as state:
            yield state

    run.app.router.lifespan_context = lifespan
    run.main()

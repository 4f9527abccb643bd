"""The bot under pipecat's development runner (`uv run bot.py -t twilio`), with its own logs."""

import argparse
import asyncio
import logging
import re
import secrets
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from loguru import logger

from bot_runtime.after_call.deliveries import retry_the_spool, stop_deliveries
from bot_runtime.config.settings import BotSettings
from bot_runtime.logs import configure_logging
from bot_runtime.phone_line import STREAM_SECRET_PARAMETER

# How long the server may take to listen once its start-up is done; uvicorn binds at once.
LISTEN_TIMEOUT_SECS = 10.0
LISTEN_POLL_SECS = 0.05
NO_TUNNEL = (
    "POST / answers Twilio's webhook with TwiML pointing at the tunnel, and this bot was "
    "started without one: run it as `uv run bot.py -t twilio -x YOUR_TUNNEL_HOST`, "
    "or use a TwiML Bin from `uv run scripts/render_twiml.py --url wss://YOUR_TUNNEL_HOST/ws`"
)
_running = False
# Said by this process's root page, so that "Ready for calls" is said only when the server
# answering the port is this one (another program may take the port while models load).
_THIS_SERVER = secrets.token_hex(8)
_SERVER_HEADER = "X-Bot-Server"
# An eval carries the stream secret in the bot URL's query, which uvicorn logs with each socket.
_SECRET_IN_QUERY = re.compile(rf"({STREAM_SECRET_PARAMETER}=)[^&\s\"]*")


def running() -> bool:
    """Whether this process serves calls through pipecat's development runner.

    Only there may a local test client's call (uuid ids, no Twilio behind it) be
    accepted; Pipecat Cloud imports ``bot()`` without starting this runner.
    """
    return _running


def refuse_a_busy_port(argv: list[str]) -> None:
    """Exit with one line if the runner's port is taken, before the models load.

    Otherwise the bot loads its models, says it is ready, and only then does the
    server fail to bind, with a traceback-like error.
    """
    host, port, _ = _options(argv)
    with socket.socket() as sock:
        # As uvicorn binds: a port left in TIME_WAIT by a bot just stopped is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            raise SystemExit(
                f"bot.py: cannot listen on {host}:{port} ({error.strerror or error}): another "
                f"bot may be running there; stop it, or choose another port with --port, "
                f"e.g. `uv run bot.py -t twilio --port {port + 1}`"
            ) from None


def run_dev_runner(*, log_secrets: list[str], settings: BotSettings) -> None:
    """Start pipecat's development runner, then log the way the bot does on Pipecat Cloud.

    The runner replaces every log sink with its own DEBUG one on stderr, which
    floods the log with library detail (the whole LLM context of every turn
    among it), drops the bot's filter of expected warnings, and prints variables'
    values in tracebacks (loguru's diagnose). Its server's
    lifespan puts the bot's configuration back once the runner is set up, before
    the first call, and says where calls go once the server listens: the runner's
    own banner is written for its browser client, which a Twilio bot does not use. It
    also sends the call records an earlier run left in the spool, and on shutdown gives
    the deliveries in flight a few seconds.
    """
    from pipecat.runner import run

    global _running
    _running = True
    host, port, proxy = _options(sys.argv)
    _serve_the_root(run.app, calls_at=f"ws://{host}:{port}/ws", proxy=proxy)
    runner_lifespan = run.app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[object]:
        configure_logging(secrets=log_secrets, level=settings.log_level)
        _redact_the_servers_lines()
        ready = asyncio.create_task(_say_ready_once_listening(host, port, proxy))
        retry_the_spool(settings)  # In the background: the first call need not wait for it.
        try:
            async with runner_lifespan(app) as state:
                yield state
        finally:
            ready.cancel()
        await stop_deliveries(settings)

    run.app.router.lifespan_context = lifespan
    run.main()


class _SecretRedactor(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # Redacted where it sits: uvicorn's access formatter unpacks the record's args.
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        record.msg = _redacted(record.msg)
        return True


def _redacted(value: object) -> object:
    return _SECRET_IN_QUERY.sub(r"\1[redacted]", value) if isinstance(value, str) else value


def _redact_the_servers_lines() -> None:
    """uvicorn writes its own lines (not through the bot's logs), each socket's URL among
    them: the stream secret an eval carries in its query is redacted there too."""
    for name in ("uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addFilter(_SecretRedactor())


def _serve_the_root(app: FastAPI, *, calls_at: str, proxy: str | None) -> None:
    """Routes registered before the runner's own, so they win over them.

    The runner's banner says "Open: http://HOST:PORT", where it serves its browser
    client, which cannot call a Twilio bot: the page says where calls go instead.
    Without a tunnel (-x), the runner's TwiML for POST / would send Twilio to
    ``wss://None/ws``: it is refused, saying what to set.
    """

    @app.get("/", include_in_schema=False)
    async def where_calls_go() -> PlainTextResponse:
        return PlainTextResponse(
            f"This is a Twilio Media Streams bot: calls go to {calls_at}.\n"
            'Call it from a terminal with `uv run scripts/call.py --say "Hello"`, or with '
            "your voice with `uv run scripts/softphone.py --open`.\n",
            headers={_SERVER_HEADER: _THIS_SERVER},
        )

    if proxy:
        return

    @app.post("/", include_in_schema=False)
    async def no_tunnel() -> PlainTextResponse:
        logger.warning(f"Refused a TwiML request: {NO_TUNNEL}")
        return PlainTextResponse(NO_TUNNEL + "\n", status_code=400)


async def _say_ready_once_listening(host: str, port: int, proxy: str | None) -> None:
    """Log "Ready for calls" once this server answers on the port: the server binds after
    its start-up, and a port another program took meanwhile must not be announced as
    ready (uvicorn then says it cannot bind, and the bot exits)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LISTEN_TIMEOUT_SECS
    while loop.time() < deadline:
        if await _this_server_answers(host, port):
            logger.info(_where_calls_go(f"{host}:{port}", proxy))
            return
        await asyncio.sleep(LISTEN_POLL_SECS)


async def _this_server_answers(host: str, port: int) -> bool:
    """Whether GET / on ``host:port`` is answered by this process's server."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    try:
        writer.write(f"GET / HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
        async with asyncio.timeout(LISTEN_TIMEOUT_SECS):
            head = await reader.read(4096)
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
    return f"{_SERVER_HEADER.lower()}: {_THIS_SERVER}".encode() in head.lower()


def _options(argv: list[str]) -> tuple[str, int, str | None]:
    """The runner's --host, --port and -x/--proxy (the public host of a tunnel), read as
    the runner reads them."""
    from pipecat.runner import run

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--host", default=run.RUNNER_HOST)
    parser.add_argument("--port", type=int, default=run.RUNNER_PORT)
    parser.add_argument("-x", "--proxy")
    options = parser.parse_known_args(argv[1:])[0]
    return options.host, options.port, options.proxy


def _where_calls_go(address: str, proxy: str | None) -> str:
    line = f"Ready for calls: Twilio Media Streams on ws://{address}/ws"
    if proxy:
        line += (
            f"; through your tunnel, point the number's webhook at https://{proxy}/ (TwiML) or "
            f"use a TwiML Bin from `uv run scripts/render_twiml.py --url wss://{proxy}/ws`"
        )
    else:
        line += (
            ' (scripts/call.py and scripts/softphone.py call it there; the "Open" link '
            "above is no client for this bot: it says the same)"
        )
    return line

"""The softphone's web server on loopback: the page, and call settings only this machine knows."""

import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from bot_runtime.config.agent_file import DEFAULT_AGENT_FILE, read_agent_file
from bot_runtime.config.languages import DEFAULT_LANGUAGE, canonical
from operator_tools.twiml import (
    DEFAULT_REGION,
    REGIONS,
    SERVICE_HOST_PARAMETER,
    DeployConfig,
    StreamTarget,
    TwimlError,
    cloud_target,
    default_organization,
    stream_parameters,
)
from testkit.media_stream import TEST_ACCOUNT_SID

STATIC_DIR = Path(__file__).with_name("static")
DEFAULT_BOT_URL = "ws://localhost:7860/ws"
# Fictional numbers (555-01xx), as scripts/call.py sends: the bot needs no REST look-up.
FROM_NUMBER = "+15555550123"
TO_NUMBER = "+15555550199"
# Browsers allow the microphone on http only for localhost; the server listens on loopback.
HOST = "127.0.0.1"


@dataclass(frozen=True)
class PhoneSettings:
    """What the page starts from; the page can change everything but the accountSid."""

    local_url: str
    mode: str  # "local" or "cloud": which of the two the page shows first
    region: str
    agent: str | None
    org: str | None
    account_sid: str
    account_source: str
    parameters: dict[str, str]
    # The agent file's languages: {"default": code, "declared": [codes]}, for the page's choice.
    languages: dict[str, Any]


def phone_settings(
    *,
    local_url: str,
    cloud: bool,
    region: str | None,
    agent: str | None,
    deploy: DeployConfig,
    extra: Mapping[str, str],
    env: Mapping[str, str],
) -> PhoneSettings:
    """The defaults: options, then pcc-deploy.toml, then the environment (.env included).

    STREAM_SECRET goes to the page only from here, at run time: the page's files never
    hold a secret.
    """
    account_sid = env.get("TWILIO_ACCOUNT_SID", "").strip()
    parameters = stream_parameters(
        StreamTarget(url=local_url),
        from_number=FROM_NUMBER,
        to_number=TO_NUMBER,
        stream_secret=env.get("STREAM_SECRET", "").strip() or None,
        extra=extra,
    )
    deployed_region = deploy.region if deploy.region in REGIONS else None
    return PhoneSettings(
        local_url=local_url,
        mode="cloud" if cloud else "local",
        region=region or deployed_region or DEFAULT_REGION,
        agent=agent or deploy.agent_name,
        org=default_organization(env),
        account_sid=account_sid or TEST_ACCOUNT_SID,
        account_source="TWILIO_ACCOUNT_SID" if account_sid else "a test SID: no TWILIO_ACCOUNT_SID",
        parameters=parameters,
        languages=agent_languages(env),
    )


def agent_languages(env: Mapping[str, str]) -> dict[str, Any]:
    """The agent file's default language and all it declares, for the page's choice.

    The file is the one the bot started here reads (AGENT_FILE, else agent.toml). Its
    problems are the bot's to report: from a file that cannot be read, the page offers
    the default alone (and the parameter table takes any other code).
    """
    named = env.get("AGENT_FILE", "").strip()
    path = Path(named) if named else DEFAULT_AGENT_FILE
    agent = read_agent_file(path, env=env, required=False, problems=[])
    default = canonical(agent.language or "") or DEFAULT_LANGUAGE
    others = (canonical(code) for code in agent.languages)
    return {"default": default, "declared": list(dict.fromkeys([default, *filter(None, others)]))}


def create_app(settings: PhoneSettings, *, deploy: DeployConfig) -> FastAPI:
    """The page at /, its settings at /api/config, Pipecat Cloud targets at /api/target."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    # Another site's page may resolve its own name to 127.0.0.1 (DNS rebinding); it then
    # sends its own Host header, and gets no stream secret.
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=["localhost", HOST])

    @app.get("/api/config")
    def config() -> dict[str, Any]:
        return asdict(settings) | {"regions": list(REGIONS)}

    @app.get("/api/target")
    def target(region: str = "", agent: str = "", org: str = "") -> JSONResponse:
        """The stream URL and service host for the page's cloud fields, as the TwiML gets them."""
        missing: list[str] = []
        try:
            found = cloud_target(
                region=region, agent=agent, org=org, deploy=deploy, env={}, missing=missing
            )
        except TwimlError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        if missing:
            return JSONResponse({"error": "; ".join(missing)}, status_code=400)
        return JSONResponse(
            {
                "url": found.url,
                "service_host": found.service_host,
                "parameter": SERVICE_HOST_PARAMETER,
            }
        )

    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True))
    return app


def listen(port: int) -> socket.socket:
    """Bind the page's port now, so a busy port is one clear error before anything starts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


def page_url(sock: socket.socket) -> str:
    return f"http://localhost:{sock.getsockname()[1]}/"


async def serve(app: FastAPI, sock: socket.socket) -> None:
    """Serve until cancelled (Ctrl-C)."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    await server.serve(sockets=[sock])

"""What the websocket fakes share: a real server on 127.0.0.1, a handshake check, kill()."""

import contextlib
import json
from http import HTTPStatus
from typing import Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response


class HandshakeRejected(Exception):
    """Raised by ``check_handshake`` to answer the upgrade request with an HTTP error."""

    def __init__(self, status: HTTPStatus, body: dict[str, object]) -> None:
        super().__init__(f"{status.value} {body}")
        self.status = status
        self.body = body


class WebsocketFake:
    """Base of the websocket fakes: ``async with`` starts the server on a free port.

    ``connections`` counts accepted sessions and ``rejected`` the handshakes refused
    (wrong key, bad path or parameters), so a test can assert that nothing was opened.
    """

    def __init__(self) -> None:
        self.connections = 0
        self.rejected = 0
        self._server: Server | None = None
        self._port: int | None = None

    @property
    def open_connections(self) -> int:
        """Sessions open right now (a call that ended must leave none behind)."""
        return len(self._server.connections) if self._server is not None else 0

    @property
    def port(self) -> int:
        """The port it listens on; kept after kill() so clients can find it refused."""
        if self._port is None:
            raise RuntimeError(f"use {type(self).__name__} in 'async with'")
        return self._port

    async def __aenter__(self) -> Self:
        self._server = await serve(self._session, "127.0.0.1", 0, process_request=self._handshake)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def kill(self) -> None:
        """Drop every open connection without a close handshake and stop listening.

        Like a crashed or unreachable service: clients see an abrupt disconnect and
        then connection refused.
        """
        if self._server is None:
            return
        for connection in self._server.connections:
            connection.transport.abort()
        self._server.close(close_connections=False)
        await self._server.wait_closed()

    def check_handshake(self, request: Request) -> None:
        """Raise HandshakeRejected if the real service would refuse this upgrade request."""

    async def serve_session(self, websocket: ServerConnection) -> None:
        """Talk to one accepted client until it goes away."""
        raise NotImplementedError

    def _handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        try:
            self.check_handshake(request)
        except HandshakeRejected as rejection:
            self.rejected += 1
            response = connection.respond(rejection.status, json.dumps(rejection.body))
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = "application/json"
            return response
        return None

    async def _session(self, websocket: ServerConnection) -> None:
        self.connections += 1
        with contextlib.suppress(ConnectionClosed):
            await self.serve_session(websocket)

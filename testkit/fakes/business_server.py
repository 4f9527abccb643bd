"""The business's own server on 127.0.0.1: the API its tools call, and its call-record webhook."""

import asyncio
import json
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web


@dataclass(frozen=True)
class Answer:
    """How the server answers one request: a status, a body, maybe late."""

    status: int = 200
    # A dict or list is sent as JSON; str and bytes as they are.
    body: Any = field(default_factory=dict)
    content_type: str | None = None
    delay_secs: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)  # A redirect's Location, say.

    def response(self) -> web.Response:
        if isinstance(self.body, dict | list):
            return web.json_response(self.body, status=self.status, headers=self.headers)
        data = self.body.encode() if isinstance(self.body, str) else self.body
        return web.Response(
            body=data,
            status=self.status,
            content_type=self.content_type or "text/plain",
            headers=self.headers,
        )


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as it arrived."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    arrived_at: float  # time.monotonic()

    def json(self) -> Any:
        return json.loads(self.body)


class FakeBusinessServer:
    """Answers each path as scripted: ``script(path, *answers)`` queues answers for that path,
    the last one repeating; an unscripted path answers 404. ``about`` scripts only the
    requests whose body holds that text (one call's records, say, while other calls'
    records go to the same path). Every request is kept in ``requests``, whatever the
    answer, so a test can also see what never arrived.
    """

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self._answers: dict[tuple[str, str | None], deque[Answer]] = defaultdict(deque)
        self._runner: web.AppRunner | None = None

    def script(self, path: str, *answers: Answer, about: str | None = None) -> None:
        self._answers[(path, about)] = deque(answers)

    def url(self, path: str = "") -> str:
        if self._runner is None:
            raise RuntimeError("use FakeBusinessServer in 'async with'")
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}{path}"

    def requests_to(self, path: str) -> list[ReceivedRequest]:
        return [r for r in self.requests if r.path == path]

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._answer)
        # No grace period on shutdown, so a test can stop it like a server that died.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            ReceivedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=dict(request.headers),
                body=await request.read(),
                arrived_at=time.monotonic(),
            )
        )
        body = self.requests[-1].body.decode(errors="replace")
        about = [
            key for key in self._answers if key[0] == request.path and key[1] and key[1] in body
        ]
        queued = self._answers[about[0]] if about else self._answers.get((request.path, None))
        if not queued:
            return web.Response(status=404, text="not found")
        answer = queued.popleft() if len(queued) > 1 else queued[0]
        await asyncio.sleep(answer.delay_secs)
        return answer.response()

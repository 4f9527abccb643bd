"""A loopback OpenAI Chat Completions server that streams scripted replies as the real API does."""

import asyncio
import json
import re
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

from .timing import OpenAITiming

FINGERPRINT = "fp_fake0penai"
ARGUMENT_PIECE_CHARS = 8  # tool-call arguments arrive in fragments of about this size


@dataclass(frozen=True)
class Reply:
    """The model answers with text."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    """The model calls a function instead of answering."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NoChoices:
    """A completion whose ``choices`` list is empty, as a faulty compatible server sends."""


Response = Reply | ToolCall | NoChoices


def _error(status: int, message: str, *, code: str | None, param: str | None = None):
    """OpenAI's error body, so the SDK raises the matching exception with this message."""
    body = {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }
    return web.json_response(body, status=status)


def _tokens(text: str) -> list[str]:
    """Split text the way it streams: word-sized pieces that keep their leading space."""
    return re.findall(r"\s*\S+|\s+$", text)


def _count_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class FakeOpenAI:
    """``POST /v1/chat/completions`` answering with scripted replies.

    Each request takes the next of ``replies`` (or ``responder(request_body)`` when
    given, or ``default_reply`` once the script runs out). Streaming follows OpenAI's
    Server-Sent Events: a role chunk, content or tool-call fragments, a chunk with
    ``finish_reason``, a usage chunk when ``stream_options.include_usage``, then
    ``data: [DONE]``. Chunks come on ``timing``: the first content after its time to
    first token, the rest at its token rate (``OpenAITiming.instant()``: all at once).
    """

    def __init__(
        self,
        *,
        api_key: str = "sk-test-key",
        replies: Iterable[Response] = (),
        default_reply: str = "Okay.",
        responder: Callable[[dict[str, Any]], Response] | None = None,
        timing: OpenAITiming | None = None,
    ) -> None:
        self.api_key = api_key
        self.replies: deque[Response] = deque(replies)
        self.default_reply = default_reply
        self.responder = responder
        self.timing = timing or OpenAITiming()
        self.requests: list[dict[str, Any]] = []
        # Replies whose stream the client dropped before its end (an interrupted or
        # discarded reply), counted when the fake notices.
        self.abandoned_streams = 0
        # Seconds to wait before the first chunk of each reply, on top of the timing's time
        # to first token: a model that stalls.
        self.first_token_delay_secs = 0.0
        # A reply that stops after this many content pieces, the connection left open (a
        # stall mid-reply: no error, no close). None: replies run to the end.
        self.stall_after_pieces: int | None = None
        # Replies being streamed now: a stalled one stays open until the client goes away.
        self.open_streams = 0
        self.rejected = 0
        self._socket: socket.socket | None = None
        self._runner: web.AppRunner | None = None

    @property
    def connections(self) -> int:
        """Accepted requests (the API is stateless: one request per completion)."""
        return len(self.requests)

    @property
    def base_url(self) -> str:
        """What OpenAILLMService(base_url=...) and AsyncOpenAI(base_url=...) take."""
        if self._socket is None:
            raise RuntimeError("use FakeOpenAI in 'async with'")
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}/v1"

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        # No grace period on shutdown: kill() must cut streams off mid-way. A client that
        # hangs up ends its request here too, as on a real server (a stalled reply included).
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=0, handler_cancellation=True
        )
        await self._runner.setup()
        self._socket = socket.create_server(("127.0.0.1", 0))
        await web.SockSite(self._runner, self._socket).start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.kill()

    async def kill(self) -> None:
        """Drop open connections, in-flight streams included, and stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _next_response(self, body: dict[str, Any]) -> Response:
        if self.responder is not None:
            return self.responder(body)
        if self.replies:
            return self.replies.popleft()
        return Reply(self.default_reply)

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            self.rejected += 1
            return _error(
                401,
                "Incorrect API key provided. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.", code=None)
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return _error(400, "you must provide a model parameter", code=None, param="model")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return _error(400, "'messages' must be a non-empty array", code=None, param="messages")
        self.requests.append(body)
        completion = _Completion(body, self._next_response(body))
        if not body.get("stream"):
            return web.json_response(completion.whole())
        stream = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            }
        )
        await stream.prepare(request)
        self.open_streams += 1
        finished = False
        try:
            # The first chunk (the role, then the first token) after the model's time to
            # first token, then a piece per token at its rate.
            for index, chunk in enumerate(completion.chunks()):
                if index == 0:
                    await asyncio.sleep(self.timing.first_token_secs + self.first_token_delay_secs)
                elif index > 1:
                    await asyncio.sleep(self.timing.token_gap_secs)
                if self.stall_after_pieces is not None and index > self.stall_after_pieces:
                    await asyncio.Event().wait()  # Until the client hangs up on it.
                await stream.write(f"data: {json.dumps(chunk)}\n\n".encode())
            await stream.write(b"data: [DONE]\n\n")
            await stream.write_eof()
            finished = True
        finally:
            self.open_streams -= 1
            if not finished:
                self.abandoned_streams += 1
        return stream


class _Completion:
    """One answer, rendered as a whole ``chat.completion`` or as its stream of chunks."""

    def __init__(self, body: dict[str, Any], response: Response) -> None:
        self.response = response
        self.model = body["model"]
        self.id = "chatcmpl-" + secrets.token_urlsafe(21)
        self.created = int(time.time())
        self.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.prompt_tokens = _count_tokens(json.dumps(body["messages"]))
        if isinstance(response, ToolCall):
            self.call_id = "call_" + secrets.token_urlsafe(18)
            self.arguments = json.dumps(response.arguments)
            self.finish_reason = "tool_calls"
            self.completion_tokens = _count_tokens(response.name + self.arguments)
        elif isinstance(response, NoChoices):
            self.completion_tokens = 0
        else:
            self.finish_reason = "stop"
            self.completion_tokens = _count_tokens(response.text)

    def whole(self) -> dict[str, Any]:
        if isinstance(self.response, NoChoices):
            return self._envelope("chat.completion", []) | {"usage": self._usage()}
        message: dict[str, Any] = {"role": "assistant", "refusal": None, "annotations": []}
        if isinstance(self.response, ToolCall):
            message["content"] = None
            message["tool_calls"] = [self._tool_call(self.arguments)]
        else:
            message["content"] = self.response.text
        choice = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": self.finish_reason,
        }
        return self._envelope("chat.completion", [choice]) | {"usage": self._usage()}

    def chunks(self) -> list[dict[str, Any]]:
        if isinstance(self.response, NoChoices):
            return [self._envelope("chat.completion.chunk", []) | {"usage": self._usage()}]
        if isinstance(self.response, ToolCall):
            first = {"role": "assistant", "content": None, "refusal": None}
            first["tool_calls"] = [self._tool_call("")]
            pieces = [
                self.arguments[i : i + ARGUMENT_PIECE_CHARS]
                for i in range(0, len(self.arguments), ARGUMENT_PIECE_CHARS)
            ]
            deltas = [first] + [
                {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]} for piece in pieces
            ]
        else:
            first = {"role": "assistant", "content": "", "refusal": None}
            deltas = [first] + [{"content": token} for token in _tokens(self.response.text)]
        chunks = [self._chunk(delta, None) for delta in deltas]
        chunks.append(self._chunk({}, self.finish_reason))
        if self.include_usage:
            chunks.append(self._envelope("chat.completion.chunk", []) | {"usage": self._usage()})
        return chunks

    def _tool_call(self, arguments: str) -> dict[str, Any]:
        assert isinstance(self.response, ToolCall)
        return {
            "index": 0,
            "id": self.call_id,
            "type": "function",
            "function": {"name": self.response.name, "arguments": arguments},
        }

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        chunk = self._envelope("chat.completion.chunk", [choice])
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def _envelope(self, kind: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        }

    def _usage(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

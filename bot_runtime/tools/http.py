"""Tools declared in the agent file: one HTTP request to the business's API per tool call."""

import asyncio
import json
from typing import Any

import aiohttp

from bot_runtime.http_session import RedirectRefused, same_origin_request
from bot_runtime.tools.specs import CallInfo, HttpToolSpec, ToolFailed

# An answer is for the LLM to read aloud in a sentence or two: anything longer is a mistake
# (an HTML page, a whole database), so it is refused rather than sent to the LLM.
MAX_ANSWER_BYTES = 16 * 1024


async def call_http_tool(spec: HttpToolSpec, arguments: dict[str, Any], call: CallInfo) -> Any:
    """Send the tool call to the business's API; its answer (JSON, or text) is the result.

    POST sends ``{"tool", "arguments", "call"}`` as JSON; GET sends the arguments
    and ``call_sid`` as query parameters. Raises ToolFailed for a timeout, a refused
    connection, a redirect to another host, a non-2xx status, or an answer too
    large or unreadable.
    """
    if spec.method == "GET":
        query = {name: _query_value(value) for name, value in arguments.items()}
        request = same_origin_request(
            "GET", spec.url, params={**query, "call_sid": call.call_sid}, headers=spec.headers
        )
    else:
        body = {"tool": spec.name, "arguments": arguments, "call": call.as_json()}
        request = same_origin_request("POST", spec.url, json=body, headers=spec.headers)
    try:
        async with asyncio.timeout(spec.timeout_secs), request as response:
            status, content_type = response.status, response.content_type
            answer = bytearray()
            async for chunk in response.content.iter_chunked(4096):
                answer += chunk
                if len(answer) > MAX_ANSWER_BYTES:
                    break
    except TimeoutError:
        raise ToolFailed(f"no answer within {spec.timeout_secs:g} s") from None
    except RedirectRefused as refused:
        raise ToolFailed(f"the service {refused}") from None
    except aiohttp.ClientConnectorError:
        raise ToolFailed("could not connect to the service") from None
    except aiohttp.ClientError as error:
        raise ToolFailed(f"the connection failed ({type(error).__name__})") from None
    if not 200 <= status < 300:
        raise ToolFailed(f"the service answered HTTP {status}")
    if len(answer) > MAX_ANSWER_BYTES:
        raise ToolFailed(f"the answer is larger than {MAX_ANSWER_BYTES // 1024} KB")
    return _decode(answer, json_answer=content_type == "application/json")


def _decode(answer: bytearray, *, json_answer: bool) -> Any:
    try:
        text = answer.decode("utf-8")
        return json.loads(text) if json_answer else text.strip()
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ToolFailed("the answer could not be read") from None


def _query_value(value: Any) -> str:
    """Arguments as query strings: booleans as JSON writes them, numbers and text as they are."""
    return json.dumps(value) if isinstance(value, bool) else str(value)

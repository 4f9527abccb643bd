"""Stand-ins for Acme's orders API and a tool-calling LLM, so the order desk's tools run keyless.

    uv run examples/order_desk/stand_in.py      # then start the bot as it prints

The local LLM (SmolLM2) cannot call functions. This server, on 127.0.0.1, answers both
the order desk's declared tool (POST /orders/status, with its bearer token) and the
OpenAI chat API (POST /v1/chat/completions) with a scripted LLM: an order number in the
caller's words calls ``lookup_order``, a day of the week ``check_opening_hours``, a
goodbye ``end_call``, and a tool's result is read back. It shows the tool path working
(filler, HTTP request, result spoken); it understands nothing else.
"""

import argparse
import json
import re
import time
from typing import Any

from aiohttp import web

from bot_runtime.turns.farewell import is_farewell

DEFAULT_PORT = 7880
TOKEN = "stand-in-token"
MODEL = "order-desk-stand-in"
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Digits as Whisper may write them out ("four five six seven").
DIGIT_WORDS = {
    word: str(digit)
    for digit, words in enumerate(
        [("zero", "oh"), ("one",), ("two", "to"), ("three",), ("four", "for")]
        + [("five",), ("six",), ("seven",), ("eight",), ("nine",)]
    )
    for word in words
}
# Order numbers are this long at least: a lone "for" or "to" is just a word.
_MIN_ORDER_DIGITS = 3
HELP = "I can look up an order by its number, or tell you our opening hours on any day."


def order_number(text: str) -> str | None:
    """The order number in the caller's words: digits, or digit words in a row."""
    words = re.findall(r"[a-z]+|\d+", text.lower().replace("-", " "))
    runs, run = [], ""
    for word in words:
        if word.isdigit():
            run += word
        elif word in DIGIT_WORDS:
            run += DIGIT_WORDS[word]
        else:
            runs.append(run)
            run = ""
    runs.append(run)
    found = [run for run in runs if len(run) >= _MIN_ORDER_DIGITS]
    return found[-1] if found else None


def reply_to(body: dict[str, Any]) -> dict[str, Any]:
    """What the scripted LLM does next: ``{"content": ...}`` or ``{"tool": (name, arguments)}``."""
    messages = body.get("messages") or [{}]
    offered = {tool.get("function", {}).get("name") for tool in body.get("tools") or []}
    last = messages[-1]
    if last.get("role") == "tool":
        return {"content": _read_back(str(last.get("content") or ""))}
    words = _text(last.get("content"))
    if "end_call" in offered and is_farewell(words):
        return {"tool": ("end_call", {})}
    number = order_number(words)
    if number and "lookup_order" in offered:
        return {"tool": ("lookup_order", {"order_id": number})}
    day = next((day for day in DAYS if day in words.lower()), None)
    if day and "check_opening_hours" in offered:
        return {"tool": ("check_opening_hours", {"day": day.capitalize()})}
    return {"content": HELP}


def _text(content: Any) -> str:
    if isinstance(content, list):  # Content parts: keep the text ones.
        return " ".join(part.get("text", "") for part in content if part.get("type") == "text")
    return str(content or "")


def _read_back(result: str) -> str:
    try:
        data = json.loads(result)
    except json.JSONDecodeError:
        return f"Here is what I found: {result}"
    if not isinstance(data, dict):
        return f"Here is what I found: {data}"
    if "status" in data:
        order, arriving = data.get("order_id"), data.get("arriving")
        return f"Order {order} has {data['status']}, arriving {arriving}."
    if "hours" in data:
        return f"On {data.get('day')} we are open {data['hours']}."
    return f"Sorry, that did not work: {data.get('error', data)}."


def _chunk(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stand-in",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def _chunks(reply: dict[str, Any]) -> list[dict[str, Any]]:
    if "tool" in reply:
        name, arguments = reply["tool"]
        call = {"index": 0, "id": f"call_{name}", "type": "function"}
        call["function"] = {"name": name, "arguments": json.dumps(arguments)}
        return [_chunk({"role": "assistant", "tool_calls": [call]}, None), _chunk({}, "tool_calls")]
    return [_chunk({"role": "assistant", "content": reply["content"]}, None), _chunk({}, "stop")]


def _filled(schema: dict[str, Any]) -> Any:
    """A value that fits ``schema``: the post-call analysis asks for structured output."""
    if "enum" in schema:
        return schema["enum"][-1]
    kind = schema.get("type")
    if kind == "object":
        return {name: _filled(sub) for name, sub in schema.get("properties", {}).items()}
    return {"string": "", "boolean": False, "number": 0, "integer": 0}.get(kind)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if not body.get("stream"):  # The post-call analysis or a transfer brief.
        schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema")
        content = json.dumps(_filled(schema)) if schema else "A call to the order desk."
        message = {"role": "assistant", "content": content}
        return web.json_response(
            {
                "id": "chatcmpl-stand-in",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": MODEL,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            }
        )
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for chunk in _chunks(reply_to(body)):
        await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
    await response.write(b"data: [DONE]\n\n")
    return response


async def order_status(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != f"Bearer {TOKEN}":
        return web.json_response({"error": "unauthorized"}, status=401)
    order_id = str((await request.json()).get("arguments", {}).get("order_id", ""))
    print(f"orders API: lookup_order {order_id}", flush=True)
    return web.json_response({"order_id": order_id, "status": "shipped", "arriving": "Thursday"})


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/orders/status", order_status)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="the port to serve on")
    port = parser.parse_args().port
    base = f"http://127.0.0.1:{port}"
    print(
        f"Orders API and a tool-calling LLM at {base}. In another terminal:\n"
        f"  AGENT_FILE=examples/order_desk/agent.toml ORDERS_API_URL={base} "
        f"ORDERS_TOKEN={TOKEN} OPENAI_BASE_URL={base}/v1 uv run bot.py -t twilio\n"
        f'  uv run scripts/call.py --say "Where is my order 4567?" --say "OK, bye!"',
        flush=True,
    )
    web.run_app(create_app(), host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    main()

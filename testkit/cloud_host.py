"""A stand-in for Pipecat Cloud's base image: import bot(), hand it each stream as the cloud does.

The image's app.py does `from bot import bot` at start and, for each websocket on /ws,
awaits `bot(WebSocketSessionArguments(...))`; this does the same on loopback so the tests
can check bot.py against the arguments Pipecat Cloud passes, not only the dev runner's.
"""

import argparse
import uuid

import uvicorn
from fastapi import FastAPI, WebSocket
from pipecatcloud.agent import WebSocketSessionArguments

from bot import bot

app = FastAPI()


@app.websocket("/ws")
async def stream(websocket: WebSocket) -> None:
    await websocket.accept()
    arguments = WebSocketSessionArguments(
        session_id=str(uuid.uuid4()), websocket=websocket, body=None
    )
    await bot(arguments)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("-t")  # Accepted like the dev runner's, so one launcher runs both.
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")

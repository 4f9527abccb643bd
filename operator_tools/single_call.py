"""One outbound call: place it, print its SID and, with --wait, follow it until it ends."""

import asyncio
import time
from collections.abc import Mapping

from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

from bot_runtime.phone_numbers import mask
from operator_tools.cli import EXIT_NOT_CONNECTED
from operator_tools.progress import Progress
from operator_tools.twilio_calls import CallsApi

NOT_CONNECTED = {
    "busy": "the line was busy",
    "no-answer": "nobody answered",
    "failed": "Twilio could not place the call (see the Twilio console's call log)",
    "canceled": "the call was canceled before it was answered",
}


async def place_call(
    api: CallsApi, fields: Mapping[str, str | int], *, wait: bool, poll_interval: float
) -> int:
    """Create the call; with ``wait``, follow it. Returns the exit code.

    The Call SID goes to stdout (for scripts), everything else to stderr, numbers masked.
    """
    to = str(fields["To"])
    call = await api.create(fields)
    print(call.sid, flush=True)
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}", markup=False), TimeElapsedColumn()
    )
    progress.print(f"Calling {mask(to)} from {mask(str(fields['From']))}: {call.sid} {call.status}")
    if not wait:
        return 0
    started = time.monotonic()

    def show(status: str, changed: bool) -> None:
        text = f"{call.sid} {mask(to)}: {status}"
        progress.update(text)
        if changed and not progress.live:
            progress.print(text)

    progress.update(f"{call.sid} {mask(to)}: {call.status}")
    try:
        with progress:
            final = await api.follow(call.sid, poll_interval=poll_interval, on_poll=show)
    except asyncio.CancelledError:
        progress.print(f"Stopped following {call.sid}; the call goes on.")
        raise
    answered_by = f", answered by {final.answered_by}" if final.answered_by else ""
    progress.print(
        f"{call.sid} {mask(to)}: {final.status}{answered_by} after "
        f"{time.monotonic() - started:.0f}s"
    )
    if final.status != "completed":
        progress.print(f"The call did not connect: {NOT_CONNECTED.get(final.status, final.status)}")
        return EXIT_NOT_CONNECTED
    return 0

"""Call the bot as Twilio would, from a terminal, and hear (transcribed) what it says back.

    uv run scripts/call.py --say "What time do you open on Saturday?"
    uv run scripts/call.py --wav caller.wav --digits 12# --record call.wav
    uv run scripts/call.py --say "What are your opening hours?" --say-over "Sorry, Saturday?"
    uv run scripts/call.py --interactive

The caller's lines are spoken one at a time, each after the bot's previous reply has
finished; a --say-over line cuts into that reply instead, --after seconds into it. The
bot's side of the transcript is what this caller heard, transcribed by the local Whisper
model: it checks end to end that the bot's audio is intelligible.
`--help` lists the options. The call simulator behind this is in the test kit:
testkit/call_cli.py (options, the call, its summary) and testkit/conversation.py (turns).
"""

import sys

from loguru import logger


def main() -> int:
    # The transcript is the output: the libraries' logs would bury it, pipecat's banner on
    # import included, so they are cut down before the call simulator is imported.
    logger.remove()
    logger.add(sys.stderr, level="WARNING", format="{level}: {message}", diagnose=False)
    from testkit.call_cli import main as call

    return call()


if __name__ == "__main__":
    sys.exit(main())

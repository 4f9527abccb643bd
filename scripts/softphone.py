"""Serve the softphone: a page that calls the agent over a Twilio Media Stream from your microphone.

    uv run scripts/softphone.py                 # the local bot at ws://localhost:7860/ws
    uv run scripts/softphone.py --cloud --open  # the Pipecat Cloud agent of pcc-deploy.toml

Options: --help. The page is served on http://localhost:7870/ (--port).
"""

import sys

from operator_tools.softphone.cli import main

if __name__ == "__main__":
    sys.exit(main())

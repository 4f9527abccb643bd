"""Start outbound calls that connect to the agent: one number, or a campaign from a CSV file.

    uv run scripts/dialout.py --to "+1 415 555 0123"            # prints the Call SID
    uv run scripts/dialout.py --to +14155550123 --wait          # follow it until it ends
    uv run scripts/dialout.py --to +14155550123 --dry-run       # show the request, call nobody
    uv run scripts/dialout.py --to-file calls.csv --cps 1 --concurrency 5   # a campaign

The caller ID is TWILIO_PHONE_NUMBER (or --from); the Twilio credentials, PIPECAT_ORG and
STREAM_SECRET come from the environment or .env, the agent from pcc-deploy.toml. Exit
codes: 0 placed, 1 Twilio refused or unreachable, 2 something to fix, 3 --wait and the
call did not connect, 130 interrupted. README "Call out" and docs/outbound.md explain it all;
the code is in operator_tools/dialout.py.
"""

import sys

from operator_tools.dialout import main

if __name__ == "__main__":
    sys.exit(main())

"""The call records waiting in the spool for their webhook: list them, or send them again now.

    uv run scripts/call_records.py           # one line per waiting record (numbers masked)
    uv run scripts/call_records.py --send    # send each now: one line each

It reads the bot's settings (CALL_WEBHOOK_URL, CALL_WEBHOOK_SECRET, CALL_RECORD_SPOOL_DIR)
from the environment or .env. Exit codes: 0 all sent (or listed), 1 a record was not
delivered (it stays in the spool), 2 a setting to fix. docs/call-records.md explains the
spool; the code is in operator_tools/call_records.py.
"""

import sys

from operator_tools.call_records import main

if __name__ == "__main__":
    sys.exit(main())

"""Record the prompts of one of the agent's languages with its Cartesia voice.

    uv run scripts/record_prompts.py --language es     # into prompts/es/
    uv run scripts/record_prompts.py --language es --out /tmp/es   # to listen first

The words are in prompts/texts.toml (edit them, or add a language); the voice is the
language's `voice` in the agent file (CARTESIA_VOICE_ID for the default language), the
model CARTESIA_MODEL, the key CARTESIA_API_KEY, from the environment or .env. The bot
plays a call's language's prompts, and the default language's where it has none.
`--help` lists the options; the code is in operator_tools/record_prompts.py.
"""

import sys

from operator_tools.record_prompts import main

if __name__ == "__main__":
    sys.exit(main())

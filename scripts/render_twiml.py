"""Print or write the TwiML Bin that connects a Twilio phone number to the agent.

    uv run scripts/render_twiml.py                      # the agent in ./pcc-deploy.toml
    uv run scripts/render_twiml.py --agent NAME --org ORG --region eu-central
    uv run scripts/render_twiml.py --all-regions --out twiml
    uv run scripts/render_twiml.py --url wss://YOUR_TUNNEL_HOST/ws   # your own runner

Defaults come from pcc-deploy.toml (agent_name, region), PIPECAT_ORG and STREAM_SECRET
(in the environment or .env). `--help` lists every option; the code is in
operator_tools/render_twiml.py.
"""

import sys

from operator_tools.render_twiml import main

if __name__ == "__main__":
    sys.exit(main())

"""pipecat's own eval harness (`pipecat eval run`) against the bot: the shipped scenarios pass."""

import asyncio
import importlib.util
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from aiohttp.test_utils import TestServer
from pipecat.evals.scenario import EvalScenarioFile
from pipecat.evals.services import classifier_from_config, llm_service_from_config

from testkit.bot_server import REPO, BotServer, start_bot_server
from testkit.scenario import bot_env, records_env

# pipecat's CLI, installed beside this interpreter: what `uv run pipecat` runs.
PIPECAT = Path(sys.executable).parent / "pipecat"
README_URL = "ws://localhost:7860/ws"
ORDER_DESK = REPO / "examples" / "order_desk"
# An order lookup asked of the shipped agent, which has no such tool.
LACKS_THE_TOOL = """
name: lacks_the_tool
scenarios:
  - name: looks_up_an_order
    turns:
      - user: "Where is my order 4567?"
        expect:
          - event: function_call
            calls:
              - name: lookup_order
            within_ms: 1500
"""


@dataclass
class Run:
    code: int
    out: str


def documented_command(page: str, scenarios: str) -> list[str]:
    """The eval command ``page`` gives for ``scenarios``: the words after `uv run`."""
    line = next(
        line
        for line in (REPO / page).read_text().splitlines()
        if line.startswith(f"uv run pipecat eval run {scenarios} ")
    )
    words = shlex.split(line, comments=True)
    assert README_URL in words, line
    return words[2:]


async def harness(words: list[str], *, bot: BotServer, logs: Path) -> Run:
    """`pipecat eval run ...` against ``bot``, as a user runs it from the project's folder."""
    args = [bot.url if word == README_URL else word for word in words]
    assert args[0] == "pipecat"
    process = await asyncio.create_subprocess_exec(
        PIPECAT,
        *args[1:],
        "--logs-dir",
        str(logs),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(60):
        out, _ = await process.communicate()
    return Run(process.returncode, out.decode(errors="replace"))


def load_stand_in():
    """examples/order_desk/stand_in.py: the orders API and tool-calling LLM the docs point to."""
    spec = importlib.util.spec_from_file_location("stand_in", ORDER_DESK / "stand_in.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def order_desk_evals(fakes, records, tmp_path: Path) -> tuple[Run, BotServer]:
    """The order desk's scenarios against its agent, its tools pointed at the stand-in."""
    stand_in = load_stand_in()
    async with TestServer(stand_in.create_app(), host="127.0.0.1") as server:
        base = str(server.make_url("")).rstrip("/")
        env = (
            bot_env(fakes)
            | records_env(records, "evals")
            | {
                "AGENT_FILE": str(ORDER_DESK / "agent.toml"),
                "ORDERS_API_URL": base,
                "ORDERS_TOKEN": stand_in.TOKEN,
                "OPENAI_BASE_URL": f"{base}/v1",
            }
        )
        bot = await start_bot_server(env, log_path=tmp_path / "order-desk.log")
        try:
            words = documented_command("docs/evals.md", "examples/order_desk/evals/")
            return await harness(words, bot=bot, logs=tmp_path / "order-desk"), bot
        finally:
            await bot.stop()


async def test_pipecat_eval_passes_the_shipped_scenarios_with_no_twilio_part(
    bots, fakes, records, tmp_path
):
    """The README's command against the bot with transfers (its LLM the fake one, which ends
    the call on a goodbye and transfers a caller who asks for a person); the order desk's
    scenarios against its own agent; and a scenario expecting a tool the agent lacks, which
    fails with pipecat's own message. All three at once, one bot serving two of them."""
    (tmp_path / "lacks").mkdir()
    (tmp_path / "lacks" / "lacks_the_tool.yaml").write_text(LACKS_THE_TOOL)
    lacks_words = ["pipecat", "eval", "run", str(tmp_path / "lacks"), "--bot-url", README_URL]
    readme_words = documented_command("README.md", "evals/")
    shipped, lacking, (order_desk, order_desk_bot) = await asyncio.gather(
        harness(readme_words, bot=bots.control, logs=tmp_path / "shipped"),
        harness(lacks_words, bot=bots.control, logs=tmp_path / "lacks-logs"),
        order_desk_evals(fakes, records, tmp_path),
    )

    assert shipped.code == 0 and "3/3 passed" in shipped.out, shipped.out
    for scenario in ("greets", "ends_the_call_on_goodbye", "transfers_when_asked_for_a_person"):
        assert f"/{scenario} (" in shipped.out, shipped.out
    assert order_desk.code == 0 and "2/2 passed" in order_desk.out, order_desk.out
    assert lacking.code == 1, lacking.out
    assert "function call 'lookup_order' not seen" in lacking.out, lacking.out

    # Each scenario ran as a call of the same agent, and its endings were the agent's own.
    log = bots.control.logs()
    assert log.count("Eval started by pipecat's harness") >= 4
    assert "Ending call: end_call tool" in log and "Ending call: transferred" in log
    assert "Tool lookup_order answered" in order_desk_bot.logs()
    assert "Tool check_opening_hours answered" in order_desk_bot.logs()
    # No eval reached Twilio (the bot records calls and has credentials) or sent a record.
    assert not [r.path for r in fakes.twilio.requests if "eval-" in r.path]
    assert not [r.path for r in records.requests if b"eval-" in r.body]


def test_the_simulated_caller_builds_its_caller_and_judge_from_the_factory(monkeypatch):
    """evals/simulated/ is run by hand (it needs a key and spends tokens); here it loads, and its
    factory builds an OpenAI-compatible LLM for each part, sending nothing."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-used")
    (simulation,) = EvalScenarioFile.load(REPO / "evals" / "simulated" / "quick_question.yaml")
    assert llm_service_from_config(simulation.simulator, where="simulator")
    assert classifier_from_config(simulation.judge, where="judge.eval")

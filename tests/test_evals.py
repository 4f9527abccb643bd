"""pipecat's own eval harness (`pipecat eval run`) against the bot: the shipped scenarios pass."""

import asyncio
import base64
import importlib
import json
import re
from pathlib import Path
from types import SimpleNamespace

from pipecat.evals.scenario import EvalScenarioFile
from pipecat.evals.services import classifier_from_config, llm_service_from_config
from pipecat.frames.frames import (
    InputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
)

from bot_runtime.call.ending import CallEnding, EndedReason
from bot_runtime.call.eval_line import EvalLineSerializer
from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from testkit.bot_server import REPO
from testkit.eval_harness import DOCUMENTED_URL, documented_command, run_harness

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


async def test_pipecat_eval_passes_the_shipped_scenarios_with_no_twilio_part(
    bots, fakes, records, tmp_path: Path
):
    """The README's command against the bot with transfers, its LLM the fake one (which ends
    the call on a goodbye and transfers a caller who asks for a person, as a model told to
    would); beside it, a scenario expecting a tool the agent lacks fails with pipecat's own
    message."""
    (tmp_path / "lacks").mkdir()
    (tmp_path / "lacks" / "lacks_the_tool.yaml").write_text(LACKS_THE_TOOL)
    lacks_words = ["pipecat", "eval", "run", str(tmp_path / "lacks"), "--bot-url", DOCUMENTED_URL]
    shipped, lacking = await asyncio.gather(
        run_harness(
            documented_command("README.md", "evals/"),
            bot_url=bots.control.url,
            logs=tmp_path / "shipped",
        ),
        run_harness(lacks_words, bot_url=bots.control.url, logs=tmp_path / "lacks-logs"),
    )

    assert shipped.code == 0 and "3/3 passed" in shipped.out, shipped.out
    for scenario in ("greets", "ends_the_call_on_goodbye", "transfers_when_asked_for_a_person"):
        assert f"/{scenario} (" in shipped.out, shipped.out
    assert lacking.code == 1, lacking.out
    assert "function call 'lookup_order' not seen" in lacking.out, lacking.out

    # Each scenario ran as a call of the same agent, and its endings were the agent's own.
    log = bots.control.logs()
    assert log.count("Eval started by pipecat's harness") >= 4
    assert re.search(r"\[eval-[0-9a-f]{12}\] Ending call: end_call tool", log)
    assert re.search(r"\[eval-[0-9a-f]{12}\] Ending call: transferred \(transfer_call", log)
    # No eval reached Twilio (the bot records calls and has credentials) or sent a record.
    assert not [r.path for r in fakes.twilio.requests if "eval-" in r.path]
    assert not [r.path for r in records.requests if b"eval-" in r.body]


def test_the_hand_run_scenarios_name_factories_that_build_their_services(monkeypatch):
    """evals/audio/ and evals/simulated/ are run by hand (the simulation needs a key and spends
    tokens): here they load, each factory they name exists, and the LLMs build, sending
    nothing (the voice and the ear would load their models)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-used")
    (spoken,) = EvalScenarioFile.load(REPO / "evals" / "audio" / "spoken_goodbye.yaml")
    (simulation,) = EvalScenarioFile.load(REPO / "evals" / "simulated" / "quick_question.yaml")
    for block in (spoken.user_speech, spoken.transcriber, simulation.user_speech):
        module, _, name = block["factory"].rpartition(".")
        assert callable(getattr(importlib.import_module(module), name))
    assert llm_service_from_config(simulation.simulator, where="simulator")
    assert classifier_from_config(simulation.judge, where="judge.eval")


async def test_the_eval_line_hears_the_harness_at_the_phone_rate_and_keeps_the_endings_its_own():
    ending = CallEnding()
    line = EvalLineSerializer(ending=ending)
    await line.setup(SimpleNamespace(audio_in_sample_rate=PHONE_SAMPLE_RATE))
    # The harness's voice, 40 ms messages at 16 kHz, reaches the pipeline at the phone's rate.
    voice = {"base64Audio": base64.b64encode(bytes(1280)).decode(), "sampleRate": 16000}
    raw_audio = json.dumps({"label": "rtvi-ai", "type": "raw-audio", "data": voice})
    frames = [frame for _ in range(5) if (frame := await line.deserialize(raw_audio))]
    assert frames and all(isinstance(frame, InputAudioRawFrame) for frame in frames)
    assert {frame.sample_rate for frame in frames} == {PHONE_SAMPLE_RATE}
    assert 0 < sum(len(frame.audio) for frame in frames) <= 5 * 640
    # A goodbye's mark passes once written after the audio before it, and goes no further.
    waiting = asyncio.create_task(line.wait_for_mark("last-words-1", timeout_secs=1))
    mark = OutputTransportMessageFrame(message=line.mark_message("last-words-1"))
    assert await line.serialize(mark) is None and await waiting
    # The bot's interruptions are the harness's to see, until the call's ending makes its own.
    interrupted = {"label": "rtvi-ai", "type": "bot-interrupted"}
    assert await line.serialize(OutputTransportMessageUrgentFrame(message=interrupted))
    ending.begin(EndedReason.TRANSFER, "transfer_call tool")
    assert await line.serialize(OutputTransportMessageUrgentFrame(message=interrupted)) is None

"""The softphone page in headless Chromium calling the real bot, a recorded caller as its mic."""

import asyncio
import base64
import json
import math
import re
import sys
import time

import aiohttp
import numpy as np
import pytest

from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from operator_tools.softphone.server import FROM_NUMBER, TO_NUMBER
from testkit.bot_server import REPO
from testkit.caller_audio import caller_line
from testkit.fakes import Reply
from testkit.media_stream import TEST_ACCOUNT_SID
from testkit.noise_set import BY_NAME
from testkit.phone_audio import MEDIA_FRAME_BYTES, ulaw_to_pcm16
from testkit.scenario import STREAM_SECRET, rest_requests_for
from testkit.softphone_browser import (
    CHROMIUM,
    SoftphonePage,
    chromium,
    softphone_server,
    write_caller_wav,
)

SID = re.compile(r"(CA|MZ)[0-9a-f]{32}")
CALL_SECS = 25


# The agent file the softphone offers the languages of (the bots it calls have their own).
SPANISH_TOO = """
[languages.es]
greeting = "Hola, ¿en qué puedo ayudarle?"
goodbye = "Gracias por llamar. ¡Adiós!"
silence_prompt = "¿Sigue ahí?"
voicemail_message = "Llámenos cuando pueda. ¡Adiós!"
voice = "spanish-voice"
"""


@pytest.fixture(scope="module")
async def softphone_url(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `apt-get install chromium` (.ci/run does)")
    agent_file = tmp_path_factory.mktemp("softphone-agent") / "agent.toml"
    agent_file.write_text(SPANISH_TOO)
    async with softphone_server({"AGENT_FILE": str(agent_file)}) as url:
        yield url


def user_words(fakes, *, since: int) -> str:
    """Everything callers said, as the LLM saw it in the requests from number ``since`` on."""
    return " ".join(
        str(m.get("content"))
        for request in fakes.openai.requests[since:]
        for m in request["messages"]
        if m["role"] == "user"
    )


def bot_turn_latencies(log: str, call_sid: str) -> list[float]:
    """The bot's own "Turn N latency: M ms" lines for one call, in seconds."""
    pattern = re.compile(rf"\[{call_sid}\] Turn \d+ latency: (\d+) ms")
    return [int(ms) / 1000 for ms in pattern.findall(log)]


async def wait_until(condition, *, timeout_secs: float) -> None:
    deadline = time.monotonic() + timeout_secs
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_secs} s: {condition}")
        await asyncio.sleep(0.05)


def seconds_in(text: str) -> list[float]:
    return [float(s) for s in re.findall(r"(\d+\.\d+) s\b", text)]


async def call_sid_of(page: SoftphonePage) -> str:
    return (await page.text("#call-sid")).removeprefix("callSid ")


async def test_a_call_from_the_page_talks_to_the_bot_and_ends_with_its_goodbye(
    bots, fakes, softphone_url, tmp_path
):
    fakes.deepgram.transcripts += [caller_line("order_status"), caller_line("goodbye")]
    requests_before = len(fakes.openai.requests)
    mic = write_caller_wav(tmp_path / "mic.wav", [1.5, "order_status", 1.5, "goodbye", 40.0])
    async with chromium(microphone=mic) as browser:
        page = await SoftphonePage.open(browser, softphone_url)
        await page.call(bots.standard.url)
        call_sid = await call_sid_of(page)
        fakes.twilio.register_call(sid=call_sid, from_=FROM_NUMBER, to=TO_NUMBER)
        await page.wait_until_ended(timeout_secs=CALL_SECS)
        log = await page.log()

    # The caller's words reached the LLM, and the bot's goodbye made it hang up.
    heard = user_words(fakes, since=requests_before)
    assert "status of my order" in heard and "goodbye" in heard
    assert fakes.twilio.hangups.count(call_sid) == 1
    assert log[-1].text.startswith("call ended: the bot closed the stream"), log[-1]
    # The goodbye's mark came back only once its audio had played: the bot waits for it.
    assert any(e.kind == "mark" and "its audio has played" in e.text for e in log), log
    assert any(e.kind == "bot" and "bot audio" in e.text for e in log)

    # Each reply the page timed matches one the bot timed itself, within what lies between
    # them (the microphone's processing, the end-of-speech detectors, the network).
    # The page also times bursts the bot began after a pause inside a line and then stopped
    # for the rest of it, so each of the bot's turns is matched, not the medians.
    page_latencies = [seconds_in(e.text)[0] for e in log if e.kind == "reply"]
    bot_latencies = bot_turn_latencies(bots.standard.logs(), call_sid)
    assert page_latencies and bot_latencies
    for bot_latency in bot_latencies:
        differences = [page - bot_latency for page in page_latencies]
        assert any(-0.1 < d < 0.3 for d in differences), (page_latencies, bot_latencies)


async def test_page_speaks_the_media_streams_protocol(bots, fakes, softphone_url, tmp_path):
    fakes.deepgram.transcripts.append(caller_line("saturday"))
    requests_before = len(fakes.openai.requests)
    mic = write_caller_wav(tmp_path / "mic.wav", [1.0, "saturday", 40.0])
    async with chromium(microphone=mic) as browser:
        page = await SoftphonePage.open(browser, softphone_url)
        await page.call(bots.standard.url)
        await page.wait_for("reply", timeout_secs=10)
        for key in "12#":
            await page.page.click(f'#keypad button:text-is("{key}")')
        await wait_until(
            lambda: "Keypad: 12#" in user_words(fakes, since=requests_before), timeout_secs=5
        )
        await page.page.click("#hangup")
        await page.wait_until_ended(timeout_secs=5)
    sent = page.sent

    connected, start, *middle, stop = sent
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    stream_sid = start["streamSid"]
    assert SID.fullmatch(stream_sid) and SID.fullmatch(start["start"]["callSid"])
    assert start["start"]["accountSid"] == TEST_ACCOUNT_SID
    assert start["start"]["mediaFormat"] == {
        "encoding": "audio/x-mulaw",
        "sampleRate": 8000,
        "channels": 1,
    }
    assert start["start"]["customParameters"]["from_number"].startswith("+1555")
    assert stop["event"] == "stop"
    assert stop["stop"] == {"accountSid": TEST_ACCOUNT_SID, "callSid": start["start"]["callSid"]}
    assert [m["sequenceNumber"] for m in sent[1:]] == [str(n) for n in range(1, len(sent))]
    assert all(m["streamSid"] == stream_sid for m in sent[1:])

    media = [m for m in middle if m["event"] == "media"]
    assert [m["media"]["chunk"] for m in media] == [str(n) for n in range(1, len(media) + 1)]
    assert [m["media"]["timestamp"] for m in media] == [str(20 * n) for n in range(len(media))]
    sizes = {len(base64.b64decode(m["media"]["payload"], validate=True)) for m in media}
    assert sizes == {MEDIA_FRAME_BYTES}
    assert {m["media"]["track"] for m in media} == {"inbound"}
    digits = [m["dtmf"] for m in middle if m["event"] == "dtmf"]
    assert digits == [{"track": "inbound_track", "digit": d} for d in "12#"]


async def test_barge_ins_and_a_pause_for_an_mm_hm_show_and_hang_up_leaves_no_rest_request(
    bots, fakes, softphone_url, tmp_path
):
    # A question over the greeting, an "mm-hm" under the reply, then words over it.
    fakes.openai.responder = lambda _request: Reply(" ".join(["A long answer goes on."] * 12))
    mm_hm = BY_NAME["mm_hm"]
    fakes.deepgram.transcripts += [caller_line("saturday"), mm_hm.heard, caller_line("agree")]
    script = [1.0, "saturday", 1.5, mm_hm.pcm(), 1.5, "agree", 40.0]
    mic = write_caller_wav(tmp_path / "mic.wav", script)
    async with chromium(microphone=mic) as browser:
        page = await SoftphonePage.open(browser, softphone_url)
        await page.call(bots.standard.url)
        barge_in = await page.wait_for("barge-in", timeout_secs=15)
        went_on = await page.wait_for("went-on", timeout_secs=15)
        await page.wait_for("barge-in", timeout_secs=10, nth=1)  # the words over the reply
        call_sid = await call_sid_of(page)
        await page.page.click("#hangup")
        await page.wait_until_ended(timeout_secs=5)
        log = await page.log()

    # The bot pauses on the caller's voice and clears once their words arrive, so the page
    # times the barge-in from when the bot's speech stopped (before the clear, if it paused).
    after_speech, _dropped = seconds_in(barge_in.text)
    assert 0 < after_speech < 1.5, barge_in
    # The question got one reply; the "mm-hm" under it cut nothing off and was not answered;
    # the words that followed cut the reply off.
    kinds = [entry.kind for entry in log]
    first_reply = kinds.index("reply")
    during_reply = kinds[first_reply + 1 : kinds.index("went-on", first_reply)]
    assert not {"reply", "barge-in", "clear"} & set(during_reply), kinds
    assert "barge-in" in kinds[kinds.index("went-on") :], kinds
    assert went_on.text.startswith("bot went on"), went_on
    assert log[-1].text == "call ended: you hung up"
    summary = await bots.standard.wait_for_log(f"[{call_sid}] Call summary:", timeout_secs=5)
    assert "ended by caller hung up" in summary
    await asyncio.sleep(1.0)  # A hang-up request, if any, would have been sent by now.
    assert not rest_requests_for(fakes, call_sid)


async def test_stream_secret_comes_from_env_and_never_sits_in_the_page(bots, fakes, tmp_path):
    mic = write_caller_wav(tmp_path / "mic.wav", [30.0])
    async with (
        softphone_server({"STREAM_SECRET": STREAM_SECRET}) as url,
        chromium(microphone=mic) as browser,
    ):
        async with aiohttp.ClientSession() as http:
            for name in ("", "softphone.js", "phone-call.js", "media-stream.js"):
                async with http.get(url + name) as response:
                    assert response.status == 200
                    assert STREAM_SECRET not in await response.text()
        page = await SoftphonePage.open(browser, url)
        await page.call(bots.secured.url)
        await page.wait_for("bot", timeout_secs=10)  # the greeting: the secured bot took it
        await page.page.click("#hangup")
        await page.wait_until_ended(timeout_secs=5)
    assert page.sent[1]["start"]["customParameters"]["stream_secret"] == STREAM_SECRET


async def test_refused_stream_and_unreachable_bot_are_explained(bots, softphone_url, tmp_path):
    mic = write_caller_wav(tmp_path / "mic.wav", [30.0])
    async with chromium(microphone=mic) as browser:
        page = await SoftphonePage.open(browser, softphone_url)
        await page.call(bots.secured.url)  # without the stream secret
        await page.wait_until_ended(timeout_secs=10)
        assert await page.text("#problem") == "refused: check stream_secret / account"

        unused = bots.standard.url.replace(f":{bots.standard.port}/", ":1/")
        await page.call(unused)
        await page.wait_until_ended(timeout_secs=10)
        assert (await page.text("#problem")).startswith(
            f"cannot connect to {unused}: check the URL"
        )

        await page.call("localhost:7860/ws")
        assert "is not a stream URL" in await page.text("#problem")
        assert await page.text("#phase") == "Call ended"  # unchanged: no call was tried


async def test_blocked_microphone_is_explained_and_no_stream_opens(softphone_url, tmp_path):
    mic = write_caller_wav(tmp_path / "mic.wav", [5.0])
    async with chromium(microphone=mic, allow_microphone=False) as browser:
        page = await SoftphonePage.open(browser, softphone_url)
        await page.call("ws://127.0.0.1:7860/ws")
        await page.wait_until_ended(timeout_secs=10)
        assert (await page.text("#problem")).startswith("microphone blocked: allow it")
    assert page.sent == []


# The page's own capture processor, fed a pure tone in an offline audio graph (no microphone
# processing in the way); it returns the 8 kHz mu-law frames the page would send.
CAPTURE_A_TONE = """async ([rate, hz]) => {
  const context = new OfflineAudioContext(1, rate, rate);
  await context.audioWorklet.addModule("phone-worklets.js");
  const capture = new AudioWorkletNode(context, "phone-capture", { numberOfOutputs: 0 });
  const frames = [];
  capture.port.onmessage = ({ data }) => frames.push(Array.from(data.frame));
  const tone = new OscillatorNode(context, { frequency: hz });
  tone.connect(capture);
  tone.start();
  await context.startRendering();
  await new Promise((resolve) => setTimeout(resolve, 100));
  return frames;
}"""


@pytest.mark.parametrize("rate", [44100, 48000])
async def test_microphone_is_low_passed_before_it_goes_down_to_8_khz(softphone_url, rate, tmp_path):
    """Above 4 kHz, plain decimation would fold a 6 kHz whistle back as a loud 2 kHz tone."""
    mic = write_caller_wav(tmp_path / "mic.wav", [1.0])
    async with chromium(microphone=mic) as browser:
        page = await SoftphonePage.open(browser, softphone_url)
        heard = {}
        for hz in (1000, 6000):
            frames = await page.page.evaluate(CAPTURE_A_TONE, [rate, hz])
            pcm = np.frombuffer(ulaw_to_pcm16(bytes(sum(frames, []))), dtype=np.int16)
            heard[hz] = pcm[MEDIA_FRAME_BYTES * 5 :].astype(np.float64) / 32768  # past the start-up
    assert len(heard[1000]) > 0.8 * PHONE_SAMPLE_RATE
    spectrum = np.abs(np.fft.rfft(heard[1000]))
    assert round(np.argmax(spectrum) * PHONE_SAMPLE_RATE / len(heard[1000])) == 1000
    assert rms_db(heard[1000]) > -4  # a full-scale sine is -3 dBFS
    assert rms_db(heard[6000]) < -60


def rms_db(samples: np.ndarray) -> float:
    return 20 * math.log10(max(float(np.sqrt(np.mean(samples**2))), 1e-9))


async def test_cloud_call_goes_to_the_regional_endpoint_with_the_service_host(
    softphone_url, tmp_path
):
    """Pipecat Cloud is out of reach here: the browser itself answers every wss:// URL."""
    routed: list[str] = []
    received: list[dict] = []

    def pipecat_cloud(websocket) -> None:
        routed.append(websocket.url)

        async def on_message(message: str) -> None:
            received.append(json.loads(message))
            if received[-1]["event"] == "start":
                await websocket.close(code=1000)

        websocket.on_message(on_message)

    mic = write_caller_wav(tmp_path / "mic.wav", [30.0])
    async with chromium(microphone=mic) as browser:
        page = await SoftphonePage.open(browser, softphone_url)
        await page.page.route_web_socket(re.compile(r"^wss://"), pipecat_cloud)
        await page.page.click("#mode-cloud")
        await page.page.select_option("#region", "eu-central")
        await page.page.fill("#agent", "my-agent")
        await page.page.fill("#org", "acme")
        await page.page.wait_for_function(
            "document.getElementById('cloud-target').textContent.endsWith('my-agent.acme')"
        )
        languages = await page.page.locator("#language option").all_inner_texts()
        await page.page.select_option("#language", "es")
        await page.page.click("#call")
        await page.wait_until_ended(timeout_secs=10)
        ended = (await page.log())[-1]

    assert routed == ["wss://eu-central.api.pipecat.daily.co/ws/twilio"]
    parameters = received[1]["start"]["customParameters"]
    assert parameters["_pipecatCloudServiceHost"] == "my-agent.acme"
    assert parameters["from_number"].startswith("+1555")
    assert ended.text.startswith("call ended: the bot closed the stream")
    # The agent file's languages are offered; the one chosen goes as the `language` parameter.
    assert languages == ["en: English (the agent's default)", "es: Spanish"]
    assert parameters["language"] == "es"


async def test_cloud_fields_are_checked_as_the_twiml_scripts_check_them(softphone_url):
    async with aiohttp.ClientSession() as http:
        query = {"region": "eu-central", "agent": "my-agent", "org": ""}
        async with http.get(softphone_url + "api/target", params=query) as response:
            assert response.status == 400
            assert (await response.json())["error"].startswith("no organization")
        query = {"region": "mars-north", "agent": "my-agent", "org": "acme"}
        async with http.get(softphone_url + "api/target", params=query) as response:
            assert (await response.json())["error"].startswith("unknown Pipecat Cloud region")
        # Only this machine's own pages may ask: another name for 127.0.0.1 is refused.
        headers = {"Host": "attacker.example"}
        async with http.get(softphone_url + "api/config", headers=headers) as response:
            assert response.status == 400


async def test_script_errors_are_one_line(tmp_path):
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "scripts/softphone.py",
        "--cloud",
        "--config",
        str(tmp_path / "missing.toml"),
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHON_DOTENV_DISABLED": "1", "HOME": str(tmp_path)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 2
    assert err.decode().splitlines() == [
        f"softphone.py: error: {tmp_path}/missing.toml does not exist"
    ]


async def test_open_says_when_no_browser_could_be_opened(tmp_path):
    # BROWSER names the browser to run; one that fails is what a machine without one gives.
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "scripts/softphone.py", "--open", "--port", "0"),
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHON_DOTENV_DISABLED": "1", "BROWSER": "false"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(30):
            said = (await process.stderr.readline()).decode()
    finally:
        process.terminate()
        await process.wait()
    assert said.startswith("softphone.py: could not open a browser here"), said
    assert "open http://" in said

"""dialout.py --to against a fake Twilio: the exact request, following the call, its errors."""

import signal
import socket

import pytest

from operator_tools import dialout
from testkit.fakes.twilio_rest import (
    ACCOUNT_SID,
    API_KEY,
    API_SECRET,
    AUTH_TOKEN,
    DEFAULT_SCRIPT,
)
from testkit.operator_scripts import (
    FAST_POLLING,
    FROM,
    TO,
    call_main,
    finish,
    run_script,
    start_script,
    stream_of,
    until,
)

pytest_plugins = ["testkit.operator_fixtures"]
pytestmark = pytest.mark.usefixtures("deployed_project")

EU_CENTRAL = "wss://eu-central.api.pipecat.daily.co/ws/twilio"


async def test_the_create_request_has_exactly_the_right_fields_and_the_sid_is_printed(
    fake_twilio, monkeypatch
):
    monkeypatch.setenv("STREAM_SECRET", "s3cret")
    note = 'Tom & "Jerry" <ltd>'
    result = await run_script(
        "dialout.py", "--to", TO, "--param", "customer_id=42", "--param", f"note={note}"
    )

    assert result.code == 0, result.err
    (create,) = fake_twilio.creates
    assert result.out == f"{next(iter(fake_twilio.calls))}\n"
    assert set(create.form) == {"To", "From", "Twiml"}
    assert (create.form["To"], create.form["From"]) == (TO, FROM)
    assert "&amp;" in create.form["Twiml"] and "&lt;ltd&gt;" in create.form["Twiml"]
    assert stream_of(create.form["Twiml"]) == (
        EU_CENTRAL,
        {
            "_pipecatCloudServiceHost": "support-bot.acme",
            "call_type": "outbound",
            "from_number": FROM,
            "to_number": TO,
            "stream_secret": "s3cret",
            "customer_id": "42",
            "note": note,
        },
    )
    assert create.username == ACCOUNT_SID
    assert "+1415***0123" in result.err
    assert TO not in result.err and AUTH_TOKEN not in result.out + result.err


@pytest.mark.parametrize(
    ("region", "url"),
    [
        ("us-west", "wss://api.pipecat.daily.co/ws/twilio"),
        ("us-east", "wss://us-east.api.pipecat.daily.co/ws/twilio"),
        ("eu-central", EU_CENTRAL),
        ("ap-south", "wss://ap-south.api.pipecat.daily.co/ws/twilio"),
    ],
)
async def test_each_region_gets_its_stream_url(fake_twilio, region, url):
    result = await call_main(
        dialout.main, "--to", TO, "--region", region, "--agent", "bot", "--org", "beta"
    )
    assert result.code == 0, result.err
    assert stream_of(fake_twilio.creates[0].form["Twiml"])[0] == url
    parameters = stream_of(fake_twilio.creates[0].form["Twiml"])[1]
    assert parameters["_pipecatCloudServiceHost"] == "bot.beta"


async def test_url_streams_to_your_own_runner_without_a_service_host(fake_twilio):
    result = await call_main(dialout.main, "--to", TO, "--url", "wss://abc.ngrok.app/ws")
    assert result.code == 0, result.err
    url, parameters = stream_of(fake_twilio.creates[0].form["Twiml"])
    assert url == "wss://abc.ngrok.app/ws"
    assert "_pipecatCloudServiceHost" not in parameters


async def test_api_key_and_secret_authenticate_instead_of_the_auth_token(fake_twilio, monkeypatch):
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    monkeypatch.setenv("TWILIO_API_KEY", API_KEY)
    monkeypatch.setenv("TWILIO_API_SECRET", API_SECRET)
    result = await run_script("dialout.py", "--to", TO, "--from", "+14155550100")
    assert result.code == 0, result.err
    assert fake_twilio.creates[0].username == API_KEY
    assert fake_twilio.creates[0].form["From"] == "+14155550100"
    assert API_SECRET not in result.out + result.err


async def test_wait_follows_the_status_until_the_call_ends(fake_twilio):
    # Steps long enough that a script started on a busy machine still polls each one.
    fake_twilio.script_calls_to(TO, DEFAULT_SCRIPT, step_secs=0.3)
    result = await run_script("dialout.py", "--to", TO, "--wait", *FAST_POLLING)
    assert result.code == 0, result.err
    shown = [s for s in ("queued", "ringing", "in-progress", "completed") if f": {s}" in result.err]
    assert shown == ["queued", "ringing", "in-progress", "completed"]
    assert sum(r.method == "GET" for r in fake_twilio.requests) >= 3


async def test_machine_detection_and_ring_timeout_are_sent_and_answered_by_shown(fake_twilio):
    fake_twilio.answer_calls_to(TO, "machine_start")
    result = await call_main(
        dialout.main, "--to", TO, "--machine-detection", "--timeout", "25", "--wait", *FAST_POLLING
    )
    assert result.code == 0, result.err
    form = fake_twilio.creates[0].form
    assert (form["MachineDetection"], form["Timeout"]) == ("Enable", "25")
    assert "answered by machine_start" in result.err


@pytest.mark.parametrize(
    ("status", "explanation"),
    [
        ("busy", "the line was busy"),
        ("no-answer", "nobody answered"),
        ("failed", "Twilio could not place the call"),
    ],
)
async def test_wait_exits_3_when_the_call_did_not_connect(fake_twilio, status, explanation):
    fake_twilio.script_calls_to(TO, ["queued", "ringing", status])
    result = await run_script("dialout.py", "--to", TO, "--wait", *FAST_POLLING)
    assert result.code == 3
    assert f"The call did not connect: {explanation}" in result.err
    assert "Traceback" not in result.err


async def test_ctrl_c_while_waiting_stops_following_and_leaves_the_call_up(fake_twilio):
    fake_twilio.script_calls_to(TO, ["queued", "in-progress", "completed"], step_secs=5)
    process = await start_script("dialout.py", "--to", TO, "--wait", *FAST_POLLING)
    await until(lambda: any(r.method == "GET" for r in fake_twilio.requests))
    process.send_signal(signal.SIGINT)
    result = await finish(process)
    assert result.code == 130
    (sid,) = fake_twilio.calls
    assert result.err.endswith(f"Stopped following {sid}; the call goes on.\n")
    assert "Traceback" not in result.err
    assert fake_twilio.hangups == []


# -- errors: one line, the fix, an exit code, never a traceback or the token ----------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (21211, "Twilio error 21211: Twilio says the To number is invalid"),
        (21212, "Twilio error 21212: Twilio says the From number is invalid: use a Twilio number"),
        (21215, "Twilio error 21215: no geo permission to call this country: enable it"),
        (21217, "Twilio error 21217: the To number is not a valid phone number"),
        (21219, "Twilio error 21219: trial accounts may only call verified numbers"),
        (13999, "Twilio error 13999: Unable to create record: Fake Twilio error 13999 (https://"),
    ],
)
async def test_twilio_errors_are_one_line_with_the_fix_and_exit_1(fake_twilio, code, expected):
    fake_twilio.fail_calls_to(TO, code)
    result = await run_script("dialout.py", "--to", TO)
    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith(f"dialout.py: error: {expected}")
    assert result.err.count("\n") == 1


async def test_wrong_credentials_are_error_20003_and_the_token_is_never_printed(
    fake_twilio, monkeypatch
):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "wrong-token-value-1234")
    result = await run_script("dialout.py", "--to", TO, "--wait")
    assert result.code == 1
    assert result.err.startswith("dialout.py: error: Twilio error 20003: Twilio rejected the")
    assert result.err.count("\n") == 1
    assert "wrong-token-value-1234" not in result.out + result.err


async def test_an_unknown_twilio_host_is_named(fake_twilio, monkeypatch):
    with socket.socket() as probe:  # A port nothing listens on.
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("TWILIO_API_BASE_URL", closed)
    result = await run_script("dialout.py", "--to", TO)
    assert result.code == 1
    assert result.err.startswith(f"dialout.py: error: cannot reach Twilio at {closed} (")
    assert result.err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "unset", "expected"),
    [
        (["--to", "4155550123"], None, "--to has no country code: start it with +"),
        (["--to", TO, "--from", "+0123"], None, "--from has no country code"),
        (["--to", TO], "TWILIO_PHONE_NUMBER", "no caller ID: pass --from +NUMBER"),
        (["--to", TO], "TWILIO_AUTH_TOKEN", "missing TWILIO_AUTH_TOKEN (or TWILIO_API_KEY +"),
        (["--to", TO, "--region", "mars"], None, "unknown Pipecat Cloud region 'mars'"),
        (["--to", TO, "--param", "oops"], None, "--param oops: write it as NAME=VALUE"),
        (["--to", TO, "--timeout", "1"], None, "--timeout 1: Twilio rings for 5 to 600 seconds"),
        (["--from", FROM], None, "one of the arguments --to --to-file is required"),
    ],
)
async def test_usage_errors_are_one_line_exit_2_and_make_no_request(
    fake_twilio, monkeypatch, args, unset, expected
):
    if unset:
        monkeypatch.delenv(unset)
    result = await run_script("dialout.py", *args)
    assert result.code == 2
    assert result.err.startswith("dialout.py: error: ")
    assert expected in result.err
    assert result.err.count("\n") == 1
    assert fake_twilio.requests == []

"""dialout.py against a fake Twilio: the exact request, following calls, errors, campaigns."""

import asyncio
import csv
import io
import os
import signal
import socket
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts import dialout
from testkit.fakes.twilio_rest import ACCOUNT_SID, API_KEY, API_SECRET, AUTH_TOKEN, FakeTwilio

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "dialout.py"
FROM = "+14155550999"
TO = "+14155550123"
EU_CENTRAL = "wss://eu-central.api.pipecat.daily.co/ws/twilio"
FAST = ["--poll-interval", "0.02"]


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def project(monkeypatch, tmp_path):
    """A deployed project: pcc-deploy.toml (eu-central), PIPECAT_ORG, nothing inherited."""
    for name in list(os.environ):
        if name.startswith(("PIPECAT_", "TWILIO_")) or name == "STREAM_SECRET":
            monkeypatch.delenv(name)
    monkeypatch.setenv("PYTHON_DOTENV_DISABLED", "1")
    monkeypatch.setenv("PIPECAT_CONFIG_PATH", str(tmp_path / "no-login.toml"))
    monkeypatch.setenv("PIPECAT_ORG", "acme")
    (tmp_path / "pcc-deploy.toml").write_text('agent_name = "support-bot"\nregion = "eu-central"\n')
    monkeypatch.chdir(tmp_path)


@pytest.fixture
async def twilio(monkeypatch):
    """The fake Twilio, and the environment of a user whose keys are set for it."""
    async with FakeTwilio(api_key=API_KEY, api_secret=API_SECRET) as fake:
        monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        monkeypatch.setenv("TWILIO_API_BASE_URL", fake.base_url)
        monkeypatch.setenv("TWILIO_PHONE_NUMBER", FROM)
        yield fake


async def start_dialout(*args: str) -> asyncio.subprocess.Process:
    """dialout.py as a user runs it: a process of its own, in the current env and cwd."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process) -> Result:
    async with asyncio.timeout(30):
        out, err = await process.communicate()
    return Result(process.returncode, out.decode(), err.decode())


async def run_dialout(*args: str) -> Result:
    return await finish(await start_dialout(*args))


async def call_dialout(*args: str) -> Result:
    """dialout.main() in a thread (it runs its own event loop), output captured."""

    def run() -> Result:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = dialout.main(list(args))
        return Result(code, out.getvalue(), err.getvalue())

    return await asyncio.to_thread(run)


async def until(condition: Callable[[], bool]) -> None:
    """Wait up to 10 s for ``condition`` to hold."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting")


def stream_of(twiml: str) -> tuple[str, dict[str, str]]:
    """The Stream URL and Parameters of inline TwiML (nothing may follow <Connect>)."""
    response = ET.fromstring(twiml)
    assert [child.tag for child in response] == ["Connect"]
    (stream,) = response[0]
    return stream.get("url"), {p.get("name"): p.get("value") for p in stream}


def write_csv(path: Path, header: list[str], *rows: list[str]) -> Path:
    with path.open("w", newline="") as file:
        csv.writer(file).writerows([header, *rows])
    return path


def read_results(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def final_lines(path: Path) -> dict[str, dict[str, str]]:
    """The last results line of each row: its outcome."""
    return {line["row"]: line for line in read_results(path)}


# -- one call -------------------------------------------------------------------------


async def test_the_create_request_has_exactly_the_right_fields_and_the_sid_is_printed(
    twilio, monkeypatch
):
    monkeypatch.setenv("STREAM_SECRET", "s3cret")
    note = 'Tom & "Jerry" <ltd>'
    result = await run_dialout("--to", TO, "--param", "customer_id=42", "--param", f"note={note}")

    assert result.code == 0, result.err
    (create,) = twilio.creates
    assert result.out == f"{next(iter(twilio.calls))}\n"
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
async def test_each_region_gets_its_stream_url(twilio, region, url):
    result = await call_dialout("--to", TO, "--region", region, "--agent", "bot", "--org", "beta")
    assert result.code == 0, result.err
    assert stream_of(twilio.creates[0].form["Twiml"])[0] == url
    assert stream_of(twilio.creates[0].form["Twiml"])[1]["_pipecatCloudServiceHost"] == "bot.beta"


async def test_url_streams_to_your_own_runner_without_a_service_host(twilio):
    result = await call_dialout("--to", TO, "--url", "wss://abc.ngrok.app/ws")
    assert result.code == 0, result.err
    url, parameters = stream_of(twilio.creates[0].form["Twiml"])
    assert url == "wss://abc.ngrok.app/ws"
    assert "_pipecatCloudServiceHost" not in parameters


async def test_api_key_and_secret_authenticate_instead_of_the_auth_token(twilio, monkeypatch):
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    monkeypatch.setenv("TWILIO_API_KEY", API_KEY)
    monkeypatch.setenv("TWILIO_API_SECRET", API_SECRET)
    result = await run_dialout("--to", TO, "--from", "+14155550100")
    assert result.code == 0, result.err
    assert twilio.creates[0].username == API_KEY
    assert twilio.creates[0].form["From"] == "+14155550100"
    assert API_SECRET not in result.out + result.err


async def test_wait_follows_the_status_until_the_call_ends(twilio):
    result = await run_dialout("--to", TO, "--wait", *FAST)
    assert result.code == 0, result.err
    shown = [s for s in ("queued", "ringing", "in-progress", "completed") if f": {s}" in result.err]
    assert shown == ["queued", "ringing", "in-progress", "completed"]
    assert sum(r.method == "GET" for r in twilio.requests) >= 3


async def test_machine_detection_and_ring_timeout_are_sent_and_answered_by_shown(twilio):
    twilio.answer_calls_to(TO, "machine_start")
    result = await call_dialout(
        "--to", TO, "--machine-detection", "--timeout", "25", "--wait", *FAST
    )
    assert result.code == 0, result.err
    form = twilio.creates[0].form
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
async def test_wait_exits_3_when_the_call_did_not_connect(twilio, status, explanation):
    twilio.script_calls_to(TO, ["queued", "ringing", status])
    result = await run_dialout("--to", TO, "--wait", *FAST)
    assert result.code == 3
    assert f"The call did not connect: {explanation}" in result.err
    assert "Traceback" not in result.err


async def test_dry_run_prints_the_twiml_and_request_and_calls_nobody(twilio):
    result = await run_dialout("--to", TO, "--param", "customer_id=42", "--dry-run")
    assert result.code == 0, result.err
    assert twilio.requests == []
    twiml, request = result.out.split("\n\n", 1)
    assert stream_of(twiml)[1]["customer_id"] == "42"
    assert request.splitlines()[:4] == [
        f"POST {twilio.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json",
        f"Auth: account {ACCOUNT_SID} with TWILIO_AUTH_TOKEN",
        f"To={TO}",
        f"From={FROM}",
    ]
    assert AUTH_TOKEN not in result.out + result.err


async def test_ctrl_c_while_waiting_stops_following_and_leaves_the_call_up(twilio):
    twilio.script_calls_to(TO, ["queued", "in-progress", "completed"], step_secs=5)
    process = await start_dialout("--to", TO, "--wait", *FAST)
    await until(lambda: any(r.method == "GET" for r in twilio.requests))
    process.send_signal(signal.SIGINT)
    result = await finish(process)
    assert result.code == 130
    (sid,) = twilio.calls
    assert result.err.endswith(f"Stopped following {sid}; the call goes on.\n")
    assert "Traceback" not in result.err
    assert twilio.hangups == []


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
async def test_twilio_errors_are_one_line_with_the_fix_and_exit_1(twilio, code, expected):
    twilio.fail_calls_to(TO, code)
    result = await run_dialout("--to", TO)
    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith(f"dialout.py: error: {expected}")
    assert result.err.count("\n") == 1


async def test_wrong_credentials_are_error_20003_and_the_token_is_never_printed(
    twilio, monkeypatch
):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "wrong-token-value-1234")
    result = await run_dialout("--to", TO, "--wait")
    assert result.code == 1
    assert result.err.startswith("dialout.py: error: Twilio error 20003: Twilio rejected the")
    assert result.err.count("\n") == 1
    assert "wrong-token-value-1234" not in result.out + result.err


async def test_an_unknown_twilio_host_is_named(twilio, monkeypatch):
    with socket.socket() as probe:  # A port nothing listens on.
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("TWILIO_API_BASE_URL", closed)
    result = await run_dialout("--to", TO)
    assert result.code == 1
    assert result.err.startswith(f"dialout.py: error: cannot reach Twilio at {closed} (")
    assert result.err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "unset", "expected"),
    [
        (["--to", "4155550123"], None, "--to is not an E.164 number"),
        (["--to", TO, "--from", "+0123"], None, "--from is not an E.164 number"),
        (["--to", TO], "TWILIO_PHONE_NUMBER", "no caller ID: pass --from +NUMBER"),
        (["--to", TO], "TWILIO_AUTH_TOKEN", "missing TWILIO_AUTH_TOKEN (or TWILIO_API_KEY +"),
        (["--to", TO, "--region", "mars"], None, "unknown Pipecat Cloud region 'mars'"),
        (["--to", TO, "--param", "oops"], None, "--param oops: write it as NAME=VALUE"),
        (["--to", TO, "--timeout", "1"], None, "--timeout 1: Twilio rings for 5 to 600 seconds"),
        (["--from", FROM], None, "one of the arguments --to --to-file is required"),
    ],
)
async def test_usage_errors_are_one_line_exit_2_and_make_no_request(
    twilio, monkeypatch, args, unset, expected
):
    if unset:
        monkeypatch.delenv(unset)
    result = await run_dialout(*args)
    assert result.code == 2
    assert result.err.startswith("dialout.py: error: ")
    assert expected in result.err
    assert result.err.count("\n") == 1
    assert twilio.requests == []


# -- campaigns ------------------------------------------------------------------------


def numbers(count: int, *, first: int = 100) -> list[str]:
    return [f"+1415555{n:04d}" for n in range(first, first + count)]


def busiest_second(times: list[float]) -> int:
    """The most requests that arrived within any one second."""
    return max(sum(t <= u < t + 1.0 for u in times) for t in times)


async def test_campaign_never_exceeds_cps_and_records_every_row(twilio, tmp_path):
    to = numbers(9)
    calls = write_csv(
        tmp_path / "calls.csv",
        ["to", "customer_id", "campaign_id"],
        *([number, f"c{i}", "spring"] for i, number in enumerate(to, start=1)),
    )
    started = time.monotonic()
    result = await run_dialout("--to-file", str(calls), "--cps", "3", "--concurrency", "9", *FAST)
    elapsed = time.monotonic() - started

    assert result.code == 0, result.err
    times = [r.time for r in twilio.creates]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    print(f"cps 3: busiest second {busiest_second(times)}, gaps {min(gaps):.3f}-{max(gaps):.3f}s")
    assert busiest_second(times) <= 3
    assert min(gaps) >= 1 / 3 - 0.02  # Loopback jitter only.
    assert elapsed < 8 / 3 + 2.5  # Paced, not throttled beyond it.
    assert [r.form["To"] for r in twilio.creates] == to
    assert stream_of(twilio.creates[4].form["Twiml"])[1] == {
        "_pipecatCloudServiceHost": "support-bot.acme",
        "call_type": "outbound",
        "from_number": FROM,
        "to_number": to[4],
        "customer_id": "c5",
        "campaign_id": "spring",
    }
    outcomes = final_lines(tmp_path / "results-calls.csv")
    assert sorted(outcomes, key=int) == [str(n) for n in range(1, 10)]
    assert {line["status"] for line in outcomes.values()} == {"completed"}
    assert all(line["call_sid"] in twilio.calls for line in outcomes.values())
    assert "9 of 9 numbers done: 9 completed" in result.out


async def test_campaign_keeps_at_most_concurrency_calls_in_flight(twilio, tmp_path):
    to = numbers(6)
    for number in to:
        twilio.script_calls_to(
            number, ["queued", "ringing", "in-progress", "completed"], step_secs=0.1
        )
    calls = write_csv(tmp_path / "calls.csv", ["to"], *([n] for n in to))
    result = await call_dialout("--to-file", str(calls), "--cps", "50", "--concurrency", "2", *FAST)
    assert result.code == 0, result.err
    live = [(c.created, c.created + 0.3) for c in twilio.calls.values()]
    busiest = max(sum(start <= t < end for start, end in live) for t, _ in live)
    assert busiest == 2


async def test_an_interrupted_campaign_resumes_without_calling_anyone_twice(twilio, tmp_path):
    to = numbers(6)
    for number in to[:2]:  # Long calls, in flight when the campaign is interrupted.
        twilio.script_calls_to(number, ["queued", "in-progress", "completed"], step_secs=3)
    calls = write_csv(tmp_path / "calls.csv", ["to"], *([n] for n in to))
    args = ["--to-file", str(calls), "--cps", "20", "--concurrency", "2", *FAST]

    process = await start_dialout(*args)
    results = tmp_path / "results-calls.csv"
    await until(
        lambda: results.exists() and sum(bool(r["call_sid"]) for r in read_results(results)) == 2
    )
    process.send_signal(signal.SIGINT)
    interrupted = await finish(process)
    assert interrupted.code == 130
    assert "Interrupted: 2 calls already placed go on" in interrupted.err
    assert "Traceback" not in interrupted.err
    assert len(twilio.creates) == 2

    resumed = await run_dialout(*args)
    assert resumed.code == 0, resumed.err
    assert "2 rows already dialled" in resumed.err
    assert Counter(r.form["To"] for r in twilio.creates) == Counter(to)
    assert {row: line["status"] for row, line in final_lines(results).items()} == {
        "1": "queued",
        "2": "queued",
        **{str(n): "completed" for n in range(3, 7)},
    }


async def test_a_row_whose_request_may_have_reached_twilio_is_not_redialled(twilio, tmp_path):
    to = numbers(3)
    calls = write_csv(tmp_path / "calls.csv", ["to"], *([n] for n in to))
    write_csv(
        tmp_path / "results-calls.csv",
        dialout.RESULT_COLUMNS,
        ["1", to[0], "", "dialling", "", ""],  # Killed while the create was in flight.
        ["2", to[1], "", "dialling", "", ""],
        ["2", to[1], "", "error", "", "Twilio error 21215: no geo permission"],  # Refused.
    )
    result = await call_dialout("--to-file", str(calls), *FAST)
    assert result.code == 0, result.err
    assert [r.form["To"] for r in twilio.creates] == to[1:]
    assert (
        "row 1: the last attempt (row 1) may have reached Twilio; not dialled again" in result.err
    )


async def test_invalid_rows_are_reported_and_skipped_and_twilio_refusals_recorded(twilio, tmp_path):
    good = numbers(3)
    twilio.fail_calls_to(good[1], 21215)
    calls = write_csv(
        tmp_path / "calls.csv",
        ["to", "customer_id", ""],
        [good[0], "c1", ""],
        ["4155550199", "c2", ""],  # No + (a spreadsheet ate it).
        [good[1], "c3", ""],
        [],
        [good[2], "x" * 300, ""],  # Too long for a Parameter.
        [f"+1 (415) 555-{good[0][-4:]}", "c6", ""],  # Same person as row 1.
    )
    result = await run_dialout("--to-file", str(calls), *FAST)

    assert result.code == 0, result.err
    assert [r.form["To"] for r in twilio.creates] == good[:2]
    assert "row 2: 'to' is not an E.164 number" in result.err
    assert "row 5: the value of 'customer_id' is 300 characters" in result.err
    assert "row 6: same number as row 1; skipped" in result.err
    outcomes = final_lines(tmp_path / "results-calls.csv")
    assert sorted(outcomes) == ["1", "3"]
    assert outcomes["1"]["status"] == "completed"
    assert (outcomes["3"]["status"], outcomes["3"]["call_sid"]) == ("error", "")
    assert outcomes["3"]["error"].startswith("Twilio error 21215: no geo permission")
    assert "row 1 +1415***0100: CA" in result.err and good[0] not in result.err


async def test_a_campaign_stops_at_an_account_wide_error_and_then_resumes(
    twilio, tmp_path, monkeypatch
):
    to = numbers(4)
    calls = write_csv(tmp_path / "calls.csv", ["to"], *([n] for n in to))
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "wrong-token-value-1234")
    stopped = await run_dialout("--to-file", str(calls), "--cps", "20", *FAST)
    assert stopped.code == 1
    assert "stopped the campaign: Twilio error 20003" in stopped.err
    assert len(twilio.creates) == 1
    assert "Traceback" not in stopped.err and "wrong-token-value-1234" not in stopped.err

    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    resumed = await run_dialout("--to-file", str(calls), "--cps", "20", *FAST)
    assert resumed.code == 0, resumed.err
    assert [r.form["To"] for r in twilio.creates[1:]] == to


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (["phone", "name"], "has no 'to' column (its columns: phone, name)"),
        (["to", "from_number"], "'from_number' is set by the script itself"),
        (["to", "customer_id"], "'customer_id' is both a --param and a column"),
    ],
)
async def test_a_campaign_file_that_cannot_work_is_refused_before_dialling(
    twilio, tmp_path, header, expected
):
    calls = write_csv(tmp_path / "calls.csv", header, [TO, "x"])
    result = await run_dialout("--to-file", str(calls), "--param", "customer_id=1")
    assert result.code == 2
    assert expected in result.err
    assert result.err.count("\n") == 1
    assert twilio.requests == []

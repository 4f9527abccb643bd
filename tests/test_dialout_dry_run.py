"""dialout.py before the first call: dry runs, everything missing named at once, number forms."""

import pytest

from operator_tools import dialout
from testkit.fakes.twilio_rest import ACCOUNT_SID, AUTH_TOKEN
from testkit.operator_scripts import FROM, TO, call_main, run_script, stream_of, write_csv

pytest_plugins = ["testkit.operator_fixtures"]

# What a new user has not set up yet, as dialout.py names it (each line's start).
NOTHING_SET_UP = [
    "no agent name: pass --agent NAME (or set agent_name in pcc-deploy.toml",
    "no organization: pass --org ORG or set PIPECAT_ORG",
    "no caller ID: pass --from +NUMBER (a Twilio number you own) or set TWILIO_PHONE_NUMBER",
    "missing TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY + TWILIO_API_SECRET)",
]


STREAM_SECRET = "dry-run-stream-secret-5f2a"


def starts(lines: list[str], prefixes: list[str]) -> bool:
    return len(lines) == len(prefixes) and all(map(str.startswith, lines, prefixes))


@pytest.mark.usefixtures("deployed_project")
async def test_dry_run_prints_the_twiml_and_request_and_calls_nobody(fake_twilio, monkeypatch):
    monkeypatch.setenv("STREAM_SECRET", STREAM_SECRET)
    result = await run_script("dialout.py", "--to", TO, "--param", "customer_id=42", "--dry-run")
    assert result.code == 0, result.err
    assert fake_twilio.requests == []
    twiml, request = result.out.split("\n\n", 1)
    assert stream_of(twiml)[1]["customer_id"] == "42"
    # The secret is masked, in the TwiML shown and in the request's inline TwiML.
    assert stream_of(twiml)[1]["stream_secret"] == "{STREAM_SECRET}"
    assert STREAM_SECRET not in result.out + result.err
    assert request.splitlines()[:4] == [
        f"POST {fake_twilio.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json",
        f"Auth: account {ACCOUNT_SID} with TWILIO_AUTH_TOKEN",
        f"To={TO}",
        f"From={FROM}",
    ]
    assert result.err == ""
    assert AUTH_TOKEN not in result.out + result.err


@pytest.mark.usefixtures("operator_env")
async def test_a_dry_run_with_nothing_set_up_shows_placeholders_and_names_what_is_missing():
    result = await run_script("dialout.py", "--to", "+1 (415) 555-0123", "--dry-run")

    assert result.code == 0, result.err
    twiml, request = result.out.split("\n\n", 1)
    assert stream_of(twiml)[1] == {
        "_pipecatCloudServiceHost": "{AGENT}.{PIPECAT_ORG}",
        "call_type": "outbound",
        "from_number": "{TWILIO_PHONE_NUMBER}",
        "to_number": TO,
    }
    assert request.splitlines()[:4] == [
        "POST https://api.twilio.com/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Calls.json",
        "Auth: none yet (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY + "
        "TWILIO_API_SECRET) not set)",
        f"To={TO}",
        "From={TWILIO_PHONE_NUMBER}",
    ]
    heading, *missing = result.err.splitlines()
    assert heading == "Not set yet, so a real run would stop (the {braces} above stand for them):"
    assert starts([line.strip() for line in missing], NOTHING_SET_UP)


@pytest.mark.usefixtures("operator_env")
async def test_a_real_run_names_everything_missing_at_once_and_calls_nobody(
    fake_twilio, monkeypatch
):
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_PHONE_NUMBER"):
        monkeypatch.delenv(name)
    result = await run_script("dialout.py", "--to", TO)
    assert result.code == 2
    assert result.out == ""
    assert starts(result.err.splitlines(), [f"dialout.py: error: {n}" for n in NOTHING_SET_UP])
    assert fake_twilio.requests == []


@pytest.mark.usefixtures("deployed_project")
async def test_numbers_written_with_spaces_dashes_brackets_or_00_are_sent_as_e164(
    fake_twilio, monkeypatch
):
    monkeypatch.setenv("TWILIO_PHONE_NUMBER", "+1 415-555-0999")
    by_env = await call_main(dialout.main, "--to", "+1 (415) 555-0123")
    by_option = await call_main(
        dialout.main, "--to", "0044 20 7946 0018", "--from", "+1.415.555.0100"
    )
    assert (by_env.code, by_option.code) == (0, 0), by_env.err + by_option.err
    sent = [(r.form["To"], r.form["From"]) for r in fake_twilio.creates]
    assert sent == [(TO, FROM), ("+442079460018", "+14155550100")]
    assert stream_of(fake_twilio.creates[1].form["Twiml"])[1]["from_number"] == "+14155550100"


@pytest.mark.usefixtures("operator_env")
async def test_a_campaign_dry_run_normalises_its_numbers_and_names_what_is_missing(
    fake_twilio, tmp_path, monkeypatch
):
    monkeypatch.delenv("TWILIO_PHONE_NUMBER")
    monkeypatch.setenv("STREAM_SECRET", STREAM_SECRET)
    calls = write_csv(
        tmp_path / "calls.csv", ["to"], ["+1 (415) 555-0123"], ["0044 20 7946 0018"], ["555 0100"]
    )
    result = await run_script("dialout.py", "--to-file", str(calls), "--agent", "bot", "--dry-run")

    assert result.code == 0, result.err
    assert fake_twilio.requests == []
    sent = [line for line in result.out.splitlines() if line.startswith(("# row", "To=", "From="))]
    assert sent == [
        "# row 1",
        f"To={TO}",
        "From={TWILIO_PHONE_NUMBER}",
        "# row 2",
        "To=+442079460018",
        "From={TWILIO_PHONE_NUMBER}",
    ]
    assert result.out.endswith("2 calls would be made\n")
    assert STREAM_SECRET not in result.out and "{STREAM_SECRET}" in result.out
    assert "row 3: 'to' has no country code" in result.err
    missing = [line.strip() for line in result.err.splitlines() if line.startswith("  ")]
    assert starts(missing, NOTHING_SET_UP[1:3])

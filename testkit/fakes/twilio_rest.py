"""A fake Twilio REST API on 127.0.0.1: create, fetch and update calls, start recordings."""

import asyncio
import base64
import binascii
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Self

from aiohttp import web

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-auth-token-0123456789abcdef"
API_KEY = "SK" + "fedcba9876543210" * 2
API_SECRET = "fake-api-secret-0123456789abcdef"

DEFAULT_SCRIPT = ("queued", "ringing", "in-progress", "completed")
FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})

_E164 = re.compile(r"\+[1-9]\d{1,14}")
_API = "/2010-04-01/Accounts/{account}"
_FORM = web.RequestKey("form", dict)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived: ``form`` keeps the last value of a repeated field."""

    method: str
    path: str
    form: dict[str, str]
    username: str | None
    time: float  # time.monotonic() on arrival


@dataclass
class FakeCall:
    """A call whose status walks through ``script``, one step every ``step_secs``."""

    sid: str
    to: str
    from_: str
    direction: str
    script: Sequence[str]
    step_secs: float
    created: float = field(default_factory=time.monotonic)
    answered_by: str | None = None
    ended_as: str | None = None  # Set by a hang-up; overrides the script.

    @property
    def status(self) -> str:
        if self.ended_as:
            return self.ended_as
        step = int((time.monotonic() - self.created) / self.step_secs)
        return self.script[min(step, len(self.script) - 1)]

    def as_json(self, account_sid: str) -> dict[str, object]:
        status = self.status
        answered = status in ("in-progress", "completed")
        now = format_datetime(datetime.now(UTC), usegmt=True)
        return {
            "sid": self.sid,
            "account_sid": account_sid,
            "to": self.to,
            "to_formatted": self.to,
            "from": self.from_,
            "from_formatted": self.from_,
            "status": status,
            "direction": self.direction,
            "answered_by": self.answered_by if answered else None,
            "date_created": now,
            "date_updated": now,
            "duration": None,
            "price": None,
            "api_version": "2010-04-01",
            "uri": f"{_API.format(account=account_sid)}/Calls/{self.sid}.json",
        }


class FakeTwilio:
    """Twilio's Calls API on a free loopback port; ``async with`` starts and stops it.

    Basic auth is checked against the account SID + auth token and, when given, an
    API key + secret, as Twilio does. Tests steer it per To number with
    ``script_calls_to`` (e.g. busy, no-answer) and ``fail_calls_to`` (e.g. 21215),
    pre-register calls (an inbound caller) with ``register_call``, and break one call's
    updates with ``garble_redirects_of`` and ``leave_hang_ups_unanswered``. With
    ``inbound_numbers`` (from, to), a call SID it has not seen is an inbound call in
    progress between them, as every stream a test opens stands for one, unless
    ``forget_call`` named it: that one gets Twilio's 404. Everything that
    arrives is in ``requests``; ``creates``, ``hangups``, ``updates`` and
    ``recordings`` are the views tests assert on.
    """

    def __init__(
        self,
        *,
        account_sid: str = ACCOUNT_SID,
        auth_token: str | None = AUTH_TOKEN,
        api_key: str | None = None,
        api_secret: str | None = None,
        step_secs: float = 0.05,
        inbound_numbers: tuple[str, str] | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.credentials = {account_sid: auth_token}
        if api_key:
            self.credentials[api_key] = api_secret
        self.step_secs = step_secs
        self.inbound_numbers = inbound_numbers
        self._forgotten: set[str] = set()
        self._delays: dict[str, float] = {}
        self.requests: list[RecordedRequest] = []
        self.calls: dict[str, FakeCall] = {}
        self.hangups: list[str] = []
        self.updates: list[tuple[str, dict[str, str]]] = []
        self.recordings: list[dict[str, object]] = []
        self._scripts: dict[str, tuple[Sequence[str], float]] = {}
        self._errors: dict[str, tuple[int, int, str]] = {}
        self._answered_by: dict[str, str] = {}
        self._garbled_redirects: set[str] = set()
        self._unanswered_hang_ups: set[str] = set()
        self._runner: web.AppRunner | None = None

    # -- steering -------------------------------------------------------------------

    def script_calls_to(
        self, number: str, statuses: Sequence[str], *, step_secs: float | None = None
    ) -> None:
        """Calls to ``number`` go through ``statuses`` (the last one sticks)."""
        self._scripts[number] = (tuple(statuses), step_secs or self.step_secs)

    def fail_calls_to(
        self, number: str, code: int, *, status: int = 400, message: str | None = None
    ) -> None:
        """Refuse to create calls to ``number`` with Twilio error ``code``."""
        self._errors[number] = (status, code, message or f"Fake Twilio error {code}")

    def answer_calls_to(self, number: str, answered_by: str) -> None:
        """With MachineDetection, report ``answered_by`` (human, machine_start, fax...)."""
        self._answered_by[number] = answered_by

    def register_call(
        self,
        *,
        from_: str,
        to: str,
        status: str = "in-progress",
        direction: str = "inbound",
        sid: str | None = None,
    ) -> str:
        """Make a call the fake did not create (an inbound caller) known; returns its SID."""
        sid = sid or _new_sid("CA")
        self.calls[sid] = FakeCall(sid, to, from_, direction, (status,), self.step_secs)
        return sid

    def forget_call(self, call_sid: str) -> None:
        """Answer every request about the call with Twilio's 404, as for a made-up SID."""
        self._forgotten.add(call_sid)
        self.calls.pop(call_sid, None)

    def answer_slowly_about(self, call_sid: str, secs: float) -> None:
        """Answer every request about the call ``secs`` late (a slow or distant Twilio)."""
        self._delays[call_sid] = secs

    def garble_redirects_of(self, call_sid: str) -> None:
        """Answer a redirect of the call with 200 and an HTML page, not carrying it out (as a
        proxy in the way would)."""
        self._garbled_redirects.add(call_sid)

    def leave_hang_ups_unanswered(self, call_sid: str) -> None:
        """Take a hang-up request of the call and never answer it (nor hang up)."""
        self._unanswered_hang_ups.add(call_sid)

    # -- what tests assert on -------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("use FakeTwilio in 'async with'")
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    @property
    def creates(self) -> list[RecordedRequest]:
        """Every create-call request, accepted or not, in arrival order."""
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/Calls.json")]

    # -- server -------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        app = web.Application(middlewares=[self._record_and_authenticate])
        calls = _API + "/Calls"
        app.router.add_post(calls + ".json", self._create_call)
        app.router.add_get(calls + "/{sid}.json", self._fetch_call)
        app.router.add_post(calls + "/{sid}.json", self._update_call)
        app.router.add_post(calls + "/{sid}/Recordings.json", self._start_recording)
        # A request left unanswered ends when its client gives up on it.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _record_and_authenticate(self, request: web.Request, handler) -> web.StreamResponse:
        arrived = time.monotonic()
        form = {key: value for key, value in (await request.post()).items()}
        request[_FORM] = form
        username, password = _basic_auth(request)
        self.requests.append(RecordedRequest(request.method, request.path, form, username, arrived))
        known = username is not None and self.credentials.get(username) == password
        if not known or request.match_info.get("account") != self.account_sid:
            return _error(401, 20003, "Authenticate")
        # Every route with a call SID in it is about a call this fake knows, or a 404.
        sid = request.match_info.get("sid")
        if sid in self._delays:
            await asyncio.sleep(self._delays[sid])
        if sid is not None and sid not in self.calls:
            if self.inbound_numbers is None or sid in self._forgotten:
                return _error(404, 20404, f"The requested resource {request.path} was not found")
            from_, to = self.inbound_numbers
            self.register_call(sid=sid, from_=from_, to=to)
        return await handler(request)

    async def _create_call(self, request: web.Request) -> web.Response:
        form = request[_FORM]
        to, from_ = form.get("To", ""), form.get("From", "")
        if not _E164.fullmatch(to):
            return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not _E164.fullmatch(from_):
            return _error(400, 21212, f"Invalid From Number (caller ID): {from_}")
        if not (form.get("Twiml") or form.get("Url")):
            return _error(400, 21205, "Url parameter is required.")
        if to in self._errors:
            status, code, message = self._errors[to]
            return _error(status, code, message)
        script, step_secs = self._scripts.get(to, (DEFAULT_SCRIPT, self.step_secs))
        call = FakeCall(_new_sid("CA"), to, from_, "outbound-api", script, step_secs)
        if "MachineDetection" in form:
            call.answered_by = self._answered_by.get(to, "human")
        self.calls[call.sid] = call
        return web.json_response(call.as_json(self.account_sid), status=201)

    async def _fetch_call(self, request: web.Request) -> web.Response:
        call = self.calls[request.match_info["sid"]]
        return web.json_response(call.as_json(self.account_sid))

    async def _update_call(self, request: web.Request) -> web.Response:
        call = self.calls[request.match_info["sid"]]
        form = request[_FORM]
        self.updates.append((call.sid, form))
        if call.sid in self._garbled_redirects and "Twiml" in form:
            return web.Response(
                text="<html><body>Bad gateway</body></html>", content_type="text/html"
            )
        if call.sid in self._unanswered_hang_ups and form.get("Status") == "completed":
            await asyncio.Event().wait()
        if form.get("Status") in ("completed", "canceled"):
            call.ended_as = form["Status"]
            if form["Status"] == "completed":
                self.hangups.append(call.sid)
        return web.json_response(call.as_json(self.account_sid))

    async def _start_recording(self, request: web.Request) -> web.Response:
        call = self.calls[request.match_info["sid"]]
        form = request[_FORM]
        recording = {
            "sid": _new_sid("RE"),
            "account_sid": self.account_sid,
            "call_sid": call.sid,
            "status": "in-progress",
            "channels": 2 if form.get("RecordingChannels") == "dual" else 1,
            "source": "StartCallRecordingAPI",
            "recording_status_callback": form.get("RecordingStatusCallback"),
        }
        self.recordings.append(recording)
        return web.json_response(recording, status=201)


def _basic_auth(request: web.Request) -> tuple[str | None, str | None]:
    """The username and password of an ``Authorization: Basic`` header, if well formed."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        username, colon, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return (username, password) if colon else (None, None)


def _error(status: int, code: int, message: str) -> web.Response:
    """An error in the shape Twilio's 2010-04-01 API answers with."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status)


def _new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)

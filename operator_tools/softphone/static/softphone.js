// The page: where to call and with what parameters, the phone's buttons, and the call as it goes.

import { PhoneCall } from "./phone-call.js";

const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];
const LANGUAGE = "language"; // the stream parameter that picks the call's language
const $ = (id) => document.getElementById(id);

let settings; // from the server: /api/config
let mode = "local";
let cloudTarget = null; // {url, service_host, parameter} once the cloud fields check out
let targetAsks = 0;
let call = null;
let figures = null;
let clockTimer = null;
let clickedAt = 0; // the event list's times count from the click on Call

async function load() {
  settings = await (await fetch("api/config")).json();
  $("url").value = settings.local_url;
  for (const region of settings.regions) $("region").add(new Option(region, region));
  $("region").value = settings.region;
  $("agent").value = settings.agent ?? "";
  $("org").value = settings.org ?? "";
  showLanguages(settings.languages, settings.parameters[LANGUAGE]);
  for (const [name, value] of Object.entries(settings.parameters)) {
    if (name !== LANGUAGE) addParameter(name, value);
  }
  $("account").textContent = `accountSid ${settings.account_sid} (${settings.account_source})`;
  setMode(settings.mode);
  for (const key of KEYS) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = key;
    button.disabled = true;
    button.onclick = () => call?.pressKey(key);
    $("keypad").append(button);
  }
}

function setMode(next) {
  mode = next;
  $("mode-local").setAttribute("aria-selected", String(mode === "local"));
  $("mode-cloud").setAttribute("aria-selected", String(mode === "cloud"));
  $("local-fields").hidden = mode !== "local";
  $("cloud-fields").hidden = mode !== "cloud";
  if (mode === "cloud") checkCloudTarget();
}

// The server works out the URL and service host with the same code as the TwiML scripts.
async function checkCloudTarget() {
  const query = new URLSearchParams({ region: $("region").value, agent: $("agent").value, org: $("org").value });
  const ask = ++targetAsks;
  cloudTarget = null;
  const answer = await (await fetch(`api/target?${query}`)).json();
  if (ask !== targetAsks) return; // the fields changed again while this answer was on its way
  cloudTarget = answer.error ? null : answer;
  $("cloud-target").textContent = answer.error ?? `${answer.url}\n${answer.parameter} = ${answer.service_host}`;
  $("cloud-target").classList.toggle("error", Boolean(answer.error));
}

// The agent file's languages ({default, declared}), its default first: choosing it sends no
// parameter, as a phone number with no language of its own does.
function showLanguages({ default: first, declared }, chosen) {
  const names = new Intl.DisplayNames(["en"], { type: "language" });
  const label = (code) => `${code}: ${names.of(code)}`;
  $("language").add(new Option(`${label(first)} (the agent's default)`, ""));
  for (const code of declared) if (code !== first) $("language").add(new Option(label(code), code));
  if (chosen && chosen !== first) {
    if (!declared.includes(chosen)) $("language").add(new Option(`${label(chosen)} (not declared)`, chosen));
    $("language").value = chosen;
  }
}

function addParameter(name = "", value = "") {
  const row = $("parameters").tBodies[0].insertRow();
  const secret = name === "stream_secret";
  row.innerHTML = `<td><input class="name" aria-label="name"></td>
    <td><input class="value" aria-label="value" type="${secret ? "password" : "text"}"></td>
    <td><button type="button" title="remove">&times;</button></td>`;
  row.querySelector(".name").value = name;
  row.querySelector(".value").value = value;
  row.querySelector("button").onclick = () => row.remove();
}

function parameters() {
  const chosen = {};
  for (const row of $("parameters").tBodies[0].rows) {
    const name = row.querySelector(".name").value.trim();
    if (name) chosen[name] = row.querySelector(".value").value;
  }
  if ($("language").value) chosen[LANGUAGE] = $("language").value;
  if (mode === "cloud") chosen[cloudTarget.parameter] = cloudTarget.service_host;
  return chosen;
}

async function startCall() {
  showProblem(null);
  if (mode === "cloud" && !cloudTarget) return showProblem($("cloud-target").textContent);
  const url = mode === "cloud" ? cloudTarget.url : $("url").value.trim();
  if (!isStreamUrl(url)) return showProblem(`"${url}" is not a stream URL: use ws://HOST:PORT/ws or wss://HOST/ws`);
  $("log").replaceChildren();
  figures = { latencies: [], bargeIns: 0, marks: 0 };
  for (const id of ["greeting", "latency", "median"]) $(id).textContent = "-";
  for (const id of ["replies", "barge-ins", "marks"]) $(id).textContent = "0";
  clickedAt = Date.now();
  setPhase("Connecting", "");
  setCalling(true);
  call = new PhoneCall({ url, accountSid: settings.account_sid, parameters: parameters(), report });
  $("call-sid").textContent = `callSid ${call.callSid}`;
  try {
    await call.start();
  } catch (error) {
    report.ended({ by: "error", reason: error.message });
  }
}

const report = {
  log(kind, text) {
    const item = document.createElement("li");
    item.dataset.kind = kind;
    const time = document.createElement("time");
    time.textContent = clock(Date.now() - clickedAt, true);
    const words = document.createElement("span");
    words.textContent = text;
    item.append(time, words);
    $("log").append(item);
    item.scrollIntoView({ block: "nearest" });
  },

  state(change) {
    if (change.phase) {
      setPhase("In call", "live");
      const connectedAt = Date.now();
      clockTimer = setInterval(() => ($("clock").textContent = clock(Date.now() - connectedAt)), 250);
    }
    if (change.callerSpeaking !== undefined) activity("caller-activity", change.callerSpeaking, "speaking", "quiet");
    if (change.botSpeaking !== undefined) activity("bot-activity", change.botSpeaking, "speaking", "listening");
    if (change.greeting !== undefined) $("greeting").textContent = secs(change.greeting);
    if (change.latency !== undefined) {
      figures.latencies.push(change.latency);
      $("latency").textContent = secs(change.latency);
      $("median").textContent = secs(median(figures.latencies));
      $("replies").textContent = String(figures.latencies.length);
    }
    if ("bargeIn" in change) $("barge-ins").textContent = String(++figures.bargeIns);
    if (change.markEchoed) $("marks").textContent = String(++figures.marks);
  },

  level(db) {
    $("level").value = Math.max(-60, db);
  },

  ended({ by, code, reason }) {
    clearInterval(clockTimer);
    setCalling(false);
    setPhase("Call ended", "ended");
    activity("caller-activity", false, "", "-");
    activity("bot-activity", false, "", "-");
    $("level").value = -60;
    const detail = code ? ` (websocket code ${code})` : "";
    report.log(by === "error" ? "error" : "end", `call ended: ${reason}${detail}`);
    if (by === "error") showProblem(reason);
  },
};

function isStreamUrl(text) {
  try {
    return ["ws:", "wss:"].includes(new URL(text).protocol);
  } catch {
    return false;
  }
}

function setCalling(calling) {
  $("call").disabled = calling;
  $("hangup").disabled = !calling;
  for (const key of $("keypad").children) key.disabled = !calling;
  for (const field of document.querySelectorAll("#setup input, #setup select, #setup button")) field.disabled = calling;
}

function setPhase(text, style) {
  $("phase").textContent = text;
  $("phase").className = `pill ${style}`;
}

function showProblem(text) {
  $("problem").hidden = !text;
  $("problem").textContent = text ?? "";
}

function activity(id, on, onText, offText) {
  $(id).textContent = on ? onText : offText;
  $(id).classList.toggle("on", on);
}

const secs = (ms) => `${(ms / 1000).toFixed(2)} s`;
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function clock(ms, tenths = false) {
  const total = ms / 1000;
  const minutes = Math.floor(total / 60);
  const rest = total - minutes * 60;
  return `${minutes}:${tenths ? rest.toFixed(1).padStart(4, "0") : String(Math.floor(rest)).padStart(2, "0")}`;
}

$("mode-local").onclick = () => setMode("local");
$("mode-cloud").onclick = () => setMode("cloud");
for (const id of ["region", "agent", "org"]) $(id).oninput = checkCloudTarget;
$("add-parameter").onclick = () => addParameter();
$("call").onclick = startCall;
$("hangup").onclick = () => call?.hangUp();
document.addEventListener("keydown", (event) => {
  if (call && !$("hangup").disabled && KEYS.includes(event.key) && event.target.tagName !== "INPUT") {
    call.pressKey(event.key);
  }
});
load();

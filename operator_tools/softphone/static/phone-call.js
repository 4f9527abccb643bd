// One call from the browser: the microphone on the stream, the bot's audio on the speakers, and
// what happened on the line (turns, latency, barge-ins, marks) reported to the page.

import { MediaStream } from "./media-stream.js";
import { openPhoneAudio } from "./phone-audio.js";
import { SpeechDetector } from "./speech-detector.js";

const SPEECH_EXPONENT = 3; // mu-law segment 3 and up: louder than about -31 dBFS
const BURST_GAP_MS = 150;

// Bot audio with speech in it, not silence padding.
function hasSpeech(muLaw) {
  return muLaw.some((byte) => ((~byte & 0x70) >> 4) >= SPEECH_EXPONENT);
}

const seconds = (ms) => `${(ms / 1000).toFixed(2)} s`;

// The page gives: log(kind, text) for the event list, state(changes) for the live panel,
// level(db) for the meter, and ended(ending) once; ending is {by, code, reason}.
export class PhoneCall {
  constructor({ url, accountSid, parameters, report }) {
    this.report = report;
    this.stream = new MediaStream({
      url,
      accountSid,
      parameters,
      handlers: {
        onOpen: () => this.opened(),
        onAudio: (muLaw) => this.botAudio(muLaw),
        onMark: (name) => this.mark(name),
        onClear: () => this.clear(),
        onInvalid: (what) => report.log("warning", `not a Twilio message, ignored: ${what}`),
        onEnd: (ending) => this.end(ending),
      },
    });
    this.detector = new SpeechDetector({
      onUtterance: (at) => (this.utteranceAt = at),
      onTurnEnd: (from, to) => report.log("caller", `you spoke for ${seconds(to - from)}`),
    });
    this.pendingMarks = []; // {name, position}: echoed once the speaker reaches position
    this.utteranceAt = null; // when the caller last began to speak after a pause
    this.clears = []; // {at, utteranceAt} of each clear the speaker has not answered yet
    this.startedAt = null;
    this.heardGreeting = false;
    this.lastSpeechAt = -Infinity; // arrival of the last bot audio with speech in it
    this.burstAt = -Infinity; // arrival of the first audio of the bot's latest burst of speech
    this.clearedSinceBurst = false; // a clear came since that burst began
    this.done = 0; // the speaker's position: bot samples played or dropped
  }

  get callSid() {
    return this.stream.callSid;
  }

  // Microphone first, so a refused microphone never opens a stream.
  async start() {
    this.audio = await openPhoneAudio({
      onFrame: (frame, level) => this.micFrame(frame, level),
      onPlayout: (progress) => this.playout(progress),
    });
    this.report.log("call", `calling ${this.stream.url}`);
    try {
      this.stream.connect();
    } catch (error) {
      await this.audio.close();
      throw new Error(`cannot call ${this.stream.url}: ${error.message}`);
    }
  }

  hangUp() {
    this.stream.hangUp();
  }

  pressKey(digit) {
    this.stream.sendDigit(digit);
    this.report.log("key", `key ${digit} sent (dtmf)`);
  }

  opened() {
    this.startedAt = performance.now();
    this.report.log("call", `connected: callSid ${this.stream.callSid}, streamSid ${this.stream.streamSid}`);
    this.report.state({ phase: "in call" });
  }

  micFrame(frame, level) {
    this.report.level(level);
    if (!this.stream.opened || this.stream.ended) return;
    this.stream.sendAudio(frame);
    this.detector.frame(level, performance.now());
    this.report.state({ callerSpeaking: this.detector.speaking });
  }

  botAudio(muLaw) {
    const now = performance.now();
    const speech = hasSpeech(muLaw);
    this.audio.play(muLaw);
    if (!speech) return;
    if (!this.heardGreeting) {
      this.heardGreeting = true;
      this.report.log("bot", `bot audio ${seconds(now - this.startedAt)} after the stream started`);
      this.report.state({ greeting: now - this.startedAt });
    }
    // A reply is a new burst of bot speech (the bot paces its audio in real time, so a
    // reply's messages come without gaps) after the caller last paused, if the caller spoke
    // since the previous burst began. The bot may answer a pause while the caller goes on.
    const newBurst = now - this.lastSpeechAt > BURST_GAP_MS;
    const previousSpeechAt = this.lastSpeechAt;
    this.lastSpeechAt = now;
    if (!newBurst) return;
    const pausedAt = this.detector.lastEndAt;
    const spokeSince = pausedAt !== null && pausedAt > this.burstAt;
    // The bot was still talking when the caller began, and nothing cleared it: it paused
    // for their voice (a laugh, an "mm-hm") and now goes on with the same answer.
    const wentOn = spokeSince && !this.clearedSinceBurst && previousSpeechAt > this.utteranceAt;
    this.burstAt = now;
    this.clearedSinceBurst = false;
    if (wentOn) {
      this.report.log("went-on", `bot went on ${seconds(now - pausedAt)} after you stopped`);
    } else if (spokeSince) {
      const latency = now - pausedAt;
      this.report.log("reply", `bot replied ${seconds(latency)} after you stopped speaking`);
      this.report.state({ latency });
    }
  }

  mark(name) {
    const position = this.audio.queued;
    if (this.done >= position) {
      this.echo(name, "nothing left to play");
    } else {
      this.pendingMarks.push({ name, position });
    }
  }

  echo(name, why) {
    this.stream.echoMark(name);
    this.report.log("mark", `mark "${name}" echoed (${why})`);
    this.report.state({ markEchoed: name });
  }

  clear() {
    this.clearedSinceBurst = true;
    this.clears.push({
      at: performance.now(),
      utteranceAt: this.utteranceAt,
      lastSpeechAt: this.lastSpeechAt,
    });
    this.audio.clear();
    const dropped = this.pendingMarks;
    this.pendingMarks = [];
    for (const mark of dropped) this.echo(mark.name, "its audio was dropped by clear");
  }

  playout({ done, speaking, cleared }) {
    this.done = done;
    if (cleared !== undefined) this.cleared(cleared);
    while (this.pendingMarks.length && this.pendingMarks[0].position <= done) {
      this.echo(this.pendingMarks.shift().name, "its audio has played");
    }
    if (speaking !== undefined) this.report.state({ botSpeaking: speaking });
  }

  // The speaker's answer to a `clear`: how much unplayed bot audio it dropped. The bot
  // pauses as soon as it hears the caller's voice and clears once their words arrive, so
  // the bot may have stopped before the clear, with nothing left to drop.
  cleared(samples) {
    const { at, utteranceAt, lastSpeechAt } = this.clears.shift();
    const talkedOver = utteranceAt !== null && lastSpeechAt > utteranceAt;
    if (samples === 0 && !talkedOver) {
      this.report.log("clear", "clear: nothing was playing");
      return;
    }
    const stoppedAt = samples === 0 ? lastSpeechAt : at;
    const after = utteranceAt ? ` ${seconds(stoppedAt - utteranceAt)} after you started speaking` : "";
    const dropped = `${seconds(samples / 8)} of queued audio dropped`;
    const how = samples === 0 ? "it paused for your voice, then cleared: " : "";
    this.report.log("barge-in", `barge-in: the bot stopped${after} (${how}${dropped})`);
    this.report.state({ bargeIn: utteranceAt ? stoppedAt - utteranceAt : null });
  }

  async end(ending) {
    this.pendingMarks = [];
    this.report.ended(ending);
    if (this.audio) await this.audio.close();
  }
}

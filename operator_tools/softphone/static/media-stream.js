// Twilio's side of a bidirectional Media Stream (<Connect><Stream>), message for message.

const FRAME_MS = 20;

// A fresh Twilio-style SID: two-letter prefix and 32 hex digits.
export function newSid(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function base64(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

// The mu-law bytes of a media payload, or null when it is not base64.
function decodePayload(text) {
  if (typeof text !== "string") return null;
  let raw;
  try {
    raw = atob(text);
  } catch {
    return null;
  }
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

function parse(data) {
  try {
    return JSON.parse(data);
  } catch {
    return null;
  }
}

// Close codes that say why the bot ended the stream (see bot.py).
const CLOSE_REASONS = {
  1000: "the bot closed the stream",
  1002: "refused: the bot did not take this for a Twilio Media Stream",
  1008: "refused: check stream_secret / account",
  1011: "the bot failed (server error)",
};

// One call: `connected` and `start`, then a `media` message per 20 ms frame, `dtmf` per key and
// `stop` on hang-up; bot `media`, `mark` and `clear` go to the handlers. The handlers are
// onOpen(), onAudio(muLawBytes), onMark(name), onClear(), onInvalid(what) for a message Twilio
// would reject, and onEnd({by, code, reason}) once.
export class MediaStream {
  constructor({ url, accountSid, parameters, handlers }) {
    this.url = url;
    this.accountSid = accountSid;
    this.parameters = parameters;
    this.handlers = handlers;
    this.callSid = newSid("CA");
    this.streamSid = newSid("MZ");
    this.sequence = 0;
    this.chunk = 0;
    this.opened = false;
    this.ended = false;
  }

  // Opens the socket; a URL the browser cannot even parse throws here, with its reason.
  connect() {
    this.socket = new WebSocket(this.url);
    this.socket.onopen = () => this.start();
    this.socket.onmessage = (event) => this.receive(event.data);
    this.socket.onclose = (event) => this.closed(event);
  }

  start() {
    this.opened = true;
    this.send({ event: "connected", protocol: "Call", version: "1.0.0" });
    this.send({
      event: "start",
      sequenceNumber: this.nextSequence(),
      streamSid: this.streamSid,
      start: {
        streamSid: this.streamSid,
        accountSid: this.accountSid,
        callSid: this.callSid,
        tracks: ["inbound"],
        customParameters: this.parameters,
        mediaFormat: { encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1 },
      },
    });
    this.handlers.onOpen();
  }

  // One 20 ms frame of the caller's audio; timestamp is its start, in ms since the stream began.
  sendAudio(frame) {
    if (!this.opened || this.ended) return;
    this.chunk += 1;
    this.send({
      event: "media",
      sequenceNumber: this.nextSequence(),
      streamSid: this.streamSid,
      media: {
        track: "inbound",
        chunk: String(this.chunk),
        timestamp: String((this.chunk - 1) * FRAME_MS),
        payload: base64(frame),
      },
    });
  }

  sendDigit(digit) {
    if (!this.opened || this.ended) return;
    this.send({
      event: "dtmf",
      streamSid: this.streamSid,
      sequenceNumber: this.nextSequence(),
      dtmf: { track: "inbound_track", digit },
    });
  }

  echoMark(name) {
    if (!this.opened || this.ended) return;
    this.send({
      event: "mark",
      streamSid: this.streamSid,
      sequenceNumber: this.nextSequence(),
      mark: { name },
    });
  }

  // The caller hangs up: `stop`, then Twilio closes the socket.
  hangUp() {
    if (this.ended) return;
    if (this.opened) {
      this.send({
        event: "stop",
        sequenceNumber: this.nextSequence(),
        streamSid: this.streamSid,
        stop: { accountSid: this.accountSid, callSid: this.callSid },
      });
    }
    this.finish({ by: "caller", reason: "you hung up" });
    this.socket.close(1000);
  }

  receive(data) {
    const message = parse(data);
    const event = message?.event;
    if (!["media", "mark", "clear"].includes(event)) {
      // Twilio rejects anything else (error 31951); the page shows it instead.
      this.handlers.onInvalid(String(data).slice(0, 80));
    } else if (message.streamSid !== this.streamSid) {
      this.handlers.onInvalid(`${event} for another stream (${message.streamSid})`);
    } else if (event === "media") {
      const audio = decodePayload(message.media?.payload);
      if (audio) this.handlers.onAudio(audio);
      else this.handlers.onInvalid(`media without a base64 payload: ${String(data).slice(0, 80)}`);
    } else if (event === "mark") {
      this.handlers.onMark(String(message.mark?.name));
    } else {
      this.handlers.onClear();
    }
  }

  closed(event) {
    if (this.ended) return;
    if (!this.opened) {
      const reason = `cannot connect to ${this.url}: check the URL and that the bot is running`;
      this.finish({ by: "error", code: event.code, reason });
      return;
    }
    const reason = CLOSE_REASONS[event.code] ?? "the stream was cut";
    const by = event.code === 1000 ? "bot" : "error";
    this.finish({ by, code: event.code, reason: event.reason ? `${reason}: ${event.reason}` : reason });
  }

  finish(ending) {
    this.ended = true;
    this.handlers.onEnd(ending);
  }

  send(message) {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  nextSequence() {
    this.sequence += 1;
    return String(this.sequence);
  }
}

// The phone line's audio, on the audio thread: the microphone to 8 kHz mu-law frames, and the
// bot's mu-law back to the speakers through a jitter buffer. Loaded with audioWorklet.addModule.

const PHONE_RATE = 8000;
const FRAME_SAMPLES = 160; // 20 ms at 8 kHz: one Twilio media message
const MU_LAW_BIAS = 0x84;
const MU_LAW_CLIP = 32635;

// G.711 mu-law, as Twilio encodes it (ITU-T G.711, with the bias and clipping of the spec).
function encodeMuLaw(sample) {
  let pcm = Math.max(-32768, Math.min(32767, Math.round(sample * 32768)));
  const sign = pcm < 0 ? 0x80 : 0;
  if (sign) pcm = -pcm;
  pcm = Math.min(pcm, MU_LAW_CLIP) + MU_LAW_BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (pcm & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (pcm >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

const MU_LAW_TO_FLOAT = new Float32Array(256).map((_, byte) => {
  const u = ~byte & 0xff;
  const magnitude = ((((u & 0x0f) << 3) + MU_LAW_BIAS) << ((u & 0x70) >> 4)) - MU_LAW_BIAS;
  return (u & 0x80 ? -magnitude : magnitude) / 32768;
});

function besselI0(x) {
  let sum = 1;
  let term = 1;
  for (let k = 1; k < 30; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
  }
  return sum;
}

// Band-limited resampling (windowed-sinc interpolation, Kaiser window): each output sample is
// the input convolved with a low-pass kernel centred on its position. Going down to 8 kHz the
// kernel's cutoff sits below 4 kHz, so nothing above the phone band folds back as aliasing
// (plain decimation would fold it). The kernel is tabulated finely and interpolated linearly.
class Resampler {
  constructor(inRate, outRate, cutoffHz, { zeroCrossings = 24, beta = 8, steps = 64 } = {}) {
    this.step = inRate / outRate; // input samples per output sample
    const cutoff = cutoffHz / inRate; // cycles per input sample
    this.halfWidth = Math.ceil(zeroCrossings / (2 * cutoff));
    this.steps = steps;
    this.table = new Float32Array(this.halfWidth * steps + 2);
    const norm = besselI0(beta);
    for (let i = 0; i < this.table.length; i++) {
      const d = i / steps;
      const x = 2 * cutoff * d;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const r = Math.min(1, d / this.halfWidth);
      this.table[i] = 2 * cutoff * sinc * (besselI0(beta * Math.sqrt(1 - r * r)) / norm);
    }
    this.input = new Float32Array(4 * this.halfWidth + 4096);
    this.length = this.halfWidth; // start with a half kernel of silence before the first sample
    this.position = this.halfWidth; // where the next output sample is, in input samples
  }

  kernel(distance) {
    const at = Math.abs(distance) * this.steps;
    const i = Math.floor(at);
    if (i + 1 >= this.table.length) return 0;
    return this.table[i] + (this.table[i + 1] - this.table[i]) * (at - i);
  }

  push(sample) {
    if (this.length === this.input.length) this.compact();
    this.input[this.length++] = sample;
  }

  // True when the next output sample has all the input its kernel needs.
  ready() {
    return this.position + this.halfWidth < this.length;
  }

  next() {
    const first = Math.ceil(this.position - this.halfWidth);
    const last = Math.floor(this.position + this.halfWidth);
    let sum = 0;
    for (let k = first; k <= last; k++) sum += this.input[k] * this.kernel(this.position - k);
    this.position += this.step;
    return sum;
  }

  compact() {
    const keep = Math.floor(this.position - this.halfWidth);
    this.input.copyWithin(0, keep, this.length);
    this.length -= keep;
    this.position -= keep;
  }
}

// The microphone as the phone line hears it: 20 ms frames of 8 kHz mu-law, each with its
// level (dBFS) for the meter and the page's end-of-speech detector.
class PhoneCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.resampler = new Resampler(sampleRate, PHONE_RATE, 3500);
    this.frame = new Uint8Array(FRAME_SAMPLES);
    this.filled = 0;
    this.energy = 0;
  }

  process(inputs) {
    const channel = inputs[0][0];
    if (!channel) return true; // no input yet: the microphone is still starting
    for (let i = 0; i < channel.length; i++) {
      this.resampler.push(channel[i]);
      while (this.resampler.ready()) this.add(this.resampler.next());
    }
    return true;
  }

  add(sample) {
    this.frame[this.filled++] = encodeMuLaw(sample);
    this.energy += sample * sample;
    if (this.filled < FRAME_SAMPLES) return;
    const rms = Math.sqrt(this.energy / FRAME_SAMPLES);
    const level = rms > 0 ? Math.max(-100, 20 * Math.log10(rms)) : -100;
    this.port.postMessage({ frame: this.frame, level }, [this.frame.buffer]);
    this.frame = new Uint8Array(FRAME_SAMPLES);
    this.filled = 0;
    this.energy = 0;
  }
}

// The bot's audio as the caller hears it. Audio waits JITTER_SECS after arriving on an idle
// line before it plays, so messages that arrive unevenly still play smoothly. Positions count
// 8 kHz samples in the order they were queued; a sample is done once played or dropped by
// `clear`. The page echoes each mark once the position reaches it.
const JITTER_SECS = 0.06;
const REPORT_SECS = 0.02;
const QUIET_LEVEL = 0.002; // below about -54 dBFS the bot is not speaking

class PhonePlayback extends AudioWorkletProcessor {
  constructor() {
    super();
    this.resampler = new Resampler(PHONE_RATE, sampleRate, 3800);
    this.chunks = []; // Float32Arrays at 8 kHz, oldest first
    this.offset = 0; // samples of chunks[0] already played
    this.buffered = 0;
    this.done = 0; // position: samples played or dropped
    this.waitFrames = 0; // output frames left before an idle line starts playing
    this.playing = false;
    this.loud = 0; // recent peak of what played, for "the bot is speaking"
    this.sinceReport = 0;
    this.port.onmessage = ({ data }) => (data === "clear" ? this.clear() : this.queue(data));
  }

  queue(muLaw) {
    const chunk = new Float32Array(muLaw.length);
    for (let i = 0; i < muLaw.length; i++) chunk[i] = MU_LAW_TO_FLOAT[muLaw[i]];
    if (!this.playing && this.buffered === 0) this.waitFrames = Math.round(JITTER_SECS * sampleRate);
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  clear() {
    const dropped = this.buffered;
    this.done += dropped;
    this.chunks = [];
    this.offset = 0;
    this.buffered = 0;
    this.playing = false;
    this.port.postMessage({ cleared: dropped, done: this.done });
  }

  nextSample() {
    if (!this.playing || this.buffered === 0) return 0;
    const chunk = this.chunks[0];
    const sample = chunk[this.offset++];
    if (this.offset === chunk.length) {
      this.chunks.shift();
      this.offset = 0;
    }
    this.buffered--;
    this.done++;
    this.loud = Math.max(this.loud, Math.abs(sample));
    return sample;
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    if (!this.playing && this.buffered > 0) {
      this.waitFrames -= out.length;
      this.playing = this.waitFrames <= 0;
    }
    for (let i = 0; i < out.length; i++) {
      while (!this.resampler.ready()) this.resampler.push(this.nextSample());
      out[i] = this.resampler.next();
    }
    if (this.playing && this.buffered === 0) this.playing = false; // played to the end
    this.sinceReport += out.length;
    if (this.sinceReport >= REPORT_SECS * sampleRate) this.report();
    return true;
  }

  report() {
    const speaking = this.loud > QUIET_LEVEL;
    this.port.postMessage({ done: this.done, speaking, buffered: this.buffered / PHONE_RATE });
    this.sinceReport = 0;
    this.loud = 0;
  }
}

registerProcessor("phone-capture", PhoneCapture);
registerProcessor("phone-playback", PhonePlayback);

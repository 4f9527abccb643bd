// The microphone and speakers of the phone, around the audio-thread processors of
// phone-worklets.js: the page sees 20 ms mu-law frames in and queues mu-law out.

const WORKLETS = new URL("./phone-worklets.js", import.meta.url);

// Opens the microphone and the audio graph. A refused or missing microphone throws an Error
// whose message says what to do. onFrame(muLawFrame, levelDb) is called every 20 ms;
// onPlayout({done, speaking, buffered, cleared}) reports the speaker's progress.
export async function openPhoneAudio({ onFrame, onPlayout }) {
  let microphone;
  try {
    microphone = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (error) {
    throw new Error(microphoneProblem(error));
  }
  const context = new AudioContext({ latencyHint: "interactive" });
  try {
    await context.audioWorklet.addModule(WORKLETS);
    const capture = new AudioWorkletNode(context, "phone-capture", { numberOfOutputs: 0 });
    capture.port.onmessage = ({ data }) => onFrame(data.frame, data.level);
    context.createMediaStreamSource(microphone).connect(capture);
    const playback = new AudioWorkletNode(context, "phone-playback", { outputChannelCount: [1] });
    playback.port.onmessage = ({ data }) => onPlayout(data);
    playback.connect(context.destination);
    await context.resume();
    return new PhoneAudio(context, microphone, playback);
  } catch (error) {
    microphone.getTracks().forEach((track) => track.stop());
    await context.close();
    throw error;
  }
}

function microphoneProblem(error) {
  if (error.name === "NotAllowedError" || error.name === "SecurityError") {
    return "microphone blocked: allow it for this page (the icon in the address bar) and call again";
  }
  if (error.name === "NotFoundError") return "no microphone found: plug one in and call again";
  if (error.name === "NotReadableError") {
    return "the microphone is busy or failed: close other apps using it and call again";
  }
  return `cannot open the microphone: ${error.message || error.name}`;
}

class PhoneAudio {
  constructor(context, microphone, playback) {
    this.context = context;
    this.microphone = microphone;
    this.playback = playback;
    this.queued = 0; // position after the last queued sample (8 kHz samples)
  }

  // Queues bot audio; `queued` is then the position the speaker reaches once it has played.
  play(muLaw) {
    this.queued += muLaw.length;
    this.playback.port.postMessage(muLaw, [muLaw.buffer]);
  }

  clear() {
    this.playback.port.postMessage("clear");
  }

  async close() {
    this.microphone.getTracks().forEach((track) => track.stop());
    await this.context.close();
  }
}

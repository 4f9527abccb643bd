// When the caller starts and stops speaking, from the level of each 20 ms frame sent.

const FRAME_MS = 20;
const MARGIN_DB = 15; // speech stands this far above the room's noise floor...
const MIN_SPEECH_DB = -50; // ...and above this (where testkit finds the words in a recording)
const ONSET_FRAMES = 3; // 60 ms of speech is speech (a click is not)
const PAUSE_FRAMES = 5; // speech after 100 ms of quiet starts a new utterance...
const END_FRAMES = 25; // ...and 500 ms of quiet ends the caller's turn
const FLOOR_RISE_DB = 0.05; // per frame: the floor follows a noisier room slowly (2.5 dB/s)

// An energy detector: good enough to time turns on a headset, not a full VAD. Its times are
// those of the frames' sending (a frame's audio ends as it is sent), so "speech ended" is
// when the line went quiet for the bot.
// A turn may hold several utterances (a pause between sentences); the bot may answer in any
// pause, so replies and barge-ins are timed from utterances.
export class SpeechDetector {
  constructor({ onUtterance, onTurnEnd }) {
    this.onUtterance = onUtterance; // (startedAt): the caller starts speaking after a pause
    this.onTurnEnd = onTurnEnd; // (startedAt, endedAt): a turn of speech ended
    this.floor = -70;
    this.loudRun = 0;
    this.runStart = 0;
    this.quietRun = Infinity;
    this.pauseBefore = Infinity; // quiet frames before the current loud run
    this.speaking = false; // within a turn
    this.turnStartedAt = null;
    this.lastLoudAt = null; // end of the last loud frame
    this.lastEndAt = null; // when the caller last went quiet: a pause began (40 ms of quiet)
  }

  frame(levelDb, sentAt) {
    const startedAt = sentAt - FRAME_MS;
    this.floor = levelDb < this.floor ? Math.max(levelDb, -90) : this.floor + FLOOR_RISE_DB;
    const loud = levelDb > Math.max(this.floor + MARGIN_DB, MIN_SPEECH_DB);
    if (!loud) {
      this.loudRun = 0;
      this.quietRun += 1;
      if (this.speaking && this.quietRun === 2) this.lastEndAt = this.lastLoudAt;
      if (this.speaking && this.quietRun >= END_FRAMES) {
        this.speaking = false;
        this.onTurnEnd(this.turnStartedAt, this.lastLoudAt);
      }
      return;
    }
    if (this.loudRun === 0) {
      this.runStart = startedAt;
      this.pauseBefore = this.quietRun;
    }
    this.loudRun += 1;
    this.quietRun = 0;
    this.lastLoudAt = sentAt;
    if (this.loudRun === ONSET_FRAMES && this.pauseBefore >= PAUSE_FRAMES) {
      if (!this.speaking) this.turnStartedAt = this.runStart;
      this.speaking = true;
      this.onUtterance(this.runStart);
    }
  }
}

/**
 * Lines up `bot-tts-timing` sentences with the bot audio the client actually hears.
 *
 * The bot sends one timing message per sentence (times in ms from the start of that sentence's
 * audio) shortly before the sentence's audio; LiveKit's audio queue on the bot side means the
 * message can lead the heard audio by up to about a second, and network jitter can reorder them
 * slightly. So each sentence is anchored on a speech onset in the received audio: the first onset
 * after the previous sentence's last word (or, for back-to-back speech with no audible gap, right
 * where the previous sentence's last word ends).
 */

/** Audio RMS above which the bot is audibly speaking. */
export const VOICE_RMS = 0.008;
/** Silence needed before a rise in level counts as a new onset. */
const GAP_MS = 60;
/** How far back an onset may be found relative to the message arrival (message late). */
const LOOKBACK_MS = 1000;
/** If no onset is heard this long after the message (or the previous sentence), start anyway, unsynced. */
const GIVE_UP_MS = 1500;
/** Voice continuing this long past the previous sentence's end means no gap to find. */
const CONTIGUOUS_MS = 250;

/** Milliseconds from the start of the sentence audio to its first voiced sound. */
export function firstVoicedMs(msg) {
  const starts = [];
  (msg.visemes ?? []).forEach((v, i) => v !== "sil" && starts.push(msg.vtimes[i]));
  if (!starts.length && msg.wtimes?.length) starts.push(msg.wtimes[0]);
  return starts.length ? Math.min(...starts) : 0;
}

/** Milliseconds from the start of the sentence audio to the end of its last sound. */
export function lastVoicedMs(msg) {
  let end = 0;
  (msg.wtimes ?? []).forEach((t, i) => (end = Math.max(end, t + (msg.wdurations?.[i] ?? 0))));
  (msg.visemes ?? []).forEach((v, i) => v !== "sil" && (end = Math.max(end, msg.vtimes[i] + msg.vdurations[i])));
  return end;
}

export class SentenceScheduler {
  constructor({ voiceRms = VOICE_RMS } = {}) {
    this.voiceRms = voiceRms;
    this.pending = []; // [{msg, arrival}]
    this.onsets = []; // times (ms) where voice began after a gap
    this._lastVoiced = -Infinity;
    this._cursor = -Infinity; // next sentence's voice cannot begin before this
  }

  /** A `bot-tts-timing` message arrived at time t. */
  push(msg, t) {
    this.pending.push({ msg, arrival: t });
  }

  /** Forget queued sentences (the bot was interrupted). */
  reset() {
    this.pending = [];
    this._cursor = -Infinity;
  }

  /**
   * Feed the bot audio level at time t; returns the sentences that start, each with the
   * performance time of its audio's first sample and whether it was anchored on heard audio.
   * @returns {{msg: object, startT: number, synced: boolean}[]}
   */
  update(t, rms) {
    if (rms >= this.voiceRms) {
      if (t - this._lastVoiced >= GAP_MS) this.onsets.push(t);
      this._lastVoiced = t;
    }
    while (this.onsets.length && this.onsets[0] < t - 10000) this.onsets.shift();

    const started = [];
    while (this.pending.length) {
      const { msg, arrival } = this.pending[0];
      const lead = firstVoicedMs(msg);
      const earliest = Math.max(this._cursor, arrival - LOOKBACK_MS);
      const onset = this.onsets.find((o) => o >= earliest);
      let start = null;
      let synced = true;
      if (onset !== undefined) {
        start = onset - lead;
      } else if (Number.isFinite(this._cursor) && this._lastVoiced >= this._cursor + CONTIGUOUS_MS
                 && t - this._lastVoiced < GAP_MS) {
        start = this._cursor - lead; // voice ran on from the previous sentence without a gap
      } else if (t - Math.max(arrival, this._cursor) >= GIVE_UP_MS) {
        start = t;
        synced = false;
      }
      if (start === null) break;
      this.pending.shift();
      this._cursor = start + lastVoicedMs(msg);
      started.push({ msg, startT: start, synced });
    }
    return started;
  }
}

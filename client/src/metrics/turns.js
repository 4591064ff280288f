/**
 * Voice-to-voice latency per turn, as the client sees it: from the end of the person's speech in
 * the microphone audio it publishes to the first bot audio it receives.
 */

/** Level (RMS of float samples, 0..1) above which audio counts as speech. */
export const SPEECH_RMS = 0.01;
/** Silence that ends a person's utterance (the bot's VAD waits at least this long too). */
export const END_OF_SPEECH_MS = 600;

/** Shortest pause after which a bot answer counts as a new turn rather than talking over. */
const MIN_PAUSE_MS = 150;

export class TurnTracker {
  constructor({ speechRms = SPEECH_RMS, endOfSpeechMs = END_OF_SPEECH_MS } = {}) {
    this.speechRms = speechRms;
    this.endOfSpeechMs = endOfSpeechMs;
    this.turns = [];
    this._userLastVoice = null; // time of the latest voiced mic sample
    this._userSpeaking = false;
    this._waitingForBot = false;
    this._botVoiced = false;
  }

  /**
   * Feed one pair of level samples taken at time t (ms).
   * @returns {{userEnd: number, botStart: number, latencyMs: number} | null} a completed turn.
   */
  update(t, micRms, botRms) {
    if (micRms >= this.speechRms) {
      this._userSpeaking = true;
      this._waitingForBot = false;
      this._userLastVoice = t;
    } else if (this._userSpeaking && t - this._userLastVoice >= this.endOfSpeechMs) {
      this._userSpeaking = false;
      this._waitingForBot = true;
    }
    const botVoiced = botRms >= this.speechRms;
    const onset = botVoiced && !this._botVoiced;
    this._botVoiced = botVoiced;
    // The bot may answer before END_OF_SPEECH_MS has passed; a short pause still ends the turn.
    const pausedForBot = this._userSpeaking && t - this._userLastVoice >= MIN_PAUSE_MS;
    if (onset && (this._waitingForBot || pausedForBot)) {
      this._userSpeaking = false;
      this._waitingForBot = false;
      const turn = { userEnd: this._userLastVoice, botStart: t, latencyMs: t - this._userLastVoice };
      this.turns.push(turn);
      return turn;
    }
    return null;
  }
}

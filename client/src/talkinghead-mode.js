/**
 * TalkingHead 3D mode: a GLB avatar rendered in the browser whose lips follow the bot's
 * `bot-tts-timing` messages, lined up with the bot audio as heard (see speech-sync.js).
 *
 * The bot's audio keeps playing from the page's <audio> element; TalkingHead only animates.
 * Visemes are queued on TalkingHead's animation queue (`animQueue`, times on its `animClock`),
 * the same items its own speakAudio() builds, so they can start at the heard onset rather than
 * when TalkingHead would play an audio buffer itself. The English lip-sync module is imported
 * here (bundled) instead of TalkingHead's runtime dynamic import, for sentences without visemes.
 *
 * This is the one module that reaches into TalkingHead's internals (animQueue, animClock,
 * animTimeLast, mtAvatar); test/talkinghead-1.7.0.test.js pins them to the installed 1.7.0.
 * Upstream: a public `speakVisemes(visemes, startTime)` and `stopLips()` would remove them.
 */
import { TalkingHead } from "@met4citizen/talkinghead";
import { LipsyncEn } from "@met4citizen/talkinghead/modules/lipsync-en.mjs";

/** Peak morph weight per viseme (lips pressed for PP/FF, as TalkingHead does). */
const VISEME_LEVEL = { PP: 0.9, FF: 0.9 };
const DEFAULT_LEVEL = 0.7;
/** Visemes that open the mouth, for the mouth-openness measurement. */
const OPEN_VISEMES = ["aa", "E", "I", "O", "U", "DD", "kk", "CH", "SS", "nn", "RR", "TH"];

export class TalkingHeadMode {
  /**
   * @param {HTMLElement} node container the canvas goes in
   * @param {{avatarUrl: string}} opts
   */
  constructor(node, { avatarUrl }) {
    this.node = node;
    this.avatarUrl = avatarUrl;
    this.head = null;
  }

  async start() {
    this.head = new TalkingHead(this.node, {
      lipsyncModules: [],
      lipsyncLang: "en",
      cameraView: "head",
      cameraY: 0.5,
      cameraDistance: 0.3,
      cameraRotateEnable: false,
      modelFPS: 30,
      avatarMute: true,
      // TalkingHead's default lights suit textured RPM avatars; the generated head is vertex coloured.
      lightAmbientIntensity: 1.2,
      lightDirectIntensity: 4,
    });
    this.head.lipsync.en = new LipsyncEn();
    await this.head.showAvatar({ url: this.avatarUrl, body: "F", avatarMood: "neutral", lipsyncLang: "en" });
  }

  /** Queue one sentence's visemes so that time 0 of its audio is at `startT` (performance.now ms). */
  speak(msg, startT) {
    const head = this.head;
    if (!head) return;
    // animClock advances with the requestAnimationFrame timestamps, so a performance.now() time maps
    // onto it through the last frame's timestamp (animTimeLast).
    const zero = head.animClock + (startT - head.animTimeLast);
    for (const [viseme, t, d] of this._visemes(msg)) {
      if (viseme === "sil") continue;
      const at = zero + t;
      head.animQueue.push({
        template: { name: "viseme" },
        ts: [at - Math.min(60, (2 * d) / 3), at + Math.min(25, d / 2), at + d + Math.min(60, d / 2)],
        vs: { [`viseme_${viseme}`]: [null, VISEME_LEVEL[viseme] ?? DEFAULT_LEVEL, 0] },
      });
    }
  }

  /** Close the mouth now: drop queued visemes (the bot was interrupted). */
  stop() {
    if (!this.head) return;
    this.head.animQueue = this.head.animQueue.filter((a) => a.template?.name !== "viseme");
    // A viseme already playing left its last value in the morph state, which TalkingHead would
    // ease back to the baseline over a second or more: set it to closed on the next frame.
    for (const [name, morph] of Object.entries(this.head.mtAvatar ?? {})) {
      if (!name.startsWith("viseme_")) continue;
      morph.newvalue = 0;
      morph.needsUpdate = true;
    }
    this.head.resetLips();
  }

  /** performance.now() time of the last frame TalkingHead drew (its rate: how fine the lips move). */
  frameTime() {
    return this.head?.animTimeLast ?? 0;
  }

  /** How open the mouth is right now (sum of applied opening viseme weights). */
  mouthOpenness() {
    if (!this.head?.mtAvatar) return 0;
    return OPEN_VISEMES.reduce((s, v) => s + (this.head.mtAvatar[`viseme_${v}`]?.applied ?? 0), 0);
  }

  dispose() {
    this.head?.stop();
    this.head?.dispose?.();
    this.head = null;
    this.node.replaceChildren();
  }

  /** [viseme, startMs, durationMs] triples: the message's own, or from its words via lip-sync. */
  _visemes(msg) {
    if (msg.visemes?.length) return msg.visemes.map((v, i) => [v, msg.vtimes[i], msg.vdurations[i]]);
    const out = [];
    (msg.words ?? []).forEach((word, i) => {
      const text = this.head.lipsyncPreProcessText(word, "en");
      const lip = this.head.lipsyncWordsToVisemes(text, "en");
      if (!lip?.visemes?.length) return;
      const n = lip.visemes.length;
      const total = lip.times[n - 1] + lip.durations[n - 1];
      const scale = (msg.wdurations[i] ?? 0) / (total || 1);
      lip.visemes.forEach((v, j) => out.push([v, msg.wtimes[i] + lip.times[j] * scale, lip.durations[j] * scale]));
    });
    return out;
  }
}

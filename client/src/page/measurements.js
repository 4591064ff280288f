/**
 * What the page measures while connected, into `stats` (read by the end-to-end tests as
 * `window.avatarStats`): voice-to-voice latency per turn from the microphone and bot audio levels,
 * the bot video's decoded and presented rate, the 3D head's drawn rate, the audio jitter-buffer
 * delay, and the offset of the face's motion (video, or the 3D mouth) against the bot's audio.
 */

import { Track } from "livekit-client";

import { receiverStats } from "../metrics/meters.js";
import { offsetMs, pushSample } from "../metrics/series.js";
import { SPEECH_RMS, TurnTracker } from "../metrics/turns.js";
import { playoutDelayMs } from "../speech-sync.js";

const OFFSET_WINDOW_MS = 10000;
const SAMPLE_MS = 10;
/** Correlation needed before an offset estimate is reported. */
const MIN_OFFSET_R = 0.3;

export class PageMeasurements {
  /**
   * @param {object} opts
   * @param {object} opts.stats The page's figures, updated in place.
   * @param {{audio: Array, motion: Array, mouth: Array}} opts.series Bot audio level, video
   *   motion and 3D mouth over time.
   * @param {() => void} opts.onChange Called when the latency figures changed.
   */
  constructor({ stats, series, onChange }) {
    this.stats = stats;
    this.series = series;
    this._onChange = onChange;
    this._turns = new TurnTracker();
    this._sampler = null;
    this._statsTimer = null;
    this._prevStatsT = 0;
    this._headFrames = 0;
    this._headFrameT = 0;
  }

  /**
   * Start sampling.
   * @param {object} src
   * @param {import("./media-sinks.js").MediaSinks} src.sinks The meters on the received media.
   * @param {() => boolean} src.micOn Whether the microphone is enabled.
   * @param {() => object | null} src.head The 3D head, when the page shows it.
   * @param {() => object | undefined} src.bot The bot's LiveKit participant.
   */
  start({ sinks, micOn, head, bot }) {
    this._sampler = setInterval(() => this._sample(sinks, micOn, head), SAMPLE_MS);
    this._statsTimer = setInterval(() => this._update(sinks, head, bot), 1000);
  }

  stop() {
    clearInterval(this._sampler);
    clearInterval(this._statsTimer);
    this._sampler = this._statsTimer = null;
  }

  _sample(sinks, micOn, head) {
    const { stats, series } = this;
    const t = performance.now();
    const bot = sinks.botLevel ? sinks.botLevel.rms() : 0;
    const mic = sinks.micLevel && micOn() ? sinks.micLevel.rms() : 0;
    pushSample(series.audio, t, bot);
    stats.botAudioPeak = Math.max(stats.botAudioPeak, bot);
    const turn = this._turns.update(t, mic, bot);
    if (turn) {
      stats.turns.push(Math.round(turn.latencyMs));
      this._onChange();
    }
    const head3d = head();
    if (head3d) {
      const drawn = head3d.frameTime();
      if (drawn !== this._headFrameT) {
        this._headFrameT = drawn;
        this._headFrames += 1;
      }
      const open = head3d.mouthOpenness();
      stats.mouthPeak = Math.max(stats.mouthPeak, open);
      pushSample(series.mouth, t, open);
    }
  }

  async _update(sinks, head, botParticipant) {
    const { stats, series } = this;
    const t = performance.now();
    const bot = botParticipant();
    const prev = stats.video;
    stats.video = await receiverStats(bot?.getTrackPublication(Track.Source.Camera)?.track?.receiver);
    // Decoded frames per second from the receiver's counters; presentedFps counts the frames the
    // <video> element actually showed (requestVideoFrameCallback), which a busy compositor can thin.
    if (prev.framesDecoded !== undefined && stats.video.framesDecoded !== undefined && this._prevStatsT) {
      stats.fps = Math.round(((stats.video.framesDecoded - prev.framesDecoded) * 1000) / (t - this._prevStatsT));
      stats.fpsPeak = Math.max(stats.fpsPeak, stats.fps);
    }
    // The 3D head's frames seen by the 10 ms sampler in the last second: a head drawn at a few
    // frames a second moves its lips in steps of that size.
    stats.head3dFps = this._headFrames;
    this._headFrames = 0;
    this._prevStatsT = t;
    stats.presentedFps = sinks.videoMeter?.fps(t) ?? 0;
    const prevAudio = stats.audio;
    stats.audio = await receiverStats(bot?.getTrackPublication(Track.Source.Microphone)?.track?.receiver);
    stats.playoutDelayMs = Math.round(playoutDelayMs(prevAudio, stats.audio) ?? stats.playoutDelayMs);
    // At least a second of bot speech in the window (timed by the samples' own clock: a busy page
    // runs the sampler less often than every SAMPLE_MS).
    let voicedMs = 0;
    const audio = series.audio;
    for (let i = 1; i < audio.length; i++) {
      if (audio[i].t >= t - OFFSET_WINDOW_MS && audio[i].v >= SPEECH_RMS) voicedMs += audio[i].t - audio[i - 1].t;
    }
    const spoke = voicedMs >= 1000;
    const head3d = head();
    if (spoke && !head3d) {
      const av = offsetMs(series.audio, series.motion, t - OFFSET_WINDOW_MS, t, { minR: 0 });
      stats.avProbe = av; // the latest estimate and its correlation, whether or not it counts
      if (av && av.r >= MIN_OFFSET_R) stats.avOffsets.push(Math.round(av.ms));
    }
    if (spoke && head3d) {
      const lip = offsetMs(series.audio, series.mouth, t - OFFSET_WINDOW_MS, t, { minR: 0 });
      stats.lipProbe = lip;
      if (lip && lip.r >= MIN_OFFSET_R) stats.lipOffsets.push(Math.round(lip.ms));
    }
    this._onChange();
  }
}

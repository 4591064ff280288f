/**
 * Where the received media goes: an unmuted <audio> element per remote audio track (the bot's and
 * other people's), the bot's video in the page's <video>, and level meters on the bot's audio and
 * the local microphone, read by the page's measurements.
 */

import { AudioLevel, VideoMeter } from "../metrics/meters.js";

export class MediaSinks {
  /**
   * @param {object} opts
   * @param {AudioContext} opts.audioCtx For the level meters.
   * @param {HTMLElement} opts.audioContainer Holds the <audio> elements.
   * @param {HTMLVideoElement} opts.video The bot's video.
   * @param {(t: number, motion: number) => void} opts.onVideoFrame Each presented video frame's
   *   mouth-region motion.
   */
  constructor({ audioCtx, audioContainer, video, onVideoFrame }) {
    this._audioCtx = audioCtx;
    this._container = audioContainer;
    this._video = video;
    this._onVideoFrame = onVideoFrame;
    this.botLevel = null;
    this.micLevel = null;
    this.videoMeter = null;
    this._micTrack = null;
  }

  /** Play a remote audio track in its own unmuted element (muted elements also zero WebRTC's
   * audio level stats). */
  addAudio(track, id) {
    document.getElementById(id)?.remove();
    const el = document.createElement("audio");
    el.id = id;
    el.autoplay = true;
    el.muted = false;
    el.srcObject = new MediaStream([track]);
    this._container.append(el);
    el.play().catch(() => {});
    return el;
  }

  attachBotAudio(track) {
    this.addAudio(track, "bot-audio");
    this.botLevel?.disconnect();
    this.botLevel = new AudioLevel(this._audioCtx, track);
  }

  attachBotVideo(track) {
    this._video.srcObject = new MediaStream([track]);
    this._video.play().catch(() => {});
    this.videoMeter?.stop();
    this.videoMeter = new VideoMeter(this._video, this._onVideoFrame);
  }

  /** Meter the local microphone track (again only when it changed). */
  attachMic(track) {
    if (!track || this._micTrack === track) return;
    this.micLevel?.disconnect();
    this.micLevel = new AudioLevel(this._audioCtx, track);
    this._micTrack = track;
  }

  /** Stop every meter and drop every sink. */
  clear() {
    this.videoMeter?.stop();
    this.micLevel?.disconnect();
    this.botLevel?.disconnect();
    this.videoMeter = this.micLevel = this.botLevel = this._micTrack = null;
    this._container.replaceChildren();
    this._video.srcObject = null;
  }
}

/**
 * What the page measures on the media it receives: audio levels (Web Audio analysers on the
 * tracks, so the bot's element can stay unmuted and audible), bot video frame rate and mouth
 * motion (requestVideoFrameCallback), and WebRTC receive stats.
 */

/** RMS level of a MediaStreamTrack, read on demand. */
export class AudioLevel {
  constructor(ctx, track) {
    this._source = ctx.createMediaStreamSource(new MediaStream([track]));
    this._analyser = ctx.createAnalyser();
    this._analyser.fftSize = 512; // ~10 ms at 48 kHz: one sample per sampler tick
    this._buf = new Float32Array(this._analyser.fftSize);
    this._source.connect(this._analyser);
  }

  rms() {
    this._analyser.getFloatTimeDomainData(this._buf);
    let s = 0;
    for (const v of this._buf) s += v * v;
    return Math.sqrt(s / this._buf.length);
  }

  disconnect() {
    this._source.disconnect();
  }
}

/**
 * Mouth-region motion of the bot's video as the <video> element presents it (what a person sees),
 * stamped with each frame's expected display time, and the presented frame rate. The region is
 * the lower middle of the picture, where the mouth of a centred portrait (the bot's face video) is.
 */
export class VideoMeter {
  constructor(video, onFrame) {
    this.video = video;
    this.onFrame = onFrame; // (t, motion) per presented frame
    this.frameTimes = [];
    this._canvas = document.createElement("canvas");
    this._canvas.width = 32;
    this._canvas.height = 24;
    this._ctx = this._canvas.getContext("2d", { willReadFrequently: true });
    this._prev = null;
    this._stopped = false;
    this._tick = this._tick.bind(this);
    video.requestVideoFrameCallback(this._tick);
  }

  /** Frames the <video> element presented in the last second. */
  fps(now = performance.now()) {
    while (this.frameTimes.length && this.frameTimes[0] < now - 1000) this.frameTimes.shift();
    return this.frameTimes.length;
  }

  stop() {
    this._stopped = true;
  }

  _tick(now, meta) {
    if (this._stopped) return;
    this.frameTimes.push(now);
    const { videoWidth: w, videoHeight: h } = this.video;
    if (w && h) {
      this._ctx.drawImage(this.video, w * 0.3, h * 0.55, w * 0.4, h * 0.3, 0, 0, 32, 24);
      const px = this._ctx.getImageData(0, 0, 32, 24).data;
      let motion = 0;
      if (this._prev) {
        for (let i = 0; i < px.length; i += 4) motion += Math.abs(px[i + 1] - this._prev[i + 1]);
        motion /= px.length / 4;
      }
      this._prev = px;
      this.onFrame(meta?.expectedDisplayTime ?? now, motion);
    }
    this.video.requestVideoFrameCallback(this._tick);
  }
}

/** Inbound video/audio figures from an RTCRtpReceiver's stats. */
export async function receiverStats(receiver) {
  const out = {};
  if (!receiver) return out;
  const report = await receiver.getStats();
  report.forEach((s) => {
    if (s.type !== "inbound-rtp") return;
    if (s.kind === "video") {
      Object.assign(out, { framesDecoded: s.framesDecoded, framesPerSecond: s.framesPerSecond,
        frameWidth: s.frameWidth, frameHeight: s.frameHeight });
    } else if (s.kind === "audio") {
      Object.assign(out, { audioLevel: s.audioLevel, totalAudioEnergy: s.totalAudioEnergy,
        jitterBufferDelay: s.jitterBufferDelay, jitterBufferEmittedCount: s.jitterBufferEmittedCount });
    }
  });
  return out;
}

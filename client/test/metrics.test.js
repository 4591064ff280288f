// Unit tests for the client's measurements: cross-correlation offset, turn latency.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { bestLag, offsetMs, percentile, pushSample, resample } from "../src/metrics/series.js";
import { TurnTracker } from "../src/metrics/turns.js";

/** A speech-like envelope: bursts of different lengths separated by pauses (deterministic). */
function envelope(t) {
  const bursts = [[200, 520], [700, 820], [1000, 1450], [1700, 1760], [2000, 2600], [2900, 3100]];
  return bursts.some(([a, b]) => t >= a && t < b) ? 0.2 + 0.1 * Math.sin(t / 37) : 0.001;
}

describe("series", () => {
  test("resample interpolates and holds the edges", () => {
    const s = [{ t: 10, v: 0 }, { t: 20, v: 10 }];
    assert.deepEqual(Array.from(resample(s, 0, 30, 5)), [0, 0, 0, 5, 10, 10]);
  });

  test("pushSample drops samples older than the window", () => {
    const s = [];
    for (let t = 0; t <= 100; t += 10) pushSample(s, t, t, 50);
    assert.deepEqual(s.map((x) => x.t), [50, 60, 70, 80, 90, 100]);
  });

  for (const shift of [-170, -40, 0, 25, 80, 310]) {
    test(`offsetMs recovers a ${shift} ms delay of a speech-like signal`, () => {
      const audio = [];
      const video = [];
      for (let t = 0; t < 3500; t += 10) audio.push({ t, v: envelope(t) });
      for (let t = 0; t < 3500; t += 40) video.push({ t, v: envelope(t - shift) }); // 25 fps
      const got = offsetMs(audio, video, 0, 3500);
      assert.ok(got, "signals should correlate");
      assert.ok(Math.abs(got.ms - shift) <= 20, `got ${got.ms} for ${shift}`);
    });
  }

  test("offsetMs says nothing for unrelated signals", () => {
    const a = [];
    const b = [];
    for (let t = 0; t < 3000; t += 10) {
      a.push({ t, v: envelope(t) });
      b.push({ t, v: (Math.sin(t * 0.5) + Math.sin(t * 0.123)) * 0.01 });
    }
    assert.equal(offsetMs(a, b, 0, 3000, { minR: 0.5 }), null);
  });

  test("bestLag sign: positive when b is later", () => {
    const a = new Float64Array(100);
    const b = new Float64Array(100);
    a[40] = 1;
    b[47] = 1;
    assert.equal(Math.round(bestLag(a, b, 20).lag), 7);
  });

  test("percentile", () => {
    assert.equal(percentile([], 50), null);
    assert.equal(percentile([3, 1, 2], 50), 2);
    assert.equal(percentile([1, 2, 3, 4], 100), 4);
  });
});

describe("TurnTracker", () => {
  test("measures end of user speech → first bot audio, once per turn", () => {
    const tr = new TurnTracker();
    const turns = [];
    for (let t = 0; t < 6000; t += 10) {
      const mic = t >= 500 && t < 2000 ? 0.1 : 0.0005; // user speaks 0.5–2.0 s
      const bot = t >= 2900 && t < 4000 ? 0.1 : 0.0; // bot answers at 2.9 s
      const turn = tr.update(t, mic, bot);
      if (turn) turns.push(turn);
    }
    assert.equal(turns.length, 1);
    assert.equal(turns[0].userEnd, 1990);
    assert.equal(turns[0].botStart, 2900);
    assert.equal(turns[0].latencyMs, 910);
  });

  test("bot audio while nobody spoke is not a turn", () => {
    const tr = new TurnTracker();
    for (let t = 0; t < 3000; t += 10) assert.equal(tr.update(t, 0, t > 1000 ? 0.2 : 0), null);
  });
});

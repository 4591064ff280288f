// Unit tests for the client's measurements: cross-correlation offset, turn latency, sentence sync.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { bestLag, offsetMs, percentile, pushSample, resample } from "../src/metrics/series.js";
import { TurnTracker } from "../src/metrics/turns.js";
import { SentenceScheduler, firstVoicedMs, lastVoicedMs } from "../src/speech-sync.js";

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

describe("SentenceScheduler", () => {
  const s1 = { type: "bot-tts-timing", seq: 1, text: "Hello there.", words: ["Hello", "there."],
    wtimes: [50, 500], wdurations: [400, 450], visemes: ["sil", "kk", "aa"], vtimes: [0, 50, 120],
    vdurations: [50, 70, 300] };
  const s2 = { ...s1, seq: 2, words: ["Bye."], wtimes: [80], wdurations: [300], visemes: ["PP", "aa"],
    vtimes: [80, 150], vdurations: [70, 230] };

  test("first/last voiced times come from visemes and words", () => {
    assert.equal(firstVoicedMs(s1), 50);
    assert.equal(lastVoicedMs(s1), 950);
  });

  test("a sentence whose message leads the audio starts at the heard onset", () => {
    const sch = new SentenceScheduler();
    sch.push(s1, 1000); // message 700 ms ahead of the audio
    const started = [];
    for (let t = 1000; t < 3000; t += 10) {
      const voiced = (t >= 1700 && t < 2100) || (t >= 2150 && t < 2600); // words at +0 and +450
      started.push(...sch.update(t, voiced ? 0.1 : 0));
    }
    assert.equal(started.length, 1);
    assert.equal(started[0].synced, true);
    assert.equal(started[0].startT, 1700 - 50);
  });

  test("a late message is anchored on an onset already heard", () => {
    const sch = new SentenceScheduler();
    let t = 0;
    for (; t < 1300; t += 10) sch.update(t, t >= 1200 ? 0.1 : 0);
    sch.push(s1, 1300);
    const started = sch.update(1300, 0.1);
    assert.equal(started.length, 1);
    assert.equal(started[0].startT, 1200 - 50);
  });

  test("the next sentence waits for the onset after the previous one's last word", () => {
    const sch = new SentenceScheduler();
    sch.push(s1, 0);
    sch.push(s2, 10);
    const started = [];
    for (let t = 0; t < 4000; t += 10) {
      // s1 voice 1000–1900 with an internal gap; s2 voice from 2100.
      const voiced = (t >= 1000 && t < 1400) || (t >= 1450 && t < 1900) || (t >= 2100 && t < 2400);
      started.push(...sch.update(t, voiced ? 0.1 : 0));
    }
    assert.deepEqual(started.map((s) => [s.msg.seq, s.startT]), [[1, 950], [2, 2100 - 80]]);
  });

  test("with no audio the sentence still starts, marked unsynced", () => {
    const sch = new SentenceScheduler();
    sch.push(s1, 0);
    const started = [];
    for (let t = 0; t < 2000; t += 10) started.push(...sch.update(t, 0));
    assert.equal(started.length, 1);
    assert.equal(started[0].synced, false);
  });

  test("reset drops queued sentences", () => {
    const sch = new SentenceScheduler();
    sch.push(s1, 0);
    sch.reset();
    for (let t = 0; t < 2000; t += 10) assert.deepEqual(sch.update(t, 0.1), []);
  });
});

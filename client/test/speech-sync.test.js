import assert from "node:assert/strict";
import { test } from "node:test";

import { playoutDelayMs, sentenceStart } from "../src/speech-sync.js";

test("a sentence is heard at its message's arrival, less what was played, plus the playout delay", () => {
  assert.equal(sentenceStart({ played_ms: 0 }, 1000, 60), 1060);
  assert.equal(sentenceStart({ played_ms: 1500 }, 5000, 60), 3560); // timed after streaming
  assert.equal(sentenceStart({ played_ms: -120 }, 1000, 0), 1120); // earlier audio still queued
  assert.equal(sentenceStart({}, 1000), 1000); // an older bot without played_ms
});

test("playout delay: jitter-buffer delay per emitted sample over the interval", () => {
  assert.equal(playoutDelayMs({}, {}), null);
  // Too few samples in the interval: the running average.
  assert.equal(playoutDelayMs(null, { jitterBufferDelay: 48, jitterBufferEmittedCount: 960 }), 50);
  const prev = { jitterBufferDelay: 48, jitterBufferEmittedCount: 960 };
  const now = { jitterBufferDelay: 48 + 0.08 * 4800, jitterBufferEmittedCount: 960 + 4800 };
  assert.equal(Math.round(playoutDelayMs(prev, now)), 80);
});

// Unit tests for the history view's pure helpers (URLs and session summaries).
import assert from "node:assert/strict";
import { test } from "node:test";

import { exportUrl, sessionsUrl, summary } from "../src/history.js";

test("sessionsUrl filters by room and pages", () => {
  assert.equal(sessionsUrl("lobby"), "/api/records/sessions?limit=20&offset=0&room=lobby");
  assert.equal(sessionsUrl("", 40), "/api/records/sessions?limit=20&offset=40");
  assert.equal(sessionsUrl("a b&c"), "/api/records/sessions?limit=20&offset=0&room=a+b%26c");
});

test("exportUrl names the session and format", () => {
  assert.equal(exportUrl("0a".repeat(16), "vtt"), `/api/records/sessions/${"0a".repeat(16)}/export?format=vtt`);
});

test("summary says how long, who and how much", () => {
  const session = {
    started_at: "2026-11-30T10:00:00Z",
    ended_at: "2026-11-30T10:07:10Z",
    participants: [{ identity: "dana", name: "Dana" }, { identity: "lee", name: "" }],
    utterance_count: 12,
  };
  assert.match(summary(session), / · 7 min · Dana, lee · 12 said$/);
  assert.match(summary({ ...session, ended_at: null, participants: [] }), / · open · nobody · 12 said$/);
});

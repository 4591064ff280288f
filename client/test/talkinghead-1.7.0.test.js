/**
 * Contract test of the TalkingHead internals that src/talkinghead-mode.js (the one module that
 * reaches into them) relies on, pinned to @met4citizen/talkinghead 1.7.0. TalkingHead needs
 * WebGL to construct, so its source is read: each check names what breaks if it changes.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { test } from "node:test";

const require = createRequire(import.meta.url);
const root = dirname(require.resolve("@met4citizen/talkinghead/package.json"));
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const source = readFileSync(join(root, "modules", "talkinghead.mjs"), "utf8");

test("pinned version: re-check these internals (and rename this test) when TalkingHead changes", () => {
  assert.equal(pkg.version, "1.7.0");
});

test("the animation queue and its clock: speak() queues visemes on animClock via animTimeLast", () => {
  assert.match(source, /this\.animQueue = \[\];/);
  assert.match(source, /this\.animClock = 0;/);
  assert.match(source, /this\.animTimeLast = t;/); // the last frame's timestamp
  assert.match(source, /if \( this\.animClock < x\.ts\[0\] \) continue;/); // items by ts on animClock
});

test("a queued viseme is TalkingHead's own item shape: template name 'viseme', ts and vs", () => {
  assert.match(source, /template: \{ name: 'viseme' \}/);
  assert.match(source, /Object\.entries\(a\.vs\)/);
  // stop() drops visemes the way TalkingHead's own stopSpeaking() does
  assert.match(source, /x\.template\.name !== 'viseme'/);
});

test("morph targets: stop() closes the lips through mtAvatar's newvalue/needsUpdate; openness reads applied", () => {
  assert.match(source, /this\.mtAvatar = mtTemp;/);
  assert.match(source, /o\.newvalue !== null/);
  assert.match(source, /if \( !o\.needsUpdate \) continue;/);
  assert.match(source, /o\.applied = newvalue;/);
});

test("the public helpers used: resetLips, lipsyncPreProcessText, lipsyncWordsToVisemes", () => {
  for (const name of ["resetLips()", "lipsyncPreProcessText(s,lang)", "lipsyncWordsToVisemes(word,lang)"]) {
    assert.ok(source.includes(`  ${name} {`), name);
  }
});

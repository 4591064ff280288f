// The generated head GLB carries what TalkingHead 1.7 requires of an avatar: the names are read
// from TalkingHead's own source, so an upgrade that needs more fails here.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const TALKINGHEAD = readFileSync(join(here, "../node_modules/@met4citizen/talkinghead/modules/talkinghead.mjs"), "utf8");

function readGlb(path) {
  const buf = readFileSync(path);
  assert.equal(buf.readUInt32LE(0), 0x46546c67, "glTF magic");
  assert.equal(buf.readUInt32LE(4), 2, "glTF version");
  assert.equal(buf.readUInt32LE(8), buf.length, "GLB length field");
  const jsonLength = buf.readUInt32LE(12);
  return JSON.parse(buf.subarray(20, 20 + jsonLength).toString("utf8"));
}

const out = join(mkdtempSync(join(tmpdir(), "head-")), "head.glb");
execFileSync(process.execPath, [join(here, "../scripts/make-head-glb.mjs"), out]);
const gltf = readGlb(out);
const names = new Set(gltf.nodes.map((n) => n.name));

test("has every bone TalkingHead's poses and eye/toe logic use, under an Armature root", () => {
  const poseBones = new Set([...TALKINGHEAD.matchAll(/'([A-Z][A-Za-z0-9]+)\.(?:position|rotation|quaternion|scale)'/g)]
    .map((m) => m[1]));
  for (const b of ["LeftEye", "RightEye", "Head", "Neck", "Hips", "LeftToeBase", "RightToeBase"]) poseBones.add(b);
  const missing = [...poseBones].filter((b) => !names.has(b));
  assert.deepEqual(missing, []);
  const root = gltf.nodes[gltf.scenes[0].nodes[0]];
  assert.equal(root.name, "Armature");
});

test("has the Oculus viseme targets and the blend shapes TalkingHead reads unguarded", () => {
  const targets = new Set(gltf.meshes.flatMap((m) => m.extras.targetNames));
  const visemes = TALKINGHEAD.match(/this\.visemeNames = \[([^\]]+)\]/)[1].match(/'([A-Za-z]+)'/g).map((v) => v.slice(1, -1));
  assert.equal(visemes.length, 15);
  const unguarded = [...TALKINGHEAD.matchAll(/this\.mtAvatar\['([A-Za-z]+)'\]/g)].map((m) => m[1]);
  const randomized = TALKINGHEAD.match(/this\.mtRandomized = \[([^\]]+)\]/)[1].match(/'([A-Za-z]+)'/g).map((v) => v.slice(1, -1));
  const customs = TALKINGHEAD.match(/this\.mtCustoms = \[([^\]]+)\]/)[1].match(/["']([A-Za-z]+)["']/g).map((v) => v.slice(1, -1));
  const needed = [...visemes.map((v) => `viseme_${v}`), ...unguarded, ...randomized].filter((n) => !customs.includes(n));
  const missing = [...new Set(needed)].filter((n) => !targets.has(n));
  assert.deepEqual(missing, []);
});

test("is a skinned mesh whose viseme targets move the mouth", () => {
  const mesh = gltf.meshes[0];
  const prim = mesh.primitives[0];
  assert.ok(gltf.skins[0].joints.length >= 50);
  assert.ok(prim.attributes.JOINTS_0 !== undefined && prim.attributes.WEIGHTS_0 !== undefined);
  const names = mesh.extras.targetNames;
  const moved = (name) => gltf.accessors[prim.targets[names.indexOf(name)].POSITION].sparse?.count ?? 0;
  for (const v of ["aa", "O", "E", "PP", "FF"]) assert.ok(moved(`viseme_${v}`) > 0, `viseme_${v} moves nothing`);
  assert.ok(moved("eyeBlinkLeft") > 0);
  assert.equal(moved("viseme_sil"), 0);
});

#!/usr/bin/env node
/**
 * Generate the project's redistributable TalkingHead avatar: a minimal rigged head (GLB).
 *
 * TalkingHead 1.7 loads Ready Player Me style avatars. What it needs from a GLB (read from
 * node_modules/@met4citizen/talkinghead/modules/talkinghead.mjs, showAvatar()/animate()):
 *  - a root object named "Armature" holding the RPM skeleton: every bone its pose templates move
 *    (Hips, Spine..Head, shoulders/arms/hands with 3-joint fingers, legs/feet/toes) plus LeftEye
 *    and RightEye (their height sets the camera);
 *  - at least one mesh with morph targets; the lip-sync drives `viseme_<Oculus>` targets, and
 *    its idle/blink/eye code reads ARKit blend shapes (eyeBlinkLeft, browDownLeft, ...) without
 *    checking they exist, so all 52 ARKit names are present (most as zero targets).
 * The head is a skinned mesh (skin, eyes, a mouth, a bust) weighted to Head / eyes / Neck / Spine2.
 * Everything is made here from numbers, so the file is ours to redistribute (Apache-2.0).
 *
 * Usage: node scripts/make-head-glb.mjs [out.glb]   (default public/avatars/head.glb)
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";

// ---- skeleton (RPM bone names; meters, Y up, avatar faces +Z) -------------------------------
// Like RPM rigs, limb bones point along their local +Y and carry a rest rotation: TalkingHead's
// pose templates set these bones' local rotations outright (legs ~180° about Z, arms out to the
// side), so the limbs only hang the right way round if the local frames match RPM's.
const BONES = []; // {name, parent, t: [x,y,z] relative to parent, r: quaternion [x,y,z,w]}
function bone(name, parent, t, euler = [0, 0, 0]) {
  BONES.push({ name, parent, t, r: quatFromEuler(euler) });
}
function quatFromEuler([x, y, z]) {
  // three.js default Euler order XYZ
  const [c1, c2, c3] = [Math.cos(x / 2), Math.cos(y / 2), Math.cos(z / 2)];
  const [s1, s2, s3] = [Math.sin(x / 2), Math.sin(y / 2), Math.sin(z / 2)];
  return [s1 * c2 * c3 + c1 * s2 * s3, c1 * s2 * c3 - s1 * c2 * s3, c1 * c2 * s3 + s1 * s2 * c3,
    c1 * c2 * c3 - s1 * s2 * s3];
}
bone("Hips", null, [0, 1.0, 0]);
bone("Spine", "Hips", [0, 0.1, 0]);
bone("Spine1", "Spine", [0, 0.1, 0]);
bone("Spine2", "Spine1", [0, 0.12, 0]);
bone("Neck", "Spine2", [0, 0.13, 0]);
bone("Head", "Neck", [0, 0.1, 0]);
bone("HeadTop_End", "Head", [0, 0.2, 0]);
bone("LeftEye", "Head", [0.03, 0.075, 0.072]);
bone("RightEye", "Head", [-0.03, 0.075, 0.072]);
for (const [side, s] of [["Left", 1], ["Right", -1]]) {
  // Rest rotations: the 'straight' pose of TalkingHead 1.7 (talkinghead.mjs poseTemplates).
  bone(`${side}Shoulder`, "Spine2", [s * 0.05, 0.1, 0], s > 0 ? [1.62, -0.166, -1.605] : [1.615, 0.064, 1.53]);
  bone(`${side}Arm`, `${side}Shoulder`, [0, 0.1, 0], s > 0 ? [1.275, 0.544, -0.092] : [1.313, -0.424, 0.131]);
  bone(`${side}ForeArm`, `${side}Arm`, [0, 0.26, 0]);
  bone(`${side}Hand`, `${side}ForeArm`, [0, 0.25, 0]);
  const fingers = { Thumb: [0.02, 0.02, 0.02], Index: [0.025, 0.08, 0], Middle: [0.005, 0.085, 0],
    Ring: [-0.015, 0.08, 0], Pinky: [-0.035, 0.07, 0] };
  for (const [f, [x, y, z]] of Object.entries(fingers)) {
    bone(`${side}Hand${f}1`, `${side}Hand`, [s * x, y, z]);
    bone(`${side}Hand${f}2`, `${side}Hand${f}1`, [0, 0.03, 0]);
    bone(`${side}Hand${f}3`, `${side}Hand${f}2`, [0, 0.025, 0]);
  }
  bone(`${side}UpLeg`, "Hips", [s * 0.09, -0.05, 0], [0, 0, Math.PI]);
  bone(`${side}Leg`, `${side}UpLeg`, [0, 0.42, 0]);
  bone(`${side}Foot`, `${side}Leg`, [0, 0.42, 0], [1.3, 0, 0]);
  bone(`${side}ToeBase`, `${side}Foot`, [0, 0.12, 0]);
}
const boneIndex = Object.fromEntries(BONES.map((b, i) => [b.name, i]));

// Column-major 4x4 matrices, rigid transforms only.
function matFrom(t, [x, y, z, w]) {
  return [1 - 2 * (y * y + z * z), 2 * (x * y + z * w), 2 * (x * z - y * w), 0,
    2 * (x * y - z * w), 1 - 2 * (x * x + z * z), 2 * (y * z + x * w), 0,
    2 * (x * z + y * w), 2 * (y * z - x * w), 1 - 2 * (x * x + y * y), 0, t[0], t[1], t[2], 1];
}
function matMul(a, b) {
  const o = new Array(16).fill(0);
  for (let c = 0; c < 4; c++) for (let r = 0; r < 4; r++) for (let k = 0; k < 4; k++) o[c * 4 + r] += a[k * 4 + r] * b[c * 4 + k];
  return o;
}
function matInvRigid(m) {
  const rt = [m[0], m[4], m[8], 0, m[1], m[5], m[9], 0, m[2], m[6], m[10], 0, 0, 0, 0, 1];
  const t = [m[12], m[13], m[14]];
  for (let r = 0; r < 3; r++) rt[12 + r] = -(rt[r] * t[0] + rt[4 + r] * t[1] + rt[8 + r] * t[2]);
  return rt;
}
function worldMat(name) {
  const b = BONES[boneIndex[name]];
  const local = matFrom(b.t, b.r);
  return b.parent ? matMul(worldMat(b.parent), local) : local;
}
function worldPos(name) {
  const m = worldMat(name);
  return [m[12], m[13], m[14]];
}

// ---- morph target names ---------------------------------------------------------------------
const VISEMES = ["sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "I", "O", "U"];
const ARKIT = [
  "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
  "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
  "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft",
  "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
  "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight",
  "jawForward", "jawLeft", "jawOpen", "jawRight",
  "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
  "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
  "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper",
  "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft",
  "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
  "noseSneerLeft", "noseSneerRight", "tongueOut",
];
const RPM_EXTRAS = ["mouthOpen", "mouthSmile", "eyesClosed", "eyesLookUp", "eyesLookDown"];
const TARGETS = [...VISEMES.map((v) => `viseme_${v}`), ...ARKIT, ...RPM_EXTRAS];

// Mouth shape per viseme: width factor and opening (m). "sil" is the rest shape.
const MOUTH = {
  sil: [1, 0], PP: [0.95, -0.003], FF: [1.0, 0.006], TH: [1.0, 0.012], DD: [1.0, 0.015],
  kk: [1.0, 0.018], CH: [0.8, 0.015], SS: [1.05, 0.008], nn: [1.0, 0.011], RR: [0.8, 0.015],
  aa: [1.0, 0.04], E: [1.15, 0.022], I: [1.1, 0.014], O: [0.7, 0.032], U: [0.55, 0.02],
};

// ---- geometry -------------------------------------------------------------------------------
const HEAD_C = [0, 1.6, 0];
const HEAD_R = [0.075, 0.11, 0.09];
const SKIN = [0.87, 0.72, 0.6];
const HAIR = [0.23, 0.15, 0.1];
const LIPS = [0.45, 0.1, 0.12];
const SCLERA = [0.95, 0.95, 0.95];
const IRIS = [0.2, 0.13, 0.08];
const MOUTH_C = [0, 1.545];
const MOUTH_W = 0.05;
const MOUTH_H = 0.004;

const pos = [];
const nor = [];
const col = [];
const joints = [];
const idx = [];
const parts = []; // per vertex: "head" | "eyeL" | "eyeR" | "mouth" | "body"

function addVertex(p, n, c, j, part) {
  pos.push(p);
  nor.push(n);
  col.push(c.map((v) => v ** 2.2)); // colours are written as sRGB; glTF vertex colours are linear
  joints.push(j);
  parts.push(part);
  return pos.length - 1;
}

/** Ellipsoid surface z (front) at x, y, or null outside. */
function headFrontZ(x, y) {
  const u = 1 - ((x - HEAD_C[0]) / HEAD_R[0]) ** 2 - ((y - HEAD_C[1]) / HEAD_R[1]) ** 2;
  return u > 0 ? HEAD_C[2] + HEAD_R[2] * Math.sqrt(u) : null;
}

function ellipsoid(center, radii, rings, segs, colorFn, joint, part) {
  const base = pos.length;
  for (let i = 0; i <= rings; i++) {
    const th = (Math.PI * i) / rings;
    for (let k = 0; k <= segs; k++) {
      const ph = (2 * Math.PI * k) / segs;
      const d = [Math.sin(th) * Math.sin(ph), Math.cos(th), Math.sin(th) * Math.cos(ph)];
      const p = d.map((v, a) => center[a] + radii[a] * v);
      const n = d.map((v, a) => v / radii[a]);
      const l = Math.hypot(...n) || 1;
      addVertex(p, n.map((v) => v / l), colorFn(p, d), joint, part);
    }
  }
  for (let i = 0; i < rings; i++) {
    for (let k = 0; k < segs; k++) {
      const a = base + i * (segs + 1) + k;
      const b = a + segs + 1;
      idx.push(a, b, a + 1, a + 1, b, b + 1);
    }
  }
}

ellipsoid(HEAD_C, HEAD_R, 32, 48,
  (p, d) => (d[1] > 0.55 || (d[1] > 0.1 && d[2] < -0.2) ? HAIR : SKIN), boneIndex.Head, "head");
for (const [name, part] of [["LeftEye", "eyeL"], ["RightEye", "eyeR"]]) {
  ellipsoid(worldPos(name), [0.013, 0.013, 0.013], 12, 16, (p, d) => (d[2] > 0.8 ? IRIS : SCLERA),
    boneIndex[name], part);
}
ellipsoid([0, 1.47, -0.005], [0.045, 0.08, 0.045], 10, 24, () => SKIN, boneIndex.Neck, "body");
ellipsoid([0, 1.33, -0.01], [0.19, 0.09, 0.11], 14, 32, () => [0.25, 0.35, 0.55], boneIndex.Spine2, "body");

// Feet: TalkingHead keeps the lowest point of the avatar's bounding box on the floor by moving the
// hips, so a bust-only mesh would sink to the ground. One degenerate (invisible) triangle at each
// toe, skinned to the toe bone, puts the floor under the feet as on a full body.
for (const side of ["Left", "Right"]) {
  const toe = worldPos(`${side}ToeBase`);
  const v = [0, 1, 2].map(() => addVertex(toe, [0, 1, 0], SKIN, boneIndex[`${side}ToeBase`], "body"));
  idx.push(...v);
}

// Mouth: an elliptic disk lying on the face, centre + 2 rings.
const MOUTH_SEGS = 32;
const mouthBase = pos.length;
const mouthParams = []; // per mouth vertex: [ring fraction r, angle]
function mouthPoint(r, ang, widthF = 1, open = 0) {
  const x = MOUTH_C[0] + (MOUTH_W / 2) * widthF * r * Math.cos(ang);
  const s = Math.sin(ang);
  // The lower lip moves more than the upper one (the jaw drops).
  const h = MOUTH_H / 2 + (s >= 0 ? 0.3 : 0.7) * Math.max(open, -MOUTH_H / 2 / 0.7);
  const y = MOUTH_C[1] + h * r * s - (open > 0 ? 0.15 * open * (1 - r) : 0);
  return [x, y, (headFrontZ(x, y) ?? 0.07) + 0.0015];
}
addVertex(mouthPoint(0, 0), [0, 0, 1], LIPS, boneIndex.Head, "mouth");
mouthParams.push([0, 0]);
for (const r of [0.5, 1]) {
  for (let k = 0; k < MOUTH_SEGS; k++) {
    const ang = (2 * Math.PI * k) / MOUTH_SEGS;
    addVertex(mouthPoint(r, ang), [0, 0, 1], LIPS, boneIndex.Head, "mouth");
    mouthParams.push([r, ang]);
  }
}
for (let k = 0; k < MOUTH_SEGS; k++) {
  const k1 = (k + 1) % MOUTH_SEGS;
  const inner = (j) => mouthBase + 1 + j;
  const outer = (j) => mouthBase + 1 + MOUTH_SEGS + j;
  idx.push(mouthBase, inner(k), inner(k1));
  idx.push(inner(k), outer(k), outer(k1), inner(k), outer(k1), inner(k1));
}

// ---- morph target deltas --------------------------------------------------------------------
const N = pos.length;
function mouthDeltas(widthF, open) {
  const d = new Float32Array(N * 3);
  mouthParams.forEach(([r, ang], i) => {
    const v = mouthBase + i;
    const p = mouthPoint(r, ang, widthF, open);
    for (let a = 0; a < 3; a++) d[v * 3 + a] = p[a] - pos[v][a];
  });
  // Chin follows the jaw: front head vertices below the mouth move down.
  if (open > 0) {
    for (let v = 0; v < N; v++) {
      if (parts[v] !== "head") continue;
      const [x, y, z] = pos[v];
      if (y < MOUTH_C[1] - 0.004 && z > 0.02 && Math.abs(x) < 0.06) {
        const w = Math.min(1, (MOUTH_C[1] - y) / 0.02) * (1 - Math.abs(x) / 0.06);
        d[v * 3 + 1] -= 0.5 * open * w;
      }
    }
  }
  return d;
}
function blinkDeltas(which) {
  const d = new Float32Array(N * 3);
  for (let v = 0; v < N; v++) {
    if (!which.includes(parts[v])) continue;
    const c = worldPos(parts[v] === "eyeL" ? "LeftEye" : "RightEye");
    d[v * 3 + 1] = (c[1] - pos[v][1]) * 0.9; // squash towards the eye's centre line
  }
  return d;
}
function smileDeltas(sides) {
  const d = new Float32Array(N * 3);
  mouthParams.forEach(([r, ang], i) => {
    const x = Math.cos(ang) * r;
    if ((x > 0.3 && sides.includes("L")) || (x < -0.3 && sides.includes("R"))) {
      d[(mouthBase + i) * 3 + 1] = 0.008 * Math.abs(x);
    }
  });
  return d;
}

const deltas = {};
for (const [v, [w, o]] of Object.entries(MOUTH)) if (v !== "sil") deltas[`viseme_${v}`] = mouthDeltas(w, o);
deltas.jawOpen = mouthDeltas(1, 0.045);
deltas.mouthOpen = mouthDeltas(1, 0.03);
deltas.eyeBlinkLeft = blinkDeltas(["eyeL"]);
deltas.eyeBlinkRight = blinkDeltas(["eyeR"]);
deltas.eyesClosed = blinkDeltas(["eyeL", "eyeR"]);
deltas.mouthSmileLeft = smileDeltas("L");
deltas.mouthSmileRight = smileDeltas("R");
deltas.mouthSmile = smileDeltas("LR");

// ---- glTF assembly --------------------------------------------------------------------------
const chunks = [];
let byteLength = 0;
const bufferViews = [];
const accessors = [];
function addView(typed, target) {
  const pad = (4 - (byteLength % 4)) % 4;
  if (pad) {
    chunks.push(new Uint8Array(pad));
    byteLength += pad;
  }
  const bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  chunks.push(bytes);
  bufferViews.push({ buffer: 0, byteOffset: byteLength, byteLength: bytes.length, ...(target ? { target } : {}) });
  byteLength += bytes.length;
  return bufferViews.length - 1;
}
function minMax(arr, comps) {
  const min = Array(comps).fill(Infinity);
  const max = Array(comps).fill(-Infinity);
  for (let i = 0; i < arr.length; i++) {
    const a = i % comps;
    min[a] = Math.min(min[a], arr[i]);
    max[a] = Math.max(max[a], arr[i]);
  }
  return { min, max };
}
function addAccessor(typed, type, componentType, { target, bounds = false, normalized } = {}) {
  const comps = { SCALAR: 1, VEC3: 3, VEC4: 4, MAT4: 16 }[type];
  const acc = { bufferView: addView(typed, target), componentType, count: typed.length / comps, type };
  if (bounds) Object.assign(acc, minMax(typed, comps));
  if (normalized) acc.normalized = true;
  accessors.push(acc);
  return accessors.length - 1;
}
const FLOAT = 5126;
const UBYTE = 5121;
const UINT = 5125;
const ARRAY_BUFFER = 34962;
const ELEMENT_ARRAY_BUFFER = 34963;

const attributes = {
  POSITION: addAccessor(new Float32Array(pos.flat()), "VEC3", FLOAT, { target: ARRAY_BUFFER, bounds: true }),
  NORMAL: addAccessor(new Float32Array(nor.flat()), "VEC3", FLOAT, { target: ARRAY_BUFFER }),
  COLOR_0: addAccessor(new Float32Array(col.flat()), "VEC3", FLOAT, { target: ARRAY_BUFFER }),
  JOINTS_0: addAccessor(new Uint8Array(joints.flatMap((j) => [j, 0, 0, 0])), "VEC4", UBYTE, { target: ARRAY_BUFFER }),
  WEIGHTS_0: addAccessor(new Float32Array(joints.flatMap(() => [1, 0, 0, 0])), "VEC4", FLOAT, { target: ARRAY_BUFFER }),
};
const indices = addAccessor(new Uint32Array(idx), "SCALAR", UINT, { target: ELEMENT_ARRAY_BUFFER });
// Morph targets are sparse: an accessor without a buffer view reads as zeros (glTF 2.0 §3.6.2),
// and only the vertices a target moves are listed. Zero targets list none.
const targets = TARGETS.map((name) => {
  const d = deltas[name] ?? new Float32Array(N * 3);
  const moved = [];
  for (let v = 0; v < N; v++) if (d[v * 3] || d[v * 3 + 1] || d[v * 3 + 2]) moved.push(v);
  const acc = { componentType: FLOAT, count: N, type: "VEC3", ...minMax(d, 3) };
  if (moved.length) {
    acc.sparse = {
      count: moved.length,
      indices: { bufferView: addView(new Uint32Array(moved)), componentType: UINT },
      values: { bufferView: addView(new Float32Array(moved.flatMap((v) => [d[v * 3], d[v * 3 + 1], d[v * 3 + 2]]))) },
    };
  }
  accessors.push(acc);
  return { POSITION: accessors.length - 1 };
});
const inverseBind = new Float32Array(BONES.length * 16);
BONES.forEach((b, i) => inverseBind.set(matInvRigid(worldMat(b.name)), i * 16));
const ibm = addAccessor(inverseBind, "MAT4", FLOAT);

const nodes = BONES.map((b) => ({ name: b.name, translation: b.t, ...(b.r[3] < 1 ? { rotation: b.r } : {}) }));
BONES.forEach((b, i) => {
  if (b.parent) (nodes[boneIndex[b.parent]].children ??= []).push(i);
});
const meshNode = nodes.length;
nodes.push({ name: "AvatarHead", mesh: 0, skin: 0 });
const armature = nodes.length;
nodes.push({ name: "Armature", children: [boneIndex.Hips, meshNode] });

const gltf = {
  asset: { version: "2.0", generator: "talking-avatar make-head-glb.mjs", copyright: "talking-avatar contributors, Apache-2.0" },
  scene: 0,
  scenes: [{ name: "Scene", nodes: [armature] }],
  nodes,
  meshes: [{
    name: "AvatarHead",
    primitives: [{ attributes, indices, material: 0, targets }],
    weights: TARGETS.map(() => 0),
    extras: { targetNames: TARGETS },
  }],
  skins: [{ name: "Armature", joints: BONES.map((_, i) => i), inverseBindMatrices: ibm, skeleton: boneIndex.Hips }],
  materials: [{ name: "Head", pbrMetallicRoughness: { baseColorFactor: [1, 1, 1, 1], metallicFactor: 0, roughnessFactor: 0.75 } }],
  accessors,
  bufferViews,
  buffers: [{ byteLength }],
};

// ---- GLB container --------------------------------------------------------------------------
const bin = new Uint8Array(byteLength + ((4 - (byteLength % 4)) % 4));
let off = 0;
for (const c of chunks) {
  bin.set(c, off);
  off += c.length;
}
const jsonBytes = new TextEncoder().encode(JSON.stringify(gltf));
const jsonPadded = new Uint8Array(jsonBytes.length + ((4 - (jsonBytes.length % 4)) % 4)).fill(0x20);
jsonPadded.set(jsonBytes);
const total = 12 + 8 + jsonPadded.length + 8 + bin.length;
const glb = new Uint8Array(total);
const dv = new DataView(glb.buffer);
dv.setUint32(0, 0x46546c67, true); // "glTF"
dv.setUint32(4, 2, true);
dv.setUint32(8, total, true);
dv.setUint32(12, jsonPadded.length, true);
dv.setUint32(16, 0x4e4f534a, true); // "JSON"
glb.set(jsonPadded, 20);
const binAt = 20 + jsonPadded.length;
dv.setUint32(binAt, bin.length, true);
dv.setUint32(binAt + 4, 0x004e4942, true); // "BIN\0"
glb.set(bin, binAt + 8);

const out = resolve(process.argv[2] ?? new URL("../public/avatars/head.glb", import.meta.url).pathname);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, glb);
console.log(`wrote ${out}: ${(total / 1024).toFixed(0)} KiB, ${N} vertices, ${idx.length / 3} triangles, ` +
  `${BONES.length} bones, ${TARGETS.length} morph targets (${Object.keys(deltas).length} non-zero)`);

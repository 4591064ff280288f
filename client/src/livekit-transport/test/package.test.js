// The package as a user gets it: `npm pack`, installed into a fresh app next to its peer
// dependencies, imported by name, and its TypeScript declarations checked against the peers'
// own (a stock @pipecat-ai/client-js app, typed).
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

const here = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const peers = ["@pipecat-ai/client-js", "livekit-client"];

/** A peer's installed folder (the app that hosts these tests has them). */
function installed(name) {
  let dir = dirname(require.resolve(name));
  while (!readdirSync(dir).includes("package.json")) dir = dirname(dir);
  return dir;
}

let app;
before(() => {
  app = mkdtempSync(join(tmpdir(), "lk-transport-app-"));
  const tarball = execFileSync("npm", ["pack", "--silent", "--pack-destination", app], { cwd: here })
    .toString().trim().split("\n").at(-1);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  // The peers come from the host app (no network): linked where npm would install them.
  for (const name of peers) {
    mkdirSync(dirname(join(app, "node_modules", name)), { recursive: true });
    symlinkSync(installed(name), join(app, "node_modules", name), "dir");
  }
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", "--no-save", join(app, tarball)],
    { cwd: app, stdio: "pipe" });
});
after(() => rmSync(app, { recursive: true, force: true }));

test("the packed package holds only what it ships", () => {
  const files = readdirSync(join(app, "node_modules", "@talking-avatar", "livekit-transport")).sort();
  assert.deepEqual(files, ["README.md", "codec.js", "index.d.ts", "index.js", "package.json"]);
});

test("an app imports it by name and builds a PipecatClient on it", () => {
  writeFileSync(join(app, "main.mjs"), `
    globalThis.window ??= globalThis;
    const { PipecatClient } = await import("@pipecat-ai/client-js");
    const { LiveKitTransport, decodeRtviPacket } = await import("@talking-avatar/livekit-transport");
    const client = new PipecatClient({ transport: new LiveKitTransport(), enableMic: false });
    console.log(JSON.stringify({ state: client.state, decoded: decodeRtviPacket(new Uint8Array(0), { warn() {}, debug() {} }) }));
  `);
  const out = JSON.parse(execFileSync("node", ["main.mjs"], { cwd: app }).toString().trim().split("\n").at(-1));
  assert.deepEqual(out, { state: "disconnected", decoded: null });
});

test("its declarations type-check in a TypeScript app", (t) => {
  let tsc;
  try {
    tsc = require.resolve("typescript/bin/tsc");
  } catch {
    t.skip("typescript is not installed next to the package (the client's devDependencies have it)");
    return;
  }
  writeFileSync(join(app, "app.ts"), `
    import { PipecatClient, RTVIEvent } from "@pipecat-ai/client-js";
    import { LiveKitTransport, type LiveKitConnectionParams } from "@talking-avatar/livekit-transport";
    const transport = new LiveKitTransport({ onMessage: (m) => console.log(m.type) });
    const client = new PipecatClient({ transport, enableMic: true, enableCam: false });
    client.on(RTVIEvent.BotOutput, (d) => console.log(d.text));
    const params: LiveKitConnectionParams = { url: "ws://127.0.0.1:7880", token: "jwt" };
    export const ready: Promise<unknown> = client.connect(params);
    export const room = transport.room?.name;
  `);
  const run = spawnSync("node", [tsc, "--noEmit", "--strict", "--module", "nodenext",
    "--moduleResolution", "nodenext", "--target", "es2022", "--lib", "es2022,dom", "app.ts"],
  { cwd: app });
  // Only errors in the app and in these declarations count: livekit-client 2.23's own .d.ts
  // files name modules it does not ship types for (so no --skipLibCheck, which hides ours too).
  const ours = run.stdout.toString().split("\n").filter((l) => /app\.ts|livekit-transport/.test(l));
  assert.deepEqual(ours, []);
});

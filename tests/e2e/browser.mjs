// Drives Debian's headless Chromium with playwright-core (from client/node_modules) for the e2e
// tests: fake microphone from a WAV, loopback WebRTC, autoplay allowed, WebGL on SwiftShader.
//
// Usage: node tests/e2e/browser.mjs '<json>' where json is
//   {"url": "...", "wav": "/path.wav" | null, "viewport": [w, h], "steps": [...]}
// Steps run in order; each adds one entry to "results":
//   {"waitFor": "<js expression>", "timeout_s": 60}   -> value of the expression once truthy
//   {"eval": "<js expression>"}                         -> its value
//   {"sleep_s": 2}
//   {"screenshot": "/path.png", "selector": "#stage"}   (selector optional)
//   {"click": "<css selector>"}
//   {"fill": "<css selector>", "text": "..."}
// "diagnose": a js expression evaluated when a step fails (its value goes to "diagnosis").
// Prints one JSON object: {"ok", "results", "error", "diagnosis", "console", "pageErrors"}.
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(resolve(here, "../../client/package.json"));
const { chromium } = require("playwright-core");

const config = JSON.parse(process.argv[2]);
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const args = [
  "--use-fake-ui-for-media-stream",
  "--use-fake-device-for-media-stream",
  "--allow-loopback-in-peer-connection",
  "--autoplay-policy=no-user-gesture-required",
  "--enable-unsafe-swiftshader",
  "--use-angle=swiftshader",
  "--disable-gpu-sandbox",
  "--no-sandbox",
  "--disable-background-timer-throttling",
  "--disable-renderer-backgrounding",
  "--disable-backgrounding-occluded-windows",
];
if (config.wav) args.push(`--use-file-for-fake-audio-capture=${config.wav}`);
if (config.denyMic) args.splice(args.indexOf("--use-fake-ui-for-media-stream"), 1);

const out = { ok: false, results: [], error: null, diagnosis: null, console: [], pageErrors: [] };
let browser;
let page;
try {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
  const context = await browser.newContext({
    viewport: { width: config.viewport?.[0] ?? 1280, height: config.viewport?.[1] ?? 800 },
    permissions: config.denyMic ? [] : ["microphone"],
  });
  page = await context.newPage();
  page.on("console", (m) => {
    out.console.push(`${m.type()}: ${m.text()}`.slice(0, 500));
    if (out.console.length > 300) out.console.shift();
  });
  page.on("pageerror", (e) => out.pageErrors.push(String(e)));
  await page.goto(config.url, { waitUntil: "load" });
  for (const step of config.steps ?? []) {
    if (step.waitFor) {
      const handle = await page.waitForFunction(step.waitFor, null,
        { timeout: (step.timeout_s ?? 60) * 1000, polling: 200 });
      out.results.push(await handle.jsonValue());
    } else if (step.eval) {
      out.results.push(await page.evaluate(step.eval));
    } else if (step.sleep_s) {
      await page.waitForTimeout(step.sleep_s * 1000);
      out.results.push(null);
    } else if (step.screenshot) {
      const target = step.selector ? page.locator(step.selector) : page;
      await target.screenshot({ path: step.screenshot });
      out.results.push(step.screenshot);
    } else if (step.click) {
      await page.click(step.click);
      out.results.push(null);
    } else if (step.fill) {
      await page.fill(step.fill, step.text);
      out.results.push(null);
    } else {
      throw new Error(`unknown step ${JSON.stringify(step)}`);
    }
  }
  out.ok = true;
} catch (e) {
  out.error = String(e?.stack ?? e);
  if (page && config.diagnose) out.diagnosis = await page.evaluate(config.diagnose).catch((d) => String(d));
} finally {
  // Close the page the way a person closes a tab, so the page leaves the LiveKit room at once
  // (livekit-client disconnects on pagehide) instead of timing out on the server.
  await page?.close({ runBeforeUnload: true }).catch(() => {});
  await new Promise((r) => setTimeout(r, 500));
  await browser?.close().catch(() => {});
}
process.stdout.write(JSON.stringify(out));

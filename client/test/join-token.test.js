// Unit tests for the page's join step (src/page/join-token.js): what a person is told for each
// answer of the token endpoint. A loopback HTTP server answers as the token server can.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, beforeEach, test } from "node:test";

const store = new Map();
globalThis.sessionStorage = {
  getItem: (k) => (store.has(k) ? store.get(k) : null),
  setItem: (k, v) => store.set(k, String(v)),
  removeItem: (k) => store.delete(k),
};
const { fetchToken, identityFor, saveApiKey } = await import("../src/page/join-token.js");

const requests = [];
const answers = {
  "/ok": [200, {}, { url: "ws://127.0.0.1:7880", token: "jwt" }],
  "/key": [401, {}, { detail: "api key required" }],
  "/busy": [429, { "Retry-After": "7" }, { detail: "too many" }],
  "/busy-unsaid": [429, {}, { detail: "too many" }],
  "/full": [503, {}, { detail: "no capacity" }],
  "/bad": [400, {}, { detail: "room name too long" }],
  "/oops": [500, {}, "boom"],
};
let server;
let base;

before(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      requests.push({ path: req.url, auth: req.headers.authorization, body: JSON.parse(body) });
      const [status, headers, answer] = answers[req.url];
      res.writeHead(status, { "Content-Type": "application/json", ...headers });
      res.end(JSON.stringify(answer));
    });
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(() => server.close());
beforeEach(() => {
  store.clear();
  requests.length = 0;
});

const noKey = { onKeyNeeded: () => assert.fail("no key was asked for") };

test("a token is fetched for this tab's identity, with the saved key", async () => {
  saveApiKey("s3cret");
  const answer = await fetchToken(`${base}/ok`, "lobby", "Dana Lee", noKey);
  assert.deepEqual(answer, { url: "ws://127.0.0.1:7880", token: "jwt" });
  const [req] = requests;
  assert.equal(req.auth, "Bearer s3cret");
  assert.match(req.body.identity, /^dana-lee-[a-z0-9]{1,6}$/);
  assert.deepEqual({ ...req.body, identity: undefined }, { room: "lobby", identity: undefined, name: "Dana Lee" });
  assert.equal(identityFor("Someone Else"), req.body.identity); // kept for the tab, across rejoins
});

test("401 forgets the key and asks for one", async () => {
  saveApiKey("wrong");
  let asked = 0;
  await assert.rejects(fetchToken(`${base}/key`, "r", "n", { onKeyNeeded: () => (asked += 1) }),
    (e) => /needs an access key/.test(e.message) && !e.retry);
  assert.equal(asked, 1);
  assert.equal(sessionStorage.getItem("talking-avatar-api-key"), null);
});

test("429, 503, 5xx and an unreachable server may be retried; 4xx says why", async () => {
  await assert.rejects(fetchToken(`${base}/busy`, "r", "n", noKey),
    (e) => /joining again in 7 s/.test(e.message) && e.retry && e.retryAfterS === 7);
  await assert.rejects(fetchToken(`${base}/busy-unsaid`, "r", "n", noKey),
    (e) => /wait a little/.test(e.message) && e.retry && e.retryAfterS === undefined);
  await assert.rejects(fetchToken(`${base}/full`, "r", "n", noKey), (e) => /every avatar is busy/.test(e.message) && e.retry);
  await assert.rejects(fetchToken(`${base}/oops`, "r", "n", noKey), (e) => /problem \(500\)/.test(e.message) && e.retry);
  await assert.rejects(fetchToken(`${base}/bad`, "r", "n", noKey),
    (e) => e.message === "The server refused to join: room name too long" && !e.retry);
  const closed = createServer();
  await new Promise((ok) => closed.listen(0, "127.0.0.1", ok));
  const port = closed.address().port;
  await new Promise((ok) => closed.close(ok));
  await assert.rejects(fetchToken(`http://127.0.0.1:${port}/`, "r", "n", noKey),
    (e) => /Cannot reach the avatar server/.test(e.message) && e.retry);
});

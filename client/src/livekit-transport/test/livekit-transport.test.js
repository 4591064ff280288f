// Unit tests for the LiveKit RTVI transport's data-channel message handling (node --test).
// Packets are fed to the transport exactly as livekit-client's RoomEvent.DataReceived hands them
// over (payload bytes + sender participant); no server is involved at this tier.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";

// client-js reads window.navigator when a PipecatClient is built; node has no window.
globalThis.window ??= globalThis;

const { PipecatClient, RTVIMessage, RTVI_MESSAGE_LABEL } = await import("@pipecat-ai/client-js");
const { LiveKitTransport, decodeRtviPacket, encodeRtviMessage } = await import(
  "../index.js"
);

const enc = new TextEncoder();
const json = (obj) => enc.encode(JSON.stringify(obj));
const BOT = { identity: "avatar-bot", name: "Avatar", isAgent: true };
const PERSON = { identity: "alice", name: "Alice", isAgent: false };

const MALFORMED = {
  "invalid UTF-8": new Uint8Array([0xff, 0xfe, 0x7b, 0x80]),
  "truncated JSON": enc.encode('{"label":"rtvi-ai","type":"bot-rea'),
  "JSON array": json([1, 2, 3]),
  "JSON string": json("bot-ready"),
  "JSON null": enc.encode("null"),
  "no type": json({ label: RTVI_MESSAGE_LABEL, data: {} }),
  "empty type": json({ label: RTVI_MESSAGE_LABEL, type: "" }),
  "numeric type": json({ label: RTVI_MESSAGE_LABEL, type: 7 }),
  "empty payload": new Uint8Array(0),
};

function captureLog() {
  const lines = { warn: [], debug: [] };
  return {
    lines,
    warn: (...a) => lines.warn.push(a.join(" ")),
    debug: (...a) => lines.debug.push(a.join(" ")),
  };
}

describe("decodeRtviPacket", () => {
  test("decodes an RTVI message as Pipecat's LiveKitTransport sends it", () => {
    const payload = json({ label: "rtvi-ai", type: "user-transcription", id: "m1",
      data: { text: "hello", final: true, user_id: "alice", timestamp: "t" } });
    const msg = decodeRtviPacket(payload);
    assert.ok(msg instanceof RTVIMessage);
    assert.equal(msg.type, "user-transcription");
    assert.equal(msg.id, "m1");
    assert.equal(msg.label, "rtvi-ai");
    assert.deepEqual(msg.data, { text: "hello", final: true, user_id: "alice", timestamp: "t" });
  });

  for (const [name, payload] of Object.entries(MALFORMED)) {
    test(`returns null and logs a warning for ${name}`, () => {
      const log = captureLog();
      assert.equal(decodeRtviPacket(payload, log), null);
      assert.equal(log.lines.warn.length, 1, `warnings: ${JSON.stringify(log.lines)}`);
    });
  }

  test("ignores other apps' JSON packets quietly (debug, not warning)", () => {
    const log = captureLog();
    assert.equal(decodeRtviPacket(json({ label: "chat", type: "x" }), log), null);
    assert.equal(decodeRtviPacket(json({ type: "bot-ready" }), log), null);
    assert.equal(log.lines.warn.length, 0);
    assert.equal(log.lines.debug.length, 2);
  });

  test("encode → decode round-trips a client message", () => {
    const out = new RTVIMessage("send-text", { content: "hi ✓", options: {} });
    const back = decodeRtviPacket(encodeRtviMessage(out));
    assert.equal(back.type, "send-text");
    assert.equal(back.id, out.id);
    assert.deepEqual(back.data, { content: "hi ✓", options: {} });
  });
});

describe("LiveKitTransport data handling", () => {
  let transport, received, warnings, errors, origWarn, origError, origDebug;

  beforeEach(() => {
    received = [];
    warnings = [];
    errors = [];
    [origWarn, origError, origDebug] = [console.warn, console.error, console.debug];
    console.warn = (...a) => warnings.push(a.join(" "));
    console.error = (...a) => errors.push(a.join(" "));
    console.debug = () => {};
    transport = new LiveKitTransport();
    transport.initialize({ callbacks: {} }, (m) => received.push(m));
  });

  afterEach(() => {
    [console.warn, console.error, console.debug] = [origWarn, origError, origDebug];
  });

  test("malformed packets from the bot are ignored with a log, never thrown", () => {
    for (const payload of Object.values(MALFORMED)) {
      assert.doesNotThrow(() => transport._handleData(payload, BOT.identity, BOT));
    }
    assert.equal(received.length, 0);
    assert.equal(warnings.length, Object.keys(MALFORMED).length);
    assert.equal(transport.state, "disconnected");
  });

  test("bot-ready from the bot makes the transport ready and reaches the handler", () => {
    transport._handleData(json({ label: "rtvi-ai", type: "bot-ready", id: "r", data: { version: "2.2.0" } }),
      BOT.identity, BOT);
    assert.equal(transport.state, "ready");
    assert.deepEqual(received.map((m) => m.type), ["bot-ready"]);
  });

  test("RTVI packets from other people's clients are dropped", () => {
    transport._handleData(json({ label: "rtvi-ai", type: "bot-ready", data: {} }), PERSON.identity, PERSON);
    transport._handleData(json({ label: "rtvi-ai", type: "client-ready", data: {} }), PERSON.identity, PERSON);
    assert.equal(received.length, 0);
    assert.equal(transport.state, "disconnected");
  });

  test("a handler that throws on a well-formed packet is contained and logged", () => {
    transport.initialize({ callbacks: {} }, () => {
      throw new TypeError("boom");
    });
    assert.doesNotThrow(() =>
      transport._handleData(json({ label: "rtvi-ai", type: "metrics", data: {} }), BOT.identity, BOT),
    );
    assert.equal(errors.length, 1);
    assert.match(errors[0], /metrics/);
  });

  test("sendMessage without a room warns and does not throw", () => {
    assert.doesNotThrow(() => transport.sendMessage(RTVIMessage.clientReady()));
    assert.match(warnings.join("\n"), /not connected/);
  });

  test("connection params are validated", () => {
    assert.throws(() => transport._validateConnectionParams({ url: "http://x", token: "t" }), /ws:\/\//);
    assert.throws(() => transport._validateConnectionParams({ url: "ws://x", token: "" }), /token/);
    assert.deepEqual(transport._validateConnectionParams({ url: "wss://x", token: "t", extra: 1 }),
      { url: "wss://x", token: "t" });
  });

  test("onRoom gets the livekit-client Room before it connects", async () => {
    const rooms = [];
    const withHook = new LiveKitTransport({ onRoom: (room) => rooms.push([room, room.state]) });
    withHook.initialize({ callbacks: {}, enableMic: false }, () => {});
    // Nothing listens on port 1: the connect fails, after the hook saw the room.
    await assert.rejects(withHook._connect({ url: "ws://127.0.0.1:1", token: "t" }), /Could not join/);
    assert.equal(rooms.length, 1);
    assert.equal(rooms[0][0].constructor.name, "Room");
    assert.equal(rooms[0][1], "disconnected");
  });
});

describe("PipecatClient over LiveKitTransport", () => {
  test("RTVI events reach client callbacks; garbage in between changes nothing", () => {
    const origWarn = console.warn;
    const origDebug = console.debug;
    console.warn = () => {};
    console.debug = () => {};
    try {
      const seen = { transcripts: [], outputs: [], server: [], ready: 0 };
      const transport = new LiveKitTransport();
      new PipecatClient({
        transport,
        callbacks: {
          onBotReady: () => seen.ready++,
          onUserTranscript: (d) => seen.transcripts.push(d.text),
          onBotOutput: (d) => seen.outputs.push(d.text),
          onServerMessage: (d) => seen.server.push(d),
        },
      });
      const feed = (obj) => transport._handleData(obj instanceof Uint8Array ? obj : json(obj), BOT.identity, BOT);
      feed({ label: "rtvi-ai", type: "bot-ready", id: "1", data: { version: "2.2.0" } });
      feed(MALFORMED["truncated JSON"]);
      feed({ label: "rtvi-ai", type: "user-transcription",
        data: { text: "What is two plus two?", final: true, user_id: "alice", timestamp: "now" } });
      feed(MALFORMED["invalid UTF-8"]);
      feed({ label: "rtvi-ai", type: "bot-output",
        data: { text: "Four.", spoken_status: "new", aggregated_by: "sentence", segment_id: 3 } });
      const timing = { type: "bot-tts-timing", seq: 1, text: "Four.", words: ["Four."], wtimes: [0],
        wdurations: [300], visemes: ["FF", "O"], vtimes: [0, 100], vdurations: [100, 200] };
      feed({ label: "rtvi-ai", type: "server-message", data: timing });
      assert.equal(seen.ready, 1);
      assert.deepEqual(seen.transcripts, ["What is two plus two?"]);
      assert.deepEqual(seen.outputs, ["Four."]);
      assert.deepEqual(seen.server, [timing]);
    } finally {
      console.warn = origWarn;
      console.debug = origDebug;
    }
  });
});

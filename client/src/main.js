/**
 * The talking-avatar page: join a room, talk to the bot (mic or text), watch its face (video
 * track, or the TalkingHead 3D mode), read the live transcript and the latency it measures.
 * This module is the session (join, leave, reconnect, RTVI callbacks) and the wiring; the DOM
 * output, the join token, the media sinks and the measurements are in ./page/.
 *
 * Query parameters: room, name (prefill), autojoin=1, mode=3d, avatar=<GLB URL>,
 * tokenUrl=<token endpoint> (default /api/token).
 */
import { LogLevel, PipecatClient } from "@pipecat-ai/client-js";
import { LiveKitTransport } from "@talking-avatar/livekit-transport";
import { RoomEvent } from "livekit-client";

import { setupHistory } from "./history.js";
import { pushSample } from "./metrics/series.js";
import { fetchToken, identityFor, saveApiKey } from "./page/join-token.js";
import { PageMeasurements } from "./page/measurements.js";
import { MediaSinks } from "./page/media-sinks.js";
import { $, notice, renderLatency, renderMetrics, renderPeople, showState } from "./page/ui.js";
import { BOT_INTERRUPTED, BOT_TTS_TIMING, FACE_ENGINE_FALLBACK } from "./protocol.js";
import { sentenceStart } from "./speech-sync.js";
import { Transcript } from "./transcript.js";

const params = new URLSearchParams(location.search);
const tokenUrl = params.get("tokenUrl") ?? "/api/token";

/** Everything the page measures, also read by the end-to-end tests. */
const stats = {
  state: "disconnected",
  botReady: false,
  mode: "video",
  turns: [], // voice-to-voice latency per turn (ms)
  avOffsets: [], // bot video mouth motion vs bot audio (ms, + = video later)
  lipOffsets: [], // 3D mouth vs bot audio (ms, + = mouth later)
  head3dFps: 0, // frames the 3D head drew in the last second (software GL draws few)
  fps: 0, // bot video frames decoded per second (last second)
  fpsPeak: 0,
  presentedFps: 0, // frames the <video> element presented in the last second (a busy page shows fewer)
  video: {},
  audio: {},
  botAudioPeak: 0,
  mouthPeak: 0,
  timingMessages: 0,
  sentences: [], // {seq, startT}: when each bot-tts-timing sentence is heard (performance.now ms)
  playoutDelayMs: 0, // the bot audio's receive jitter-buffer delay (WebRTC stats)
  metrics: {},
  errors: [],
  transcript: null,
};
window.avatarStats = stats;

let client = null;
let transport = null;
let audioCtx = null;
let sinks = null;
let head3d = null;
let leaving = false;
let lastJoin = null;
let rejoinTimer = null; // a rate-limited join tries again by itself after the server's wait
const people = new Map();
const series = { audio: [], motion: [], mouth: [] };
window.avatarSeries = series; // bot audio level, video motion, 3D mouth over time (for tests)
const measurements = new PageMeasurements({ stats, series, onChange: () => renderLatency(stats) });
const transcript = new Transcript($("transcript"));
stats.transcript = transcript.stats;
setupHistory();

const setState = (state) => showState(stats, state);

// ---- joining and leaving ----------------------------------------------------------------------

async function join(room, name) {
  clearTimeout(rejoinTimer); // "Try again" or a new join replaces a pending automatic one
  lastJoin = { room, name };
  leaving = false;
  notice(null);
  $("join-btn").disabled = true;
  audioCtx ??= new AudioContext();
  await audioCtx.resume();
  sinks ??= new MediaSinks({
    audioCtx,
    audioContainer: $("audio-sinks"),
    video: $("bot-video"),
    onVideoFrame: (t, motion) => pushSample(series.motion, t, motion),
  });
  try {
    setState("authenticating");
    const { token, url } = await fetchToken(tokenUrl, room, name, { onKeyNeeded: askForApiKey });
    // Barge-in: the bot cut off its audio, so the 3D mouth closes with it (client-js 1.13
    // has no callback for bot-interrupted).
    transport = new LiveKitTransport({
      onMessage: (m) => m.type === BOT_INTERRUPTED && head3d?.stop(),
      onRoom: watchRoom,
    });
    client = new PipecatClient({ transport, enableMic: true, enableCam: false, disconnectOnBotDisconnect: false,
      callbacks: callbacks() });
    client.setLogLevel(LogLevel.WARN);
    $("join").hidden = true;
    $("call").hidden = false;
    people.clear();
    people.set(identityFor(name), { name: `${name} (you)`, bot: false }); // transcripts name speakers by identity
    renderPeople(people);
    const connecting = client.connect({ url, token });
    measurements.start({
      sinks,
      micOn: () => Boolean(client?.isMicEnabled),
      head: () => head3d,
      bot: () => transport?.botParticipant,
    });
    await connecting;
  } catch (e) {
    stats.errors.push(String(e?.message ?? e));
    await teardown();
    $("join").hidden = false;
    $("call").hidden = true;
    setState("error");
    const again = () => join(room, name);
    notice(e.message ?? String(e), "error", e.retry ? { label: "Try again", run: again } : null);
    if (e.retryAfterS) rejoinTimer = setTimeout(again, e.retryAfterS * 1000);
  } finally {
    $("join-btn").disabled = false;
  }
}

async function leave() {
  clearTimeout(rejoinTimer);
  leaving = true;
  await teardown();
  $("call").hidden = true;
  $("join").hidden = false;
  notice(null);
}

async function teardown() {
  measurements.stop();
  sinks?.clear();
  const c = client;
  client = null;
  if (c) await c.disconnect().catch(() => {});
  head3d?.stop();
}

function askForApiKey() {
  $("api-key-label").hidden = false;
  $("api-key").focus();
}

/** LiveKit's own reconnection and autoplay signals, which RTVI does not carry. */
function watchRoom(room) {
  room
    .on(RoomEvent.Reconnecting, () => notice("Connection lost — reconnecting…", "warn"))
    .on(RoomEvent.Reconnected, () => notice(null))
    .on(RoomEvent.AudioPlaybackStatusChanged, () => {
      if (!room.canPlaybackAudio) {
        notice("Your browser blocked the avatar's sound.", "warn", {
          label: "Enable sound",
          run: async () => {
            await room.startAudio();
            document.querySelectorAll("#audio-sinks audio").forEach((a) => a.play().catch(() => {}));
            notice(null);
          },
        });
      }
    });
}

// ---- RTVI callbacks ---------------------------------------------------------------------------

let botId = null;

function isBot(participant) {
  return Boolean(participant) && participant.id === (transport?.botParticipant?.identity ?? botId);
}

function callbacks() {
  return {
    onTransportStateChanged: setState,
    onBotReady: () => {
      stats.botReady = true;
      notice(null);
    },
    onBotConnected: (p) => {
      botId = p.id;
      people.set(p.id, { name: p.name, bot: true });
      renderPeople(people);
      notice(null);
    },
    onBotDisconnected: () => {
      stats.botReady = false;
      if (!leaving) notice("The avatar left the room; waiting for it to come back…", "warn");
    },
    onDisconnected: () => {
      if (leaving || !lastJoin || !client) return; // our own leave, or already torn down
      stats.errors.push("disconnected");
      teardown();
      notice("Lost the connection to the room.", "error", {
        label: "Reconnect",
        run: () => join(lastJoin.room, lastJoin.name),
      });
    },
    onDeviceError: (e) => {
      const msg = e.type === "permissions"
        ? "Microphone access is blocked. You can still type to the avatar; to talk, allow the microphone for this site and rejoin."
        : e.type === "not-found"
          ? "No microphone found. You can still type to the avatar."
          : `The microphone could not be used (${e.message}). You can still type to the avatar.`;
      stats.errors.push(`mic: ${e.type}`);
      notice(msg, "warn");
      $("mic").disabled = true;
    },
    onAvailableMicsUpdated: (mics) => {
      $("mic-select").replaceChildren(...mics.map((m, i) => new Option(m.label || `Microphone ${i + 1}`, m.deviceId)));
      if (client) $("mic-select").value = client.selectedMic?.deviceId ?? "";
    },
    onMicUpdated: (mic) => {
      if (mic?.deviceId) $("mic-select").value = mic.deviceId;
      attachMicLevel();
    },
    onParticipantJoined: (p) => {
      people.set(p.id, { name: p.name, bot: false });
      renderPeople(people);
    },
    onParticipantLeft: (p) => {
      people.delete(p.id);
      renderPeople(people);
    },
    onTrackStarted: (track, p) => {
      if (isBot(p)) {
        if (track.kind === "video") {
          sinks.attachBotVideo(track);
          $("av-placeholder").hidden = true;
        } else sinks.attachBotAudio(track);
      } else if (track.kind === "audio" && p && !p.local) {
        sinks.addAudio(track, `audio-${p.id}`); // other people in the room are heard too
      }
    },
    onTrackStopped: (track, p) => {
      if (track.kind === "audio") document.getElementById(isBot(p) ? "bot-audio" : `audio-${p?.id}`)?.remove();
    },
    onUserTranscript: (d) => transcript.user(d, people.get(d.user_id)?.name ?? d.user_id ?? "Someone"),
    onBotOutput: (d) => transcript.botOutput(d),
    onBotTtsText: (d) => transcript.botWord(d.text),
    onMetrics: (data) => renderMetrics(stats, data),
    onServerMessage: (data) => {
      if (data?.type === FACE_ENGINE_FALLBACK) {
        notice(`The avatar's face engine failed (${data.reason}); it shows the built-in face.`, "warn");
        return;
      }
      if (data?.type !== BOT_TTS_TIMING) return;
      stats.timingMessages += 1;
      const startT = sentenceStart(data, performance.now(), stats.playoutDelayMs);
      head3d?.speak(data, startT);
      stats.sentences.push({ seq: data.seq, startT: Math.round(startT) });
    },
    onError: (m) => {
      const text = m?.data?.message ?? m?.data?.error ?? "unknown error";
      stats.errors.push(text);
      notice(`The avatar reported a problem: ${text}`, m?.data?.fatal ? "error" : "warn");
    },
  };
}

function attachMicLevel() {
  sinks?.attachMic(client?.tracks().local.audio);
}

// ---- 3D mode ----------------------------------------------------------------------------------

async function setMode(mode) {
  if (mode === stats.mode) return;
  $("mode-video").classList.toggle("on", mode === "video");
  $("mode-3d").classList.toggle("on", mode === "3d");
  $("mode-video").setAttribute("aria-pressed", String(mode === "video"));
  $("mode-3d").setAttribute("aria-pressed", String(mode === "3d"));
  $("bot-video").hidden = mode === "3d";
  $("head3d").hidden = mode !== "3d";
  $("av-placeholder").hidden = mode === "3d" || Boolean($("bot-video").srcObject);
  document.querySelector(".avatar-url").hidden = mode !== "3d";
  stats.mode = mode;
  if (mode === "3d") {
    try {
      const { TalkingHeadMode } = await import("./talkinghead-mode.js");
      head3d = new TalkingHeadMode($("head3d"), { avatarUrl: params.get("avatar") ?? $("avatar-url").value });
      await head3d.start();
      window.avatarHead = head3d; // for inspection from the console and tests
      stats.head3dReady = true;
    } catch (e) {
      stats.errors.push(`3d: ${e.message}`);
      notice(`Could not load the 3D avatar: ${e.message}`, "error");
      head3d?.dispose();
      head3d = null;
      setMode("video");
    }
  } else {
    head3d?.dispose();
    head3d = null;
    stats.head3dReady = false;
  }
}

// ---- wiring -----------------------------------------------------------------------------------

$("room").value = params.get("room") ?? $("room").value;
$("name").value = params.get("name") ?? "";
$("join").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const key = $("api-key").value.trim();
  saveApiKey(key);
  join($("room").value.trim(), $("name").value.trim());
});
$("leave").addEventListener("click", leave);
$("mic").addEventListener("click", () => {
  if (!client) return;
  const on = !client.isMicEnabled;
  client.enableMic(on);
  $("mic").textContent = on ? "Mute mic" : "Unmute mic";
  $("mic").setAttribute("aria-pressed", String(on));
});
$("mic-select").addEventListener("change", (ev) => client?.updateMic(ev.target.value));
$("say").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = $("say-text").value.trim();
  if (!text || !client) return;
  try {
    await client.sendText(text);
    transcript.typed(text, people.get(identityFor(lastJoin.name))?.name ?? "You");
    $("say-text").value = "";
  } catch (e) {
    notice("The avatar is not ready yet — wait a moment and send again.", "warn");
  }
});
$("mode-video").addEventListener("click", () => setMode("video"));
$("mode-3d").addEventListener("click", () => setMode("3d"));
$("avatar-url").addEventListener("change", async () => {
  if (stats.mode !== "3d") return;
  await setMode("video");
  await setMode("3d");
});

if (params.get("mode") === "3d") setMode("3d");
if (params.get("autojoin") === "1" && $("room").value && $("name").value) join($("room").value, $("name").value);

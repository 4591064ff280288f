/**
 * The talking-avatar page: join a room, talk to the bot (mic or text), watch its face (video
 * track, or the TalkingHead 3D mode), read the live transcript and the latency it measures.
 *
 * Query parameters: room, name (prefill), autojoin=1, mode=3d, avatar=<GLB URL>,
 * tokenUrl=<token endpoint> (default /api/token).
 */
import { LogLevel, PipecatClient } from "@pipecat-ai/client-js";
import { LiveKitTransport } from "@talking-avatar/livekit-transport";
import { RoomEvent, Track } from "livekit-client";

import { setupHistory } from "./history.js";
import { AudioLevel, VideoMeter, receiverStats } from "./metrics/meters.js";
import { offsetMs, percentile, pushSample } from "./metrics/series.js";
import { SPEECH_RMS, TurnTracker } from "./metrics/turns.js";
import { BOT_INTERRUPTED, BOT_TTS_TIMING, FACE_ENGINE_FALLBACK } from "./protocol.js";
import { playoutDelayMs, sentenceStart } from "./speech-sync.js";
import { Transcript } from "./transcript.js";

const OFFSET_WINDOW_MS = 10000;
const SAMPLE_MS = 10;
/** Correlation needed before an offset estimate is reported. */
const MIN_OFFSET_R = 0.3;

const params = new URLSearchParams(location.search);
const tokenUrl = params.get("tokenUrl") ?? "/api/token";
const $ = (id) => document.getElementById(id);

/** Everything the page measures, also read by the end-to-end tests. */
const stats = {
  state: "disconnected",
  botReady: false,
  mode: "video",
  turns: [], // voice-to-voice latency per turn (ms)
  avOffsets: [], // bot video mouth motion vs bot audio (ms, + = video later)
  lipOffsets: [], // 3D mouth vs bot audio (ms, + = mouth later)
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
let micLevel = null;
let botLevel = null;
let videoMeter = null;
let head3d = null;
let leaving = false;
let lastJoin = null;
let sampler = null;
let statsTimer = null;
let prevStatsT = 0;
const people = new Map();
const series = { audio: [], motion: [], mouth: [] };
window.avatarSeries = series; // bot audio level, video motion, 3D mouth over time (for tests)
const turns = new TurnTracker();
const transcript = new Transcript($("transcript"));
stats.transcript = transcript.stats;
setupHistory();

// ---- notices ----------------------------------------------------------------------------------

function notice(text, level = "info", action = null) {
  $("notice").hidden = !text;
  $("notice").dataset.level = level;
  $("notice-text").textContent = text ?? "";
  const btn = $("notice-action");
  btn.hidden = !action;
  if (action) {
    btn.textContent = action.label;
    btn.onclick = action.run;
  }
}

function setState(state) {
  stats.state = state;
  $("state").textContent = state;
  $("state").dataset.state = state;
}

// ---- joining and leaving ----------------------------------------------------------------------

function identityFor(name) {
  const key = "talking-avatar-identity";
  let id = sessionStorage.getItem(key);
  if (!id) {
    const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "guest";
    id = `${slug}-${Math.random().toString(36).slice(2, 8)}`;
    sessionStorage.setItem(key, id);
  }
  return id;
}

// The server's API key (AVATAR_API_KEY) when it has one: entered by the user, kept for this tab only.
const API_KEY_STORE = "talking-avatar-api-key";

function apiHeaders() {
  const key = sessionStorage.getItem(API_KEY_STORE);
  return { "Content-Type": "application/json", ...(key ? { Authorization: `Bearer ${key}` } : {}) };
}

function askForApiKey() {
  sessionStorage.removeItem(API_KEY_STORE);
  $("api-key-label").hidden = false;
  $("api-key").focus();
}

async function fetchToken(room, name) {
  let res;
  try {
    res = await fetch(tokenUrl, {
      method: "POST",
      headers: apiHeaders(),
      body: JSON.stringify({ room, identity: identityFor(name), name }),
    });
  } catch (e) {
    throw Object.assign(new Error("Cannot reach the avatar server. Check your connection and try again."), { retry: true });
  }
  if (res.ok) return res.json();
  let reason = "";
  try {
    const body = await res.json();
    reason = body.detail ?? body.error ?? body.message ?? "";
  } catch {
    reason = await res.text().catch(() => "");
  }
  if (res.status === 401) {
    askForApiKey();
    throw new Error("This avatar server needs an access key: enter it and join again.");
  }
  if (res.status === 429) {
    throw Object.assign(new Error(`Too many joins from here; please wait ${res.headers.get("Retry-After") ?? "a few"} s.`),
      { retry: true });
  }
  if (res.status === 503) {
    throw Object.assign(new Error("The avatar server is full right now — every avatar is busy. Please try again in a minute."),
      { retry: true });
  }
  if (res.status >= 400 && res.status < 500) throw new Error(`The server refused to join: ${reason || res.statusText}`);
  throw Object.assign(new Error(`The avatar server had a problem (${res.status}). Please try again.`), { retry: true });
}

async function join(room, name) {
  lastJoin = { room, name };
  leaving = false;
  notice(null);
  $("join-btn").disabled = true;
  audioCtx ??= new AudioContext();
  await audioCtx.resume();
  try {
    setState("authenticating");
    const { token, url } = await fetchToken(room, name);
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
    renderPeople();
    const connecting = client.connect({ url, token });
    startSampling();
    await connecting;
  } catch (e) {
    stats.errors.push(String(e?.message ?? e));
    await teardown();
    $("join").hidden = false;
    $("call").hidden = true;
    setState("error");
    notice(e.message ?? String(e), "error", e.retry ? { label: "Try again", run: () => join(room, name) } : null);
  } finally {
    $("join-btn").disabled = false;
  }
}

async function leave() {
  leaving = true;
  await teardown();
  $("call").hidden = true;
  $("join").hidden = false;
  notice(null);
}

async function teardown() {
  clearInterval(sampler);
  clearInterval(statsTimer);
  sampler = statsTimer = null;
  videoMeter?.stop();
  micLevel?.disconnect();
  botLevel?.disconnect();
  videoMeter = micLevel = botLevel = null;
  const c = client;
  client = null;
  if (c) await c.disconnect().catch(() => {});
  $("audio-sinks").replaceChildren();
  $("bot-video").srcObject = null;
  head3d?.stop();
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
      renderPeople();
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
      renderPeople();
    },
    onParticipantLeft: (p) => {
      people.delete(p.id);
      renderPeople();
    },
    onTrackStarted: (track, p) => {
      if (isBot(p)) {
        if (track.kind === "video") attachBotVideo(track);
        else attachBotAudio(track);
      } else if (track.kind === "audio" && p && !p.local) {
        addAudioSink(track, `audio-${p.id}`); // other people in the room are heard too
      }
    },
    onTrackStopped: (track, p) => {
      if (track.kind === "audio") document.getElementById(isBot(p) ? "bot-audio" : `audio-${p?.id}`)?.remove();
    },
    onUserTranscript: (d) => transcript.user(d, people.get(d.user_id)?.name ?? d.user_id ?? "Someone"),
    onBotOutput: (d) => transcript.botOutput(d),
    onBotTtsText: (d) => transcript.botWord(d.text),
    onMetrics: renderMetrics,
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

// ---- media ------------------------------------------------------------------------------------

function addAudioSink(track, id) {
  document.getElementById(id)?.remove();
  const el = document.createElement("audio");
  el.id = id;
  el.autoplay = true;
  el.muted = false; // an unmuted sink: muted elements also zero WebRTC's audio level stats
  el.srcObject = new MediaStream([track]);
  $("audio-sinks").append(el);
  el.play().catch(() => {});
  return el;
}

function attachBotAudio(track) {
  addAudioSink(track, "bot-audio");
  botLevel?.disconnect();
  botLevel = new AudioLevel(audioCtx, track);
}

function attachBotVideo(track) {
  const video = $("bot-video");
  video.srcObject = new MediaStream([track]);
  video.play().catch(() => {});
  $("av-placeholder").hidden = true;
  videoMeter?.stop();
  videoMeter = new VideoMeter(video, (t, motion) => pushSample(series.motion, t, motion));
}

function attachMicLevel() {
  const track = client?.tracks().local.audio;
  if (!track || micLevel?.track === track) return;
  micLevel?.disconnect();
  micLevel = new AudioLevel(audioCtx, track);
  micLevel.track = track;
}

// ---- measurements -----------------------------------------------------------------------------

function startSampling() {
  sampler = setInterval(() => {
    const t = performance.now();
    const bot = botLevel ? botLevel.rms() : 0;
    const mic = micLevel && client?.isMicEnabled ? micLevel.rms() : 0;
    pushSample(series.audio, t, bot);
    stats.botAudioPeak = Math.max(stats.botAudioPeak, bot);
    const turn = turns.update(t, mic, bot);
    if (turn) {
      stats.turns.push(Math.round(turn.latencyMs));
      renderLatency();
    }
    if (head3d) {
      const open = head3d.mouthOpenness();
      stats.mouthPeak = Math.max(stats.mouthPeak, open);
      pushSample(series.mouth, t, open);
    }
  }, SAMPLE_MS);
  statsTimer = setInterval(updateStats, 1000);
}

async function updateStats() {
  const t = performance.now();
  const bot = transport?.botParticipant;
  const prev = stats.video;
  stats.video = await receiverStats(bot?.getTrackPublication(Track.Source.Camera)?.track?.receiver);
  // Decoded frames per second from the receiver's counters; presentedFps counts the frames the
  // <video> element actually showed (requestVideoFrameCallback), which a busy compositor can thin.
  if (prev.framesDecoded !== undefined && stats.video.framesDecoded !== undefined && prevStatsT) {
    stats.fps = Math.round(((stats.video.framesDecoded - prev.framesDecoded) * 1000) / (t - prevStatsT));
    stats.fpsPeak = Math.max(stats.fpsPeak, stats.fps);
  }
  prevStatsT = t;
  stats.presentedFps = videoMeter?.fps(t) ?? 0;
  const prevAudio = stats.audio;
  stats.audio = await receiverStats(bot?.getTrackPublication(Track.Source.Microphone)?.track?.receiver);
  stats.playoutDelayMs = Math.round(playoutDelayMs(prevAudio, stats.audio) ?? stats.playoutDelayMs);
  // At least a second of bot speech in the window (timed by the samples' own clock: a busy page
  // runs the sampler less often than every SAMPLE_MS).
  let voicedMs = 0;
  const audio = series.audio;
  for (let i = 1; i < audio.length; i++) {
    if (audio[i].t >= t - OFFSET_WINDOW_MS && audio[i].v >= SPEECH_RMS) voicedMs += audio[i].t - audio[i - 1].t;
  }
  const spoke = voicedMs >= 1000;
  if (spoke && !head3d) {
    const av = offsetMs(series.audio, series.motion, t - OFFSET_WINDOW_MS, t, { minR: 0 });
    stats.avProbe = av; // the latest estimate and its correlation, whether or not it counts
    if (av && av.r >= MIN_OFFSET_R) stats.avOffsets.push(Math.round(av.ms));
  }
  if (spoke && head3d) {
    const lip = offsetMs(series.audio, series.mouth, t - OFFSET_WINDOW_MS, t, { minR: 0 });
    stats.lipProbe = lip;
    if (lip && lip.r >= MIN_OFFSET_R) stats.lipOffsets.push(Math.round(lip.ms));
  }
  renderLatency();
}

function fmtMs(v) {
  return v === null || v === undefined ? "—" : `${Math.round(v)} ms`;
}

function renderLatency() {
  $("v2v-last").textContent = fmtMs(stats.turns.at(-1));
  $("v2v-p50").textContent = stats.turns.length ? `${fmtMs(percentile(stats.turns, 50))} (${stats.turns.length} turns)` : "—";
  $("av-offset").textContent = fmtMs(stats.avOffsets.at(-1));
  $("lip-offset").textContent = fmtMs(stats.lipOffsets.at(-1));
  const v = stats.video;
  $("fps").textContent = v.frameWidth ? `${stats.fps} fps, ${v.frameWidth}×${v.frameHeight}` : "—";
}

function renderMetrics(data) {
  for (const kind of ["ttfb", "processing"]) {
    for (const m of data?.[kind] ?? []) {
      if (m.value > 0) stats.metrics[`${kind} ${m.processor}`] = Math.round(m.value * 1000); // 0 = not measured
    }
  }
  $("rtvi-metrics").replaceChildren(
    ...Object.entries(stats.metrics).flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      dt.textContent = k.replace(/#\d+$/, "");
      const dd = document.createElement("dd");
      dd.textContent = `${v} ms`;
      return [dt, dd];
    }),
  );
}

function renderPeople() {
  $("people").replaceChildren(
    ...[...people.values()].map((p) => {
      const li = document.createElement("li");
      li.textContent = p.name + (p.bot ? " · avatar" : "");
      return li;
    }),
  );
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
  if (key) sessionStorage.setItem(API_KEY_STORE, key);
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

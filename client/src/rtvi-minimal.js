/**
 * The smallest RTVI app over LiveKit: PipecatClient + LiveKitTransport, the SDK's own
 * startBotAndConnect() against the token server, bot audio played, events logged. It shows what
 * another front end needs to use this bot, and the e2e tests use it to check the transport alone.
 */
import { PipecatClient, RTVIEvent } from "@pipecat-ai/client-js";
import { LiveKitTransport } from "@talking-avatar/livekit-transport";

import { BOT_TTS_TIMING } from "./protocol.js";

const params = new URLSearchParams(location.search);
const room = params.get("room") ?? "lobby";
const name = params.get("name") ?? "guest";
const events = { botReady: false, state: "disconnected", userTranscripts: [], botOutputs: [], wordEvents: 0,
  timingMessages: 0, errors: [] };
window.rtviEvents = events;

const log = (line) => {
  document.getElementById("log").textContent += `${new Date().toISOString().slice(11, 23)} ${line}\n`;
};

const client = new PipecatClient({ transport: new LiveKitTransport(), enableMic: true, enableCam: false });
client.on(RTVIEvent.TransportStateChanged, (s) => {
  events.state = s;
  document.getElementById("state").textContent = s;
});
client.on(RTVIEvent.BotReady, (d) => {
  events.botReady = true;
  log(`bot-ready ${JSON.stringify(d)}`);
});
client.on(RTVIEvent.TrackStarted, (track, p) => {
  if (track.kind === "audio" && !p?.local) document.getElementById("bot-audio").srcObject = new MediaStream([track]);
});
client.on(RTVIEvent.UserTranscript, (d) => {
  if (d.final) events.userTranscripts.push(d.text);
  log(`user ${d.final ? "final" : "partial"}: ${d.text}`);
});
client.on(RTVIEvent.BotOutput, (d) => {
  if (d.spoken_status === "in-progress" || d.spoken_status === "completed") events.wordEvents += 1;
  else events.botOutputs.push(d.text);
  log(`bot-output ${d.spoken_status ?? ""}: ${d.text}`);
});
client.on(RTVIEvent.BotTtsText, (d) => {
  events.wordEvents += 1;
  log(`word: ${d.text}`);
});
client.on(RTVIEvent.ServerMessage, (d) => {
  if (d?.type === BOT_TTS_TIMING) events.timingMessages += 1;
});
client.on(RTVIEvent.Error, (m) => {
  events.errors.push(JSON.stringify(m.data));
  log(`error ${JSON.stringify(m.data)}`);
});

async function connect() {
  try {
    await client.startBotAndConnect({ endpoint: params.get("tokenUrl") ?? "/api/token",
      requestData: { room, identity: `${name}-${Math.random().toString(36).slice(2, 8)}`, name } });
  } catch (e) {
    events.errors.push(String(e?.message ?? e));
    log(`connect failed: ${e?.message ?? e}`);
  }
}

document.getElementById("connect").onclick = connect;
document.getElementById("disconnect").onclick = () => client.disconnect();
document.getElementById("mute").onclick = (ev) => {
  client.enableMic(!client.isMicEnabled);
  ev.target.textContent = client.isMicEnabled ? "Mute mic" : "Unmute mic";
};
if (params.get("autojoin") === "1") connect();

// A stock RTVI app: only @pipecat-ai/client-js and the installed transport package, used as its
// README shows. What it received is kept in window.received for the test.
import { PipecatClient, RTVIEvent } from "@pipecat-ai/client-js";
import { LiveKitTransport } from "@talking-avatar/livekit-transport";

const received = { ready: false, transcripts: [], botOutputs: 0, serverMessages: [], botAudioPeak: 0, errors: [] };
window.received = received;

const params = new URLSearchParams(location.search);
const audio = document.getElementById("bot-audio");
const client = new PipecatClient({ transport: new LiveKitTransport(), enableMic: true, enableCam: false });
client.on(RTVIEvent.BotReady, () => (received.ready = true));
client.on(RTVIEvent.UserTranscript, (d) => d.final && received.transcripts.push(d.text));
client.on(RTVIEvent.BotOutput, () => (received.botOutputs += 1));
client.on(RTVIEvent.ServerMessage, (d) => received.serverMessages.push(d?.type));
client.on(RTVIEvent.RemoteAudioLevel, (level) => (received.botAudioPeak = Math.max(received.botAudioPeak, level)));
client.on(RTVIEvent.TrackStarted, (track, p) => {
  if (track.kind === "audio" && !p?.local) audio.srcObject = new MediaStream([track]);
});
client.on(RTVIEvent.Error, (m) => received.errors.push(JSON.stringify(m.data)));

const name = params.get("name") ?? "guest";
client
  .startBotAndConnect({ endpoint: "/api/token",
    requestData: { room: params.get("room") ?? "lobby", identity: `${name}-${Date.now()}`, name } })
  .catch((e) => received.errors.push(String(e?.message ?? e)));

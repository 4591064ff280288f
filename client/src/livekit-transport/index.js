/**
 * An RTVI client transport for `@pipecat-ai/client-js` over `livekit-client`.
 *
 * No LiveKit transport for the Pipecat client SDK is published, so this module is one: it joins a
 * LiveKit room with a token, publishes the microphone, subscribes to the bot's audio and video,
 * and carries RTVI messages (label "rtvi-ai") on LiveKit's reliable data channel in the format
 * Pipecat's server-side LiveKitTransport uses (JSON payload, no topic). See README.md.
 */
import {
  ConnectionState,
  DisconnectReason,
  Room,
  RoomEvent,
  Track,
  createLocalAudioTrack,
} from "livekit-client";
import {
  DeviceError,
  MessageTooLargeError,
  RTVIMessage,
  RTVIMessageType,
  Transport,
  TransportStartError,
  logger,
  messageSizeWithinLimit,
} from "@pipecat-ai/client-js";

import { decodeRtviPacket, encodeRtviMessage } from "./codec.js";

export { decodeRtviPacket, encodeRtviMessage } from "./codec.js";

/** How long to wait for bot-ready before sending client-ready once more (the bot may have
 * joined the room before its pipeline listened to the data channel). */
const CLIENT_READY_RETRY_MS = 4000;
const CLIENT_READY_MAX_SENDS = 3;
/** How often local/remote audio levels are reported to onLocalAudioLevel/onRemoteAudioLevel. */
const AUDIO_LEVEL_INTERVAL_MS = 100;

/** Default bot detection: the participant joined with an agent token (LiveKit ParticipantKind.AGENT). */
export function isAgentParticipant(participant) {
  return Boolean(participant?.isAgent);
}

function deviceErrorType(error) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "permissions";
    case "NotFoundError":
      return "not-found";
    case "NotReadableError":
    case "AbortError":
      return "in-use";
    case "OverconstrainedError":
      return "constraints";
    case "TypeError":
      return "undefined-mediadevices";
    default:
      return "unknown";
  }
}

/**
 * Pipecat client transport over a LiveKit room.
 *
 * Connection params (what `PipecatClient.connect()` takes, or what the `startBot` endpoint
 * returns for `startBotAndConnect()`): `{ url: "ws(s)://livekit", token: "<JWT>" }`.
 */
export class LiveKitTransport extends Transport {
  /**
   * @param {object} [opts]
   * @param {(participant: import("livekit-client").Participant) => boolean} [opts.isBot]
   *   Which remote participant is the bot (default: an agent participant).
   * @param {import("livekit-client").RoomOptions} [opts.roomOptions] Passed to `new Room()`.
   * @param {(message: RTVIMessage) => void} [opts.onMessage] Called with every RTVI message from
   *   the bot before the client SDK handles it, also types the installed SDK does not know
   *   (client-js 1.13 drops `bot-interrupted`, for one).
   * @param {(room: import("livekit-client").Room) => void} [opts.onRoom] Called with each
   *   livekit-client Room as it is created, before it connects, for LiveKit's own events
   *   (reconnecting, audio playback blocked) that RTVI does not carry.
   */
  constructor({ isBot = isAgentParticipant, roomOptions = {}, onMessage = null, onRoom = null } = {}) {
    super();
    this._isBot = isBot;
    this._roomOptions = roomOptions;
    this._onAnyMessage = onMessage;
    this._onRoom = onRoom;
    this._room = null;
    this._micTrack = null;
    this._micReleased = false;
    this._micEnabled = true;
    this._micDeviceId = undefined;
    this._speakerId = undefined;
    this._devices = { audioinput: [], audiooutput: [], videoinput: [] };
    this._wantReady = false;
    this._readySends = 0;
    this._readyTimer = null;
    this._levelTimer = null;
  }

  /** The livekit-client Room while connected (for apps that want LiveKit's own events). */
  get room() {
    return this._room;
  }

  /** The bot's LiveKit participant, when it is in the room. */
  get botParticipant() {
    if (!this._room) return undefined;
    for (const p of this._room.remoteParticipants.values()) {
      if (this._isBot(p)) return p;
    }
    return undefined;
  }

  initialize(options, messageHandler) {
    this._options = options;
    this._callbacks = options.callbacks ?? {};
    this._onMessage = messageHandler;
    this._micEnabled = options.enableMic !== false;
    this.state = "disconnected";
  }

  async initDevices() {
    this.state = "initializing";
    if (this._options.enableMic !== false) await this._acquireMic();
    await this._refreshDevices();
    this.state = "initialized";
  }

  _validateConnectionParams(params) {
    if (!params || typeof params !== "object") throw new Error("expected {url, token}");
    const { url, token } = params;
    if (typeof url !== "string" || !/^wss?:\/\//.test(url)) {
      throw new Error(`url must be a ws:// or wss:// LiveKit URL, got ${JSON.stringify(url)}`);
    }
    if (typeof token !== "string" || token.length === 0) throw new Error("token must be a non-empty string");
    return { url, token };
  }

  async _connect(params) {
    if (this._abortController?.signal.aborted) return;
    this.state = "connecting";
    const room = new Room({ adaptiveStream: false, dynacast: false, ...this._roomOptions });
    this._room = room;
    this._bindRoomEvents(room);
    this._onRoom?.(room);
    try {
      await room.connect(params.url, params.token, { autoSubscribe: true });
    } catch (e) {
      this._room = null;
      this.state = "error";
      throw new TransportStartError(`Could not join the LiveKit room: ${e?.message ?? e}`);
    }
    if (this._abortController?.signal.aborted) return;

    if (this._options.enableMic !== false) {
      if (this._micReleased) await this._acquireMic(); // reconnecting: the last leave stopped it
      if (this._micTrack) {
        await room.localParticipant.publishTrack(this._micTrack, { source: Track.Source.Microphone });
        if (!this._micEnabled) await this._micTrack.mute();
      }
    }
    for (const p of room.remoteParticipants.values()) this._announceParticipant(p);
    this._startLevelReports();
    this.state = "connected";
    this._callbacks.onConnected?.();
  }

  async _disconnect() {
    this.state = "disconnecting";
    this._wantReady = false;
    this._clearReadyTimer();
    clearInterval(this._levelTimer);
    const room = this._room;
    this._room = null;
    if (room) await room.disconnect(true);
    this._micReleased = Boolean(this._micTrack); // stopped with the room; acquired again on the next connect
    this._micTrack = null;
    this.state = "disconnected";
    this._callbacks.onDisconnected?.();
  }

  /** Send client-ready as soon as the bot is in the room with its media published. */
  sendReadyMessage() {
    this._wantReady = true;
    this._readySends = 0;
    this._maybeSendClientReady();
  }

  get state() {
    return this._state;
  }

  set state(state) {
    if (this._state === state) return;
    this._state = state;
    this._callbacks?.onTransportStateChanged?.(state);
  }

  sendMessage(message) {
    const bot = this.botParticipant;
    if (!this._room || this._room.state !== ConnectionState.Connected || !bot) {
      logger.warn(`[LiveKitTransport] not connected to a bot; message ${message.type} not sent`);
      return;
    }
    if (!messageSizeWithinLimit(message, this._maxMessageSize)) {
      throw new MessageTooLargeError(`Message data too large. Max size is ${this._maxMessageSize}`);
    }
    this._room.localParticipant
      .publishData(encodeRtviMessage(message), { reliable: true, destinationIdentities: [bot.identity] })
      .catch((e) => {
        logger.error(`[LiveKitTransport] sending ${message.type} failed`, e);
        this._callbacks.onError?.(RTVIMessage.error(`Could not send ${message.type}: ${e?.message ?? e}`, false));
      });
  }

  tracks() {
    const bot = this.botParticipant;
    const remote = (source) => bot?.getTrackPublication(source)?.track?.mediaStreamTrack;
    const lp = this._room?.localParticipant;
    return {
      local: {
        audio: this._micTrack?.mediaStreamTrack,
        video: lp?.getTrackPublication(Track.Source.Camera)?.track?.mediaStreamTrack,
        screenVideo: lp?.getTrackPublication(Track.Source.ScreenShare)?.track?.mediaStreamTrack,
      },
      bot: { audio: remote(Track.Source.Microphone), video: remote(Track.Source.Camera) },
    };
  }

  // ---- devices -------------------------------------------------------------------------------

  async getAllMics() {
    return (await this._refreshDevices()).audioinput;
  }

  async getAllCams() {
    return (await this._refreshDevices()).videoinput;
  }

  async getAllSpeakers() {
    return (await this._refreshDevices()).audiooutput;
  }

  async updateMic(micId) {
    this._micDeviceId = micId;
    if (this._micTrack) {
      await this._micTrack.setDeviceId(micId);
      this._callbacks.onMicUpdated?.(this.selectedMic);
    }
  }

  updateCam(camId) {
    this._room?.switchActiveDevice("videoinput", camId);
  }

  /** Remembers the output device and reports it; apps route their media elements with setSinkId(). */
  updateSpeaker(speakerId) {
    this._speakerId = speakerId;
    this._callbacks.onSpeakerUpdated?.(this.selectedSpeaker);
  }

  get selectedMic() {
    const id = this._micTrack?.mediaStreamTrack?.getSettings?.().deviceId ?? this._micDeviceId;
    return this._devices.audioinput.find((d) => d.deviceId === id) ?? {};
  }

  get selectedCam() {
    return {};
  }

  get selectedSpeaker() {
    return this._devices.audiooutput.find((d) => d.deviceId === this._speakerId) ?? {};
  }

  enableMic(enable) {
    this._micEnabled = enable;
    if (!this._micTrack) return;
    (enable ? this._micTrack.unmute() : this._micTrack.mute()).catch((e) =>
      logger.error("[LiveKitTransport] mic mute change failed", e),
    );
  }

  enableCam(enable) {
    this._room?.localParticipant.setCameraEnabled(enable);
  }

  enableScreenShare(enable) {
    this._room?.localParticipant.setScreenShareEnabled(enable);
  }

  get isMicEnabled() {
    return Boolean(this._micTrack) && this._micEnabled;
  }

  get isCamEnabled() {
    return Boolean(this._room?.localParticipant.isCameraEnabled);
  }

  get isSharingScreen() {
    return Boolean(this._room?.localParticipant.isScreenShareEnabled);
  }

  // ---- internals -----------------------------------------------------------------------------

  async _acquireMic() {
    this._micReleased = false;
    try {
      this._micTrack = await createLocalAudioTrack({
        deviceId: this._micDeviceId,
        echoCancellation: true,
        noiseSuppression: true,
        autoGainControl: true,
      });
      await this._refreshDevices();
      this._callbacks.onMicUpdated?.(this.selectedMic);
    } catch (e) {
      this._micTrack = null;
      logger.warn(`[LiveKitTransport] microphone unavailable: ${e?.name}: ${e?.message}`);
      this._callbacks.onDeviceError?.(
        new DeviceError(["mic"], deviceErrorType(e), e?.message ?? String(e), { error: e }),
      );
    }
  }

  async _refreshDevices() {
    try {
      const all = await navigator.mediaDevices.enumerateDevices();
      const next = { audioinput: [], audiooutput: [], videoinput: [] };
      for (const d of all) next[d.kind]?.push(d);
      this._devices = next;
      this._callbacks.onAvailableMicsUpdated?.(next.audioinput);
      this._callbacks.onAvailableSpeakersUpdated?.(next.audiooutput);
    } catch (e) {
      logger.warn("[LiveKitTransport] could not list media devices", e);
    }
    return this._devices;
  }

  _participant(p) {
    return { id: p.identity, name: p.name || p.identity, local: p === this._room?.localParticipant };
  }

  _announceParticipant(p) {
    this._callbacks.onParticipantJoined?.(this._participant(p));
    if (this._isBot(p)) this._callbacks.onBotConnected?.(this._participant(p));
    for (const pub of p.trackPublications.values()) {
      if (pub.track) this._trackStarted(pub.track, p);
    }
    this._maybeSendClientReady();
  }

  _trackStarted(track, p) {
    const screen = track.source === Track.Source.ScreenShare || track.source === Track.Source.ScreenShareAudio;
    const cb = screen ? this._callbacks.onScreenTrackStarted : this._callbacks.onTrackStarted;
    cb?.(track.mediaStreamTrack, this._participant(p));
  }

  _trackStopped(track, p) {
    const screen = track.source === Track.Source.ScreenShare || track.source === Track.Source.ScreenShareAudio;
    const cb = screen ? this._callbacks.onScreenTrackStopped : this._callbacks.onTrackStopped;
    cb?.(track.mediaStreamTrack, this._participant(p));
  }

  _bindRoomEvents(room) {
    room
      .on(RoomEvent.ParticipantConnected, (p) => this._announceParticipant(p))
      .on(RoomEvent.ParticipantDisconnected, (p) => {
        this._callbacks.onParticipantLeft?.(this._participant(p));
        if (this._isBot(p)) {
          this._readySends = 0; // a restarted bot needs a new client-ready
          this._clearReadyTimer();
          if (this.state === "ready") this.state = "connected";
          this._callbacks.onBotDisconnected?.(this._participant(p));
        }
      })
      .on(RoomEvent.TrackPublished, (_pub, p) => {
        if (this._isBot(p)) this._maybeSendClientReady();
      })
      .on(RoomEvent.TrackSubscribed, (track, _pub, p) => this._trackStarted(track, p))
      .on(RoomEvent.TrackUnsubscribed, (track, _pub, p) => this._trackStopped(track, p))
      .on(RoomEvent.DataReceived, (payload, participant, _kind, _topic, _enc, identity) =>
        this._handleData(payload, participant?.identity ?? identity, participant),
      )
      .on(RoomEvent.Disconnected, (reason) => {
        if (this._room !== room) return; // our own disconnect() already reported it
        this._room = null;
        clearInterval(this._levelTimer);
        this._clearReadyTimer();
        logger.warn(`[LiveKitTransport] disconnected by LiveKit (reason ${DisconnectReason[reason] ?? reason})`);
        this.state = "disconnected";
        this._callbacks.onDisconnected?.();
      });
  }

  /**
   * Handle one data packet: RTVI messages from the bot go to the client SDK; anything malformed,
   * or sent by a participant that is not the bot (another person's client), is dropped with a log.
   */
  _handleData(payload, senderIdentity, participant) {
    const fromBot = participant ? this._isBot(participant) : senderIdentity === this.botParticipant?.identity;
    if (!fromBot) {
      logger.debug(`[LiveKitTransport] ignoring data from non-bot participant ${senderIdentity}`);
      return;
    }
    const message = decodeRtviPacket(payload);
    if (!message) return;
    if (message.type === RTVIMessageType.BOT_READY) {
      this._clearReadyTimer();
      this._readySends = CLIENT_READY_MAX_SENDS;
      this.state = "ready";
    }
    try {
      this._onAnyMessage?.(message);
      this._onMessage(message);
    } catch (e) {
      logger.error(`[LiveKitTransport] handler failed on ${message.type}; message ignored`, e);
    }
  }

  _maybeSendClientReady() {
    const bot = this.botParticipant;
    if (!this._wantReady || !bot || this._readySends >= CLIENT_READY_MAX_SENDS) return;
    if (bot.trackPublications.size === 0) return; // its pipeline has not started yet
    if (this._readyTimer) return; // one in flight; the timer resends if needed
    this._readySends += 1;
    this.sendMessage(RTVIMessage.clientReady());
    this._readyTimer = setTimeout(() => {
      this._readyTimer = null;
      if (this.state !== "ready") this._maybeSendClientReady();
    }, CLIENT_READY_RETRY_MS);
  }

  _clearReadyTimer() {
    clearTimeout(this._readyTimer);
    this._readyTimer = null;
  }

  _startLevelReports() {
    const { onLocalAudioLevel, onRemoteAudioLevel } = this._callbacks;
    if (!onLocalAudioLevel && !onRemoteAudioLevel) return;
    this._levelTimer = setInterval(() => {
      if (!this._room) return;
      onLocalAudioLevel?.(this._room.localParticipant.audioLevel);
      for (const p of this._room.remoteParticipants.values()) onRemoteAudioLevel?.(p.audioLevel, this._participant(p));
    }, AUDIO_LEVEL_INTERVAL_MS);
  }
}

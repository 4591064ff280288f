// Type declarations for @talking-avatar/livekit-transport (hand-written; the package is plain
// ES modules, see index.js).
import type {
  PipecatClientOptions,
  RTVIMessage,
  Tracks,
  Transport,
  TransportState,
} from "@pipecat-ai/client-js";
import type { Participant, RemoteParticipant, Room, RoomOptions } from "livekit-client";

/** What `PipecatClient.connect()` takes, or what a `startBotAndConnect()` endpoint returns. */
export interface LiveKitConnectionParams {
  /** ws:// or wss:// URL of the LiveKit server. */
  url: string;
  /** A LiveKit join token (JWT) for the room. */
  token: string;
}

export interface LiveKitTransportOptions {
  /** Which remote participant is the bot (default: a participant that joined as an agent). */
  isBot?: (participant: Participant) => boolean;
  /** Passed to `new Room()`. */
  roomOptions?: RoomOptions;
  /**
   * Called with every RTVI message from the bot before the client SDK handles it, also message
   * types the installed SDK does not know (client-js 1.13 drops `bot-interrupted`, for one).
   */
  onMessage?: (message: RTVIMessage) => void;
  /**
   * Called with each livekit-client Room as it is created, before it connects, for LiveKit's
   * own events (reconnecting, audio playback blocked) that RTVI does not carry.
   */
  onRoom?: (room: Room) => void;
}

/** Pipecat client transport over a LiveKit room. */
export declare class LiveKitTransport extends Transport {
  constructor(options?: LiveKitTransportOptions);
  /** The livekit-client Room while connected (for LiveKit-only events). */
  get room(): Room | null;
  /** The bot's LiveKit participant, when it is in the room. */
  get botParticipant(): RemoteParticipant | undefined;

  initialize(options: PipecatClientOptions, messageHandler: (ev: RTVIMessage) => void): void;
  initDevices(): Promise<void>;
  _validateConnectionParams(connectParams?: unknown): LiveKitConnectionParams;
  _connect(connectParams?: LiveKitConnectionParams): Promise<void>;
  _disconnect(): Promise<void>;
  sendReadyMessage(): void;
  get state(): TransportState;
  set state(state: TransportState);
  getAllMics(): Promise<MediaDeviceInfo[]>;
  getAllCams(): Promise<MediaDeviceInfo[]>;
  getAllSpeakers(): Promise<MediaDeviceInfo[]>;
  updateMic(micId: string): void;
  updateCam(camId: string): void;
  updateSpeaker(speakerId: string): void;
  get selectedMic(): MediaDeviceInfo | Record<string, never>;
  get selectedCam(): MediaDeviceInfo | Record<string, never>;
  get selectedSpeaker(): MediaDeviceInfo | Record<string, never>;
  enableMic(enable: boolean): void;
  enableCam(enable: boolean): void;
  enableScreenShare(enable: boolean): void;
  get isCamEnabled(): boolean;
  get isMicEnabled(): boolean;
  get isSharingScreen(): boolean;
  sendMessage(message: RTVIMessage): void;
  tracks(): Tracks;
}

/** Default bot detection: the participant joined with an agent token. */
export declare function isAgentParticipant(participant: Participant | null | undefined): boolean;

/** A data packet payload as an RTVI message, or null when it is not one (logged, never thrown). */
export declare function decodeRtviPacket(
  payload: Uint8Array,
  log?: { warn: (...args: unknown[]) => void; debug: (...args: unknown[]) => void },
): RTVIMessage | null;

/** An RTVI message as a data packet payload (UTF-8 JSON, as Pipecat's LiveKitTransport sends). */
export declare function encodeRtviMessage(message: RTVIMessage): Uint8Array;

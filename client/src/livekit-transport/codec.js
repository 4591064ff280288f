/**
 * RTVI messages <-> LiveKit data packet payloads.
 *
 * Pipecat's LiveKitTransport publishes every RTVI message as a reliable data packet whose
 * payload is the UTF-8 JSON of the message ({id, label: "rtvi-ai", type, data}) with no topic,
 * and parses incoming packets the same way. Anything else on the data channel (other apps'
 * packets, garbage, half-written JSON) must never break the client: decoding returns null and
 * logs why.
 */
import { RTVI_MESSAGE_LABEL, RTVIMessage, logger } from "@pipecat-ai/client-js";

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/**
 * Decode one data packet payload into an RTVIMessage, or null when it is not a well-formed
 * RTVI message (logged, never thrown).
 * @param {Uint8Array} payload
 * @param {{warn: Function, debug: Function}} [log]
 * @returns {RTVIMessage | null}
 */
export function decodeRtviPacket(payload, log = logger) {
  let text;
  try {
    text = decoder.decode(payload);
  } catch (e) {
    log.warn(`[LiveKitTransport] ignoring data packet that is not UTF-8 (${payload?.length ?? 0} bytes)`);
    return null;
  }
  let obj;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    log.warn(`[LiveKitTransport] ignoring data packet that is not JSON: ${e.message}`);
    return null;
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    log.warn("[LiveKitTransport] ignoring data packet that is not a JSON object");
    return null;
  }
  if (obj.label !== RTVI_MESSAGE_LABEL) {
    log.debug(`[LiveKitTransport] ignoring non-RTVI data packet (label ${JSON.stringify(obj.label)})`);
    return null;
  }
  if (typeof obj.type !== "string" || obj.type.length === 0) {
    log.warn("[LiveKitTransport] ignoring RTVI packet without a message type");
    return null;
  }
  const id = typeof obj.id === "string" ? obj.id : undefined;
  return new RTVIMessage(obj.type, obj.data ?? {}, id);
}

/**
 * Encode an RTVIMessage as a data packet payload.
 * @param {RTVIMessage} message
 * @returns {Uint8Array}
 */
export function encodeRtviMessage(message) {
  const { id, label, type, data } = message;
  return encoder.encode(JSON.stringify({ id, label: label ?? RTVI_MESSAGE_LABEL, type, data }));
}

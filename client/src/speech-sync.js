/**
 * When each `bot-tts-timing` sentence is heard, from the message itself.
 *
 * The bot's output transport releases a sentence's timing message when it hands the sentence's
 * audio to the room, and says in `played_ms` how much of that audio was already played then
 * (0 when the message goes with its first audio; negative while earlier audio is still queued
 * ahead of it; the sentence's length for a voice that times a sentence after streaming it).
 * The audio then reaches the ear later than the message by the receiver's playout delay (its
 * jitter buffer), which the page reads from WebRTC's stats. So time 0 of a sentence is heard at
 *   arrival - played_ms + playout delay
 * with no guessing from the audio level.
 */

/** A jitter-buffer figure is averaged over this many emitted samples at least (WebRTC stats). */
const MIN_EMITTED = 480;

/** performance.now() time at which time 0 of the sentence's audio is heard. */
export function sentenceStart(msg, arrival, playoutDelayMs = 0) {
  return arrival - (msg.played_ms ?? 0) + playoutDelayMs;
}

/**
 * The receiver's current audio playout delay (ms) from two inbound-rtp audio stats samples:
 * jitter-buffer delay per emitted sample over the interval between them (null until known).
 */
export function playoutDelayMs(prev, now) {
  if (!now?.jitterBufferEmittedCount) return null;
  const emitted = now.jitterBufferEmittedCount - (prev?.jitterBufferEmittedCount ?? 0);
  const delay = now.jitterBufferDelay - (prev?.jitterBufferDelay ?? 0);
  if (emitted < MIN_EMITTED) {
    return (now.jitterBufferDelay * 1000) / now.jitterBufferEmittedCount;
  }
  return (delay * 1000) / emitted;
}

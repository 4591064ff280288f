/**
 * The project's own RTVI names, as the bot sends them (`server-message` data types) plus the
 * RTVI message types the page reads itself. The server defines the same strings
 * (processors/timing.py, bot/pipeline.py, the RTVI models); tests/unit/test_protocol_names.py checks they match.
 */

/** Per-sentence word and viseme timings (server-message data type). */
export const BOT_TTS_TIMING = "bot-tts-timing";
/** One turn's measured latency and its breakdown (server-message data type). */
export const BOT_LATENCY = "bot-latency";
/** The face engine failed and the built-in face took over (server-message data type). */
export const FACE_ENGINE_FALLBACK = "face-engine-fallback";
/** RTVI: the bot's output was cut off (client-js 1.13 has no callback for it). */
export const BOT_INTERRUPTED = "bot-interrupted";

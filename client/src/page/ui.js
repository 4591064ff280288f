/**
 * The page's DOM output: notices, connection state, the people list, latency and RTVI metrics.
 * Nothing here holds session state; each function renders what it is given.
 */

import { percentile } from "../metrics/series.js";

export const $ = (id) => document.getElementById(id);

/** Show a notice (null hides it), with an optional action button `{label, run}`. */
export function notice(text, level = "info", action = null) {
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

/** The transport's state, shown and kept in `stats.state`. */
export function showState(stats, state) {
  stats.state = state;
  $("state").textContent = state;
  $("state").dataset.state = state;
}

function fmtMs(v) {
  return v === null || v === undefined ? "—" : `${Math.round(v)} ms`;
}

/** Voice-to-voice latency, A/V and lip offsets and the video rate from `stats`. */
export function renderLatency(stats) {
  $("v2v-last").textContent = fmtMs(stats.turns.at(-1));
  $("v2v-p50").textContent = stats.turns.length ? `${fmtMs(percentile(stats.turns, 50))} (${stats.turns.length} turns)` : "—";
  $("av-offset").textContent = fmtMs(stats.avOffsets.at(-1));
  $("lip-offset").textContent = fmtMs(stats.lipOffsets.at(-1));
  const v = stats.video;
  $("fps").textContent = v.frameWidth ? `${stats.fps} fps, ${v.frameWidth}×${v.frameHeight}` : "—";
  $("head3d-fps").textContent = stats.head3dFps ? `${stats.head3dFps} fps` : "—";
}

/** Keep an RTVI `metrics` message's TTFB / processing times in `stats.metrics` and show them. */
export function renderMetrics(stats, data) {
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

/** The people in the room (a Map of id → {name, bot}). */
export function renderPeople(people) {
  $("people").replaceChildren(
    ...[...people.values()].map((p) => {
      const li = document.createElement("li");
      li.textContent = p.name + (p.bot ? " · avatar" : "");
      return li;
    }),
  );
}

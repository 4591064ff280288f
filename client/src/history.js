/**
 * History: past sessions of a room from the records API, one transcript at a time, downloads.
 *
 * Wires itself to the page's `#history-btn` (a header toggle) and `#history` (the panel); the
 * room is the one in the join form. Pure helpers are exported for the unit tests.
 */

export const RECORDS_API = "/api/records";
export const EXPORT_FORMATS = [
  ["vtt", "WebVTT"],
  ["text", "Text"],
  ["json", "JSON"],
];
const PAGE_SIZE = 20;

/** URL of a room's sessions, newest first. */
export function sessionsUrl(room, offset = 0) {
  const q = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(offset) });
  if (room) q.set("room", room);
  return `${RECORDS_API}/sessions?${q}`;
}

/** URL of a session's export in one format. */
export function exportUrl(sessionId, format) {
  return `${RECORDS_API}/sessions/${encodeURIComponent(sessionId)}/export?format=${format}`;
}

/** "10:04:31" for an ISO time (local clock). */
export function clock(iso) {
  return new Date(iso).toLocaleTimeString([], { hour12: false });
}

/** A session's one-line summary: when, how long, who, how many utterances. */
export function summary(session) {
  const start = new Date(session.started_at);
  const end = session.ended_at ? new Date(session.ended_at) : null;
  const minutes = end ? Math.max(1, Math.round((end - start) / 60000)) : null;
  const who = session.participants.map((p) => p.name || p.identity).join(", ") || "nobody";
  const length = minutes ? `${minutes} min` : "open";
  return `${start.toLocaleString()} · ${length} · ${who} · ${session.utterance_count} said`;
}

async function getJson(url) {
  const res = await fetch(url);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.detail || `${res.status} ${res.statusText}`);
  return body;
}

export class HistoryView {
  /** `panel`: the element to fill; `room()`: the room to show. */
  constructor({ panel, room }) {
    this.panel = panel;
    this.room = room;
  }

  async showSessions() {
    this.panel.replaceChildren(heading(`History of ${this.room() || "all rooms"}`));
    let page;
    try {
      page = await getJson(sessionsUrl(this.room()));
    } catch (err) {
      this.panel.append(note(`History unavailable: ${err.message}`));
      return;
    }
    if (!page.sessions.length) this.panel.append(note("No recorded sessions yet."));
    const list = document.createElement("ul");
    list.className = "history-sessions";
    for (const session of page.sessions) {
      const item = document.createElement("li");
      const open = document.createElement("button");
      open.type = "button";
      open.textContent = summary(session);
      open.addEventListener("click", () => this.showSession(session.id));
      item.append(open);
      list.append(item);
    }
    this.panel.append(list);
  }

  async showSession(sessionId) {
    const back = document.createElement("button");
    back.type = "button";
    back.textContent = "← All sessions";
    back.addEventListener("click", () => this.showSessions());
    this.panel.replaceChildren(back);
    let session;
    try {
      session = await getJson(`${RECORDS_API}/sessions/${encodeURIComponent(sessionId)}`);
    } catch (err) {
      this.panel.append(note(`Session unavailable: ${err.message}`));
      return;
    }
    this.panel.append(heading(`${session.room} · ${new Date(session.started_at).toLocaleString()}`));
    const downloads = document.createElement("p");
    downloads.className = "history-downloads";
    for (const [format, label] of EXPORT_FORMATS) {
      const link = document.createElement("a");
      link.href = exportUrl(session.id, format);
      link.download = "";
      link.textContent = `Download ${label}`;
      downloads.append(link, " ");
    }
    this.panel.append(downloads);
    const lines = document.createElement("ul");
    lines.className = "history-transcript";
    for (const u of session.utterances) {
      const line = document.createElement("li");
      line.dataset.role = u.role;
      const who = document.createElement("b");
      who.textContent = `${u.speaker_name || u.speaker_identity}: `;
      line.append(`[${clock(u.started_at)}] `, who, u.text, u.interrupted ? " (interrupted)" : "");
      lines.append(line);
    }
    this.panel.append(lines);
  }
}

function heading(text) {
  const h = document.createElement("h2");
  h.textContent = text;
  return h;
}

function note(text) {
  const p = document.createElement("p");
  p.className = "history-note";
  p.textContent = text;
  return p;
}

/** Toggle the history panel from the header button (when the page has both). */
export function setupHistory(doc = document) {
  const button = doc.getElementById("history-btn");
  const panel = doc.getElementById("history");
  if (!button || !panel) return null;
  const view = new HistoryView({ panel, room: () => doc.getElementById("room")?.value.trim() });
  button.addEventListener("click", () => {
    const show = panel.hidden;
    panel.hidden = !show;
    button.setAttribute("aria-pressed", String(show));
    if (show) view.showSessions();
  });
  return view;
}

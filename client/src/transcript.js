/**
 * The live transcript: what people said (RTVI user-transcription, per speaker) and what the bot
 * says, its words lighting up as they are spoken (RTVI bot-output progress, or bot-tts-text word
 * events when a bot sends no progress).
 */

function wordsOf(text) {
  return text.split(/\s+/).filter(Boolean);
}

export class Transcript {
  constructor(list) {
    this.list = list;
    this.interim = new Map(); // speaker id -> interim line element
    this.segments = new Map(); // bot segment id -> {spans, spoken, progress}
    this.botLine = null; // the bot's current turn (segments append to it)
    this.lastSegment = null;
    this.stats = { user: [], bot: [], wordEvents: 0 };
  }

  /** A person's speech (interim or final). */
  user(data, speakerName) {
    const key = data.user_id || speakerName;
    let line = this.interim.get(key);
    if (!line) {
      line = this._line("user", speakerName);
      this.interim.set(key, line);
    }
    line.querySelector(".text").textContent = data.text;
    line.classList.toggle("interim", !data.final);
    if (data.final) {
      this.interim.delete(key);
      this.stats.user.push(data.text);
    }
    this.botLine = null; // the bot's next words start a new turn
  }

  /** Text this page typed to the bot. */
  typed(text, name) {
    const line = this._line("user", name);
    line.querySelector(".text").textContent = text;
    this.botLine = null;
  }

  /** RTVI bot-output: a new segment, or spoken progress of one. */
  botOutput(data) {
    const id = data.segment_id ?? `s${this.segments.size}`;
    let seg = this.segments.get(id);
    if (!seg) seg = this._newSegment(id, data.text, data.will_be_spoken !== false || data.spoken === true);
    const progress = data.spoken_progress;
    if (data.spoken_status === "in-progress" || data.spoken_status === "completed") {
      seg.progress = true;
      const n = progress ? wordsOf(progress.accumulated_text ?? "").length : seg.spans.length;
      this._light(seg, data.spoken_status === "completed" ? seg.spans.length : n);
    }
  }

  /** RTVI bot-tts-text: one word spoken (used when the bot sends no bot-output progress). */
  botWord(text) {
    this.stats.wordEvents += 1;
    const seg = this.lastSegment;
    if (!seg || seg.progress) return;
    const next = seg.spoken + wordsOf(text).length;
    this._light(seg, Math.min(next, seg.spans.length));
  }

  _newSegment(id, text, spoken) {
    if (!this.botLine) this.botLine = this._line("bot", "Avatar");
    const box = this.botLine.querySelector(".text");
    if (box.childNodes.length) box.append(" ");
    const spans = wordsOf(text).map((w, i) => {
      const s = document.createElement("span");
      s.className = spoken ? "word" : "word said";
      s.textContent = (i ? " " : "") + w;
      box.append(s);
      return s;
    });
    const seg = { spans, spoken: 0, progress: false };
    this.segments.set(id, seg);
    this.lastSegment = seg;
    this.stats.bot.push(text);
    this._scroll();
    return seg;
  }

  _light(seg, n) {
    for (let i = seg.spoken; i < n; i++) seg.spans[i].classList.add("said");
    if (n > 0 && n <= seg.spans.length) {
      this.list.querySelectorAll(".word.current").forEach((el) => el.classList.remove("current"));
      seg.spans[n - 1].classList.add("current");
    }
    seg.spoken = Math.max(seg.spoken, n);
  }

  _line(kind, who) {
    const li = document.createElement("li");
    li.className = `line ${kind}`;
    const name = document.createElement("span");
    name.className = "who";
    name.textContent = who;
    const text = document.createElement("span");
    text.className = "text";
    li.append(name, text);
    this.list.append(li);
    this._scroll();
    return li;
  }

  _scroll() {
    this.list.scrollTop = this.list.scrollHeight;
  }
}

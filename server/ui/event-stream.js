// Follows a Server-Sent Events stream with fetch(), because the browser's EventSource cannot send an
// Authorization header. Parses the stream as the HTML standard describes, and on a drop reconnects with
// backoff, sending the last id seen as Last-Event-ID so the server resumes after it.

import { errorFrom } from "./api.js";

/** Splits SSE text, fed in arbitrary chunks, into events { id, type, data }; comments come out as onComment. */
export class SseParser {
  constructor(onEvent, onComment = () => {}) {
    this.onEvent = onEvent;
    this.onComment = onComment;
    this.buffer = "";
    this.skipLeadingLineFeed = false;
    this.lastEventId = "";
    this.reset();
  }

  reset() {
    this.type = "";
    this.data = [];
    this.sawData = false;
  }

  push(text) {
    this.buffer += text;
    // A CR at the end of one chunk and an LF at the start of the next are one line break.
    if (this.skipLeadingLineFeed && this.buffer.startsWith("\n")) this.buffer = this.buffer.slice(1);
    this.skipLeadingLineFeed = false;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i += 1) {
      const char = this.buffer[i];
      if (char !== "\n" && char !== "\r") continue;
      this.line(this.buffer.slice(start, i));
      if (char === "\r") {
        if (i + 1 === this.buffer.length) this.skipLeadingLineFeed = true;
        else if (this.buffer[i + 1] === "\n") i += 1;
      }
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
  }

  line(line) {
    if (line === "") {
      if (this.sawData)
        this.onEvent({ id: this.lastEventId, type: this.type || "message", data: this.data.join("\n") });
      this.reset();
      return;
    }
    if (line.startsWith(":")) {
      this.onComment(line.slice(1).trim());
      return;
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") {
      this.data.push(value);
      this.sawData = true;
    } else if (field === "event") {
      this.type = value;
    } else if (field === "id" && !value.includes("\0")) {
      this.lastEventId = value;
    }
    // "retry" is ignored: the backoff below decides, and an unknown field is ignored as the standard says.
  }
}

/** The wait before reconnect attempt n (0-based): 0.5 s doubling to 15 s, with jitter so clients spread out. */
export function backoffMs(attempt) {
  const base = Math.min(15000, 500 * 2 ** attempt);
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

/**
 * Reads `url` until stop(). Callbacks: onEvent(event), onState("connecting" | "live" | "reconnecting", detail),
 * onFatal(ApiError) for an answer that retrying cannot fix (401, 403, 404), after which it stops.
 * `idleMs`: with no byte (not even a heartbeat comment) for this long the connection counts as dropped.
 */
export function followStream({ url, token, lastEventId = "", idleMs = 45000, onEvent, onState, onFatal }) {
  const stopped = new AbortController();
  let connection = null;
  let lastId = lastEventId;
  let wake = null;

  /** Waits `ms`, or less if stopped or woken (retryNow). */
  const pause = (ms) =>
    new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        stopped.signal.removeEventListener("abort", done);
        wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      wake = done;
      stopped.signal.addEventListener("abort", done, { once: true });
    });

  async function readOnce() {
    connection = new AbortController();
    const abortConnection = () => connection.abort();
    stopped.signal.addEventListener("abort", abortConnection, { once: true });
    let idleTimer = null;
    let received = false;
    const touch = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => connection.abort(), idleMs);
    };
    try {
      touch();
      const headers = { Accept: "text/event-stream", Authorization: `Bearer ${token}` };
      if (lastId) headers["Last-Event-ID"] = lastId;
      const response = await fetch(url, { headers, signal: connection.signal, cache: "no-store" });
      if (!response.ok) return { error: await errorFrom(response), retryAfter: response.headers.get("Retry-After") };
      onState("live");
      const parser = new SseParser((event) => {
        if (event.id) lastId = event.id;
        onEvent(event);
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        touch();
        received = true;
        parser.push(value);
      }
      return { received };
    } catch (error) {
      return { received, dropped: error };
    } finally {
      clearTimeout(idleTimer);
      stopped.signal.removeEventListener("abort", abortConnection);
    }
  }

  (async () => {
    let attempt = 0;
    onState("connecting");
    while (!stopped.signal.aborted) {
      const outcome = await readOnce();
      if (stopped.signal.aborted) return;
      if (outcome.error && [401, 403, 404].includes(outcome.error.status)) {
        onFatal(outcome.error);
        return;
      }
      // A connection that carried data was healthy: start the backoff again from its shortest wait.
      if (outcome.received) attempt = 0;
      const retryAfterMs = Number(outcome.retryAfter) * 1000;
      const wait = retryAfterMs > 0 ? retryAfterMs : backoffMs(attempt);
      onState("reconnecting", { inMs: wait, attempt: attempt + 1 });
      attempt += 1;
      await pause(wait);
    }
  })();

  return {
    stop: () => stopped.abort(),
    /** While waiting to reconnect, reconnects at once (the browser is back online, the tab is visible again). */
    retryNow: () => wake?.(),
    get lastEventId() {
      return lastId;
    },
  };
}

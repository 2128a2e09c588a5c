/**
 * Server-Sent Events for `GET /cases/:id/events`. One engine subscription for the whole server, fanned out
 * by case id to the streams watching that case: each change is serialised once and the same string written
 * to every watcher, so ten thousand watchers of one case cost one JSON.stringify and ten thousand writes.
 *
 * Event ids increase across restarts: each is at least the wall clock in microseconds, and one more than the
 * last. A stream that resumes (`Last-Event-ID`) hears nothing until the next change if its case has not
 * changed since that id, and the current progress otherwise (after a restart the server does not know, so it
 * sends the progress: a repeat is harmless, a gap is not).
 *
 * Every event is `event: progress` whose data is the case's whole progress; a correction after a chain
 * reorganisation carries `"reorg": true` besides, and a case the reorganisation removed altogether is sent as
 * `{"id", "removed": true, "reorg": true}`.
 */
import type { Request, Response } from "express";
import type { Logger } from "pino";
import type { CaseProgress, ProgressNotice } from "../engine";
import type { ServerEngine } from "./routes/context";

/** A watcher whose socket holds more than this unsent is too slow: it is closed and may resume. */
const MAX_BUFFERED_BYTES = 1 << 20;

export interface CaseStreamsOptions {
  heartbeatMs: number;
  logger: Logger;
  /** Whether a principal may still watch (not revoked): asked once per principal at each heartbeat. */
  stillAllowed: (principalId: string) => boolean;
  /** What each change's progress becomes before it is sent (the parties' names added); default as it is. */
  present?: (progress: CaseProgress) => CaseProgress;
}

export class CaseStreams {
  /** Case id -> its open streams, each with the principal that opened it. */
  private readonly watchers = new Map<string, Map<Response, string>>();
  /** The id of each case's latest change seen by this process. */
  private readonly lastChange = new Map<string, number>();
  private lastId = 0;
  private readonly unsubscribe: () => void;
  private readonly heartbeat: NodeJS.Timeout;
  private closed = false;

  constructor(
    engine: ServerEngine,
    private readonly options: CaseStreamsOptions,
  ) {
    this.unsubscribe = engine.subscribe((notice) => this.publish(notice));
    this.heartbeat = setInterval(() => this.beat(), options.heartbeatMs);
    this.heartbeat.unref();
  }

  /** Starts a stream of the case on `res` for the principal; `progressJson` is the case's progress now, serialised. */
  open(req: Request, res: Response, principalId: string, caseId: string, progressJson: string): void {
    res.status(200);
    res.setHeader("Content-Type", "text/event-stream; charset=utf-8");
    res.setHeader("Cache-Control", "no-cache, no-transform");
    res.setHeader("Connection", "keep-alive");
    res.setHeader("X-Accel-Buffering", "no");
    req.socket.setTimeout(0);
    req.socket.setNoDelay(true);
    // HEAD (which Express routes here) has no body to stream; a closed server streams nothing more.
    if (this.closed || req.method === "HEAD") {
      res.end();
      return;
    }
    const resumeFrom = parseEventId(req.headers["last-event-id"]);
    let id = this.lastChange.get(caseId);
    let first = "retry: 2000\n\n";
    if (resumeFrom === null || id === undefined || id > resumeFrom) {
      if (id === undefined) {
        id = this.nextId();
        this.lastChange.set(caseId, id);
      }
      first += eventLines(id, progressJson);
    }
    // The headers go with this first write (one send, not two); every later write is body only.
    res.write(first);

    let set = this.watchers.get(caseId);
    if (!set) this.watchers.set(caseId, (set = new Map()));
    set.set(res, principalId);
    const forget = () => {
      const watching = this.watchers.get(caseId);
      if (!watching) return;
      watching.delete(res);
      if (watching.size === 0) this.watchers.delete(caseId);
    };
    res.on("close", forget);
    res.on("error", forget);
  }

  /** Ends every stream and stops listening (shutdown). */
  closeAll(): void {
    this.closed = true;
    clearInterval(this.heartbeat);
    this.unsubscribe();
    for (const set of this.watchers.values()) for (const res of set.keys()) res.end();
    this.watchers.clear();
  }

  private publish(notice: ProgressNotice): void {
    const id = this.nextId();
    this.lastChange.set(notice.caseId, id);
    const set = this.watchers.get(notice.caseId);
    if (!set || set.size === 0) return;
    const data =
      notice.progress === null
        ? { id: notice.caseId, removed: true, reorg: true }
        : notice.reorg
          ? { ...this.present(notice.progress), reorg: true }
          : this.present(notice.progress);
    this.writeAll(set, eventLines(id, JSON.stringify(data)));
  }

  /** A comment line to every stream (so proxies keep them open), and the end of those whose principal was revoked. */
  private beat(): void {
    const allowed = new Map<string, boolean>();
    for (const set of this.watchers.values()) {
      for (const [res, principalId] of set) {
        let ok = allowed.get(principalId);
        if (ok === undefined) allowed.set(principalId, (ok = this.options.stillAllowed(principalId)));
        if (!ok) {
          res.end();
          set.delete(res);
        }
      }
      this.writeAll(set, ": heartbeat\n\n");
    }
  }

  /**
   * Writes the same bytes to every stream. The event is encoded once, and framed once as an HTTP/1.1 chunk,
   * then written straight to each socket: `res.write` would encode the string again and make four stream
   * writes of each chunk (size, CRLF, data, CRLF) for every watcher, which is most of a fan-out's time.
   */
  private writeAll(set: Map<Response, string>, text: string): void {
    const bytes = Buffer.from(text, "utf8");
    let chunk: Buffer | undefined;
    for (const res of set.keys()) {
      const socket = res.socket;
      if (!socket || socket.destroyed) continue;
      if (socket.writableLength > MAX_BUFFERED_BYTES) {
        this.options.logger.warn({ buffered: socket.writableLength }, "closing a slow event stream");
        res.end();
        set.delete(res);
        continue;
      }
      // The headers went out with the stream's first write, so the socket carries only this response's body now.
      if ((res as Response & { chunkedEncoding?: boolean }).chunkedEncoding)
        socket.write((chunk ??= frameChunk(bytes)));
      else socket.write(bytes);
    }
  }

  private present(progress: CaseProgress): CaseProgress {
    return this.options.present ? this.options.present(progress) : progress;
  }

  private nextId(): number {
    this.lastId = Math.max(this.lastId + 1, Date.now() * 1000);
    return this.lastId;
  }
}

/** One HTTP/1.1 chunk: its size in hex, CRLF, the bytes, CRLF. */
function frameChunk(bytes: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`${bytes.length.toString(16)}\r\n`, "latin1"),
    bytes,
    Buffer.from("\r\n", "latin1"),
  ]);
}

function eventLines(id: number, json: string): string {
  return `id: ${id}\nevent: progress\ndata: ${json}\n\n`;
}

function parseEventId(header: string | string[] | undefined): number | null {
  const text = Array.isArray(header) ? header[0] : header;
  if (text === undefined || !/^\d{1,16}$/.test(text.trim())) return null;
  return Number(text.trim());
}

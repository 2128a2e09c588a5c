/**
 * The HTTP server around the app. Node's parser refuses a request that is not HTTP (raw bytes above 0x7e in
 * its target, a malformed header, headers too large) before Express sees it, and by default answers with a
 * bare status and no body. Here such a refusal carries the API's error shape too, so every 4xx a client can
 * get is one it can read.
 */
import { createServer, type Server } from "node:http";
import type { Socket } from "node:net";
import type { RequestListener } from "node:http";

/** Thousands of event-stream watchers may connect at once; the default backlog (511) resets some of them. */
export const LISTEN_BACKLOG = 4096;

export function createHttpServer(app: RequestListener): Server {
  const server = createServer(app);
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => answerClientError(error, socket));
  return server;
}

function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  // A connection reset or closed mid-request has no one left to answer.
  if (error.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason, code, message] =
    error.code === "HPE_HEADER_OVERFLOW"
      ? [431, "Request Header Fields Too Large", "HEADERS_TOO_LARGE", "the request's headers are too large"]
      : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, "Request Timeout", "REQUEST_TIMEOUT", "the request did not arrive in time"]
        : [
            400,
            "Bad Request",
            "MALFORMED_REQUEST",
            "the request is not valid HTTP (for example raw non-ASCII bytes in its path: percent-encode them)",
          ];
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

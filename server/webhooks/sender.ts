/**
 * One delivery attempt: a POST of the JSON body with the Standard Webhooks headers, ended after `timeoutMs`
 * (connection and answer together). Any 2xx is a success; anything else, a timeout or a network error is a
 * failure to retry. Only the first 1 kB of the receiver's answer is kept, for the delivery log.
 */
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";

export interface AttemptResult {
  ok: boolean;
  /** The receiver's HTTP status, or null when none came (timeout, refused connection). */
  statusCode: number | null;
  durationMs: number;
  /** Why it failed, in words; null on success. */
  error: string | null;
  /** The start of the receiver's answer. */
  responseBody: string;
}

const KEPT_ANSWER = 1024;

export function sendAttempt(
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
  /** How the host name is resolved: the URL guard's, which refuses non-public addresses, unless those are allowed. */
  lookup?: LookupFunction,
): Promise<AttemptResult> {
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: Omit<AttemptResult, "durationMs">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...result, durationMs: elapsed() });
    };
    const target = new URL(url);
    const send = target.protocol === "https:" ? httpsRequest : httpRequest;
    const req = send(target, {
      method: "POST",
      ...(lookup ? { lookup } : {}),
      headers: {
        ...headers,
        "content-type": "application/json",
        "content-length": String(Buffer.byteLength(body)),
        "user-agent": "mortgage-signoff-engine-webhooks/1",
      },
    });
    const timer = setTimeout(() => {
      finish({ ok: false, statusCode: null, error: `no answer within ${timeoutMs} ms`, responseBody: "" });
      req.destroy();
    }, timeoutMs);
    req.on("response", (res) => {
      let answer = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (answer.length < KEPT_ANSWER) answer += chunk.slice(0, KEPT_ANSWER - answer.length);
      });
      res.on("end", () => {
        const status = res.statusCode ?? 0;
        const ok = status >= 200 && status < 300;
        finish({ ok, statusCode: status, error: ok ? null : `HTTP ${status}`, responseBody: answer });
      });
      res.on("error", (e) =>
        finish({ ok: false, statusCode: res.statusCode ?? null, error: e.message, responseBody: answer }),
      );
    });
    req.on("error", (e) => finish({ ok: false, statusCode: null, error: e.message, responseBody: "" }));
    req.end(body);
  });
}

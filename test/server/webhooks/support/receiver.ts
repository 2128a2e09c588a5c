/**
 * A webhook receiver as a back office would run one: a real HTTP server on 127.0.0.1 that verifies every
 * delivery with the Standard Webhooks reference library (`standardwebhooks`, an implementation independent of
 * the server's signer), answers 200, 500 or nothing at all as the test sets it, and de-duplicates by
 * `webhook-id`. A delivery that does not verify is answered 400 and kept in `rejected`, which the tests assert
 * empty.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

export type ReceiverMode = "ok" | "fail" | "hang";

export interface Received {
  id: string;
  timestamp: number;
  type: string;
  payload: { type: string; timestamp: string; data: any };
  /** Wall-clock ms at arrival. */
  receivedAt: number;
  /** The secrets (by index into `secrets`) that verified it. */
  verifiedWith: number[];
}

export interface Receiver {
  url: string;
  mode: ReceiverMode;
  /** How long it takes to answer a delivery it accepts, ms (a back office doing its work); default 0. */
  delayMs: number;
  /** Every secret a delivery may verify with; a delivery must verify with `required` (default: the first). */
  secrets: string[];
  /** Indexes into `secrets` that must each verify every delivery; default [0]. */
  required: number[];
  /** Every verified arrival, duplicates included, in order of arrival. */
  arrivals: Received[];
  /** Verified deliveries, the first arrival of each `webhook-id`, in order of arrival. */
  unique(): Received[];
  /** Arrivals that did not verify (with why). */
  rejected: Array<{ headers: IncomingMessage["headers"]; body: string; why: string }>;
  /** How many requests came at all (answered or not). */
  requests: number;
  waitFor(what: string, probe: (r: Receiver) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(secrets: string[] = []): Promise<Receiver> {
  const hanging = new Set<IncomingMessage>();
  const receiver: Receiver = {
    url: "",
    mode: "ok",
    delayMs: 0,
    secrets,
    required: [0],
    arrivals: [],
    rejected: [],
    requests: 0,
    unique() {
      const seen = new Set<string>();
      return receiver.arrivals.filter((r) => !seen.has(r.id) && seen.add(r.id));
    },
    async waitFor(what, probe, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!probe(receiver)) {
        if (Date.now() > deadline)
          throw new Error(
            `the receiver did not see ${what} within ${timeoutMs} ms; it has ${receiver
              .unique()
              .map((r) => r.type)
              .join(", ")}`,
          );
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const req of hanging) req.socket.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((req, res) => {
    receiver.requests += 1;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const headers = Object.fromEntries(
        ["webhook-id", "webhook-timestamp", "webhook-signature"].map((h) => [h, String(req.headers[h] ?? "")]),
      );
      const verifiedWith: number[] = [];
      let why = "";
      receiver.secrets.forEach((secret, i) => {
        try {
          new Webhook(secret).verify(body, headers);
          verifiedWith.push(i);
        } catch (e) {
          why += `secret ${i}: ${(e as Error).message}; `;
        }
      });
      if (!receiver.required.every((i) => verifiedWith.includes(i))) {
        receiver.rejected.push({ headers: req.headers, body, why });
        res.writeHead(400).end("bad signature");
        return;
      }
      if (receiver.mode === "hang") {
        hanging.add(req);
        return;
      }
      if (receiver.mode === "fail") {
        res.writeHead(500).end("down for maintenance");
        return;
      }
      const payload = JSON.parse(body) as Received["payload"];
      receiver.arrivals.push({
        id: headers["webhook-id"],
        timestamp: Number(headers["webhook-timestamp"]),
        type: payload.type,
        payload,
        receivedAt: Date.now(),
        verifiedWith,
      });
      if (receiver.delayMs > 0) setTimeout(() => res.writeHead(204).end(), receiver.delayMs);
      else res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  return receiver;
}

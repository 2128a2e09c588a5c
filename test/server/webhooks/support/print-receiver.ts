/**
 * A receiver to try webhooks by hand (the README's session): listens on 127.0.0.1:PORT, verifies each delivery
 * with the `standardwebhooks` library and the secret given, and prints it (headers and body) as it came.
 *
 *   npx ts-node --transpile-only test/server/webhooks/support/print-receiver.ts 4000 whsec_...
 */
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";

const [port, secret] = process.argv.slice(2);
createServer((req, res) => {
  let body = "";
  req.on("data", (c: Buffer) => (body += c.toString("utf8")));
  req.on("end", () => {
    const headers = Object.fromEntries(
      ["webhook-id", "webhook-timestamp", "webhook-signature"].map((h) => [h, String(req.headers[h] ?? "")]),
    );
    let verdict = "verified";
    try {
      new Webhook(secret).verify(body, headers);
    } catch (e) {
      verdict = `NOT verified: ${(e as Error).message}`;
    }
    console.log(`${req.method} ${req.url} (${verdict})`);
    for (const [name, value] of Object.entries(headers)) console.log(`${name}: ${value}`);
    console.log(JSON.stringify(JSON.parse(body), null, 2));
    console.log("");
    res.writeHead(verdict === "verified" ? 204 : 400).end();
  });
}).listen(Number(port), "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${port}/hooks`));

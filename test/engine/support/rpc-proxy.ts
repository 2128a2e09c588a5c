/**
 * A TCP proxy on 127.0.0.1 in front of a node's JSON-RPC port, to cut the engine's connection for real:
 *
 * - `pass`:  every connection is piped to the node.
 * - `drop`:  connections are reset: the open ones at once (in-flight requests fail), new ones as they come.
 * - `stall`: connections are accepted and read, and never answered: the open ones stop being forwarded (their
 *            in-flight requests hang), new ones hang from the start. Only the client's own timeout ends them.
 *
 * Switching back to `pass` closes the stalled connections (the client then reconnects through the proxy).
 * It listens on, and forwards to, loopback addresses only.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

export type ProxyMode = "pass" | "drop" | "stall";

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

interface Piped {
  client: Socket;
  upstream: Socket;
}

export class RpcProxy {
  /** Connections seen in each mode, and in-flight ones cut or stalled by a switch. */
  readonly stats = { passed: 0, dropped: 0, stalled: 0 };
  private mode: ProxyMode = "pass";
  private readonly piped = new Set<Piped>();
  private readonly stalled = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {
    server.on("connection", (client) => this.accept(client));
  }

  static async start(target: { host?: string; port: number }): Promise<RpcProxy> {
    const host = target.host ?? "127.0.0.1";
    if (!LOOPBACK.has(host)) throw new Error(`the proxy forwards to loopback only, not ${host}`);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return new RpcProxy(server, (server.address() as { port: number }).port, { host, port: target.port });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get current(): ProxyMode {
    return this.mode;
  }

  setMode(mode: ProxyMode): void {
    this.mode = mode;
    if (mode === "pass") {
      for (const socket of this.stalled) socket.destroy();
      this.stalled.clear();
      return;
    }
    for (const connection of this.piped) {
      connection.client.unpipe(connection.upstream);
      connection.upstream.unpipe(connection.client);
      connection.upstream.destroy();
      if (mode === "drop") {
        this.stats.dropped += 1;
        connection.client.resetAndDestroy();
      } else {
        this.stats.stalled += 1;
        this.hold(connection.client);
      }
    }
    this.piped.clear();
  }

  async close(): Promise<void> {
    this.setMode("drop");
    this.setMode("pass");
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    client.on("error", () => client.destroy());
    if (this.mode === "drop") {
      this.stats.dropped += 1;
      client.resetAndDestroy();
      return;
    }
    if (this.mode === "stall") {
      this.stats.stalled += 1;
      this.hold(client);
      return;
    }
    this.stats.passed += 1;
    const upstream = connect(this.target.port, this.target.host);
    const connection = { client, upstream };
    this.piped.add(connection);
    const close = () => {
      this.piped.delete(connection);
      client.destroy();
      upstream.destroy();
    };
    upstream.on("error", close);
    upstream.on("close", () => {
      if (this.piped.has(connection)) close();
    });
    client.on("close", () => {
      if (this.piped.has(connection)) close();
    });
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Reads and discards whatever the client sends; answers nothing until `pass` or `close`. */
  private hold(client: Socket): void {
    this.stalled.add(client);
    client.on("data", () => {});
    client.resume();
    client.on("close", () => this.stalled.delete(client));
  }
}

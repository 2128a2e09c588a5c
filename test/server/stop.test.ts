/**
 * Stopping `npm start`, and what a stop or a kill keeps: SIGTERM and SIGINT to the real `npm start`'s process
 * group (what a service manager and a terminal's Ctrl-C send; the group holds npm, its sh and the server) and
 * SIGTERM to the server alone each stop the API, the engine and the embedded Anvil, with the chain's state on
 * disk holding its last block, while a slow client holds a request open; and a dev clock move answered 200 outlives a `kill -9` of the server and its Anvil
 * at once.
 */
import { expect } from "chai";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { id as keccakId } from "ethers";
import { freePort } from "../../server/chain/child-process";
import {
  alive,
  anvilPid,
  api,
  eventually,
  groupAndSession,
  runMain,
  savedBlock,
  signalGroup,
  type MainProcess,
  type RunOptions,
} from "./support/main-process";

describe("stopping npm start (server/main.ts)", function () {
  this.timeout(180_000);
  const dataDir = mkdtempSync(join(tmpdir(), "npm-stop-"));
  let port: number;
  let main: MainProcess | null = null;
  const start = async (via: RunOptions["via"]) => {
    main = await runMain({ DATA_DIR: dataDir, PORT: String(port) }, { via });
    return main;
  };
  const credentials = () =>
    JSON.parse(readFileSync(join(dataDir, "credentials.json"), "utf8")) as Record<
      string,
      { token: string; address: string }
    >;
  const demoCase = () =>
    (JSON.parse(readFileSync(join(dataDir, "demo-case.json"), "utf8")) as { caseId: string }).caseId;

  before(async function () {
    port = await freePort();
  });

  afterEach(function () {
    // Whatever a failed test left running: the server's group and its Anvil (in a group of its own).
    if (main) signalGroup(main.child, "SIGKILL");
    const anvil = anvilPid(dataDir);
    if (anvil !== null && alive(anvil)) process.kill(anvil, "SIGKILL");
    main = null;
  });

  /**
   * A slow client: a request whose body has not all arrived, which the server's close waits for (up to 5 s), so
   * that the stop takes a while, as it does on a busy server.
   */
  async function slowRequest(url: string): Promise<Socket> {
    const { hostname, port } = new URL(url);
    const socket = connect(Number(port), hostname);
    await new Promise((resolve) => socket.once("connect", resolve));
    socket.on("error", () => undefined);
    socket.write(
      `POST /cases HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`,
    );
    return socket;
  }

  /** Gives the chain something new to save: a sign-off (202) and a clock move (200), both shown before it returns the head. */
  async function busyChain(running: MainProcess, evidence: string): Promise<number> {
    const tokens = credentials();
    const caseId = demoCase();
    const signed = await api(running.url, tokens.buyer.token, "POST", `/cases/${caseId}/stages/application/sign-offs`, {
      evidence: keccakId(evidence),
    });
    expect([202, 409], JSON.stringify(signed.body)).to.include(signed.status);
    await eventually("the buyer's sign-off on chain", async () => {
      const progress = (await api(running.url, tokens.buyer.token, "GET", `/cases/${caseId}`)).body;
      return progress.stages.find((s: { id: string }) => s.id === "application").signedOff.includes("buyer");
    });
    const moved = await api(running.url, tokens.operator.token, "POST", "/dev/clock", { seconds: 3_600 });
    expect(moved.status, JSON.stringify(moved.body)).to.equal(200);
    return (await api(running.url, null, "GET", "/health")).body.blockNumber as number;
  }

  const stops: Array<{ title: string; via: RunOptions["via"]; signal: NodeJS.Signals; to: "group" | "server" }> = [
    { title: "SIGTERM to npm start's process group (a service manager)", via: "npm", signal: "SIGTERM", to: "group" },
    { title: "SIGINT to npm start's process group (Ctrl-C)", via: "npm", signal: "SIGINT", to: "group" },
    { title: "SIGTERM to the server process alone", via: "direct", signal: "SIGTERM", to: "server" },
    { title: "SIGINT to the server process alone", via: "direct", signal: "SIGINT", to: "server" },
  ];
  for (const stop of stops) {
    it(`stops the API, the engine and Anvil on ${stop.title}, the chain saved to its last block`, async function () {
      const running = await start(stop.via);
      const server = Number(readFileSync(join(dataDir, "server.pid"), "utf8"));
      const anvil = anvilPid(dataDir)!;
      const head = await busyChain(running, `application by the buyer, before ${stop.title}`);
      // Only the server stops Anvil: a signal to the server's group (or session) does not reach it.
      expect(groupAndSession(anvil).group).to.not.equal(groupAndSession(server).group);
      expect(groupAndSession(anvil).session).to.not.equal(groupAndSession(server).session);

      const slow = await slowRequest(running.url);
      if (stop.to === "group") signalGroup(running.child, stop.signal);
      else process.kill(server, stop.signal);
      await eventually("the server and its Anvil gone", async () => !alive(server) && !alive(anvil), 40_000).catch(
        (error: Error) => {
          throw new Error(
            `${error.message} (server ${alive(server) ? "running" : "gone"}, Anvil ${alive(anvil) ? "running" : "gone"}):\n${running.output()}`,
          );
        },
      );
      slow.destroy();
      expect(running.output()).to.contain(`${stop.signal}: shutting down`);
      expect(running.output(), "no forced exit").not.to.contain("exiting now");
      expect(existsSync(join(dataDir, "server.pid")), "a graceful stop releases the data folder").to.equal(false);
      expect(existsSync(join(dataDir, "chain", "anvil.pid")), "Anvil stopped by the server").to.equal(false);
      expect(savedBlock(dataDir), `the saved chain holds the last block:\n${running.output()}`).to.equal(head);
    });
  }

  it("names the chain in /health's reasons when its Anvil is gone, and still stops cleanly", async function () {
    const running = await start("direct");
    expect((await api(running.url, null, "GET", "/health")).body).to.include({ status: "ok" });
    const anvil = anvilPid(dataDir)!;
    process.kill(anvil, "SIGKILL");
    const health = await eventually("a degraded /health", async () => {
      const body = (await api(running.url, null, "GET", "/health")).body;
      return body.status === "degraded" && body;
    });
    const chain = health.reasons.find((r: { source: string }) => r.source === "chain");
    expect(chain, JSON.stringify(health)).to.include({ code: "CHAIN_UNAVAILABLE" });
    expect(chain.message).to.match(/^the chain did not answer/);
    expect(health.blockNumber).to.equal(null);

    const server = Number(readFileSync(join(dataDir, "server.pid"), "utf8"));
    process.kill(server, "SIGTERM");
    await eventually("the server gone", async () => !alive(server), 40_000);
    expect(existsSync(join(dataDir, "server.pid")), "a graceful stop releases the data folder").to.equal(false);
  });

  it("exits at once (130) on a second signal during the stop, and only then", async function () {
    const running = await start("direct");
    const server = Number(readFileSync(join(dataDir, "server.pid"), "utf8"));
    const slow = await slowRequest(running.url);
    process.kill(server, "SIGTERM");
    // The stop waits for the slow request (up to 5 s): past the watchdog's second, still stopping.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(alive(server), "still stopping, not forced by anything but a signal").to.equal(true);
    process.kill(server, "SIGTERM");
    expect((await running.exited).code).to.equal(130);
    slow.destroy();
    expect(running.output()).to.contain("SIGTERM again: exiting now");
  });

  it("keeps a dev clock move answered 200 through a kill -9 of the server and its Anvil right after", async function () {
    let running = await start("direct");
    const tokens = credentials();
    const moved = await api(running.url, tokens.operator.token, "POST", "/dev/clock", { seconds: 7 * 86_400 });
    expect(moved.status, JSON.stringify(moved.body)).to.equal(200);
    const anvil = anvilPid(dataDir)!;
    signalGroup(running.child, "SIGKILL");
    process.kill(anvil, "SIGKILL");
    await running.exited;

    running = await start("direct");
    const after = await api(running.url, tokens.operator.token, "POST", "/dev/clock", { seconds: 1 });
    expect(after.status, JSON.stringify(after.body)).to.equal(200);
    expect(
      Date.parse(after.body.now),
      `the chain's time after the restart (moved to ${moved.body.now})`,
    ).to.be.greaterThan(Date.parse(moved.body.now));
  });
});

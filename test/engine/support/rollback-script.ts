/**
 * The work of the hard-kill-before-the-chain-saves tests (finding 3 of issue 10), on any chain: openings
 * from the bank's key (answered 201), then sign-offs (batched by the relayer's key) and deposits (from the
 * buyer's and the bank's keys) all at once (each answered 202), and what must hold once a new engine on the
 * same data folder has recovered from the chain's loss of it.
 */
import { expect } from "chai";
import { ethers } from "ethers";
import type { BaseWallet } from "ethers";
import type { Engine, Submission } from "../../../engine";
import type { RoleName } from "../../../workflows/schema";
import type { MortgageEscrow } from "../../../typechain-types";
import { TERMS } from "../projection-helpers";
import { sleep } from "../engine-helpers";

export type Parties = Record<RoleName, BaseWallet>;

export type Request =
  | { kind: "approve"; caseId: string; stage: string; role: RoleName }
  | { kind: "deposit"; caseId: string; role: "buyer" | "bank"; amount: bigint };

export interface Accepted {
  request: Request;
  submission: Submission;
}

const OPEN = 1;
const ROLE_INDEX: Record<RoleName, number> = { bank: 0, lawyer: 1, buyer: 2, seller: 3 };

function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Opens `count` us-purchase cases from the bank's managed key, each answered once projected (a 201). */
export async function openCases(engine: Engine, parties: Parties, count: number): Promise<string[]> {
  const opened = await Promise.all(
    Array.from({ length: count }, (_, n) =>
      engine.openCase({
        principalAddress: parties.bank.address,
        workflow: "us-purchase",
        parties: {
          bank: parties.bank.address,
          lawyer: parties.lawyer.address,
          buyer: parties.buyer.address,
          seller: parties.seller.address,
        },
        terms: { price: TERMS.price.toString(), deposit: TERMS.deposit.toString(), loan: TERMS.loan.toString() },
        idempotencyKey: `open-${n}`,
      }),
    ),
  );
  return opened.map((c) => c.id);
}

/** Each case's application sign-offs and both deposits, in the seed's order. */
export function requestsFor(caseIds: string[], random: () => number): Request[] {
  return shuffle(
    caseIds.flatMap((caseId): Request[] => [
      { kind: "approve", caseId, stage: "application", role: "buyer" },
      { kind: "approve", caseId, stage: "application", role: "bank" },
      { kind: "deposit", caseId, role: "buyer", amount: TERMS.deposit },
      { kind: "deposit", caseId, role: "bank", amount: TERMS.loan },
    ]),
    random,
  );
}

function send(engine: Engine, parties: Parties, r: Request): Submission | Promise<Submission> {
  if (r.kind === "approve") {
    return engine.approve({
      caseId: r.caseId,
      stageId: r.stage,
      role: r.role,
      principalAddress: parties[r.role].address,
      evidence: ethers.id(`${r.stage} by ${r.role}`),
    });
  }
  return engine.deposit({
    caseId: r.caseId,
    role: r.role,
    principalAddress: parties[r.role].address,
    amount: r.amount,
    idempotencyKey: `deposit:${r.caseId}:${r.role}`,
  });
}

/**
 * Sends every request at once and returns, after `killAfterMs` (or once all are answered, if sooner), those
 * answered so far: the caller kills the engine right then. The list keeps growing if answers come later; the
 * caller takes a copy at the kill.
 */
export async function sendAllUntil(
  engine: Engine,
  parties: Parties,
  requests: readonly Request[],
  killAfterMs: number,
): Promise<Accepted[]> {
  const accepted: Accepted[] = [];
  const all = requests.map((request) =>
    Promise.resolve()
      .then(() => send(engine, parties, request))
      .then((submission) => accepted.push({ request, submission })),
  );
  await Promise.race([Promise.allSettled(all), sleep(killAfterMs)]);
  return [...accepted];
}

/** Reads every case in a loop until stopped, and remembers the first that read as unknown. */
export function watchNeverUnknown(engine: Engine, caseIds: readonly string[]) {
  let unknown: string | null = null;
  let watching = true;
  const done = (async () => {
    while (watching) {
      for (const id of caseIds) if (engine.getCase(id) === null) unknown ??= id;
      await sleep(5);
    }
  })();
  return {
    async stop(): Promise<string | null> {
      watching = false;
      await done;
      return unknown;
    },
  };
}

/** Every 201 case open on chain under its id, every 202 confirmed and on chain exactly once, nothing failed. */
export async function expectEveryAnswerKept(
  label: string,
  engine: Engine,
  escrow: MortgageEscrow,
  parties: Parties,
  caseIds: readonly string[],
  accepted: readonly Accepted[],
): Promise<void> {
  for (const [n, id] of caseIds.entries()) {
    const c = await escrow.caseOf(id);
    expect(Number(c.status), `${label}: case ${id} (201) open on chain`).to.equal(OPEN);
    const [event] = await escrow.queryFilter(escrow.filters.CaseOpened(BigInt(id)));
    expect(event.args.terms.buyer, `${label}: case ${id} is the case opened as open-${n}`).to.equal(
      parties.buyer.address,
    );
  }
  for (const { request, submission } of accepted) {
    const now = engine.submission(submission.id)!;
    expect(
      { status: now.status, error: now.error },
      `${label}: ${JSON.stringify(request, (_, v) => (typeof v === "bigint" ? v.toString() : v))}`,
    ).to.deep.equal({
      status: "confirmed",
      error: null,
    });
  }
  for (const id of caseIds) {
    const signed = (await escrow.queryFilter(escrow.filters.SignedOff(BigInt(id)))).map(
      (e) => `${e.args.stage}:${e.args.role}`,
    );
    const deposits = (await escrow.queryFilter(escrow.filters.Deposited(BigInt(id)))).map((e) => `${e.args.payer}`);
    const wanted = accepted.filter((a) => a.request.caseId === id);
    const wantedSignOffs = wanted
      .filter((a) => a.request.kind === "approve")
      .map((a) => `0:${ROLE_INDEX[a.request.role]}`);
    // A request recorded but not answered before the kill may land too, once; an answered one must.
    expect(new Set(signed).size, `${label}, case ${id}: no sign-off twice (${signed})`).to.equal(signed.length);
    expect(signed, `${label}, case ${id}: every accepted sign-off on chain`).to.include.members(wantedSignOffs);
    expect(new Set(deposits).size, `${label}, case ${id}: no deposit twice (${deposits})`).to.equal(deposits.length);
    const wantedPayers = wanted
      .filter((a) => a.request.kind === "deposit")
      .map((a) => String(ROLE_INDEX[a.request.role]));
    expect(deposits, `${label}, case ${id}: every accepted deposit on chain`).to.include.members(wantedPayers);
  }
  expect(
    engine.relayer.outbox.list().filter((x) => x.status === "failed"),
    `${label}: nothing failed`,
  ).to.deep.equal([]);
}

/**
 * Issue 11 (the brief's finding 3): the server accepts exactly what the contract accepts. A 65-byte signature
 * with `v` = 0 or 1 passed the server's check and got 202; the contract refused it and the submission failed.
 *
 * viem, an EIP-712 implementation independent of the engine's ethers code, is the lawyer's wallet: it signs
 * the typed data the API hands out (`GET .../sign-offs/typed-data`), and each signature form is sent both
 * through the API and straight to the contract (`signOffWithSignatures` from an account the engine does not
 * use, each form on its own fresh case):
 *
 * - 65 bytes, v = 27/28: the contract's form. Accepted by both.
 * - 65 bytes, v = 0/1, and the 64-byte EIP-2098 compact form: the contract refuses them as they are, so the
 *   API turns them into the 65-byte v = 27/28 form (as viem's own `serializeSignature` writes it) and relays
 *   that; the contract accepts that form, and the API's submission lands.
 * - high s (n - s, v flipped: the same signer), a wrong length, another signer: the contract refuses them,
 *   and so does the API (400, 400, 403), submitting nothing.
 *
 * For each form the API's verdict is the contract's verdict on what the API relays.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import {
  parseSignature,
  serializeCompactSignature,
  serializeSignature,
  signatureToCompactSignature,
  type Hex,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import type { Submission } from "../../engine";
import { startApp, type AppHarness } from "./support/app-harness";

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const TITLE_CHECK = 4;
const LAWYER = 1;

interface Form {
  name: string;
  /** The form, made from viem's 65-byte v = 27/28 signature (or, for `by`, another account's). */
  make: (signature: Hex) => Hex;
  by?: "buyer";
  /** What the API must relay for it, when it takes it: the contract's own form. */
  relays?: (signature: Hex) => Hex;
}

const FORMS: Form[] = [
  { name: "65 bytes, v = 27/28", make: (s) => s, relays: (s) => s },
  { name: "65 bytes, v = 0/1", make: (s) => withV(s, Number(parseSignature(s).v) - 27), relays: (s) => s },
  {
    name: "64 bytes, EIP-2098 compact",
    make: (s) => serializeCompactSignature(signatureToCompactSignature(parseSignature(s))),
    relays: (s) => s,
  },
  { name: "65 bytes, high s", make: highS },
  { name: "66 bytes", make: (s) => `${s}00` as Hex },
  { name: "63 bytes", make: (s) => s.slice(0, -4) as Hex },
  { name: "another signer's", make: (s) => s, by: "buyer" },
];

function withV(signature: Hex, v: number): Hex {
  return `${signature.slice(0, 130)}${v.toString(16).padStart(2, "0")}` as Hex;
}

function highS(signature: Hex): Hex {
  const { r, s, v } = parseSignature(signature);
  const flipped = SECP256K1_N - BigInt(s);
  // Written by hand: viem's serializeSignature would refuse or normalise it.
  return `${r}${flipped.toString(16).padStart(64, "0")}${(Number(v) === 27 ? 28 : 27).toString(16)}` as Hex;
}

describe("server: every signature form, through the API and the contract (issue 11, finding 3)", function () {
  this.timeout(120_000);
  let h: AppHarness;
  before(async function () {
    h = await startApp();
  });
  after(async function () {
    await h?.close();
  });

  const viemAccount = (who: "lawyer" | "buyer") => privateKeyToAccount(h.wallets[who].privateKey as Hex);

  /** viem signs the typed data that the API gave the lawyer for the case's title check. */
  async function signedByViem(
    caseId: string,
    who: "lawyer" | "buyer",
  ): Promise<{ signature: Hex; message: Record<string, unknown> }> {
    const typed = await h.request("lawyer", "GET", `/cases/${caseId}/stages/title-check/sign-offs/typed-data`);
    expect(typed.status, JSON.stringify(typed.body)).to.equal(200);
    const { domain, types, primaryType, message } = typed.body;
    const signature = await viemAccount(who).signTypedData({
      domain: { ...domain, chainId: BigInt(domain.chainId) },
      types,
      primaryType,
      message: { ...message, caseId: BigInt(message.caseId) },
    });
    return { signature, message };
  }

  async function settled(id: number): Promise<Submission> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const s = h.engine.submission(id)!;
      if (s.status === "confirmed" || s.status === "failed") return s;
      if (Date.now() > deadline) throw new Error(`submission ${id} is still ${s.status}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** The contract's verdict on `signature` for the lawyer's title check of `caseId`: sent by account 10, which the engine never uses. */
  async function contractVerdict(caseId: string, signature: Hex): Promise<boolean> {
    const [, , , , , , , , , , outsider] = await ethers.getSigners();
    const escrow = new ethers.Contract(
      h.escrowAddress,
      [
        "function signOffWithSignatures((uint256 caseId, uint8 stage, uint8 role, uint8 epoch, bytes32 evidence, bytes signature)[] items)",
        "function signOffEpoch(uint256 caseId, uint8 stage, uint8 role) view returns (uint8)",
        "event SignOffSkipped(uint256 indexed caseId, uint8 indexed stage, uint8 indexed role, uint256 index, uint8 reason)",
      ],
      outsider,
    );
    const tx = await escrow.signOffWithSignatures([
      { caseId, stage: TITLE_CHECK, role: LAWYER, epoch: 0, evidence: ethers.ZeroHash, signature },
    ]);
    const receipt = await tx.wait();
    const skipped = receipt!.logs.some(
      (log: { address: string; topics: readonly string[]; data: string }) =>
        escrow.interface.parseLog(log)?.name === "SignOffSkipped",
    );
    return !skipped;
  }

  async function signedOnChain(caseId: string): Promise<boolean> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const p = (await h.request("lawyer", "GET", `/cases/${caseId}`)).body;
      if (p.stages[TITLE_CHECK].signedOff.includes("lawyer")) return true;
      if (Date.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  for (const form of FORMS) {
    it(`gives the contract's verdict on a signature of ${form.name}`, async function () {
      const [viaApi, viaContract] = [await h.openCase(), await h.openCase()];

      // Straight to the contract, as the wallet wrote it, and as the contract's own form.
      const direct = await signedByViem(viaContract, form.by ?? "lawyer");
      const contractTakesItAsIs = await contractVerdict(viaContract, form.make(direct.signature));

      const own = await signedByViem(viaApi, form.by ?? "lawyer");
      const sent = form.make(own.signature);
      const before = h.engine.relayer.outbox.list().length;
      const res = await h.request("lawyer", "POST", `/cases/${viaApi}/stages/title-check/sign-offs`, {
        signature: sent,
      });

      if (form.relays) {
        const relayed = form.relays(own.signature);
        expect(res.status, JSON.stringify(res.body)).to.equal(202);
        const submission = await settled(res.body.id);
        expect((submission.payload as { signature: string }).signature.toLowerCase(), "the form relayed").to.equal(
          relayed.toLowerCase(),
        );
        expect(
          serializeSignature(parseSignature(relayed)).toLowerCase(),
          "the contract's form, as viem writes it",
        ).to.equal(relayed.toLowerCase());
        expect(submission.status, JSON.stringify(submission.error)).to.equal("confirmed");
        expect(await signedOnChain(viaApi), "signed off on chain").to.equal(true);
        // What the contract says of the form the API relays is what the API answered.
        const other = await h.openCase();
        expect(
          await contractVerdict(other, form.relays((await signedByViem(other, "lawyer")).signature)),
          "the contract takes the relayed form",
        ).to.equal(true);
        if (sent !== relayed)
          expect(
            contractTakesItAsIs,
            "the contract refuses the form as the wallet wrote it (why the API rewrites it)",
          ).to.equal(false);
      } else {
        expect(contractTakesItAsIs, "the contract refuses it").to.equal(false);
        expect(res.status, JSON.stringify(res.body)).to.equal(form.by ? 403 : 400);
        expect(res.body.error.message).to.be.a("string").and.not.equal("");
        if (!form.by) expect(res.body.error.code).to.equal("VALIDATION_FAILED");
        else expect(res.body.error.details.reason).to.equal("BAD_SIGNATURE");
        expect(h.engine.relayer.outbox.list().length, "nothing submitted").to.equal(before);
      }
    });
  }

  it("names why a high-s signature is refused", async function () {
    const caseId = await h.openCase();
    const { signature } = await signedByViem(caseId, "lawyer");
    const res = await h.request("lawyer", "POST", `/cases/${caseId}/stages/title-check/sign-offs`, {
      signature: highS(signature),
    });
    expect(res.status).to.equal(400);
    expect(JSON.stringify(res.body.error)).to.match(/high s|high-s/i);
  });

  it("relays a revocation signed by viem with v = 0/1 in the contract's form", async function () {
    const caseId = await h.openCase();
    const signed = await h.request("lawyer", "POST", `/cases/${caseId}/stages/title-check/sign-offs`, {});
    expect((await settled(signed.body.id)).status).to.equal("confirmed");
    expect(await signedOnChain(caseId)).to.equal(true);
    const typed = (
      await h.request("lawyer", "GET", `/cases/${caseId}/stages/title-check/sign-offs/typed-data?purpose=revoke`)
    ).body;
    const signature = await viemAccount("lawyer").signTypedData({
      domain: { ...typed.domain, chainId: BigInt(typed.domain.chainId) },
      types: typed.types,
      primaryType: typed.primaryType,
      message: { ...typed.message, caseId: BigInt(typed.message.caseId) },
    });
    const res = await h.request("lawyer", "DELETE", `/cases/${caseId}/stages/title-check/sign-offs`, {
      signature: withV(signature, Number(parseSignature(signature).v) - 27),
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    const submission = await settled(res.body.id);
    expect(submission.status, JSON.stringify(submission.error)).to.equal("confirmed");
  });
});

import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { IMortgageEscrow, MortgageEscrow } from "../../typechain-types";
import { REVOKE_TYPES, SIGN_OFF_TYPES, escrowDomain } from "../../engine/chain/typed-data";

/** Role indexes as the contract numbers them (`IMortgageEscrow.Role`). */
export const Role = { Bank: 0, Lawyer: 1, Buyer: 2, Seller: 3 } as const;
export type RoleName = keyof typeof Role;
export const Action = { None: 0, RequireFunding: 1, Release: 2 } as const;
export const CaseStatus = { None: 0, Open: 1, Completed: 2, Expired: 3, Cancelled: 4 } as const;
export const StageStatus = {
  Locked: 0,
  Open: 1,
  WaitingForTime: 2,
  WaitingForFunds: 3,
  Completed: 4,
  Overdue: 5,
  Expired: 6,
  Cancelled: 7,
} as const;
export const SkipReason = {
  AlreadySignedOff: 0,
  StaleEpoch: 1,
  CaseNotOpen: 2,
  InvalidSignature: 3,
  RoleNotRequired: 4,
} as const;

export const DAY = 24 * 60 * 60;

export type StageRule = IMortgageEscrow.StageRuleStruct;

/** A role mask from role names: `roles("Bank", "Buyer")`. */
export function roles(...names: RoleName[]): number {
  return names.reduce((mask, name) => mask | (1 << Role[name]), 0);
}

/** A stage mask from stage indexes: `stages(0, 2)`. */
export function stages(...indexes: number[]): number {
  return indexes.reduce((mask, i) => mask | (1 << i), 0);
}

/** A stage rule with defaults for everything not given. */
export function rule(partial: Partial<StageRule> & { roles: number }): StageRule {
  return {
    prerequisites: 0,
    waitSeconds: 0,
    deadlineSeconds: 0,
    deadlineAnchor: 0,
    action: Action.None,
    binding: false,
    longStopSeconds: 0,
    ...partial,
  };
}

/**
 * A small purchase used across the contract tests:
 * 0 agreement (buyer, seller) -> 1 exchange (lawyer, buyer; binding; 3 days after 0) ->
 * 2 completion (bank, lawyer; releases; within 60 days of opening) ->
 * 3 registration (lawyer; within 14 days of completion).
 */
export const SMALL_PURCHASE: StageRule[] = [
  rule({ roles: roles("Buyer", "Seller") }),
  rule({ roles: roles("Lawyer", "Buyer"), prerequisites: stages(0), waitSeconds: 3 * DAY, binding: true }),
  rule({ roles: roles("Bank", "Lawyer"), prerequisites: stages(1), action: Action.Release, deadlineSeconds: 60 * DAY }),
  rule({ roles: roles("Lawyer"), prerequisites: stages(2), deadlineSeconds: 14 * DAY, deadlineAnchor: 3 }),
];

/**
 * The US purchase of shared/reference/mortgage-stages.md, as the gas benchmark runs it:
 * 0 application, 1 loan estimate (within 3 days of 0), 2 rate lock, 3 appraisal, 4 title, 5 underwriting,
 * 6 clear to close, 7 closing disclosure, 8 consummation (3 days after 7), 9 funding (releases; within 60 days
 * of the rate lock, and a long-stop of 120 days from the opening: the rate lock may never be signed), 10 recording.
 */
export const US_PURCHASE: StageRule[] = [
  rule({ roles: roles("Buyer", "Bank") }),
  rule({ roles: roles("Bank"), prerequisites: stages(0), deadlineSeconds: 3 * DAY, deadlineAnchor: 1 }),
  rule({ roles: roles("Bank", "Buyer"), prerequisites: stages(1) }),
  rule({ roles: roles("Bank"), prerequisites: stages(2) }),
  rule({ roles: roles("Lawyer"), prerequisites: stages(2) }),
  rule({ roles: roles("Bank"), prerequisites: stages(2) }),
  rule({ roles: roles("Bank"), prerequisites: stages(3, 4, 5) }),
  rule({ roles: roles("Bank", "Buyer"), prerequisites: stages(6) }),
  rule({ roles: roles("Buyer", "Seller", "Lawyer"), prerequisites: stages(7), waitSeconds: 2 * DAY, binding: true }),
  rule({
    roles: roles("Bank", "Lawyer"),
    prerequisites: stages(8),
    action: Action.Release,
    deadlineSeconds: 60 * DAY,
    deadlineAnchor: 3,
    longStopSeconds: 120 * DAY,
  }),
  rule({ roles: roles("Lawyer"), prerequisites: stages(9), deadlineSeconds: 90 * DAY, deadlineAnchor: 10 }),
];

export interface Parties {
  admin: HardhatEthersSigner;
  bank: HardhatEthersSigner;
  lawyer: HardhatEthersSigner;
  buyer: HardhatEthersSigner;
  seller: HardhatEthersSigner;
  stranger: HardhatEthersSigner;
  relayer: HardhatEthersSigner;
}

export async function getParties(): Promise<Parties> {
  const [admin, bank, lawyer, buyer, seller, stranger, relayer] = await ethers.getSigners();
  return { admin, bank, lawyer, buyer, seller, stranger, relayer };
}

export function partyFor(parties: Parties, role: RoleName): HardhatEthersSigner {
  return { Bank: parties.bank, Lawyer: parties.lawyer, Buyer: parties.buyer, Seller: parties.seller }[role];
}

export const DEFINITION_HASH = ethers.id("small-purchase@1");

/** `IMortgageEscrow.AmendmentRules`: the safe default, every party's consent to every kind, nothing re-opened. */
export const EVERY_PARTY: IMortgageEscrow.AmendmentRulesStruct = {
  deadlineConsent: 0xf,
  termsConsent: 0xf,
  partyConsent: 0xf,
  reopenedByTerms: 0,
};

export interface Terms {
  price: bigint;
  deposit: bigint;
  loan: bigint;
  asset?: string;
}

export const DEFAULT_TERMS: Terms = {
  price: ethers.parseEther("100"),
  deposit: ethers.parseEther("20"),
  loan: ethers.parseEther("80"),
};

/** Registers `rules` and returns the template id (read from the event, not recomputed). */
export async function registerTemplate(
  escrow: MortgageEscrow,
  admin: HardhatEthersSigner,
  rules: StageRule[],
  definitionHash = DEFINITION_HASH,
  amendments: IMortgageEscrow.AmendmentRulesStruct = EVERY_PARTY,
): Promise<string> {
  const id = await escrow.connect(admin).registerTemplate.staticCall(definitionHash, rules, amendments);
  await (await escrow.connect(admin).registerTemplate(definitionHash, rules, amendments)).wait();
  return id;
}

export function caseTerms(
  parties: Parties,
  templateId: string,
  terms: Terms = DEFAULT_TERMS,
): IMortgageEscrow.CaseTermsStruct {
  return {
    templateId,
    bank: parties.bank.address,
    lawyer: parties.lawyer.address,
    buyer: parties.buyer.address,
    seller: parties.seller.address,
    asset: terms.asset ?? ethers.ZeroAddress,
    price: terms.price,
    deposit: terms.deposit,
    loan: terms.loan,
  };
}

/** Opens a case as its bank and returns its id. */
export async function openCase(
  escrow: MortgageEscrow,
  parties: Parties,
  templateId: string,
  terms: Terms = DEFAULT_TERMS,
): Promise<bigint> {
  const t = caseTerms(parties, templateId, terms);
  const id = await escrow.connect(parties.bank).openCase.staticCall(t);
  await (await escrow.connect(parties.bank).openCase(t)).wait();
  return id;
}

/** Deploys the escrow, registers SMALL_PURCHASE and opens one ETH case: the fixture most tests start from. */
export async function deployWithCase() {
  const parties = await getParties();
  const escrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
  const templateId = await registerTemplate(escrow, parties.admin, SMALL_PURCHASE);
  const caseId = await openCase(escrow, parties, templateId);
  return { escrow, parties, templateId, caseId };
}

/** Deploys the escrow with SMALL_PURCHASE registered and no case. */
export async function deployWithTemplate() {
  const parties = await getParties();
  const escrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
  const templateId = await registerTemplate(escrow, parties.admin, SMALL_PURCHASE);
  return { escrow, parties, templateId };
}

/** Signs the EIP-712 sign-off message with `signer` (its own wallet, off chain). */
export async function signSignOff(
  escrow: MortgageEscrow,
  signer: HardhatEthersSigner,
  message: { caseId: bigint; stage: number; role: number; epoch: number; evidence: string },
): Promise<string> {
  const { chainId } = await ethers.provider.getNetwork();
  return signer.signTypedData(escrowDomain(chainId, await escrow.getAddress()), SIGN_OFF_TYPES, message);
}

/** Signs the EIP-712 revocation message with `signer`. */
export async function signRevocation(
  escrow: MortgageEscrow,
  signer: HardhatEthersSigner,
  message: { caseId: bigint; stage: number; role: number; epoch: number },
): Promise<string> {
  const { chainId } = await ethers.provider.getNetwork();
  return signer.signTypedData(escrowDomain(chainId, await escrow.getAddress()), REVOKE_TYPES, message);
}

/** A sign-off signed by the party for `role`, ready for `signOffWithSignatures`. */
export async function signedItem(
  escrow: MortgageEscrow,
  parties: Parties,
  caseId: bigint,
  stage: number,
  role: RoleName,
  evidence = ethers.id(`evidence ${caseId} ${stage} ${role}`),
  epoch = 0,
): Promise<IMortgageEscrow.SignedSignOffStruct> {
  const message = { caseId, stage, role: Role[role], epoch, evidence };
  const signature = await signSignOff(escrow, partyFor(parties, role), message);
  return { ...message, signature };
}

export const EVIDENCE = ethers.id("document-hash-with-salt");

/** `IMortgageEscrow.AmendmentKind` and `ConsentSkipReason`, as the contract numbers them. */
export const AmendmentKind = { Deadline: 0, Terms: 1, Party: 2 } as const;
export const ConsentSkip = {
  CaseNotOpen: 0,
  UnknownAmendment: 1,
  AlreadyApplied: 2,
  Superseded: 3,
  Expired: 4,
  AlreadyReleased: 5,
  RoleNotRequired: 6,
  AlreadyConsented: 7,
  StaleEpoch: 8,
  InvalidSignature: 9,
} as const;

/** The EIP-712 consent message (`MortgageEscrow.CONSENT_TYPEHASH`). */
export const CONSENT_TYPES = {
  Consent: [
    { name: "caseId", type: "uint256" },
    { name: "amendment", type: "uint32" },
    { name: "kind", type: "uint8" },
    { name: "version", type: "uint16" },
    { name: "role", type: "uint8" },
    { name: "epoch", type: "uint8" },
  ],
};

export interface ConsentMessage {
  caseId: bigint;
  amendment: number;
  kind: number;
  version: number;
  role: number;
  epoch: number;
}

/** Signs the EIP-712 consent message with `signer`. */
export async function signConsent(
  escrow: MortgageEscrow,
  signer: HardhatEthersSigner,
  message: ConsentMessage,
): Promise<string> {
  const { chainId } = await ethers.provider.getNetwork();
  return signer.signTypedData(escrowDomain(chainId, await escrow.getAddress()), CONSENT_TYPES, message);
}

/** A proposal with every field zero but those given: `proposal({ kind: AmendmentKind.Deadline, ... })`. */
export function proposal(
  partial: Partial<IMortgageEscrow.AmendmentProposalStruct> & { kind: number; expiresAt: number },
): IMortgageEscrow.AmendmentProposalStruct {
  return {
    stage: 0,
    longStop: false,
    deadline: 0,
    price: 0n,
    deposit: 0n,
    loan: 0n,
    party: 0,
    account: ethers.ZeroAddress,
    ...partial,
  };
}

// ---------------------------------------------------------------- unit-test additions

/** OpenZeppelin AccessControl's admin role. */
export const DEFAULT_ADMIN_ROLE = ethers.ZeroHash;

/** `StageRule` as a tuple in the contract's field order, for `AbiCoder` and deep equality with views. */
export const STAGE_RULE_TUPLE =
  "tuple(uint8 roles,uint16 prerequisites,uint32 waitSeconds,uint32 deadlineSeconds,uint8 deadlineAnchor,uint8 action,bool binding,uint32 longStopSeconds)";

export function ruleTuple(r: StageRule): unknown[] {
  return [
    r.roles,
    r.prerequisites,
    r.waitSeconds,
    r.deadlineSeconds,
    r.deadlineAnchor,
    r.action,
    r.binding,
    r.longStopSeconds,
  ];
}

/** `AmendmentRules` as a tuple in the contract's field order. */
export const AMENDMENT_RULES_TUPLE =
  "tuple(uint8 deadlineConsent,uint8 termsConsent,uint8 partyConsent,uint16 reopenedByTerms)";

/** The template id as the interface defines it: `keccak256(abi.encode(definitionHash, stages, amendments))`. */
export function templateIdOf(
  definitionHash: string,
  rules: StageRule[],
  amendments: IMortgageEscrow.AmendmentRulesStruct = EVERY_PARTY,
): string {
  const encoded = ethers.AbiCoder.defaultAbiCoder().encode(
    ["bytes32", `${STAGE_RULE_TUPLE}[]`, AMENDMENT_RULES_TUPLE],
    [
      definitionHash,
      rules.map(ruleTuple),
      [amendments.deadlineConsent, amendments.termsConsent, amendments.partyConsent, amendments.reopenedByTerms],
    ],
  );
  return ethers.keccak256(encoded);
}

/**
 * A template where stages complete in a cascade:
 * 0 buyer -> 1 seller -> 2 role-less, after 0 and 1 -> 3 lawyer after 2 (releases; long-stop 90 days) ->
 * 4 role-less, 2 days after 3 (deadline 30 days after opening).
 */
export const CASCADE: StageRule[] = [
  rule({ roles: roles("Buyer") }),
  rule({ roles: roles("Seller") }),
  rule({ roles: 0, prerequisites: stages(0, 1) }),
  rule({ roles: roles("Lawyer"), prerequisites: stages(2), action: Action.Release, longStopSeconds: 90 * DAY }),
  rule({ roles: 0, prerequisites: stages(3), waitSeconds: 2 * DAY, deadlineSeconds: 30 * DAY }),
];

/** Deploys the escrow with CASCADE registered and one ETH case open. */
export async function deployWithCascadeCase() {
  const parties = await getParties();
  const escrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
  const templateId = await registerTemplate(escrow, parties.admin, CASCADE, ethers.id("cascade@1"));
  const caseId = await openCase(escrow, parties, templateId);
  return { escrow, parties, templateId, caseId };
}

/** Deploys the escrow, a mock ERC-20 with balances for bank and buyer, and one SMALL_PURCHASE case in it. */
export async function deployWithTokenCase() {
  const parties = await getParties();
  const escrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
  const token = await ethers.deployContract("MockERC20", ["Pound Token", "GBPT"]);
  const templateId = await registerTemplate(escrow, parties.admin, SMALL_PURCHASE);
  const terms = { ...DEFAULT_TERMS, asset: await token.getAddress() };
  const caseId = await openCase(escrow, parties, templateId, terms);
  for (const payer of [parties.bank, parties.buyer]) {
    await token.mint(payer.address, ethers.parseEther("1000"));
    await token.connect(payer).approve(await escrow.getAddress(), ethers.MaxUint256);
  }
  return { escrow, parties, templateId, caseId, token, terms };
}

/** Signs off `stage` directly as each of `roleNames`, each by its own party. */
export async function signStage(
  escrow: MortgageEscrow,
  parties: Parties,
  caseId: bigint,
  stage: number,
  ...roleNames: RoleName[]
): Promise<void> {
  for (const name of roleNames) {
    await (await escrow.connect(partyFor(parties, name)).signOff(caseId, stage, Role[name], EVIDENCE)).wait();
  }
}

/** Pays both shares of an ETH case in full (buyer first, then bank). */
export async function fundCase(
  escrow: MortgageEscrow,
  parties: Parties,
  caseId: bigint,
  terms: Terms = DEFAULT_TERMS,
): Promise<void> {
  if (terms.deposit > 0n)
    await escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, terms.deposit, { value: terms.deposit });
  if (terms.loan > 0n) await escrow.connect(parties.bank).deposit(caseId, Role.Bank, terms.loan, { value: terms.loan });
}

/**
 * Walks a SMALL_PURCHASE case to the moment before its release: stages 0 and 1 complete (1 is binding),
 * both shares paid, the bank's sign-off of stage 2 in; only the lawyer's sign-off of stage 2 is missing.
 */
export async function walkSmallPurchaseToRelease(
  escrow: MortgageEscrow,
  parties: Parties,
  caseId: bigint,
): Promise<void> {
  await signStage(escrow, parties, caseId, 0, "Buyer", "Seller");
  await signStage(escrow, parties, caseId, 1, "Lawyer", "Buyer");
  await time.increase(3 * DAY);
  await (await escrow.advance(caseId)).wait();
  await fundCase(escrow, parties, caseId);
  await signStage(escrow, parties, caseId, 2, "Bank");
}

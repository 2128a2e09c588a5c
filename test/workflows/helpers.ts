import type { StageRule, WorkflowInput } from "../../workflows";

/** `IMortgageEscrow.StageRule` as an ABI tuple, field for field: what the compiler's encoding must equal. */
export const STAGE_RULE_ABI =
  "tuple(uint8 roles,uint16 prerequisites,uint32 waitSeconds,uint32 deadlineSeconds,uint8 deadlineAnchor,uint8 action,bool binding,uint32 longStopSeconds)";

/** A rule's fields in the tuple's order (numbers from the chain's bigints). */
export function ruleFields(r: StageRule | { [K in keyof StageRule]: unknown }): unknown[] {
  const n = (v: unknown) => (typeof v === "bigint" ? Number(v) : v);
  return [
    r.roles,
    r.prerequisites,
    r.waitSeconds,
    r.deadlineSeconds,
    r.deadlineAnchor,
    r.action,
    r.binding,
    r.longStopSeconds,
  ].map(n);
}

/** A role mask of role indexes (bank 0, lawyer 1, buyer 2, seller 3). */
export const roles = (...r: number[]) => r.reduce((mask, role) => mask | (1 << role), 0);

/** A stage rule with nothing but what is given: no prerequisite, wait, deadline, action or long-stop. */
export const rule = (r: Partial<StageRule> & { roles: number }): StageRule => ({
  prerequisites: 0,
  waitSeconds: 0,
  deadlineSeconds: 0,
  deadlineAnchor: 0,
  action: 0,
  binding: false,
  longStopSeconds: 0,
  ...r,
});

type StageInput = WorkflowInput["stages"][number];

/**
 * A small valid definition that the validator tests break one way at a time:
 * agreement (buyer, seller) -> exchange (lawyer, buyer; 3 days after; binding) ->
 * completion (bank, lawyer; releases; within 60 days of opening) -> registration (lawyer; within 14 days of completion).
 */
export function smallPurchase(): WorkflowInput {
  return {
    id: "small-purchase",
    version: 1,
    jurisdiction: "England and Wales",
    calendar: "england-and-wales",
    title: "Small purchase",
    roles: { bank: "Lender", lawyer: "Conveyancer", buyer: "Buyer", seller: "Seller" },
    stages: [
      { id: "agreement", title: "Sale agreed", signedBy: ["buyer", "seller"] },
      {
        id: "exchange",
        title: "Exchange",
        signedBy: ["lawyer", "buyer"],
        after: ["agreement"],
        wait: "3 days",
        binding: true,
      },
      {
        id: "completion",
        title: "Completion",
        signedBy: ["bank", "lawyer"],
        after: ["exchange"],
        action: "release",
        deadline: { within: "60 days", from: "opening" },
      },
      {
        id: "registration",
        title: "Registration",
        signedBy: ["lawyer"],
        after: ["completion"],
        deadline: { within: "14 days", from: "completion" },
      },
    ],
  };
}

/** `smallPurchase()` with the stage `id` changed by `change`. */
export function withStage(
  id: string,
  change: (stage: StageInput) => StageInput,
  base = smallPurchase(),
): WorkflowInput {
  return { ...base, stages: base.stages.map((s) => (s.id === id ? change({ ...s }) : s)) };
}

/** A chain of `count` stages, each signed by the lawyer after the one before; the last releases, within a year's long-stop. */
export function chainOf(count: number, stage: (i: number) => Partial<StageInput> = () => ({})): WorkflowInput {
  return {
    ...smallPurchase(),
    id: "chain",
    longStop: { within: "365 days", basis: "a test chain's outer limit" },
    stages: Array.from({ length: count }, (_, i) => ({
      id: `s${i + 1}`,
      title: `Stage ${i + 1}`,
      signedBy: ["lawyer" as const],
      after: i === 0 ? [] : [`s${i}`],
      action: i === count - 1 ? ("release" as const) : ("none" as const),
      ...stage(i),
    })),
  };
}

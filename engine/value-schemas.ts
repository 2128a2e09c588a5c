/**
 * The zod schemas of the values a case is made of (a role, an address, an amount, an instant), for the
 * engine's own shapes (a case's progress, a request to open one) and for the server, which builds its
 * request and answer schemas, and so its OpenAPI document, from the same ones: a value is described once.
 */
import { ZeroAddress, getAddress, isAddress } from "ethers";
import { z } from "zod";
import { ROLE_NAMES } from "../workflows/schema";

export const RoleName = z.enum(ROLE_NAMES).describe("A party's role in a case.");

export const Address = z
  .string()
  .refine((a) => isAddress(a), { message: "must be a 20-byte hex address (0x followed by 40 hex digits)" })
  .describe("An EVM address, 0x-prefixed.");

const UINT256_MAX = (1n << 256n) - 1n;
export const Amount = z
  .string()
  .regex(/^\d{1,78}$/, "must be a decimal string of an integer in the asset's smallest unit")
  .refine((a) => !/^\d{1,78}$/.test(a) || BigInt(a) <= UINT256_MAX, { message: "must fit in 256 bits" })
  .describe("An amount: a decimal string of an integer in the asset's smallest unit (wei for ETH).");

export const IsoTime = z.string().describe("An instant, ISO 8601 in UTC.");

/** A party's address: never the zero address, which the contract refuses (`MortgageEscrowZeroParty`). */
export const PartyAddress = Address.refine((a) => !isAddress(a) || getAddress(a) !== ZeroAddress, {
  message: "must not be the zero address",
}).describe("An EVM address, 0x-prefixed; not the zero address.");

/** The one address per role that a case names. */
export const CaseParties = z.strictObject({
  bank: PartyAddress,
  lawyer: PartyAddress,
  buyer: PartyAddress,
  seller: PartyAddress,
});

const UINT96_MAX = (1n << 96n) - 1n;
const isAmount = (a: string) => /^\d{1,78}$/.test(a);

/** An amount the escrow can hold: it keeps them in 96 bits. */
export const EscrowAmount = Amount.refine((a) => !isAmount(a) || BigInt(a) <= UINT96_MAX, {
  message: "is larger than the escrow holds (2^96 - 1)",
}).describe("An amount: a decimal string of an integer in the asset's smallest unit (wei for ETH), at most 2^96 - 1.");

/** A case's amounts, with the contract's rule that the two shares cover the price (`MortgageEscrowPriceExceedsShares`). */
export const CaseTerms = z
  .strictObject({ price: EscrowAmount, deposit: EscrowAmount, loan: EscrowAmount })
  .superRefine((terms, ctx) => {
    if (![terms.price, terms.deposit, terms.loan].every(isAmount)) return;
    const [price, deposit, loan] = [BigInt(terms.price), BigInt(terms.deposit), BigInt(terms.loan)];
    if (price > deposit + loan) {
      ctx.addIssue({
        code: "custom",
        path: ["price"],
        message: `is ${price}: it must be at most the deposit plus the loan (${deposit} + ${loan} = ${deposit + loan})`,
      });
    }
  });

/**
 * The zod schemas of the values a case is made of (a role, an address, an amount, an instant), for the
 * engine's own shapes (a case's progress, a request to open one) and for the server, which builds its
 * request and answer schemas, and so its OpenAPI document, from the same ones: a value is described once.
 */
import { isAddress } from "ethers";
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

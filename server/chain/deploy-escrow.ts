/**
 * Puts the escrow on a chain: deploys `MortgageEscrow` (the bytecode of typechain's factory, from this
 * project's Hardhat compile) with the signer as its admin, and registers the compiled workflow templates.
 * Used by `npm run deploy` (any node by URL) and by `npm start` (its embedded chain).
 *
 * Registering is idempotent: a template the escrow already holds is skipped (`isTemplateRegistered`), so running
 * it again, or after a new template file was added, only registers what is missing.
 */
import type { Provider, Signer } from "ethers";
import { type CompiledWorkflow, loadTemplates } from "../../workflows";
import { MortgageEscrow__factory } from "../../typechain-types";

export interface TemplateRegistration {
  workflow: string;
  version: number;
  templateId: string;
  /** "registered" by this run, or "already" there. */
  outcome: "registered" | "already";
  /** The registering transaction, when this run sent one. */
  txHash: string | null;
}

export interface EscrowDeployment {
  chainId: number;
  address: string;
  /** The block the escrow was deployed in: where the engine starts following. */
  block: number;
  txHash: string;
  admin: string;
}

/** Deploys the escrow with `admin` (default: the signer) as its administrator; resolves once it is mined. */
export async function deployEscrow(
  signer: Signer,
  options: { admin?: string; confirmations?: number } = {},
): Promise<EscrowDeployment> {
  const provider = signer.provider;
  if (!provider) throw new Error("deployEscrow: the signer needs a provider");
  const admin = options.admin ?? (await signer.getAddress());
  const chainId = Number((await provider.getNetwork()).chainId);
  const escrow = await new MortgageEscrow__factory(signer).deploy(admin);
  const tx = escrow.deploymentTransaction()!;
  const receipt = await tx.wait(options.confirmations ?? 1);
  if (!receipt || receipt.status !== 1 || !receipt.contractAddress)
    throw new Error(`the deployment transaction ${tx.hash} failed`);
  return { chainId, address: receipt.contractAddress, block: receipt.blockNumber, txHash: tx.hash, admin };
}

/**
 * Registers every template that the escrow at `address` does not hold yet, one transaction each (waiting for
 * each receipt, so nonces follow one another without any cache to trust). The signer must be the admin.
 */
export async function registerTemplates(
  signer: Signer,
  address: string,
  options: { workflows?: readonly CompiledWorkflow[]; confirmations?: number } = {},
): Promise<TemplateRegistration[]> {
  const escrow = MortgageEscrow__factory.connect(address, signer);
  const results: TemplateRegistration[] = [];
  for (const compiled of options.workflows ?? loadTemplates()) {
    const base = {
      workflow: compiled.workflow.id,
      version: compiled.workflow.version,
      templateId: compiled.templateId,
    };
    if (await escrow.isTemplateRegistered(compiled.templateId)) {
      results.push({ ...base, outcome: "already", txHash: null });
      continue;
    }
    const tx = await escrow.registerTemplate(compiled.definitionHash, compiled.stages, compiled.amendmentRules);
    const receipt = await tx.wait(options.confirmations ?? 1);
    if (!receipt || receipt.status !== 1) throw new Error(`registering ${compiled.workflow.id} failed (${tx.hash})`);
    results.push({ ...base, outcome: "registered", txHash: tx.hash });
  }
  return results;
}

/** True if the chain holds contract code at `address` (false after the embedded chain lost its state). */
export async function hasCode(provider: Provider, address: string): Promise<boolean> {
  return (await provider.getCode(address)) !== "0x";
}

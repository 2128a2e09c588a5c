/**
 * `DATA_DIR/deployment.env`: what `npm run deploy` put on an external chain, written as the settings `npm start`
 * takes (`RPC_URL`, `ESCROW_ADDRESS`, `DEPLOYMENT_BLOCK`, `SIGNER_KEYSTORE`), so that a reader starts with
 * `set -a; . DATA_DIR/deployment.env; set +a` rather than copying numbers by hand. It is also the record that
 * stops a second `npm run deploy` from deploying a second escrow for the same folder.
 *
 * Shell syntax (single-quoted values, `#` comments), read back here without a shell.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const DEPLOYMENT_FILE = "deployment.env";

export interface DeploymentRecord {
  RPC_URL: string;
  ESCROW_ADDRESS: string;
  DEPLOYMENT_BLOCK: string;
  SIGNER_KEYSTORE: string;
}

const NAMES = ["RPC_URL", "ESCROW_ADDRESS", "DEPLOYMENT_BLOCK", "SIGNER_KEYSTORE"] as const;

export function deploymentFile(dataDir: string): string {
  return join(dataDir, DEPLOYMENT_FILE);
}

/** `'…'` with a single quote inside written as `'\''`: safe for any value in sh. */
function quote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

export function writeDeploymentRecord(dataDir: string, record: DeploymentRecord, comment: string[]): string {
  const file = deploymentFile(dataDir);
  const text = [
    ...comment.map((line) => `# ${line}`),
    ...NAMES.map((name) => `${name}=${quote(record[name])}`),
    "",
  ].join("\n");
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, text, { mode: 0o600 });
  renameSync(temporary, file);
  return file;
}

/** The record in `dataDir`, or null when there is none; a line it cannot read is named. */
export function readDeploymentRecord(dataDir: string): Partial<DeploymentRecord> | null {
  const file = deploymentFile(dataDir);
  if (!existsSync(file)) return null;
  const record: Partial<Record<string, string>> = {};
  for (const [index, line] of readFileSync(file, "utf8").split("\n").entries()) {
    if (line.trim() === "" || line.trim().startsWith("#")) continue;
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (!m) throw new Error(`${file}:${index + 1}: not NAME=value`);
    record[m[1]] = unquote(m[2]);
  }
  return record as Partial<DeploymentRecord>;
}

function unquote(value: string): string {
  let out = "";
  for (const m of value.matchAll(/'([^']*)'|\\(.)|([^'\\]+)/g)) out += m[1] ?? m[2] ?? m[3];
  return out;
}

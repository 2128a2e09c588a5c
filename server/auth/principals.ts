/**
 * Principals: who may call the API. Each is bound to one address (its party address in the cases, and the
 * key the engine signs with for it) and holds one bearer token. The token is random (`msk_` + 32 bytes,
 * base64url), shown once when the principal is added, and stored only as its sha256, so a copy of the
 * database gives no one a usable token. Revoking a principal stops its token at the next request.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { getAddress } from "ethers";
import { openServerDb, type Db } from "../store";

export const PRINCIPAL_ROLES = ["operator", "bank", "lawyer", "buyer", "seller"] as const;
export type PrincipalRole = (typeof PRINCIPAL_ROLES)[number];

export interface Principal {
  id: string;
  name: string;
  role: PrincipalRole;
  /** Checksummed. */
  address: string;
  createdAt: string;
  revokedAt: string | null;
}

export const TOKEN_PREFIX = "msk_";

interface PrincipalRow {
  id: string;
  name: string;
  role: PrincipalRole;
  address: string;
  created_at: string;
  revoked_at: string | null;
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

export function newToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString("base64url");
}

export class PrincipalStore {
  private readonly byTokenHash;
  private readonly insert;
  private readonly activeByAddress;

  /** `db` is the server's database (server/store.ts); `open` is the usual way in. */
  constructor(readonly db: Db) {
    this.byTokenHash = db.prepare<[string], PrincipalRow>(
      "SELECT id, name, role, address, created_at, revoked_at FROM principals WHERE token_hash = ?",
    );
    this.activeByAddress = db.prepare<[string], PrincipalRow>(
      "SELECT id, name, role, address, created_at, revoked_at FROM principals WHERE address = ? AND revoked_at IS NULL ORDER BY created_at, rowid",
    );
    this.insert = db.prepare(
      "INSERT INTO principals (id, name, role, address, token_hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, NULL)",
    );
  }

  /** DATA_DIR/server.sqlite, created and migrated if need be. */
  static open(file: string): PrincipalStore {
    return new PrincipalStore(openServerDb(file));
  }

  /** Adds a principal and returns it with its token: the only time the token is ever seen. */
  add(input: { name: string; role: PrincipalRole; address: string }): { principal: Principal; token: string } {
    if (!PRINCIPAL_ROLES.includes(input.role))
      throw new Error(`unknown role ${JSON.stringify(input.role)} (the roles are ${PRINCIPAL_ROLES.join(", ")})`);
    const name = input.name.trim();
    if (name === "") throw new Error("a principal needs a name");
    let address: string;
    try {
      address = getAddress(input.address);
    } catch {
      throw new Error(`not an address: ${JSON.stringify(input.address)}`);
    }
    if (this.findRow("name = ?", name)) throw new Error(`a principal named ${JSON.stringify(name)} already exists`);
    const token = newToken();
    const principal: Principal = {
      id: `prn_${randomUUID().replace(/-/g, "").slice(0, 16)}`,
      name,
      role: input.role,
      address,
      createdAt: new Date().toISOString(),
      revokedAt: null,
    };
    this.insert.run(
      principal.id,
      principal.name,
      principal.role,
      principal.address,
      hashToken(token),
      principal.createdAt,
    );
    return { principal, token };
  }

  /** The principal holding `token`, or null if the token is unknown or its principal revoked. */
  authenticate(token: string): Principal | null {
    if (!token.startsWith(TOKEN_PREFIX)) return null;
    const row = this.byTokenHash.get(hashToken(token));
    if (!row || row.revoked_at !== null) return null;
    return toPrincipal(row);
  }

  /**
   * Revokes the principal with this id or name, or every active principal bound to this address; returns
   * the (first) one revoked, or null if none matched (or it was revoked already).
   */
  revoke(idOrAddressOrName: string): Principal | null {
    const needle = idOrAddressOrName.trim();
    let rows = this.db
      .prepare<[string, string], PrincipalRow>(
        "SELECT id, name, role, address, created_at, revoked_at FROM principals WHERE (id = ? OR name = ?) AND revoked_at IS NULL",
      )
      .all(needle, needle);
    if (rows.length === 0 && /^0x[0-9a-fA-F]{40}$/.test(needle)) {
      rows = this.db
        .prepare<[string], PrincipalRow>(
          "SELECT id, name, role, address, created_at, revoked_at FROM principals WHERE address = ? AND revoked_at IS NULL",
        )
        .all(getAddress(needle.toLowerCase()));
    }
    if (rows.length === 0) return null;
    const at = new Date().toISOString();
    const mark = this.db.prepare("UPDATE principals SET revoked_at = ? WHERE id = ?");
    this.db.transaction(() => {
      for (const row of rows) mark.run(at, row.id);
    })();
    return { ...toPrincipal(rows[0]), revokedAt: at };
  }

  /** Every principal, revoked ones included, oldest first. */
  list(): Principal[] {
    return this.db
      .prepare<[], PrincipalRow>(
        "SELECT id, name, role, address, created_at, revoked_at FROM principals ORDER BY created_at, rowid",
      )
      .all()
      .map(toPrincipal);
  }

  /** The active principals bound to `address` (any letter case), oldest first. */
  activeAt(address: string): Principal[] {
    let checksummed: string;
    try {
      checksummed = getAddress(address.toLowerCase());
    } catch {
      return [];
    }
    return this.activeByAddress.all(checksummed).map(toPrincipal);
  }

  /** The principal with this id (revoked or not), or null. */
  get(id: string): Principal | null {
    const row = this.findRow("id = ?", id);
    return row ? toPrincipal(row) : null;
  }

  close(): void {
    this.db.close();
  }

  private findRow(where: string, value: string): PrincipalRow | undefined {
    return this.db
      .prepare<[string], PrincipalRow>(
        `SELECT id, name, role, address, created_at, revoked_at FROM principals WHERE ${where}`,
      )
      .get(value);
  }
}

function toPrincipal(row: PrincipalRow): Principal {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    address: row.address,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  };
}

/**
 * The outbox's one migration: a fresh store gets the tables the relayer reads, and a store whose outbox a
 * pre-release engine laid out otherwise (its later migrations were folded into the first) is refused with a
 * message that says what to do, rather than read wrongly.
 */
import { expect } from "chai";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OUTBOX_MIGRATIONS, checkOutboxSchema } from "../../engine/relayer/outbox";
import { migrate, openDatabase } from "../../engine/store/database";

describe("engine/relayer/outbox: its tables", function () {
  it("creates, in a fresh store, the tables this relayer reads", function () {
    const db = openDatabase(join(mkdtempSync(join(tmpdir(), "outbox-schema-")), "engine.sqlite"), OUTBOX_MIGRATIONS);
    expect(() => checkOutboxSchema(db)).to.not.throw();
    db.close();
  });

  it("refuses an outbox laid out by a pre-release engine, saying what to do", function () {
    const db = openDatabase(join(mkdtempSync(join(tmpdir(), "outbox-schema-")), "engine.sqlite"), []);
    db.exec(`
      INSERT INTO schema_migrations VALUES ('relayer-1-outbox', 0);
      CREATE TABLE relayer_submissions (id INTEGER PRIMARY KEY, idempotency_key TEXT, payload TEXT);
      CREATE TABLE relayer_transactions (id INTEGER PRIMARY KEY, tx_hash TEXT);
    `);
    migrate(db, OUTBOX_MIGRATIONS);
    expect(() => checkOutboxSchema(db)).to.throw(/written by a pre-release engine .* fresh data folder/);
    db.close();
  });
});

import { expect } from "chai";
import { Wallet } from "ethers";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEV_KEYSTORE_PASSWORD, DEV_SCRYPT_N, Keystore, keystorePassword } from "../../server/keys/keystore";
import { StartError } from "../../server/settings";

// Low scrypt cost in these tests for speed, as the embedded chain does for its public dev keys.
const FAST = { scryptN: DEV_SCRYPT_N };
const KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"; // dev account 1 (public)

describe("Keystore", function () {
  let dataDir: string;
  beforeEach(function () {
    dataDir = mkdtempSync(join(tmpdir(), "keystore-"));
  });

  it("saves a key as an encrypted JSON keystore named after its address, readable by its owner only", async function () {
    const keystore = new Keystore(dataDir, "pw");
    const wallet = new Wallet(KEY);
    const file = await keystore.save(wallet, FAST);
    expect(file).to.equal(join(dataDir, "keys", `${wallet.address}.json`));
    const json = JSON.parse(readFileSync(file, "utf8"));
    expect(json.address.toLowerCase()).to.equal(wallet.address.slice(2).toLowerCase());
    expect(readFileSync(file, "utf8")).not.to.contain(KEY.slice(2));
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    expect(keystore.addresses()).to.deep.equal([wallet.address]);
  });

  it("decrypts what it saved with the same password", async function () {
    const keystore = new Keystore(dataDir, "pw");
    await keystore.save(new Wallet(KEY), FAST);
    const [loaded] = await new Keystore(dataDir, "pw").loadAll();
    expect(loaded.privateKey).to.equal(KEY);
  });

  it("names the file and hints at the password when the password is wrong", async function () {
    const wallet = new Wallet(KEY);
    await new Keystore(dataDir, "right").save(wallet, FAST);
    const error = await new Keystore(dataDir, "wrong").load(wallet.address).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(StartError);
    expect((error as Error).message)
      .to.contain(`${wallet.address}.json`)
      .and.contain("wrong KEYSTORE_PASSWORD?");
  });

  it("names a damaged keystore file", async function () {
    const keystore = new Keystore(dataDir, "pw");
    const wallet = new Wallet(KEY);
    await keystore.save(wallet, FAST);
    writeFileSync(keystore.fileOf(wallet.address), "{ not json");
    const error = await keystore.load(wallet.address).then(
      () => null,
      (e: unknown) => e,
    );
    expect((error as Error).message).to.contain(`${wallet.address}.json: cannot decrypt`);
  });

  it("ignores files that are not <address>.json", async function () {
    const keystore = new Keystore(dataDir, "pw");
    await keystore.save(new Wallet(KEY), FAST);
    writeFileSync(join(keystore.dir, "notes.json"), "{}");
    writeFileSync(join(keystore.dir, "README"), "keys");
    expect(keystore.addresses()).to.have.length(1);
  });
});

describe("keystorePassword", function () {
  it("uses KEYSTORE_PASSWORD when it is set, with no warning", function () {
    expect(keystorePassword("s3cret", "external")).to.deep.equal({ password: "s3cret", warning: null });
  });

  it("falls back to the dev password on the embedded chain only, with a warning", function () {
    const embedded = keystorePassword(undefined, "embedded");
    expect(embedded.password).to.equal(DEV_KEYSTORE_PASSWORD);
    expect(embedded.warning).to.contain("KEYSTORE_PASSWORD is not set");
    expect(() => keystorePassword(undefined, "external")).to.throw(StartError, /^KEYSTORE_PASSWORD: is required/);
  });
});

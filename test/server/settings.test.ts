import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  SETTINGS,
  SETTING_NAMES,
  SettingsError,
  parseDeploySettings,
  parseSettings,
  settingsHelp,
} from "../../server/settings";

const ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    parseSettings(env, "/srv/app");
  } catch (error) {
    expect(error).to.be.instanceOf(SettingsError);
    return (error as SettingsError).problems;
  }
  expect.fail("the settings were accepted");
}

describe("parseSettings", function () {
  it("defaults to the embedded chain on 127.0.0.1:3000 with .data/ under the working folder", function () {
    const settings = parseSettings({}, "/srv/app");
    expect(settings).to.deep.include({
      port: 3000,
      host: "127.0.0.1",
      dataDir: "/srv/app/.data",
      logLevel: "info",
      rateLimitPerMinute: 600,
      confirmations: 1,
    });
    expect(settings.chain).to.deep.equal({ mode: "embedded" });
    expect(settings.keystorePassword).to.equal(undefined);
  });

  it("reads an external chain from RPC_URL, ESCROW_ADDRESS, SIGNER_KEYSTORE and KEYSTORE_PASSWORD", function () {
    const settings = parseSettings(
      {
        RPC_URL: "http://127.0.0.1:8545",
        ESCROW_ADDRESS: ADDRESS.toLowerCase(),
        SIGNER_KEYSTORE: "keys/relayer.json",
        KEYSTORE_PASSWORD: "pw",
        DEPLOYMENT_BLOCK: "7",
        PORT: "8080",
      },
      "/srv/app",
    );
    expect(settings.chain).to.deep.equal({
      mode: "external",
      rpcUrl: "http://127.0.0.1:8545",
      escrowAddress: ADDRESS,
      signerKeystore: "/srv/app/keys/relayer.json",
      deploymentBlock: 7,
    });
    expect(settings.port).to.equal(8080);
    expect(settings.keystorePassword).to.equal("pw");
  });

  it("treats an empty setting as not given", function () {
    expect(parseSettings({ RPC_URL: "", PORT: "" }, "/srv/app").chain.mode).to.equal("embedded");
  });

  it("names a wrong ESCROW_ADDRESS", function () {
    expect(
      problemsOf({
        RPC_URL: "http://127.0.0.1:8545",
        ESCROW_ADDRESS: "xyz",
        SIGNER_KEYSTORE: "k.json",
        KEYSTORE_PASSWORD: "p",
      }),
    ).to.deep.equal(["ESCROW_ADDRESS: must be a 20-byte hex address (0x followed by 40 hex digits)"]);
  });

  it("names an RPC_URL that is not an http(s) URL", function () {
    expect(problemsOf({ RPC_URL: "not-a-url" })[0]).to.match(/^RPC_URL: must be an http\(s\) URL/);
    expect(problemsOf({ RPC_URL: "ws://127.0.0.1:8545" })[0]).to.match(/^RPC_URL: /);
  });

  it("names every setting an external chain lacks", function () {
    const problems = problemsOf({ RPC_URL: "http://127.0.0.1:8545" });
    expect(problems.map((p) => p.split(":")[0])).to.deep.equal([
      "ESCROW_ADDRESS",
      "SIGNER_KEYSTORE",
      "KEYSTORE_PASSWORD",
    ]);
  });

  it("refuses external-only settings without RPC_URL, naming them", function () {
    expect(problemsOf({ ESCROW_ADDRESS: ADDRESS })[0]).to.match(/^ESCROW_ADDRESS: is only used with RPC_URL/);
  });

  it("names a bad PORT, LOG_LEVEL, RATE_LIMIT_PER_MINUTE and CONFIRMATIONS together", function () {
    const problems = problemsOf({ PORT: "70000", LOG_LEVEL: "loud", RATE_LIMIT_PER_MINUTE: "-1", CONFIRMATIONS: "0" });
    expect(problems.map((p) => p.split(":")[0]).sort()).to.deep.equal([
      "CONFIRMATIONS",
      "LOG_LEVEL",
      "PORT",
      "RATE_LIMIT_PER_MINUTE",
    ]);
    expect(problems.find((p) => p.startsWith("PORT"))).to.equal("PORT: must be at most 65535");
  });

  it("never echoes other environment variables", function () {
    const message = (() => {
      try {
        parseSettings({ PORT: "x", SECRET_THING: "hunter2" });
      } catch (error) {
        return (error as Error).message;
      }
      return "";
    })();
    expect(message).to.contain("PORT").and.not.contain("hunter2").and.not.contain("SECRET_THING");
  });

  it("documents every setting npm start and npm run deploy read, with its default, in the help and in the README", function () {
    const documented = SETTINGS.map((s) => s.name);
    for (const name of [...SETTING_NAMES.start, ...SETTING_NAMES.deploy]) expect(documented, name).to.include(name);
    for (const s of SETTINGS) {
      expect([...SETTING_NAMES.start, ...SETTING_NAMES.deploy], `${s.name} is read by a command`).to.include(s.name);
      expect(settingsHelp()).to.contain(`${s.name}`).and.contain(`default ${s.default}`);
    }
    const readme = readFileSync(join(__dirname, "..", "..", "README.md"), "utf8");
    for (const s of SETTINGS)
      expect(readme, s.name).to.contain(`| \`${s.name}\` | ${s.default} | ${s.what} | ${s.usedBy} |`);
  });

  it("refuses private webhook URLs, waits 10 s an attempt and retries for a day unless told otherwise", function () {
    expect(parseSettings({}, "/srv/app").webhooks).to.deep.equal({
      allowPrivateUrls: false,
      timeoutMs: 10_000,
      retryWindowMs: 86_400_000,
    });
    const set = {
      WEBHOOKS_ALLOW_PRIVATE_URLS: "true",
      WEBHOOKS_TIMEOUT_MS: "500",
      WEBHOOKS_RETRY_WINDOW_SECONDS: "60",
    };
    expect(parseSettings(set, "/srv/app").webhooks).to.deep.equal({
      allowPrivateUrls: true,
      timeoutMs: 500,
      retryWindowMs: 60_000,
    });
    expect(problemsOf({ WEBHOOKS_ALLOW_PRIVATE_URLS: "yes" })).to.deep.equal([
      "WEBHOOKS_ALLOW_PRIVATE_URLS: must be true or false",
    ]);
  });

  it("reads the page's indicative display currency from DISPLAY_CURRENCY and DISPLAY_RATE, none by default", function () {
    expect(parseSettings({}, "/srv/app").display).to.deep.equal({ currency: null });
    expect(parseSettings({ DISPLAY_CURRENCY: "GBP", DISPLAY_RATE: "2500" }, "/srv/app").display).to.deep.equal({
      currency: { code: "GBP", rate: "2500" },
    });
    expect(problemsOf({ DISPLAY_CURRENCY: "GBP" })).to.deep.equal([
      "DISPLAY_CURRENCY: needs DISPLAY_RATE, what one ETH is worth in it (such as 2500)",
    ]);
    expect(problemsOf({ DISPLAY_RATE: "2500" })[0]).to.match(/^DISPLAY_RATE: is a rate to DISPLAY_CURRENCY/);
    expect(problemsOf({ DISPLAY_CURRENCY: "gbp", DISPLAY_RATE: "2500" })[0]).to.match(/^DISPLAY_CURRENCY: /);
    expect(problemsOf({ DISPLAY_CURRENCY: "GBP", DISPLAY_RATE: "-1" })[0]).to.match(/^DISPLAY_RATE: /);
    expect(problemsOf({ DISPLAY_CURRENCY: "GBP", DISPLAY_RATE: "0" })).to.deep.equal([
      "DISPLAY_RATE: must be more than 0",
    ]);
  });

  it("takes CHAIN_PORT for the embedded chain only", function () {
    expect(parseSettings({ CHAIN_PORT: "8545" }, "/srv/app").chainPort).to.equal(8545);
    expect(parseSettings({}, "/srv/app").chainPort).to.equal(null);
    expect(
      problemsOf({
        RPC_URL: "http://127.0.0.1:8545",
        ESCROW_ADDRESS: ADDRESS,
        SIGNER_KEYSTORE: "k.json",
        KEYSTORE_PASSWORD: "p",
        CHAIN_PORT: "8545",
      }),
    ).to.deep.equal([
      "CHAIN_PORT: is the embedded chain's port; with RPC_URL there is no embedded chain, so unset CHAIN_PORT",
    ]);
  });

  it("gives npm run deploy a DATA_DIR, .data by default, for its deployment.env", function () {
    const env = { RPC_URL: "http://127.0.0.1:8545", SIGNER_KEYSTORE: "d.json", KEYSTORE_PASSWORD: "p" };
    expect(parseDeploySettings(env, "/srv/app").dataDir).to.equal("/srv/app/.data");
    expect(parseDeploySettings({ ...env, DATA_DIR: ".data-ext" }, "/srv/app").dataDir).to.equal("/srv/app/.data-ext");
  });
});

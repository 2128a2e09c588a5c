import { expect } from "chai";
import { ethers } from "ethers";
import { canonicalJson, hashWorkflow, loadTemplates } from "../../workflows";
import { smallPurchase, withStage } from "./helpers";

/** The same value with every object's keys in reverse order. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reverseKeys(v)]));
  }
  return value;
}

describe("workflows/hash", function () {
  describe("canonicalJson", function () {
    it("sorts keys, drops undefined fields and writes no whitespace", function () {
      expect(canonicalJson({ b: [2, { d: 1, c: "x" }], a: true, e: undefined, f: null })).to.equal('{"a":true,"b":[2,{"c":"x","d":1}],"f":null}');
    });

    it("escapes strings as JSON does and keeps non-ASCII text as it is", function () {
      expect(canonicalJson({ title: 'Stamp "duty" \u00a3\n' })).to.equal('{"title":"Stamp \\"duty\\" \u00a3\\n"}');
    });

    it("refuses values JSON has no canonical form for", function () {
      expect(() => canonicalJson({ n: Number.NaN })).to.throw("canonical JSON has no NaN");
    });
  });

  describe("hashWorkflow", function () {
    const base = hashWorkflow(smallPurchase());

    it("is keccak256 of the normalised definition's canonical JSON, as a bytes32", function () {
      expect(base).to.match(/^0x[0-9a-f]{64}$/);
      const normalised = {
        ...smallPurchase(),
        timeZone: "Europe/London",
        stages: smallPurchase().stages.map((s) => ({
          after: [],
          action: "none",
          binding: false,
          ...s,
          signedBy: [...s.signedBy].sort((a, b) => ["bank", "lawyer", "buyer", "seller"].indexOf(a) - ["bank", "lawyer", "buyer", "seller"].indexOf(b)),
        })),
      };
      expect(base).to.equal(ethers.keccak256(ethers.toUtf8Bytes(canonicalJson(normalised))));
    });

    it("ignores the order of keys and the layout of the file", function () {
      const text = JSON.stringify(reverseKeys(smallPurchase()), null, 7);
      expect(hashWorkflow(JSON.parse(text))).to.equal(base);
      expect(hashWorkflow(JSON.parse(JSON.stringify(smallPurchase())))).to.equal(base);
    });

    it("ignores defaults written out, the calendar's own zone, the order of signedBy and after, and the spelling of durations", function () {
      const same = withStage("exchange", (s) => ({ ...s, signedBy: ["buyer", "lawyer"], wait: "3  calendar days", action: "none" }));
      expect(hashWorkflow({ ...same, timeZone: "Europe/London" })).to.equal(base);
      const weeks = withStage("registration", (s) => ({ ...s, deadline: { within: "2 weeks", from: "completion" } }));
      expect(hashWorkflow(weeks)).to.equal(base);
      const working = withStage("exchange", (s) => ({ ...s, wait: "3 working days" }));
      const longStop = (within: string) => ({ ...smallPurchase(), longStop: { within, basis: "b" } });
      expect(hashWorkflow(longStop("2 weeks"))).to.equal(hashWorkflow(longStop("14 days")));
      expect(hashWorkflow(working)).to.equal(hashWorkflow(withStage("exchange", (s) => ({ ...s, wait: "3 business days" }))));
    });

    it("changes with any change of meaning, the version included", function () {
      const changes = [
        { ...smallPurchase(), version: 2 },
        { ...smallPurchase(), title: "Small purchase." },
        { ...smallPurchase(), timeZone: "Europe/Dublin" },
        { ...smallPurchase(), roles: { ...smallPurchase().roles, seller: "Vendor" } },
        { ...smallPurchase(), longStop: { within: "90 days", basis: "a test's figure" } },
        { ...smallPurchase(), longStop: { within: "91 days", basis: "a test's figure" } },
        withStage("exchange", (s) => ({ ...s, signedBy: ["lawyer"] })),
        withStage("exchange", (s) => ({ ...s, wait: "4 days" })),
        withStage("exchange", (s) => ({ ...s, wait: "3 business days" })),
        withStage("exchange", (s) => ({ ...s, binding: false })),
        withStage("completion", (s) => ({ ...s, deadline: { within: "60 days", from: "agreement" } })),
        withStage("registration", (s) => ({ ...s, description: "HM Land Registry" })),
        { ...smallPurchase(), stages: [smallPurchase().stages[0], smallPurchase().stages[1], smallPurchase().stages[3], smallPurchase().stages[2]] },
      ];
      const hashes = changes.map((c) => hashWorkflow(c));
      expect(new Set([base, ...hashes]).size).to.equal(changes.length + 1);
    });

    it("gives each template its own hash", function () {
      const hashes = loadTemplates().map((t) => t.definitionHash);
      expect(new Set(hashes).size).to.equal(hashes.length);
    });
  });
});

import { expect } from "chai";
import { ethers } from "ethers";
import { canonicalJson, hashWorkflow, loadTemplates } from "../../workflows";
import { smallPurchase, withStage } from "./helpers";

/** The same value with every object's keys in reverse order. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .reverse()
        .map(([k, v]) => [k, reverseKeys(v)]),
    );
  }
  return value;
}

describe("workflows/hash", function () {
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
          signedBy: [...s.signedBy].sort(
            (a, b) =>
              ["bank", "lawyer", "buyer", "seller"].indexOf(a) - ["bank", "lawyer", "buyer", "seller"].indexOf(b),
          ),
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
      const same = withStage("exchange", (s) => ({
        ...s,
        signedBy: ["buyer", "lawyer"],
        wait: "3  calendar days",
        action: "none",
      }));
      expect(hashWorkflow({ ...same, timeZone: "Europe/London" })).to.equal(base);
      const weeks = withStage("registration", (s) => ({ ...s, deadline: { within: "2 weeks", from: "completion" } }));
      expect(hashWorkflow(weeks)).to.equal(base);
      const working = withStage("exchange", (s) => ({ ...s, wait: "3 working days" }));
      const longStop = (within: string) => ({ ...smallPurchase(), longStop: { within, basis: "b" } });
      expect(hashWorkflow(longStop("2 weeks"))).to.equal(hashWorkflow(longStop("14 days")));
      expect(hashWorkflow(working)).to.equal(
        hashWorkflow(withStage("exchange", (s) => ({ ...s, wait: "3 business days" }))),
      );
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
        {
          ...smallPurchase(),
          stages: [
            smallPurchase().stages[0],
            smallPurchase().stages[1],
            smallPurchase().stages[3],
            smallPurchase().stages[2],
          ],
        },
      ];
      const hashes = changes.map((c) => hashWorkflow(c));
      expect(new Set([base, ...hashes]).size).to.equal(changes.length + 1);
    });

    it("gives the templates the ids and hashes they are registered under on chain", function () {
      // Pinned: a change to the canonical bytes would give every template a new id and orphan its cases.
      // Changed deliberately by issue 13: each definition now states its amendment rules (`amendments`), and the
      // id includes the rules as registered.
      expect(loadTemplates().map((t) => [t.workflow.id, t.templateId, t.definitionHash])).to.deep.equal([
        [
          "uk-purchase",
          "0x05d1bb06b9f8264ba086cccdd3bd8f77664c587e787f13537fce557eb04d1b1d",
          "0xd3063be056092d4aebafa5075e47d1b6714ad54d7d2920b106a5dc50b63adb4b",
        ],
        [
          "uk-remortgage",
          "0xd3556100fa3275b66b1eaeaaa74e35deee379a7ca6fdd746bb93e0855657765c",
          "0x24d3a4741e970c0cf0ca2e3020e3301405c7211438eca6192d421cd289b4ace3",
        ],
        [
          "us-purchase",
          "0xeae3c6bb99a8392564e20225d02f0f0a49c8ea81e72e6f3f4a7ace723a28322a",
          "0xe33d8979603e40c2d8108a89b2b2bb5461054a41b676da561ce0f6ea596cb992",
        ],
      ]);
    });

    it("gives each template its own hash", function () {
      const hashes = loadTemplates().map((t) => t.definitionHash);
      expect(new Set(hashes).size).to.equal(hashes.length);
    });
  });
});

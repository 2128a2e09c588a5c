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
      expect(loadTemplates().map((t) => [t.workflow.id, t.templateId, t.definitionHash])).to.deep.equal([
        [
          "uk-purchase",
          "0xd9f7feb556768bf3ec479db80b296dee1d32bfe7d5d3013fd4f905bceb75fd15",
          "0x54493b151640a7a681b10747864462bbb3b688074790a92b7d17b61be3345564",
        ],
        [
          "uk-remortgage",
          "0x6d2f633a41c72a7b958e46cd3a362f9cf7464e77a3bcb6d22b70c5cead8a3d0b",
          "0xbc7c2cc45557338bb572cb8788699557a73655a7ee1f0099285e6a0ef56215c3",
        ],
        [
          "us-purchase",
          "0x08cd591b82a3602af9aca4ac8daace05fce9b00c57384e5788518678d127b7a3",
          "0x293a27aba4e8acba23cbbe3a9083baa4c8c8616e2df458568e4a02d1bbc94c50",
        ],
      ]);
    });

    it("gives each template its own hash", function () {
      const hashes = loadTemplates().map((t) => t.definitionHash);
      expect(new Set(hashes).size).to.equal(hashes.length);
    });
  });
});

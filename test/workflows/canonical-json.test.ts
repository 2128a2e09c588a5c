import { expect } from "chai";
import { canonicalJson } from "../../workflows";

describe("workflows/canonical-json", function () {
  describe("canonicalJson", function () {
    it("sorts keys, drops undefined fields and writes no whitespace", function () {
      expect(canonicalJson({ b: [2, { d: 1, c: "x" }], a: true, e: undefined, f: null })).to.equal(
        '{"a":true,"b":[2,{"c":"x","d":1}],"f":null}',
      );
    });

    it("escapes strings as JSON does and keeps non-ASCII text as it is", function () {
      expect(canonicalJson({ title: 'Stamp "duty" \u00a3\n' })).to.equal('{"title":"Stamp \\"duty\\" \u00a3\\n"}');
    });

    it('writes a bigint as its decimal string, so 1n and "1" are the same amount', function () {
      expect(canonicalJson({ args: [10n ** 30n, "1"] })).to.equal('{"args":["1000000000000000000000000000000","1"]}');
      expect(canonicalJson([1n])).to.equal(canonicalJson(["1"]));
    });

    it("refuses values JSON has no canonical form for", function () {
      expect(() => canonicalJson({ n: Number.NaN })).to.throw("canonical JSON has no NaN");
      expect(() => canonicalJson([undefined])).to.throw("canonical JSON has no undefined");
    });
  });
});

/** The typical durations (workflows/typical-durations.json) cover exactly each template's stages, each with a source. */
import { expect } from "chai";
import { loadTemplates } from "../../workflows";
import { typicalDurationsOf } from "../../workflows/typical-stage-durations";

describe("typicalDurationsOf", function () {
  for (const { workflow } of loadTemplates()) {
    it(`gives each stage of ${workflow.id}, and only those, a typical duration with its source`, function () {
      const typical = typicalDurationsOf(workflow.id);
      expect(typical, workflow.id).to.not.equal(null);
      expect(Object.keys(typical!.stages)).to.have.members(workflow.stages.map((s) => s.id));
      for (const [id, { source }] of Object.entries(typical!.stages)) expect(source, id).to.match(/\w/);
    });
  }

  it("knows no durations for a workflow it does not list", function () {
    expect(typicalDurationsOf("no-such-workflow")).to.equal(null);
    expect(typicalDurationsOf("constructor")).to.equal(null);
  });
});

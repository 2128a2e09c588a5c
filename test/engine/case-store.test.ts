/**
 * The stored case views (projection/case-store.ts): a view comes back from the store as it went in, its
 * template stored once apart from it, and a store written before templates were kept apart loads the same.
 */
import { expect } from "chai";
import { getTemplate } from "../../workflows";
import { CASE_STORE_MIGRATIONS, CaseStore } from "../../engine/projection/case-store";
import { type CaseView, applyEvent, openedView } from "../../engine/projection/case-view";
import { EVENT_LOG_MIGRATIONS, type ChainEvent } from "../../engine/projection/event-log";
import { PROJECTION_MIGRATIONS } from "../../engine/projection/projection";
import { genericTemplateInfo, templateInfoOf, type TemplateInfo } from "../../engine/projection/templates";
import { openDatabase } from "../../engine/store/database";
import { tempDbFile } from "./projection-helpers";

const US = templateInfoOf(getTemplate("us-purchase"));
const GENERIC = genericTemplateInfo(`0x${"ab".repeat(32)}`, US.rules.slice(0, 3));

function event(caseId: string, name: string, args: ChainEvent["args"], blockNumber = 7): ChainEvent {
  return {
    blockNumber,
    blockHash: `0x${"12".repeat(32)}`,
    logIndex: 0,
    txHash: `0x${"34".repeat(32)}`,
    blockTime: 1_700_000_000,
    caseId,
    name,
    args,
  };
}

/** A case of `info`'s template, opened and signed off once, so that its view is not only the opening's. */
function viewOf(caseId: string, info: TemplateInfo): CaseView {
  const address = (n: number) => `0x${String(n).repeat(40)}`;
  const terms = {
    templateId: info.templateId,
    bank: address(1),
    lawyer: address(2),
    buyer: address(3),
    seller: address(4),
    asset: address(0),
    price: "100",
    deposit: "20",
    loan: "80",
  };
  const lookup = () => info;
  const opened = openedView(event(caseId, "CaseOpened", { caseId, terms }), lookup);
  return applyEvent(opened, event(caseId, "SignedOff", { caseId, stage: "0", role: "2" }, 8), lookup)!;
}

const byId = (views: CaseView[]) => [...views].sort((a, b) => a.id.localeCompare(b.id));

describe("CaseStore", function () {
  it("gives back the views put in, of any template, each template stored once", function () {
    const db = openDatabase(tempDbFile(), PROJECTION_MIGRATIONS);
    const views = [viewOf("1", US), viewOf("2", GENERIC), viewOf("3", US)];
    new CaseStore(db).putAll(views);
    expect(byId(new CaseStore(db).all())).to.deep.equal(views);
    expect(db.prepare("SELECT COUNT(*) FROM projection_templates").pluck().get()).to.equal(2);
  });

  it("loads a store whose views were written whole, template and all, as they were", function () {
    const file = tempDbFile();
    const before = openDatabase(file, [...EVENT_LOG_MIGRATIONS, CASE_STORE_MIGRATIONS[0]]);
    const views = [viewOf("1", US), viewOf("2", GENERIC), viewOf("3", US)];
    const insert = before.prepare("INSERT INTO projection_case_views (case_id, view, updated_block) VALUES (?, ?, ?)");
    for (const view of views) insert.run(view.id, JSON.stringify(view), view.updatedAt.block);
    before.close();
    const db = openDatabase(file, PROJECTION_MIGRATIONS);
    expect(byId(new CaseStore(db).all())).to.deep.equal(views);
    new CaseStore(db).putAll([viewOf("4", GENERIC)]);
    expect(byId(new CaseStore(db).all())).to.deep.equal([...views, viewOf("4", GENERIC)]);
  });
});

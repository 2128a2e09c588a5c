/**
 * The one-off changes to the England and Wales bank holidays, made by royal proclamation under the
 * Banking and Financial Dealings Act 1971, since the rules in england-and-wales.ts took their present form
 * in 1978. Names as gov.uk's bank holiday list gives them. A new proclamation is added here (and the span
 * bounds of templates that count working days are computed again).
 */

/** A regular bank holiday moved to another date for that year only. */
export interface MovedBankHoliday {
  kind: "moved";
  /** The regular holiday's name, as the rules give it; checked against the rules, so a typo fails loudly. */
  name: string;
  from: string;
  to: string;
  /** The name the holiday goes by on its new date. */
  newName: string;
}

/** An extra bank holiday, for that year only. */
export interface AddedBankHoliday {
  kind: "added";
  date: string;
  name: string;
}

export type Proclamation = MovedBankHoliday | AddedBankHoliday;

export const PROCLAMATIONS: readonly Proclamation[] = [
  // 50th anniversary of VE Day.
  {
    kind: "moved",
    name: "Early May bank holiday",
    from: "1995-05-01",
    to: "1995-05-08",
    newName: "Early May bank holiday (VE day)",
  },
  { kind: "added", date: "1999-12-31", name: "Millennium celebrations" },
  { kind: "moved", name: "Spring bank holiday", from: "2002-05-27", to: "2002-06-04", newName: "Spring bank holiday" },
  { kind: "added", date: "2002-06-03", name: "Golden Jubilee bank holiday" },
  { kind: "added", date: "2011-04-29", name: "Royal wedding" },
  { kind: "moved", name: "Spring bank holiday", from: "2012-05-28", to: "2012-06-04", newName: "Spring bank holiday" },
  { kind: "added", date: "2012-06-05", name: "Queen's Diamond Jubilee" },
  // 75th anniversary of VE Day: a Friday.
  {
    kind: "moved",
    name: "Early May bank holiday",
    from: "2020-05-04",
    to: "2020-05-08",
    newName: "Early May bank holiday (VE day)",
  },
  { kind: "moved", name: "Spring bank holiday", from: "2022-05-30", to: "2022-06-02", newName: "Spring bank holiday" },
  { kind: "added", date: "2022-06-03", name: "Platinum Jubilee bank holiday" },
  { kind: "added", date: "2022-09-19", name: "Bank Holiday for the State Funeral of Queen Elizabeth II" },
  { kind: "added", date: "2023-05-08", name: "Bank holiday for the coronation of King Charles III" },
];

// The parties in words: by the display name the server knows each by (the progress's `names`), with the role
// beside it, "Alex Morgan (buyer, you)"; by the role alone where no principal holds the address ("The
// seller"). No DOM here.

import { roleLabel } from "./format.js";

/** "Northwind Bank (bank)", "Alex Morgan (buyer, you)", or without a name "The seller" / "You (the buyer)". */
export function who(progress, role, viewerRoles = []) {
  const name = progress.names?.[role];
  const you = viewerRoles.includes(role);
  const title = roleLabel(role).toLowerCase();
  if (name) return `${name} (${title}${you ? ", you" : ""})`;
  return you ? `You (the ${title})` : `The ${title}`;
}

/** The same, starting lower case where it is a role alone: for the middle of a sentence. */
export function whoInSentence(progress, role, viewerRoles = []) {
  const words = who(progress, role, viewerRoles);
  return progress.names?.[role] ? words : words.charAt(0).toLowerCase() + words.slice(1);
}

/** "a", "a and b", "a, b and c". */
export function listOf(words) {
  return words.length <= 1 ? (words[0] ?? "") : `${words.slice(0, -1).join(", ")} and ${words[words.length - 1]}`;
}

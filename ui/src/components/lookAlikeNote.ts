// A warning beside a record whose field names or tags a reader could
// mistake for each other ("Price" and "Рrice" with a Cyrillic "Р").

import { h } from "../dom";
import type { LookAlike } from "../types";

/** One group of look-alike labels, in words. */
export function lookAlikeText(look: LookAlike): string {
  const what = look.of === "tag" ? "tag" : "field name";
  const names = look.names.map((n) => `“${n}”`);
  return look.kind === "mixes_scripts"
    ? `The ${what} ${names.join(", ")} mixes letters of different alphabets, so it may be mistaken for another.`
    : `The ${what}s ${names.join(" and ")} look the same but are different ${look.of === "tag" ? "tags" : "fields"}. Check which one you mean.`;
}

/** The note, or nothing when the record has no look-alike labels. */
export function LookAlikeNote(looks: LookAlike[] | undefined): HTMLElement | null {
  if (!looks?.length) return null;
  return h("div", { class: "banner", role: "note", "aria-label": "Look-alike names" }, ...looks.map((look) => h("p", {}, lookAlikeText(look))));
}

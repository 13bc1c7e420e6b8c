// Builds in words: "DAN 0.1.0 · desktop · Linux x86-64 — ✓ approved", with
// the code hash kept for the details.

import { h, when } from "../dom";
import type { BuildView } from "../types";

/** Where the network stands on a build, in words. */
export function buildApproval(build: BuildView): string {
  switch (build.approval) {
    case "approved":
      return "✓ approved";
    case "withdrawing":
      return `⚠ approval ends ${when(build.approval_ends_ms)}`;
    case "withdrawn":
      return "✗ approval ended (upgrade required)";
    case "not_approved":
      return "✗ not approved";
    default:
      return "";
  }
}

/** A build's description and approval, with its code hash as a tooltip and
 * in a details line. */
export function BuildText(build: BuildView, label: string): HTMLElement {
  const approval = buildApproval(build);
  return h(
    "span",
    { class: `build ${build.approval ?? ""}`, title: `code hash ${build.code_hash}` },
    h("span", { "aria-label": label }, approval ? `${build.description} — ${approval}` : build.description),
    h("small", { class: "muted hash" }, h("br", {}), `code hash ${build.code_hash.slice(0, 12)}…`),
  );
}

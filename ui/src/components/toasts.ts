// Short messages in a corner: joins, approvals, deprecations, errors.

import { h } from "../dom";

let region: HTMLElement | null = null;

function toastRegion(): HTMLElement {
  if (!region || !region.isConnected) {
    region = h("div", { class: "toasts", role: "status", "aria-live": "polite", "aria-label": "Notifications" });
    document.body.append(region);
  }
  return region;
}

/** Shows a message for a few seconds. */
export function toast(message: string, kind: "info" | "error" | "warning" = "info"): void {
  const shown = Array.from(toastRegion().children).some((c) => c.textContent === message);
  if (shown) return;
  const item = h("div", { class: `toast ${kind}` }, message);
  toastRegion().append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 5000);
}

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

/** A button in a notification, e.g. Undo. */
export interface ToastAction {
  label: string;
  run: () => void | Promise<void>;
}

/** Shows a message for a few seconds (ten with an action button, which
 * removes the message once clicked). */
export function toast(message: string, kind: "info" | "error" | "warning" = "info", action?: ToastAction): void {
  const shown = Array.from(toastRegion().children).some((c) => c.textContent === message);
  if (shown && !action) return;
  const item = h("div", { class: `toast ${kind}` }, message);
  if (action) {
    item.append(
      " ",
      h("button", { type: "button", class: "link", onclick: () => { item.remove(); void action.run(); } }, action.label),
    );
  }
  toastRegion().append(item);
  setTimeout(() => item.remove(), action ? 10000 : kind === "error" ? 8000 : 5000);
}

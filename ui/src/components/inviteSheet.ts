// The invite sheet: a new (or listed) invite link that stays on screen until
// the admin closes it, with Copy, Copy message, the QR code and the expiry.

import { h, when } from "../dom";
import type { StoredInvite } from "../types";
import { toast } from "./toasts";

/** The ready-to-send text "Copy message" puts on the clipboard. */
export function inviteMessage(networkName: string, invite: StoredInvite): string {
  return [
    `Hi! I'm inviting you to “${networkName}”, a network we look after together with DAN.`,
    "Install DAN, open it, choose “Join network” and paste this link:",
    "",
    invite.link,
    "",
    `The link works until ${when(invite.expires_ms)}${invite.uses > 1 ? ` for ${invite.uses} instances` : ""}.`,
  ].join("\n");
}

async function copy(text: string, done: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    toast(done);
  } catch {
    toast("Could not copy: select the link and copy it by hand.", "error");
  }
}

/** The sheet as a modal dialog on `document.body`, so that redraws of the
 * view behind it leave it alone; it goes when the admin closes it. */
export function openInviteSheet(invite: StoredInvite, qrSvg: string, networkName: string): HTMLDialogElement {
  const title = invite.label ? `Invite ready: ${invite.label}` : "Invite ready";
  const link = h("textarea", { readonly: true, rows: 4, "aria-label": "Invite link" });
  link.value = invite.link;
  const dialog = h("dialog", { class: "invite-sheet", "aria-label": "Invite ready" });
  const close = () => {
    if (typeof dialog.close === "function") dialog.close();
    dialog.remove();
  };
  dialog.append(
    h("h2", {}, title),
    h("p", {}, "Send this link to the admin of the other instance, or let them scan the QR code. They open DAN, choose “Join network” and paste it; then the members approve them."),
    link,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "primary", onclick: () => void copy(invite.link, "Link copied.") }, "Copy link"),
      h("button", { type: "button", onclick: () => void copy(inviteMessage(networkName, invite), "Message copied.") }, "Copy message"),
    ),
    h("img", { alt: "QR code of the invite link", src: `data:image/svg+xml;utf8,${encodeURIComponent(qrSvg)}`, width: 240, height: 240 }),
    h("p", { "aria-label": "Invite expiry" }, `Expires ${when(invite.expires_ms)} · ${invite.uses === 1 ? "one instance can join with it" : `${invite.uses} instances can join with it`}.`),
    h("div", { class: "actions" }, h("button", { type: "button", onclick: close }, "Done")),
  );
  dialog.addEventListener("cancel", (event) => {
    event.preventDefault();
    close();
  });
  document.body.append(dialog);
  if (typeof dialog.showModal === "function") dialog.showModal();
  else dialog.setAttribute("open", "");
  link.focus();
  link.select();
  return dialog;
}

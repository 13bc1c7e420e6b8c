// No network yet: create one, or join one with an invite link.

import { api, type Api } from "../api";
import { h, field, when } from "../dom";
import { asAdmin } from "../components/adminLock";
import { toast } from "../components/toasts";
import type { InvitePreview } from "../types";
import { errorText } from "../components/errorText";

export function StartNetworkView(onChanged: () => void, client: Api = api, link = ""): HTMLElement {
  const networkName = h("input", { type: "text", placeholder: "e.g. Community library" });
  const createError = h("p", { class: "error", role: "alert" });
  const create = h(
    "form",
    {
      class: "card",
      "aria-label": "Create network",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        if (!networkName.value.trim()) {
          createError.textContent = "Give the network a name.";
          return;
        }
        try {
          await asAdmin(() => client.createNetwork(networkName.value.trim()), client);
          onChanged();
        } catch (e) {
          createError.textContent = errorText(e);
        }
      },
    },
    h("h2", {}, "Create a network"),
    h("p", {}, "Found a new network with this instance as its first member. It needs at least 3 instances, each run by a different admin, before records can be written."),
    field("Network name", networkName),
    createError,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create network")),
  );
  return h("main", { class: "centered stack" }, h("h1", {}, "Join or create a network"), JoinNetworkForm(onChanged, client, link), create);
}

/** What an invite says, and whether this build may join with it. */
export function InvitePreviewText(invite: InvitePreview): HTMLElement[] {
  const lines = [
    ...NetworkWarnings(invite),
    h("p", {}, "Network: ", h("strong", {}, invite.network_name), h("small", { class: "muted" }, ` (id ${invite.network_id.slice(0, 12)}…)`)),
    h("p", {}, "Invited by: ", h("strong", {}, invite.inviter_name), ` (${invite.inviter})`),
    h("p", {}, `The link expires ${when(invite.expires_ms)}.`),
  ];
  if (invite.your_build.approval === "approved") {
    lines.push(h("p", { "aria-label": "Your version" }, `Your version, ${invite.your_build.description}, is approved by this network ✓ (as ${invite.inviter_name} says)`));
    return lines;
  }
  if (invite.your_build.approval === null) {
    lines.push(h("p", { "aria-label": "Your version" }, `The invite does not say whether your version, ${invite.your_build.description}, is approved; ${invite.inviter_name} checks it when you join.`));
    return lines;
  }
  const approved = invite.approved_builds.map((b) => b.description).join(", ") || "no version known";
  lines.push(
    h(
      "div",
      { class: "banner", role: "alert", "aria-label": "Your version" },
      h("p", {}, `“${invite.network_name}” has not approved your version of DAN (${invite.your_build.description}). It approves: ${approved}.`),
      h("p", {}, `Install one of those, or ask ${invite.inviter_name} to approve your version: copy this request and send it to them; they paste it under Network → Approve another version. Once the members approved it, ask for a new invite link.`),
      h("button", { type: "button", onclick: async () => { try { await navigator.clipboard.writeText(invite.approval_request ?? ""); toast("Approval request copied."); } catch { toast("Could not copy the request.", "error"); } } }, "Copy approval request"),
      h("textarea", { readonly: true, rows: 3, "aria-label": "Approval request" }, invite.approval_request ?? ""),
    ),
  );
  return lines;
}

/** Whether the invite is for a look-alike of a known network, or another network than this one's. */
function NetworkWarnings(invite: InvitePreview): HTMLElement[] {
  const warnings: HTMLElement[] = [];
  if (invite.look_alike) {
    warnings.push(
      h(
        "div",
        { class: "banner", role: "alert", "aria-label": "Look-alike network" },
        h("p", {}, h("strong", {}, `This is not your network “${invite.look_alike.network_name}”.`)),
        h("p", {}, "The invite is for a different network whose name looks the same. Check its id with the person who sent the link before you join:"),
        h("p", { "aria-label": "Invite network id" }, h("code", {}, invite.network_id), " (this invite)"),
        h("p", { "aria-label": "Your network id" }, h("code", {}, invite.look_alike.network_id), " (yours)"),
      ),
    );
  }
  if (invite.relation === "this_network") {
    warnings.push(h("p", { "aria-label": "Network note" }, "This instance is already in this network (or has asked to join it)."));
  } else if (invite.relation === "other_network") {
    warnings.push(h("p", { "aria-label": "Network note" }, "This instance is in another network: joining this one means leaving it."));
  }
  return warnings;
}

/** Paste an invite link, see who invites to which network, then join. */
export function JoinNetworkForm(onJoined: () => void, client: Api = api, initialLink = ""): HTMLElement {
  const link = h("textarea", { rows: 3, placeholder: "dan://join/…" });
  link.value = initialLink;
  const adminName = h("input", { type: "text", placeholder: "Your name, shown to the other admins" });
  const preview = h("div", { class: "preview", "aria-live": "polite" });
  const error = h("p", { class: "error", role: "alert" });
  const join = h("button", { type: "submit", class: "primary", disabled: true }, "Join network");
  let asked = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // aria-busy says the preview is not yet that of the link in the box.
  const settle = () => form.setAttribute("aria-busy", "false");
  const check = async () => {
    const mine = ++asked;
    error.textContent = "";
    preview.textContent = "";
    join.disabled = true;
    if (!link.value.trim()) return settle();
    try {
      const invite = await client.previewInvite(link.value.trim());
      if (mine !== asked) return;
      preview.replaceChildren(...InvitePreviewText(invite));
      join.disabled = invite.your_build.approval === "not_approved";
    } catch (e) {
      if (mine !== asked) return;
      error.textContent = errorText(e);
    }
    settle();
  };
  link.addEventListener("input", () => {
    form.setAttribute("aria-busy", "true");
    clearTimeout(timer);
    timer = setTimeout(() => void check(), 250);
  });
  const form = h(
    "form",
    {
      class: "card",
      "aria-label": "Join network",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        join.disabled = true;
        join.textContent = "Contacting the inviter…";
        try {
          await asAdmin(() => client.joinNetwork(link.value.trim(), adminName.value.trim() || undefined), client);
          onJoined();
        } catch (e) {
          error.textContent = errorText(e);
        } finally {
          join.disabled = false;
          join.textContent = "Join network";
        }
      },
    },
    h("h2", {}, "Join a network"),
    h("p", {}, "Paste the invite link another admin sent you."),
    field("Invite link", link),
    preview,
    field("Your name as admin", adminName),
    error,
    h("div", { class: "actions" }, join),
  );
  form.setAttribute("aria-busy", initialLink ? "true" : "false");
  if (initialLink) void check();
  return form;
}

// Network: name and state, invites (link, QR code, expiry and uses, list and
// revoke), fork, software upgrade status.

import { api, isApiError, type Api } from "../api";
import { h, field, when } from "../dom";
import type { Status } from "../types";
import { asAdmin } from "../components/adminLock";
import { toast } from "../components/toasts";
import { JoinNetworkForm } from "./startNetwork";

/** The network's state in words. */
export function describeState(status: Status): string {
  switch (status.state) {
    case "none":
      return "This instance is not part of a network yet.";
    case "pending":
      return status.join
        ? `Waiting for approval (${status.join.approvals} of ${status.join.needed}) to join “${status.join.network_name}”.`
        : "Waiting for the members' approval.";
    case "forming": {
      const missing = (status.min_members ?? 3) - status.members;
      return `Forming: needs ${missing} more instance${missing === 1 ? "" : "s"} before records can be written.`;
    }
    case "active":
      return `Active: ${status.members} members, ${status.online_peers} online now.`;
    case "suspended":
      return "Upgrade required: this instance runs a build whose approval has ended. Install the new version; it rejoins by itself.";
    case "deprecated":
      return `Deprecated: ${status.deprecation ?? "the network found this instance breaking its rules"}. It keeps working here, as a fork, but nothing flows to the network any more.`;
  }
}

function InviteSection(refreshAll: () => void, client: Api): HTMLElement {
  const uses = h("input", { type: "number", min: 1, max: 1000, value: 1 });
  const expires = h("select", {}, h("option", { value: String(3600) }, "1 hour"), h("option", { value: String(86400), selected: true }, "1 day"), h("option", { value: String(7 * 86400) }, "7 days"), h("option", { value: String(30 * 86400) }, "30 days"));
  const result = h("div", { "aria-live": "polite" });
  const list = h("ul", { class: "plain", "aria-label": "Open invites" });
  const refresh = async () => {
    try {
      const invites = await client.invites();
      list.replaceChildren(
        ...(invites.length
          ? invites.map((i) =>
              h(
                "li",
                {},
                `Used ${i.used} of ${i.uses} · expires ${when(i.expires_ms)} · `,
                i.revoked ? h("strong", {}, "revoked") : h("button", { type: "button", "aria-label": `Revoke invite ${i.id}`, onclick: async () => { try { await asAdmin(() => client.revokeInvite(i.id), client); toast("Invite revoked."); void refresh(); } catch (e) { if (!(isApiError(e) && e.code === "cancelled")) toast(isApiError(e) ? e.message : String(e), "error"); } } }, "Revoke"),
              ),
            )
          : [h("li", { class: "muted" }, "No invites yet.")]),
      );
    } catch {
      list.replaceChildren();
    }
  };
  void refresh();
  return h(
    "section",
    { class: "card" },
    h("h2", {}, "Invite"),
    h("p", {}, "Send this link (or show the QR code) to the admin of another instance. The link is signed by this instance; it expires and can be revoked."),
    field("Uses", uses),
    field("Expires after", expires),
    h(
      "button",
      {
        type: "button",
        class: "primary",
        onclick: async () => {
          try {
            const created = await asAdmin(() => client.createInvite(Number(uses.value) || 1, Number(expires.value)), client);
            const link = h("textarea", { readonly: true, rows: 3, "aria-label": "Invite link" });
            link.value = created.invite.link;
            const qr = h("img", { alt: "QR code of the invite link", src: `data:image/svg+xml;utf8,${encodeURIComponent(created.qr_svg)}`, width: 240, height: 240 });
            result.replaceChildren(
              link,
              h("button", { type: "button", onclick: async () => { await navigator.clipboard.writeText(created.invite.link); toast("Link copied."); } }, "Copy link"),
              h("div", {}, qr),
            );
            void refresh();
            refreshAll();
          } catch (e) {
            if (!(isApiError(e) && e.code === "cancelled")) toast(isApiError(e) ? e.message : String(e), "error");
          }
        },
      },
      "Create invite link",
    ),
    result,
    h("h3", {}, "Invites issued here"),
    list,
  );
}

function ForkSection(refreshAll: () => void, client: Api): HTMLElement {
  const name = h("input", { type: "text", placeholder: "Name of the new network" });
  return h(
    "section",
    { class: "card" },
    h("h2", {}, "Fork network"),
    h("p", {}, "If you think this network is not run properly, found a new one that starts from its current records. The current network is not affected; other admins may follow your fork with an invite."),
    field("Fork name", name),
    h(
      "button",
      {
        type: "button",
        class: "danger",
        onclick: async () => {
          if (!name.value.trim()) return toast("Give the fork a name.", "error");
          if (!confirm("Leave this network and found the fork? This instance's current data is archived.")) return;
          try {
            await asAdmin(() => client.forkNetwork(name.value.trim()), client);
            toast("Forked. Invite other admins from here.");
            refreshAll();
          } catch (e) {
            if (!(isApiError(e) && e.code === "cancelled")) toast(isApiError(e) ? e.message : String(e), "error");
          }
        },
      },
      "Fork network",
    ),
  );
}

/** A deprecated instance asks to come back: a new invite, a fresh quorum. */
function ReadmissionSection(refreshAll: () => void, client: Api): HTMLElement {
  return h(
    "section",
    { class: "stack", "aria-label": "Readmission" },
    h(
      "div",
      { class: "card" },
      h("h2", {}, "Ask to be readmitted"),
      h(
        "p",
        {},
        "First fix the cause (for example, install the version of the app the network approves). Then ask a member's admin for an invite link and paste it below. This instance's current data is archived in its data folder, it comes back under a new identity and syncs the network's records again; the members approve it like a new instance.",
      ),
    ),
    JoinNetworkForm(refreshAll, client),
  );
}

export function NetworkView(status: Status, refreshAll: () => void, client: Api = api): HTMLElement {
  const upgrade =
    status.code_approved === false
      ? "This build is not (or no longer) approved by the network's charter."
      : "This build is approved by the network's charter.";
  return h(
    "div",
    { class: "stack" },
    h(
      "section",
      { class: "card" },
      h("h2", {}, status.network_name ?? "No network"),
      h("p", { "aria-label": "Network state" }, describeState(status)),
      h("p", { class: "muted" }, `Network id ${status.network_id ?? "–"} · ${status.op_count} ops · last sync ${when(status.last_sync)}`),
      h("p", { class: "muted" }, `Software: code hash ${status.code_hash.slice(0, 16)}… — ${upgrade}`),
      status.damaged_records.length ? h("p", { class: "error" }, `Records whose stored data differs from the signed history: ${status.damaged_records.join(", ")}`) : null,
    ),
    status.state === "active" || status.state === "forming" ? InviteSection(refreshAll, client) : null,
    status.state === "deprecated" ? ReadmissionSection(refreshAll, client) : null,
    status.network_id ? ForkSection(refreshAll, client) : null,
  );
}

// Network: name and state, invites (link, QR code, expiry and uses, list and
// revoke), fork, software upgrade status.

import { api, isApiError, type Api } from "../api";
import { h, field, when } from "../dom";
import type { BuildView, RelayStatus, Status, StoredInvite } from "../types";
import { asAdmin } from "../components/adminLock";
import { openInviteSheet } from "../components/inviteSheet";
import { BuildText } from "../components/buildText";
import { toast } from "../components/toasts";
import { JoinNetworkForm } from "./startNetwork";
import { errorText } from "../components/errorText";
import { confirmDialog } from "../components/confirmDialog";

/** A warning when this computer's clock is far from the members', or
 * null. */
export function clockWarning(status: Status): string | null {
  const skew = status.clock_skew_ms ?? 0;
  if (Math.abs(skew) < 120_000) return null;
  const minutes = Math.round(Math.abs(skew) / 60_000);
  return `This computer's clock is ${minutes} minute${minutes === 1 ? "" : "s"} ${skew > 0 ? "ahead of" : "behind"} the other members' clocks. Set the right time (turn on automatic time in the system settings); until then, changes made here may wait before the others take them in.`;
}

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
    case "unapproved":
      return `This version of DAN (${status.build.description}) is not approved by ${status.network_name ?? "the network"} yet, so nothing flows for now. Nothing is lost: DAN reconnects by itself once the members approve it. Send an admin this version's approval request (Network → Software), or go back to an approved version.`;
    case "suspended":
      return "Upgrade required: this instance runs a build whose approval has ended. Install the new version; it rejoins by itself.";
    case "deprecated":
      return `Deprecated: ${status.deprecation ?? "the network found this instance breaking its rules"}. It keeps working here, as a fork, but nothing flows to the network any more.`;
  }
}

/** Whether other instances can reach this one, through which relay, and
 * what to do if nobody can, in words. */
export function describeReachability(status: Status): string {
  const held = (status.relays ?? []).filter((r) => r.reserved).map((r) => r.addr);
  const through = held.length ? ` Others reach it through the relay ${held.join(", ")}.` : "";
  switch (status.reachability) {
    case "public":
      return "Other instances can reach this one directly.";
    case "private":
      if (held.length) return `This instance is behind a router that lets nobody in.${through} Where the routers allow it, members then connect directly.`;
      if ((status.relays ?? []).length) return "Nobody outside this computer's local network can reach this instance, and no relay holds a slot for it yet: check that the relay is running and its address is right.";
      return "Nobody outside this computer's local network can reach this instance (it is behind a router that lets nobody in). A member at a public address relays for you once you are admitted; otherwise ask a member with a server to run `dan relay` and to give you its address.";
    default:
      return `Not known yet whether other instances can reach this one directly.${through}`;
  }
}

/** One sentence on where an invite stands, for its inviter. */
export function describeInvite(invite: StoredInvite): string {
  const users = invite.used_by.map((u) => `${u.instance_name} (${u.admin_name}, id …${u.peer_id.slice(-8)}) on ${when(u.used_ms)}`).join(", ");
  const usedBy = users ? ` Used by ${users}.` : "";
  switch (invite.status) {
    case "waiting":
      return `Waiting to be used (${invite.used} of ${invite.uses} used) · expires ${when(invite.expires_ms)}.${usedBy}`;
    case "used_up":
      return users ? `Used by ${users}.` : "All its uses are spent.";
    case "expired":
      return `Expired on ${when(invite.expires_ms)}.${usedBy}`;
    case "revoked":
      return `Revoked.${usedBy}`;
    case "unreachable":
      return `Not reachable now: this instance no longer listens on the addresses in this link (it was restarted). Make a new invite.${usedBy}`;
  }
}

function showError(e: unknown): void {
  if (!(isApiError(e) && e.code === "cancelled")) toast(errorText(e), "error");
}

/** The invites issued here, each with its link, status, and Show / Copy /
 * Revoke; refreshes itself without touching the rest of the view. */
function InviteList(client: Api, networkName: string): HTMLElement & { refresh: () => Promise<void> } {
  const list = h("ul", { class: "plain invites", "aria-label": "Invites issued here" }) as HTMLUListElement & { refresh: () => Promise<void> };
  const row = (invite: StoredInvite): HTMLElement => {
    const name = invite.label || `Invite ${invite.id.slice(0, 8)}`;
    const usable = invite.status === "waiting" || invite.status === "unreachable";
    return h(
      "li",
      { "aria-label": `Invite ${name}` },
      h("strong", {}, name),
      " ",
      h("span", { class: `invite-status ${invite.status}`, "aria-label": `${name} status` }, describeInvite(invite)),
      h("code", { class: "invite-link", "aria-label": `${name} link` }, invite.link),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", "aria-label": `Show invite ${name}`, onclick: async () => { try { openInviteSheet(invite, await client.inviteQr(invite.link), networkName); } catch (e) { showError(e); } } }, "Show"),
        h("button", { type: "button", "aria-label": `Copy invite ${name}`, onclick: async () => { try { await navigator.clipboard.writeText(invite.link); toast("Link copied."); } catch { toast("Could not copy: select the link and copy it by hand.", "error"); } } }, "Copy link"),
        usable ? h("button", { type: "button", "aria-label": `Revoke invite ${name}`, onclick: async () => { try { await asAdmin(() => client.revokeInvite(invite.id), client); toast("Invite revoked."); void list.refresh(); } catch (e) { showError(e); } } }, "Revoke") : null,
      ),
    );
  };
  list.refresh = async () => {
    try {
      const invites = await client.invites();
      list.replaceChildren(...(invites.length ? invites.map(row) : [h("li", { class: "muted" }, "No invites yet.")]));
    } catch {
      list.replaceChildren();
    }
  };
  void list.refresh();
  return list;
}

function InviteSection(client: Api, networkName: string): HTMLElement {
  const label = h("input", { type: "text", maxlength: 60, placeholder: "e.g. Bob's laptop" });
  const uses = h("input", { type: "number", min: 1, max: 1000, value: 1 });
  const expires = h("select", {}, h("option", { value: String(3600) }, "1 hour"), h("option", { value: String(86400), selected: true }, "1 day"), h("option", { value: String(7 * 86400) }, "7 days"), h("option", { value: String(30 * 86400) }, "30 days"));
  const list = InviteList(client, networkName);
  return h(
    "section",
    { class: "card" },
    h("h2", {}, "Invite"),
    h("p", {}, "Make a link (with a QR code) for the admin of another instance. The link is signed by this instance; it expires and can be revoked."),
    field("For whom", label, "Only you see this; it helps you tell your invites apart."),
    field("Uses", uses),
    field("Expires after", expires),
    h(
      "button",
      {
        type: "button",
        class: "primary",
        onclick: async () => {
          try {
            const created = await asAdmin(() => client.createInvite(Number(uses.value) || 1, Number(expires.value), label.value.trim()), client);
            openInviteSheet(created.invite, created.qr_svg, networkName);
            label.value = "";
            void list.refresh();
          } catch (e) {
            showError(e);
          }
        },
      },
      "Create invite link",
    ),
    h("h3", {}, "Invites issued here"),
    list,
  );
}

/** The relays this instance is reached through from behind a router: one
 * address per line, as `dan relay` prints them; saved with the admin
 * password and used at once. */
function RelaySection(status: Status, client: Api): HTMLElement {
  const addrs = h("textarea", { rows: 2, spellcheck: false, placeholder: "/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW…" }) as HTMLTextAreaElement;
  // Only the relays given here: a member relaying for this instance is
  // found again by itself.
  addrs.value = (status.relays ?? []).filter((r) => !r.learnt).map((r) => r.addr).join("\n");
  const state = h("p", { class: "muted", "aria-label": "Relay state" }, relayStateText(status.relays ?? []));
  return h(
    "section",
    { class: "card" },
    h("h2", {}, "Relay"),
    h("p", {}, "If nobody can reach this computer (it is behind a home router), a member of the network at a public address relays for it by itself. Without one, a member with a server can run a relay (`dan relay`) and give you its address. Others then reach this instance through it, and connect directly where the routers allow."),
    field("Relay addresses", addrs, "One per line. Leave empty to use no relay."),
    state,
    h(
      "button",
      {
        type: "button",
        "aria-label": "Save relays",
        onclick: async () => {
          const relays = addrs.value.split("\n").map((a) => a.trim()).filter((a) => a);
          try {
            const saved = await asAdmin(() => client.setRelays(relays), client);
            state.textContent = relayStateText(saved);
            toast(relays.length ? "Relays saved; reserving a slot now." : "No relay is used any more.");
          } catch (e) {
            showError(e);
          }
        },
      },
      "Save relays",
    ),
  );
}

/** Where each relay stands, in words. */
export function relayStateText(relays: RelayStatus[]): string {
  if (!relays.length) return "No relay is used.";
  return relays
    .map((r) => {
      const who = r.learnt ? " (a member of the network at a public address)" : "";
      const state = r.reserved ? "holds a slot for this instance" : r.error ? `no slot yet: ${r.error}` : "no slot yet (is it running and reachable?)";
      return `${r.addr}${who}: ${state}`;
    })
    .join(" · ");
}

/** This build, and "Approve another version…": check what an approval
 * request, manifest or executable is, then propose approving it. */
function SoftwareSection(status: Status, client: Api): HTMLElement {
  const source = h("textarea", { rows: 3, placeholder: "Paste the approval request someone sent you, or the path of a release manifest (dan-release.json) or of a DAN program" });
  const found = h("div", { "aria-live": "polite", "aria-label": "Builds to approve" });
  const propose = h("button", { type: "button", class: "primary", hidden: true }, "Propose approving");
  let checked: BuildView[] = [];
  const check = async () => {
    propose.hidden = true;
    found.replaceChildren();
    checked = [];
    if (!source.value.trim()) return;
    try {
      const builds = await asAdmin(() => client.describeBuilds(source.value.trim()), client);
      checked = builds;
      found.replaceChildren(...builds.map((b, i) => h("p", {}, BuildText(b, `Build ${i + 1} to approve`))));
      propose.hidden = builds.every((b) => b.approval === "approved");
      if (propose.hidden) found.append(h("p", { class: "muted" }, "The network already approves every build named."));
    } catch (e) {
      found.replaceChildren(h("p", { class: "error", role: "alert" }, errorText(e)));
    }
  };
  propose.addEventListener("click", async () => {
    try {
      const proposal = await asAdmin(() => client.proposeBuilds(checked), client);
      toast(proposal.status === "passed" ? "Approved: members may now run it." : "Proposed. The other admins vote under Members → Proposals.");
      source.value = "";
      found.replaceChildren();
      propose.hidden = true;
    } catch (e) {
      showError(e);
    }
  });
  return h(
    "section",
    { class: "card", "aria-label": "Software" },
    h("h2", {}, "Software"),
    h("p", {}, "This instance runs ", BuildText(status.build, "This build"), "."),
    h("p", {}, h("button", { type: "button", onclick: async () => { try { await navigator.clipboard.writeText(await client.approvalRequest()); toast("Approval request copied."); } catch (e) { showError(e); } } }, "Copy this version's approval request")),
    h("h3", {}, "Approve another version…"),
    h("p", {}, "Everyone in the network must run a version the members approved. When someone on another computer (another system, the server version, a newer release) cannot join, ask them for their approval request and paste it here; the members then vote."),
    field("Build to approve", source),
    h("div", { class: "actions" }, h("button", { type: "button", onclick: () => void check() }, "Check"), propose),
    found,
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
          const sure = await confirmDialog({
            title: "Found the fork?",
            text: "This instance leaves this network and founds the fork, starting from the current records. Its current data is archived, not deleted.",
            confirm: "Fork network",
          });
          if (!sure) return;
          try {
            await asAdmin(() => client.forkNetwork(name.value.trim()), client);
            toast("Forked. Invite other admins from here.");
            refreshAll();
          } catch (e) {
            showError(e);
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

export function NetworkView(status: Status, refreshAll: () => void, client: Api = api): HTMLElement & { refresh?: () => void } {
  const invites = status.state === "active" || status.state === "forming" ? InviteSection(client, status.network_name ?? "our network") : null;
  const view: HTMLElement & { refresh?: () => void } = h(
    "div",
    { class: "stack" },
    h(
      "section",
      { class: "card" },
      h("h2", {}, status.network_name ?? "No network"),
      h("p", { "aria-label": "Network state" }, describeState(status)),
      status.network_id ? h("p", { "aria-label": "Reachability" }, describeReachability(status)) : null,
      h("p", { class: "muted" }, `Network id ${status.network_id ?? "–"} · ${status.op_count} ops · last sync ${when(status.last_sync)}`),
      status.damaged_records.length ? h("p", { class: "error" }, `Records whose stored data differs from the signed history: ${status.damaged_records.join(", ")}`) : null,
    ),
    invites,
    status.network_id ? RelaySection(status, client) : null,
    status.network_id ? SoftwareSection(status, client) : null,
    status.state === "deprecated" ? ReadmissionSection(refreshAll, client) : null,
    status.network_id ? ForkSection(refreshAll, client) : null,
  );
  // Background events refresh the invite list in place (who used which
  // invite); forms being filled in stay as they are.
  view.refresh = () => void (view.querySelector('[aria-label="Invites issued here"]') as (HTMLElement & { refresh?: () => Promise<void> }) | null)?.refresh?.();
  return view;
}

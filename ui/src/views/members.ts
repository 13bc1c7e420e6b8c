// Members: every instance with its standing and hashes, pending join
// requests, proposals with votes, and evidence in plain words.

import { api, isApiError, type Api } from "../api";
import { h, when, short } from "../dom";
import type { EvidenceView, MemberView, ProposalView } from "../types";
import { asAdmin } from "../components/adminLock";
import { toast } from "../components/toasts";
import { BuildText } from "../components/buildText";
import { errorText } from "../components/errorText";

const STATUS_TEXT: Record<string, string> = {
  member: "Member",
  pending: "Pending",
  rejected: "Rejected",
  removed: "Removed",
  deprecated: "Deprecated",
};

async function act(action: () => Promise<unknown>, done: string, refresh: () => void, client: Api): Promise<void> {
  try {
    await asAdmin(action, client);
    toast(done);
    refresh();
  } catch (e) {
    if (isApiError(e) && e.code === "cancelled") return;
    toast(errorText(e), "error");
  }
}

/** What a row says about seats: a readmission taking over a deprecated
 * instance's seat, a seat taken over, or a request that may give an admin
 * who was deprecated a second seat. `warning` when approving needs care. */
export function seatNote(member: MemberView, names: Map<string, string>): { text: string; warning: boolean } | null {
  const name = (peer: string) => names.get(peer) ?? short(peer, 12);
  if (member.succeeded_by) return { text: `Came back as ${name(member.succeeded_by)}, who holds this seat now.`, warning: false };
  if (member.succeeds && member.status === "member") return { text: `Readmitted: holds the seat of ${name(member.succeeds)}.`, warning: false };
  if (member.succeeds && member.status === "pending") {
    const old = name(member.succeeds);
    if (member.seat_taken_by)
      return { text: `Asks to take over the seat of ${old}, but ${name(member.seat_taken_by)} already holds it: this request can never be admitted. Reject it.`, warning: true };
    if (member.seat_removed)
      return { text: `Names ${old} as its old instance, which the network removed by vote: approving gives it a seat of its own, as for anyone who asks to join.`, warning: true };
    if (!member.takes_over_seat)
      return { text: `Names ${old} as its old instance, but that one is not a deprecated member here: it stays waiting, however many approve it, until ${old} is deprecated.`, warning: true };
    if (member.seat_contested)
      return { text: `Asks to be readmitted in the seat of ${old}, and so does another request: only one can take it. Compare the join code with the admin of ${old} before approving.`, warning: true };
    return { text: `Asks to be readmitted: takes over the seat of ${old} (deprecated), and its votes, with no second seat.`, warning: false };
  }
  if (member.second_seat_of && member.status === "pending")
    return {
      text: `${member.second_seat_of} was deprecated and has an admin of the same name. This request does not take over its seat: if it is the same admin coming back, approving gives them a second vote. Ask them to use “Ask to be readmitted” on the deprecated instance instead.`,
      warning: true,
    };
  return null;
}

function SeatNote(member: MemberView, names: Map<string, string>): HTMLElement | null {
  const note = seatNote(member, names);
  if (!note) return null;
  return h("p", { class: note.warning ? "banner warning" : "muted", role: note.warning ? "alert" : undefined, "aria-label": `${member.name} seat` }, note.text);
}

/** Before approving: the approver compares the join code with the one on
 * the joiner's screen. Resolves true when they match. */
export function confirmJoinCode(member: MemberView, names: Map<string, string> = new Map()): Promise<boolean> {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "admin-dialog", "aria-label": "Compare the join code" });
    const close = (ok: boolean) => {
      if (typeof dialog.close === "function") dialog.close();
      dialog.remove();
      resolve(ok);
    };
    const seat = SeatNote(member, names);
    dialog.append(
      h("h2", {}, `Approve ${member.name}?`),
      h("p", {}, `${member.name} (admin: ${member.admin_name}) asked to join ${member.requested_ms ? `on ${when(member.requested_ms)} ` : ""}${member.invited_by ? `with an invite from ${member.invited_by}` : ""}. Call or meet ${member.admin_name} and check that their screen shows this join code:`),
      ...(seat ? [seat] : []),
      h("p", { class: "join-code big", "aria-label": "Join code to compare" }, member.join_code),
      h("p", { class: "muted" }, "If the codes differ, someone else may be using their invite: do not approve."),
      h("div", { class: "actions" }, h("button", { type: "button", onclick: () => close(false) }, "Not sure"), h("button", { type: "button", class: "primary", onclick: () => close(true) }, "Codes match — approve")),
    );
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      close(false);
    });
    document.body.append(dialog);
    if (typeof dialog.showModal === "function") dialog.showModal();
    else dialog.setAttribute("open", "");
  });
}

/** One row of the member table. */
export function MemberRow(member: MemberView, refresh: () => void, client: Api = api, names: Map<string, string> = new Map()): HTMLElement {
  const statusText = member.suspended && member.status === "member" ? "Suspended (upgrade required)" : STATUS_TEXT[member.status];
  const rootsMark =
    member.roots === "match" ? "✓ state matches" : member.roots === "mismatch" ? "✗ state differs" : member.roots === "syncing" ? "… syncing" : "–";
  const label = `Member ${member.name}`;
  return h(
    "tr",
    { "aria-label": label, class: member.status },
    h("td", {}, h("strong", {}, member.name), member.is_self ? " (this instance)" : "", h("br", {}), h("small", { class: "muted" }, `admin: ${member.admin_name}`), SeatNote(member, names)),
    h("td", {}, h("span", { class: `badge ${member.status}`, "aria-label": `${member.name} status` }, statusText), member.deprecation ? h("small", { class: "muted" }, h("br", {}), member.deprecation) : null),
    h("td", {}, member.online ? "online" : `offline, last seen ${when(member.last_seen)}`),
    h("td", {}, member.build ? BuildText(member.build, `${member.name} version`) : h("span", { class: "muted" }, "not known yet")),
    h("td", {}, h("code", {}, short(member.state_root, 8)), " ", rootsMark),
    h(
      "td",
      {},
      member.status === "pending"
        ? h(
            "span",
            {},
            `${member.approvals} of ${member.needed} approvals `,
            h("small", {}, "join code ", h("strong", { "aria-label": `${member.name} join code` }, member.join_code), " "),
            h("button", { type: "button", "aria-label": `Approve ${member.name}`, onclick: () => void confirmJoinCode(member, names).then(async (ok) => {
              if (ok) await act(() => client.approve(member.peer_id), `Approved ${member.name}.`, refresh, client);
            }) }, "Approve"),
            " ",
            h("button", { type: "button", "aria-label": `Reject ${member.name}`, onclick: () => void act(() => client.reject(member.peer_id), `Rejected ${member.name}.`, refresh, client) }, "Reject"),
          )
        : (member.status === "member" || member.status === "deprecated") && !member.is_self
          ? h("button", { type: "button", class: "link", "aria-label": `Propose removing ${member.name}`, onclick: () => void act(() => client.proposeRemove(member.peer_id), `Proposed removing ${member.name}.`, refresh, client) }, "Propose removal")
          : null,
    ),
  );
}

/** A grace period in words: "7 days", "1 hour", "no time". */
export function graceWords(ms: number): string {
  const s = Math.floor(ms / 1000);
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  if (s === 0) return "no time";
  if (s % 86400 === 0) return plural(s / 86400, "day");
  if (s % 3600 === 0) return plural(s / 3600, "hour");
  if (s % 60 === 0) return plural(s / 60, "minute");
  return plural(s, "second");
}

/** A proposal as a sentence: who proposes what, and what it changes. */
export function describeProposal(proposal: ProposalView, names: Map<string, string>): string {
  const who = names.get(proposal.proposer) ?? short(proposal.proposer);
  if (proposal.kind === "remove") return `${who} proposes to ${proposal.summary}.`;
  const builds = proposal.builds.map((b) => `${b.description} (code hash ${b.code_hash.slice(0, 12)})`).join(", ");
  const withdrawn = proposal.withdraws.map((b) => b.description).join(", ");
  const grace = graceWords(proposal.grace_ms ?? 0);
  const ends = proposal.withdraws_at ? `on ${when(proposal.withdraws_at)}` : grace === "no time" ? "as soon as the vote passes" : `${grace} after the vote passes`;
  return proposal.withdraws.length
    ? `${who} proposes approving ${builds}. ${withdrawn} will no longer be accepted ${ends}: members still running ${proposal.withdraws.length === 1 ? "it" : "them"} must install a new version.`
    : `${who} proposes approving ${builds} alongside the versions approved now. Nothing stops being accepted.`;
}

export function ProposalItem(proposal: ProposalView, names: Map<string, string>, refresh: () => void, client: Api): HTMLElement {
  return h(
    "li",
    { "aria-label": `Proposal ${proposal.summary}` },
    h("strong", {}, proposal.kind === "remove" ? "Removal: " : "Software: "),
    h("span", { "aria-label": "Proposal text" }, describeProposal(proposal, names)),
    h("br", {}),
    `${proposal.yes} yes · ${proposal.no} no · needs ${proposal.needed} · ${proposal.status}`,
    proposal.status === "open" && proposal.my_vote != null
      ? ` · you voted ${proposal.my_vote ? "yes" : "no"}`
      : proposal.status === "open"
      ? h(
          "span",
          {},
          " ",
          h("button", { type: "button", onclick: () => void act(() => client.vote(proposal.id, true), "Voted yes.", refresh, client) }, "Vote yes"),
          " ",
          h("button", { type: "button", onclick: () => void act(() => client.vote(proposal.id, false), "Voted no.", refresh, client) }, "Vote no"),
        )
      : null,
  );
}

/** Evidence in plain words. */
export function explainEvidence(evidence: EvidenceView, names: Map<string, string>): string {
  const offender = evidence.offender ? names.get(evidence.offender) ?? short(evidence.offender) : "an instance";
  const accuser = names.get(evidence.accuser) ?? short(evidence.accuser);
  switch (evidence.status) {
    case "proven":
      return `${offender} broke the network's rules: ${evidence.reason}. Every instance checked this on its own; nothing flows to or from ${offender} any more.`;
    case "adopted":
      return `${offender} broke the network's rules: ${evidence.reason}. This instance joined after the fact and cannot check it on its own any more; it took this over because a majority of the members hold it proven.`;
    case "against_this_instance":
      return `The network found that this instance broke the rules: ${evidence.reason}. It keeps working here, as a fork, but nothing flows to the network any more.`;
    case "unfounded":
      return `${accuser} accused another instance falsely (${evidence.reason}); this counts as evidence against ${accuser}.`;
    default:
      return `Reported by ${accuser}; this instance cannot check it yet (${evidence.reason}).`;
  }
}

export function MembersView(client: Api = api): HTMLElement {
  const table = h("tbody", {});
  const proposals = h("ul", { class: "plain", "aria-label": "Proposals" });
  const evidence = h("ul", { class: "plain", "aria-label": "Evidence" });
  const refresh = async () => {
    try {
      const [members, props, found] = await Promise.all([client.members(), client.proposals(), client.evidence()]);
      const names = new Map(members.map((m) => [m.peer_id, m.name]));
      // Requests waiting for an approval come first.
      const ordered = [...members.filter((m) => m.status === "pending"), ...members.filter((m) => m.status !== "pending")];
      table.replaceChildren(...ordered.map((m) => MemberRow(m, () => void refresh(), client, names)));
      proposals.replaceChildren(...(props.length ? props.map((p) => ProposalItem(p, names, () => void refresh(), client)) : [h("li", { class: "muted" }, "No proposals.")]));
      evidence.replaceChildren(...(found.length ? found.map((e) => h("li", {}, explainEvidence(e, names))) : [h("li", { class: "muted" }, "No evidence: every instance follows the rules.")]));
    } catch (e) {
      table.replaceChildren(h("tr", {}, h("td", { class: "error" }, errorText(e))));
    }
  };
  void refresh();
  const view = h(
    "div",
    { class: "stack" },
    h("section", { class: "card" }, h("h2", {}, "Members"), h("table", { class: "members", "aria-label": "Members" }, h("thead", {}, h("tr", {}, h("th", {}, "Instance"), h("th", {}, "Status"), h("th", {}, "Online"), h("th", {}, "Version"), h("th", {}, "State root"), h("th", {}, ""))), table)),
    h("section", { class: "card" }, h("h2", {}, "Proposals"), proposals),
    h("section", { class: "card" }, h("h2", {}, "Evidence"), evidence),
  );
  (view as HTMLElement & { refresh?: () => void }).refresh = () => void refresh();
  return view;
}

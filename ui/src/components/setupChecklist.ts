// Until the network is active: what is done and what comes next, as steps.

import { h } from "../dom";
import type { Status } from "../types";

/** One step of setting up: done or not, in words. */
export interface SetupStep {
  done: boolean;
  text: string;
}

/** The steps from a new instance to an active network. */
export function setupSteps(status: Status): SetupStep[] {
  const needed = status.min_members ?? 3;
  const others = Math.max(needed - 1, 0);
  return [
    { done: true, text: "This instance is set up, and you are its admin." },
    { done: status.network_id !== null, text: `The network “${status.network_name ?? "…"}” exists, with this instance as a member.` },
    {
      done: status.members >= needed,
      text: `${others} other admin${others === 1 ? "" : "s"}, each on their own computer with their own password, join with an invite link (Network → Invite someone). Members now: ${status.members} of ${needed}. A network needs several admins so that no single person can change its records or its rules alone.`,
    },
    { done: status.members >= needed, text: "Each newcomer is approved: compare the join code they read out with the one next to their request (Members)." },
    { done: status.state === "active", text: "Records can be written once the network has its members." },
  ];
}

/** The steps as a checklist card. */
export function SetupChecklist(status: Status): HTMLElement {
  return h(
    "section",
    { class: "card checklist", "aria-label": "Setup checklist" },
    h("h2", {}, "Getting the network started"),
    h("ol", {}, ...setupSteps(status).map((step) => h("li", { class: step.done ? "done" : "todo", "aria-label": step.done ? "Done" : "To do" }, `${step.done ? "✓" : "○"} ${step.text}`))),
    h("p", { class: "hint" }, "Keep the admin password safe: nobody can reset it. Once the network runs, make a backup (Settings → Backup)."),
  );
}

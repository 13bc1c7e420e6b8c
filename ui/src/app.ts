// The app shell: picks the screen for the stage (first run, unlock, no
// network, waiting for approval, ready), the tabs, sync progress and toasts.

import { api, isApiError, onEvent, type Api } from "./api";
import { h, replace } from "./dom";
import type { AppInfo, DanEvent, Status } from "./types";
import { AdminLockIndicator, syncAdminRemaining } from "./components/adminLock";
import { toast } from "./components/toasts";
import { FirstRunView, UnlockView } from "./views/firstRun";
import { StartNetworkView } from "./views/startNetwork";
import { RecordsView } from "./views/records";
import { MembersView } from "./views/members";
import { NetworkView, clockWarning, describeState } from "./views/network";
import { SettingsView } from "./views/settings";
import { onCloseRequested } from "./components/closeDialog";

type Tab = "Records" | "Members" | "Network" | "Settings";
type Refreshable = HTMLElement & { refresh?: () => void };

export class App {
  private info: AppInfo | null = null;
  private status: Status | null = null;
  private tab: Tab = "Records";
  private view: Refreshable | null = null;
  private names = new Map<string, string>();
  /** Join requests and open proposals waiting for a decision (the
   * Members tab shows how many). */
  private waiting = 0;
  /** Refusals already shown: a refused peer retries every few seconds. */
  private refusalsShown = new Set<string>();
  /** Bumped by each render; an older render that finds it moved stops. */
  private renders = 0;
  /** A clicked `dan://` link taken from the app and not shown yet. */
  private launchLink = "";
  private progress = h("div", { class: "progress", role: "progressbar", "aria-label": "Sync progress", hidden: true });

  constructor(
    private root: HTMLElement,
    private client: Api = api,
  ) {}

  async start(): Promise<void> {
    await onEvent((event) => this.onEvent(event)).catch(() => undefined);
    setInterval(() => void this.refreshStatus(), 2000);
    await this.render();
  }

  private onEvent(event: DanEvent): void {
    switch (event.kind) {
      case "members_changed":
        // Update in place: a join request or a vote elsewhere must not wipe
        // what someone is typing here.
        void this.refreshStatus();
        if (this.tab !== "Records") this.view?.refresh?.();
        break;
      case "records_changed":
        if (this.tab === "Records") this.view?.refresh?.();
        break;
      case "evidence":
        toast(`${this.names.get(event.offender) ?? "An instance"} was deprecated: ${event.reason}`, "warning");
        void this.refreshStatus();
        if (this.tab !== "Records") this.view?.refresh?.();
        break;
      case "sync_progress": {
        const done = event.total === 0 || event.fetched >= event.total;
        this.progress.hidden = done;
        this.progress.setAttribute("aria-valuenow", String(event.fetched));
        this.progress.setAttribute("aria-valuemax", String(event.total));
        this.progress.style.setProperty("--done", `${event.total ? (100 * event.fetched) / event.total : 100}%`);
        this.progress.textContent = done ? "" : `Syncing: ${event.fetched} of ${event.total} changes`;
        break;
      }
      case "peer_changed": {
        // A deprecated instance is refused by everyone; the banner says so.
        if (!event.what.startsWith("refused") || this.status?.state === "deprecated") break;
        const key = `${event.peer} ${event.what}`;
        if (this.refusalsShown.has(key)) break;
        this.refusalsShown.add(key);
        toast(`Connection ${event.what}`, "warning");
        break;
      }
      case "launch_link":
        // Kept until there is an instance to join with: the first-run and
        // unlock forms stay as the person left them (the render after them
        // takes the link).
        if (this.info?.stage === "ready") void this.render();
        else
          // The instance may have become ready behind the form (unlocked
          // from the keyring): then the link is for it now.
          void this.client
            .appInfo()
            .then((info) => (info.stage === "ready" ? this.render() : undefined))
            .catch(() => undefined);
        break;
      case "checkpoint_now":
        break;
      case "close_requested":
        onCloseRequested(this.client);
        break;
    }
  }

  private async refreshStatus(rerender = false): Promise<void> {
    if (this.info?.stage !== "ready") return;
    try {
      const before = this.status;
      this.status = await this.client.status();
      void this.client.setWindowTitle(windowTitle(this.status));
      const members = await this.client.members().catch(() => []);
      this.names = new Map(members.map((m) => [m.peer_id, m.name]));
      const proposals = await this.client.proposals().catch(() => []);
      const asking = members.filter((m) => m.status === "pending").length;
      const waiting = asking + proposals.filter((p) => p.status === "open").length;
      if (waiting > this.waiting && asking > 0) toast("Someone asks to join the network: see Members to approve or reject.");
      this.waiting = waiting;
      const changedStage =
        before?.state !== this.status.state ||
        before?.network_id !== this.status.network_id ||
        (this.status.state === "pending" &&
          (before?.join?.approvals !== this.status.join?.approvals || before?.join?.needed !== this.status.join?.needed));
      if (before && before.members < this.status.members) toast("A new member joined the network.");
      if (changedStage || rerender) await this.render(false);
      else this.updateHeader();
    } catch (e) {
      if (isApiError(e) && e.code === "not_ready") return;
    }
  }

  /** Draws the screen for the current stage. */
  async render(fetch = true): Promise<void> {
    // Renders can overlap (a start, a clicked link, a status poll): only
    // the latest draws, so a slow earlier one cannot replace what a later
    // one showed (such as the join form filled from a clicked link).
    const mine = ++this.renders;
    if (fetch) {
      const info = await this.client.appInfo();
      const status = info.stage === "ready" ? await this.client.status() : this.status;
      if (mine !== this.renders) return;
      this.info = info;
      this.status = status;
      syncAdminRemaining(info.admin_remaining_ms);
      void this.client.setWindowTitle(windowTitle(status));
    }
    const info = this.info;
    if (!info) return;
    if (info.stage === "first_run") return replace(this.root, FirstRunView(() => void this.render(), this.client));
    if (info.stage === "locked") return replace(this.root, UnlockView(() => void this.render(), this.client));
    const status = this.status;
    if (!status) return;
    const taken = await this.client.takeLaunchLink().catch(() => null);
    if (taken) this.launchLink = taken;
    if (mine !== this.renders) return;
    const link = this.launchLink;
    this.launchLink = "";
    if (status.state === "none") return replace(this.root, this.frame(StartNetworkView(() => void this.render(), this.client, link)));
    if (link && status.state === "deprecated") toast("To ask to be readmitted, paste the invite link under Network → Ask to be readmitted.", "warning");
    else if (link) toast("This instance already belongs to a network; the invite link was not used.", "warning");
    if (status.state === "pending") {
      return replace(this.root, this.frame(h("main", { class: "centered" }, h("section", { class: "card", "aria-label": "Waiting for approval" }, h("h1", {}, status.join?.network_name ?? "Joining"), h("p", { class: "big" }, describeState(status)), status.join ? h("p", {}, "Your join code: ", h("strong", { class: "join-code", "aria-label": "Your join code" }, status.join.join_code)) : null, h("p", {}, "Read this code to the other admins (by phone or in person): before approving, each checks that their screen shows the same code next to your request. This screen updates by itself.")))));
    }
    this.drawTabs();
  }

  private header(): HTMLElement {
    const status = this.status;
    return h(
      "header",
      {},
      h("strong", { class: "brand" }, "DAN"),
      h("span", { class: "network" }, status?.network_name ?? ""),
      status ? h("span", { class: `badge ${status.state}`, "aria-label": "Network status" }, status.state) : null,
      h("span", { class: "grow" }),
      AdminLockIndicator(this.client),
    );
  }

  private frame(content: HTMLElement): HTMLElement {
    return h("div", { class: "app" }, this.header(), this.progress, content);
  }

  /** Updates the status words in place (header badge, banner, the
   * Network tab's state line) without touching anything being edited. */
  private updateHeader(): void {
    const status = this.status;
    if (!status) return;
    const badge = this.root.querySelector('[aria-label="Network status"]');
    if (badge) badge.textContent = status.state;
    const members = this.root.querySelector<HTMLElement>('button[role="tab"][data-tab="Members"]');
    if (members) this.countOn(members);
    for (const line of this.root.querySelectorAll('[aria-label="Network state"], .banner[role="status"]')) line.textContent = describeState(status);
  }

  /** Shows on the Members tab how many decisions wait (a count drawn by
   * CSS, so the tab's name stays "Members"). */
  private countOn(tab: HTMLElement): void {
    if (this.waiting > 0) {
      tab.dataset.count = String(this.waiting);
      tab.setAttribute("aria-description", `${this.waiting} waiting for a decision`);
    } else {
      delete tab.dataset.count;
      tab.removeAttribute("aria-description");
    }
  }

  private drawTabs(): void {
    const status = this.status;
    const info = this.info;
    if (!status || !info) return;
    const tabs: Tab[] = ["Records", "Members", "Network", "Settings"];
    const show = (tab: Tab, focus: boolean) => {
      this.tab = tab;
      this.drawTabs();
      if (focus) this.root.querySelector<HTMLElement>(`[role="tab"][data-tab="${tab}"]`)?.focus();
    };
    // Arrow keys, Home and End move between tabs (one tab stop for all).
    const onKey = (event: Event) => {
      const key = (event as KeyboardEvent).key;
      const at = tabs.indexOf(this.tab);
      const next = key === "ArrowRight" ? (at + 1) % tabs.length : key === "ArrowLeft" ? (at + tabs.length - 1) % tabs.length : key === "Home" ? 0 : key === "End" ? tabs.length - 1 : -1;
      if (next < 0) return;
      event.preventDefault();
      show(tabs[next], true);
    };
    const nav = h(
      "nav",
      { role: "tablist", "aria-label": "Sections", onkeydown: onKey },
      ...tabs.map((tab) =>
        h(
          "button",
          {
            type: "button",
            role: "tab",
            id: `tab-${tab}`,
            "aria-selected": String(tab === this.tab),
            "aria-controls": "tab-panel",
            tabindex: tab === this.tab ? "0" : "-1",
            "data-tab": tab,
            onclick: () => show(tab, false),
          },
          tab,
        ),
      ),
    );
    const members = nav.querySelector<HTMLElement>('[data-tab="Members"]');
    if (members) this.countOn(members);
    const refreshAll = () => void this.render();
    this.view =
      this.tab === "Records"
        ? RecordsView(status, this.names, this.client)
        : this.tab === "Members"
          ? MembersView(this.client)
          : this.tab === "Network"
            ? NetworkView(status, refreshAll, this.client)
            : SettingsView(info.data_dir, refreshAll, this.client, status);
    this.view.setAttribute("role", "tabpanel");
    this.view.id = "tab-panel";
    this.view.setAttribute("aria-labelledby", `tab-${this.tab}`);
    const banner =
      status.state === "deprecated" || status.state === "suspended" || status.state === "unapproved" || status.state === "forming"
        ? h("p", { class: `banner ${status.state}`, role: "status" }, describeState(status))
        : null;
    const clock = clockWarning(status);
    replace(this.root, this.frame(h("main", {}, nav, banner ?? "", clock ? h("p", { class: "banner", role: "alert", "aria-label": "Clock warning" }, clock) : "", this.view)));
  }
}

/** The window's title: the version, and the network once there is one
 * (several DAN windows, or DAN among other windows, are told apart). */
export function windowTitle(status: Status | null): string {
  const version = status?.build.label?.version;
  const app = version ? `DAN ${version}` : "DAN";
  const network = status?.network_name ?? status?.join?.network_name;
  return network ? `${network} — ${app}` : app;
}

// Settings: change the admin password, back up and restore, open the data
// folder, quit, and what this instance is (About).

import { api, isApiError, type Api } from "../api";
import { h, field } from "../dom";
import { asAdmin } from "../components/adminLock";
import { toast } from "../components/toasts";
import { errorText } from "../components/errorText";
import { CLOSE_CHOICE_KEY } from "../components/closeDialog";
import type { StartAtLogInSetting, Status } from "../types";
import { confirmDialog } from "../components/confirmDialog";

/** What this instance is, for a person asked "which DAN do you run?". */
export function AboutCard(status: Status): HTMLElement {
  const row = (label: string, value: string) => h("p", {}, h("strong", {}, `${label}: `), h("span", { "aria-label": label }, value));
  return h(
    "section",
    { class: "card", "aria-label": "About DAN" },
    h("h2", {}, "About DAN"),
    h("p", {}, "DAN (Distributed Administration Network) keeps a network's records on every member's computer; no admin alone, nor a minority of them, controls it."),
    row("This instance", status.name),
    row("Version", status.build.description),
    row("Code hash", status.code_hash),
    row("Instance id", status.peer_id),
    status.network_name ? row("Network", `${status.network_name} (id ${(status.network_id ?? "").slice(0, 12)}…)`) : null,
  );
}

function report(e: unknown): void {
  if (isApiError(e) && e.code === "cancelled") return;
  toast(errorText(e), "error");
}

/** "Start DAN when I log in": the instance then runs from log-in on, in
 * the background (opening DAN shows the window). There is one entry per
 * person: when it starts another data folder, the box says so, and ticking
 * it moves the entry to this one. */
export function StartAtLogIn(client: Api): HTMLElement {
  const box = h("input", { type: "checkbox", "aria-label": "Start DAN when I log in", disabled: true }) as HTMLInputElement;
  const note = h("span", { class: "hint", role: "note" });
  const show = (setting: StartAtLogInSetting) => {
    box.checked = setting.on;
    note.textContent = setting.other_folder
      ? ` DAN starts at log-in with another data folder (${setting.other_folder}); ticking this starts this one instead.`
      : setting.other_app
        ? ` Another copy of DAN starts at log-in (${setting.other_app}); ticking this starts this one instead.`
        : "";
  };
  void Promise.resolve()
    .then(() => client.autostart())
    .then(
    (setting) => {
      show(setting);
      box.disabled = false;
    },
    () => {
      box.title = "This desktop does not say whether DAN starts at log-in.";
    },
  );
  box.addEventListener("change", async () => {
    const wanted = box.checked;
    box.disabled = true;
    try {
      show(await client.setAutostart(wanted));
      toast(box.checked ? "DAN will start in the background when you log in." : "DAN will not start when you log in.");
    } catch (e) {
      box.checked = !wanted;
      report(e);
    } finally {
      box.disabled = false;
    }
  });
  return h("label", { class: "toggle" }, box, " Start DAN when I log in (in the background)", note);
}

/** A button that asks the desktop's own file dialog for a path and puts
 * it in `into` (a cancelled dialog leaves it as it was). */
function ChooseButton(text: string, choose: () => Promise<string | null>, into: HTMLInputElement): HTMLElement {
  const onclick = async () => {
    try {
      const chosen = await choose();
      if (chosen) into.value = chosen;
    } catch (e) {
      report(e);
    }
  };
  return h("button", { type: "button", onclick }, text);
}

export function SettingsView(dataDir: string, refreshAll: () => void, client: Api = api, status: Status | null = null): HTMLElement {
  const oldPassword = h("input", { type: "password", autocomplete: "current-password" });
  const newPassword = h("input", { type: "password", autocomplete: "new-password" });
  const repeat = h("input", { type: "password", autocomplete: "new-password" });
  const backupPath = h("input", { type: "text" });
  backupPath.value = `${dataDir.replace(/\/+$/, "")}-backup-${new Date().toISOString().slice(0, 10)}.danbackup`;
  const restorePath = h("input", { type: "text", placeholder: "path of a .danbackup file" });
  const restorePassword = h("input", { type: "password" });
  return h(
    "div",
    { class: "stack" },
    h(
      "form",
      {
        class: "card",
        "aria-label": "Change admin password",
        onsubmit: async (event: Event) => {
          event.preventDefault();
          if (newPassword.value.length < 10) return toast("The new password needs at least 10 characters.", "error");
          if (newPassword.value !== repeat.value) return toast("The two new passwords are not the same.", "error");
          try {
            await client.changePassword(oldPassword.value, newPassword.value);
            toast("Admin password changed.");
            oldPassword.value = newPassword.value = repeat.value = "";
          } catch (e) {
            report(e);
          }
        },
      },
      h("h2", {}, "Admin password"),
      field("Current admin password", oldPassword),
      field("New admin password", newPassword),
      field("Repeat the new admin password", repeat),
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Change password")),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Backup"),
      h("p", {}, "A backup holds this instance's data and its sealed key, encrypted under the admin password. After a restore, anything this instance wrote since the backup comes back from the other members."),
      field("Backup file", backupPath),
      ChooseButton("Choose where to save…", () => client.chooseBackupToWrite(backupPath.value), backupPath),
      " ",
      h(
        "button",
        {
          type: "button",
          onclick: async () => {
            try {
              const bytes = await asAdmin(() => client.exportBackup(backupPath.value), client);
              toast(`Backup written (${Math.round(bytes / 1024)} KiB).`);
            } catch (e) {
              report(e);
            }
          },
        },
        "Export backup",
      ),
      field("Restore from", restorePath),
      ChooseButton("Choose a backup…", () => client.chooseBackupToRestore(), restorePath),
      field("Admin password of the backup", restorePassword),
      h(
        "button",
        {
          type: "button",
          class: "danger",
          onclick: async () => {
            const sure = await confirmDialog({
              title: "Restore this backup?",
              text: "This instance's data is replaced with the backup. The current database is kept next to it, so nothing is lost.",
              confirm: "Restore backup",
            });
            if (!sure) return;
            try {
              await asAdmin(() => client.restoreBackup(restorePath.value, restorePassword.value), client);
              toast("Backup restored.");
              refreshAll();
            } catch (e) {
              report(e);
            }
          },
        },
        "Restore backup",
      ),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Data folder"),
      h("p", { class: "muted" }, dataDir),
      h("button", { type: "button", onclick: () => void client.openDataFolder().catch(report) }, "Open data folder"),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Running in the background"),
      h("p", {}, "Closing the window keeps DAN running so the other members can reach this instance; open DAN again to see the window. Quit stops it until you open DAN again."),
      h(
        "button",
        {
          type: "button",
          onclick: () => {
            localStorage.removeItem(CLOSE_CHOICE_KEY);
            toast("DAN will ask again when you close the window.");
          },
        },
        "Ask again when I close the window",
      ),
      StartAtLogIn(client),
      h("button", { type: "button", class: "danger", onclick: () => void client.quitApp().catch(report) }, "Quit DAN"),
    ),
    status ? AboutCard(status) : "",
  );
}

import { describe, expect, it, vi } from "vitest";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn() }));
vi.mock("@tauri-apps/plugin-dialog", () => ({ open: vi.fn(), save: vi.fn() }));

import type { Status } from "../types";
import { AboutCard } from "../views/settings";

describe("about", () => {
  it("says which DAN this is: version, code hash, instance and network", () => {
    const status = {
      peer_id: "12D3KooWabc",
      name: "Desk laptop",
      network_id: "f".repeat(64),
      network_name: "Commons",
      code_hash: "a".repeat(64),
      build: { code_hash: "a".repeat(64), label: null, description: "DAN 0.1.0 · desktop · Linux x86-64", approval: "approved", approval_ends_ms: null },
    } as unknown as Status;
    const card = AboutCard(status);
    const value = (label: string) => card.querySelector(`[aria-label="${label}"]`)?.textContent;
    expect(value("Version")).toBe("DAN 0.1.0 · desktop · Linux x86-64");
    expect(value("Code hash")).toBe("a".repeat(64));
    expect(value("This instance")).toBe("Desk laptop");
    expect(value("Network")).toBe("Commons (id ffffffffffff…)");
  });
});

describe("restoring a backup", () => {
  it("asks for the admin password before replacing a running instance's data", async () => {
    HTMLDialogElement.prototype.showModal ??= function (this: HTMLDialogElement) { this.open = true; };
    HTMLDialogElement.prototype.close ??= function (this: HTMLDialogElement) { this.open = false; };
    const restoreBackup = vi.fn(async () => { throw { code: "admin_locked", message: "locked" }; });
    const { SettingsView } = await import("../views/settings");
    const view = SettingsView("/data", () => {}, { restoreBackup } as unknown as import("../api").Api);
    document.body.append(view);
    Array.from(view.querySelectorAll("button")).find((b) => b.textContent === "Restore backup")!.click();
    // First the window's own "are you sure?", which says nothing is lost.
    const sure = document.querySelector('dialog[aria-label="Restore this backup?"]');
    expect(sure?.textContent).toMatch(/kept next to it/);
    expect(restoreBackup).not.toHaveBeenCalled();
    Array.from(sure!.querySelectorAll("button")).find((b) => b.textContent === "Restore backup")!.click();
    await new Promise((r) => setTimeout(r, 0));
    expect(restoreBackup).toHaveBeenCalledTimes(1);
    expect(document.querySelector('dialog[aria-label="Admin password"]')).not.toBeNull();
  });
});

describe("choosing backup files", () => {
  it("fills the paths from the desktop's own Save and Open dialogs, and keeps them when cancelled", async () => {
    const chosen: Array<string | null> = ["/home/ada/Backups/library.danbackup", null];
    const client = {
      chooseBackupToWrite: vi.fn(async () => chosen.shift() ?? null),
      chooseBackupToRestore: vi.fn(async () => "/media/usb/library.danbackup"),
    } as unknown as import("../api").Api;
    const { SettingsView } = await import("../views/settings");
    const view = SettingsView("/home/ada/.local/share/dan", () => {}, client);
    document.body.replaceChildren(view);
    const input = (label: string) => view.querySelector(`[aria-label="${label}"]`) as HTMLInputElement;
    const press = async (text: string) => {
      Array.from(view.querySelectorAll("button")).find((b) => b.textContent === text)!.click();
      await new Promise((r) => setTimeout(r, 0));
    };
    expect(input("Backup file").value).toMatch(/^\/home\/ada\/\.local\/share\/dan-backup-\d{4}-\d{2}-\d{2}\.danbackup$/);
    const suggested = input("Backup file").value;
    await press("Choose where to save…");
    expect(client.chooseBackupToWrite).toHaveBeenCalledWith(suggested);
    expect(input("Backup file").value).toBe("/home/ada/Backups/library.danbackup");
    await press("Choose where to save…");
    expect(input("Backup file").value).toBe("/home/ada/Backups/library.danbackup");
    await press("Choose a backup…");
    expect(input("Restore from").value).toBe("/media/usb/library.danbackup");
  });
});

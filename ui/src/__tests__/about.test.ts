import { describe, expect, it, vi } from "vitest";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn() }));

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
    vi.stubGlobal("confirm", () => true);
    const restoreBackup = vi.fn(async () => { throw { code: "admin_locked", message: "locked" }; });
    const { SettingsView } = await import("../views/settings");
    const view = SettingsView("/data", () => {}, { restoreBackup } as unknown as import("../api").Api);
    document.body.append(view);
    Array.from(view.querySelectorAll("button")).find((b) => b.textContent === "Restore backup")!.click();
    await new Promise((r) => setTimeout(r, 0));
    expect(restoreBackup).toHaveBeenCalledTimes(1);
    expect(document.querySelector('dialog[aria-label="Admin password"]')).not.toBeNull();
  });
});

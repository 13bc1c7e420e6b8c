import { describe, expect, it, vi } from "vitest";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn() }));

import type { Api } from "../api";
import type { Status } from "../types";
import { AdminLockIndicator, askAdminPassword } from "../components/adminLock";
import { windowTitle } from "../app";

describe("the admin password dialog and the lock indicator", () => {
  it("cancels the action when Escape closes the dialog", async () => {
    // Fails on e0617a0: Escape closed the dialog but the action waited for
    // ever ("Contacting the inviter…" stayed on the Join button).
    const asked = askAdminPassword({ adminUnlock: vi.fn() } as unknown as Api);
    const dialog = document.querySelector('dialog[aria-label="Admin password"]')!;
    dialog.dispatchEvent(new Event("cancel", { cancelable: true }));
    await expect(asked).rejects.toMatchObject({ code: "cancelled" });
    expect(document.querySelector('dialog[aria-label="Admin password"]')).toBeNull();
  });

  it("stops its clock once the header that held it is gone", () => {
    vi.useFakeTimers();
    const cleared = vi.spyOn(globalThis, "clearInterval");
    const indicator = AdminLockIndicator({} as Api);
    document.body.append(indicator);
    vi.advanceTimersByTime(1100);
    expect(cleared).not.toHaveBeenCalled();
    indicator.remove();
    vi.advanceTimersByTime(1100);
    expect(cleared).toHaveBeenCalledTimes(1);
    cleared.mockRestore();
    vi.useRealTimers();
  });
});

describe("the window title", () => {
  it("names the network and the version", () => {
    const build = { code_hash: "c", label: { version: "0.1.0", platform: "linux-x86_64", kind: "desktop" }, description: "", approval: null, approval_ends_ms: null };
    const status = { network_name: "Elm Street Library", build, join: null } as unknown as Status;
    expect(windowTitle(status)).toBe("Elm Street Library — DAN 0.1.0");
    expect(windowTitle({ ...status, network_name: null })).toBe("DAN 0.1.0");
    expect(windowTitle(null)).toBe("DAN");
  });
});

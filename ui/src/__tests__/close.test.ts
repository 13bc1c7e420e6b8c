import { describe, expect, it, vi } from "vitest";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn() }));

import type { Api } from "../api";
import { CLOSE_CHOICE_KEY, onCloseRequested } from "../components/closeDialog";

function memoryStorage(): Storage {
  const items = new Map<string, string>();
  return { getItem: (k: string) => items.get(k) ?? null, setItem: (k: string, v: string) => void items.set(k, v), removeItem: (k: string) => void items.delete(k), clear: () => items.clear(), key: () => null, get length() { return items.size; } } as Storage;
}

describe("closing the window", () => {
  it("asks whether to keep running, and remembers the answer when told to", async () => {
    HTMLDialogElement.prototype.showModal ??= function (this: HTMLDialogElement) { this.open = true; };
    HTMLDialogElement.prototype.close ??= function (this: HTMLDialogElement) { this.open = false; };
    const client = { hideWindow: vi.fn(async () => {}), quitApp: vi.fn(async () => {}) } as unknown as Api;
    const storage = memoryStorage();
    onCloseRequested(client, storage);
    const dialog = document.querySelector('dialog[aria-label="Keep DAN running?"]')!;
    expect(dialog.textContent).toMatch(/other admins' instances can reach this one/);
    (dialog.querySelector('input[aria-label="Do not ask again"]') as HTMLInputElement).checked = true;
    Array.from(dialog.querySelectorAll("button")).find((b) => b.textContent === "Keep running in the background")!.click();
    await Promise.resolve();
    expect(client.hideWindow).toHaveBeenCalledTimes(1);
    expect(storage.getItem(CLOSE_CHOICE_KEY)).toBe("background");
    expect(document.querySelector("dialog.close-dialog")).toBeNull();
    onCloseRequested(client, storage);
    await Promise.resolve();
    expect(document.querySelector("dialog.close-dialog")).toBeNull();
    expect(client.hideWindow).toHaveBeenCalledTimes(2);
    storage.setItem(CLOSE_CHOICE_KEY, "quit");
    onCloseRequested(client, storage);
    await Promise.resolve();
    expect(client.quitApp).toHaveBeenCalledTimes(1);
  });
});

describe("starting at log-in", () => {
  it("shows the desktop's setting and changes it when ticked", async () => {
    const { StartAtLogIn } = await import("../views/settings");
    let on = false;
    const client = {
      autostart: vi.fn(async () => ({ on, other_folder: null, other_app: null })),
      setAutostart: vi.fn(async (wanted: boolean) => ({ on: (on = wanted), other_folder: null, other_app: null })),
    } as unknown as Api;
    const label = StartAtLogIn(client);
    document.body.append(label);
    const box = label.querySelector('[aria-label="Start DAN when I log in"]') as HTMLInputElement;
    await vi.waitFor(() => expect(box.disabled).toBe(false));
    expect(box.checked).toBe(false);
    box.checked = true;
    box.dispatchEvent(new Event("change"));
    await vi.waitFor(() => expect(client.setAutostart).toHaveBeenCalledWith(true));
    await vi.waitFor(() => expect(box.disabled).toBe(false));
    expect(box.checked).toBe(true);
  });

  it("says when the entry starts another data folder, and moves it here when ticked", async () => {
    const { StartAtLogIn } = await import("../views/settings");
    let other: string | null = "/home/ada/dan-work";
    const client = {
      autostart: vi.fn(async () => ({ on: false, other_folder: other, other_app: null })),
      setAutostart: vi.fn(async (wanted: boolean) => {
        other = null;
        return { on: wanted, other_folder: null, other_app: null };
      }),
    } as unknown as Api;
    const label = StartAtLogIn(client);
    document.body.append(label);
    const box = label.querySelector('[aria-label="Start DAN when I log in"]') as HTMLInputElement;
    await vi.waitFor(() => expect(box.disabled).toBe(false));
    expect(box.checked).toBe(false);
    expect(label.textContent).toMatch(/another data folder \(\/home\/ada\/dan-work\); ticking this starts this one instead/);
    box.checked = true;
    box.dispatchEvent(new Event("change"));
    await vi.waitFor(() => expect(client.setAutostart).toHaveBeenCalledWith(true));
    await vi.waitFor(() => expect(box.disabled).toBe(false));
    expect(box.checked).toBe(true);
    expect(label.textContent).not.toMatch(/another data folder/);
  });

  it("puts the box back when the desktop refuses", async () => {
    const { StartAtLogIn } = await import("../views/settings");
    const client = {
      autostart: vi.fn(async () => ({ on: false, other_folder: null, other_app: null })),
      setAutostart: vi.fn(async () => {
        throw { code: "io", message: "could not change the log-in setting: read-only" };
      }),
    } as unknown as Api;
    const label = StartAtLogIn(client);
    document.body.append(label);
    const box = label.querySelector('[aria-label="Start DAN when I log in"]') as HTMLInputElement;
    await vi.waitFor(() => expect(box.disabled).toBe(false));
    box.checked = true;
    box.dispatchEvent(new Event("change"));
    await vi.waitFor(() => expect(box.disabled).toBe(false));
    expect(box.checked).toBe(false);
  });
});

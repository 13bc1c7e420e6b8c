import { describe, expect, it } from "vitest";

import { confirmDialog } from "../components/confirmDialog";

function buttonNamed(dialog: Element, text: string): HTMLButtonElement {
  const button = [...dialog.querySelectorAll("button")].find((b) => b.textContent === text);
  if (!button) throw new Error(`no button ${text}`);
  return button;
}

describe("asking before something that cannot be undone in one click", () => {
  HTMLDialogElement.prototype.showModal ??= function (this: HTMLDialogElement) { this.open = true; };
  HTMLDialogElement.prototype.close ??= function (this: HTMLDialogElement) { this.open = false; };

  it("asks in the window, in the app's words, and goes ahead only when told", async () => {
    const answer = confirmDialog({ title: "Restore this backup?", text: "The current database is kept.", confirm: "Restore backup" });
    const dialog = document.querySelector('dialog[aria-label="Restore this backup?"]');
    expect(dialog?.textContent).toMatch(/The current database is kept/);
    buttonNamed(dialog!, "Restore backup").click();
    await expect(answer).resolves.toBe(true);
    expect(document.querySelector("dialog.confirm-dialog")).toBeNull();
  });

  it("does nothing on Cancel or Escape", async () => {
    const cancelled = confirmDialog({ title: "Found the fork?", text: "…", confirm: "Fork network" });
    buttonNamed(document.querySelector("dialog.confirm-dialog")!, "Cancel").click();
    await expect(cancelled).resolves.toBe(false);
    const escaped = confirmDialog({ title: "Found the fork?", text: "…", confirm: "Fork network" });
    document.querySelector("dialog.confirm-dialog")!.dispatchEvent(new Event("cancel", { cancelable: true }));
    await expect(escaped).resolves.toBe(false);
    expect(document.querySelector("dialog.confirm-dialog")).toBeNull();
  });
});

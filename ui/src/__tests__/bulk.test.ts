import { describe, expect, it, vi } from "vitest";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn() }));

import type { Api } from "../api";
import type { BulkProgress } from "../types";
import { BulkButtons } from "../components/bulkTransfer";

function notifications(): string {
  return document.querySelector('[aria-label="Notifications"]')?.textContent ?? "";
}

function button(root: HTMLElement, name: string): HTMLButtonElement {
  const found = Array.from(root.querySelectorAll("button")).find((b) => b.textContent === name);
  if (!found) throw new Error(`no button ${name}`);
  return found;
}

describe("Import… and Export…", () => {
  it("imports the file the dialog chose, shows how far it got, then reads the list again", async () => {
    let tell: (p: BulkProgress) => void = () => undefined;
    let finish: (n: number) => void = () => undefined;
    const unlisten = vi.fn();
    const onImported = vi.fn();
    const client = {
      chooseImportFile: vi.fn(async () => "/home/ada/books.csv"),
      importRecords: vi.fn(() => new Promise<number>((resolve) => (finish = resolve))),
      onBulkProgress: vi.fn(async (handler: (p: BulkProgress) => void) => {
        tell = handler;
        return unlisten;
      }),
    } as unknown as Api;
    const view = BulkButtons(true, onImported, client);
    document.body.replaceChildren(view);
    button(view, "Import…").click();
    await vi.waitFor(() => expect(client.importRecords).toHaveBeenCalledWith("/home/ada/books.csv"));
    tell({ kind: "import", done: 1000, total: 2500 });
    const bar = view.querySelector<HTMLProgressElement>('progress[aria-label="Import progress"]')!;
    expect(bar.value).toBe(1000);
    expect(bar.max).toBe(2500);
    expect(view.textContent).toMatch(/1000 of 2500 records imported/);
    expect(button(view, "Import…").disabled, "one transfer at a time").toBe(true);
    finish(2500);
    await vi.waitFor(() => expect(onImported).toHaveBeenCalled());
    expect(notifications()).toMatch(/Imported 2500 records\./);
    expect(unlisten).toHaveBeenCalled();
    expect(bar.parentElement!.hidden).toBe(true);
    expect(button(view, "Import…").disabled).toBe(false);
  });

  it("says which line is wrong when an import is refused, and changes nothing", async () => {
    const onImported = vi.fn();
    const client = {
      chooseImportFile: vi.fn(async () => "/home/ada/books.csv"),
      importRecords: vi.fn(async () => {
        throw { code: "invalid", message: "line 3: `pages` holds whole numbers, and `many` is not one (nothing was imported)" };
      }),
      onBulkProgress: vi.fn(async () => () => undefined),
    } as unknown as Api;
    const view = BulkButtons(true, onImported, client);
    document.body.replaceChildren(view);
    button(view, "Import…").click();
    await vi.waitFor(() => expect(notifications()).toMatch(/line 3: `pages` holds whole numbers/));
    expect(onImported).not.toHaveBeenCalled();
  });

  it("exports to the file the dialog chose, and does nothing when the dialog is cancelled", async () => {
    const client = {
      chooseExportFile: vi.fn(async () => null as string | null),
      exportRecords: vi.fn(async () => 12),
      onBulkProgress: vi.fn(async () => () => undefined),
    } as unknown as Api;
    const view = BulkButtons(false, () => undefined, client);
    document.body.replaceChildren(view);
    expect(button(view, "Import…").disabled, "nothing can be written while the network forms").toBe(true);
    button(view, "Export…").click();
    await vi.waitFor(() => expect(client.chooseExportFile).toHaveBeenCalled());
    expect(client.exportRecords).not.toHaveBeenCalled();
    (client.chooseExportFile as ReturnType<typeof vi.fn>).mockResolvedValue("/home/ada/records.csv");
    button(view, "Export…").click();
    await vi.waitFor(() => expect(notifications()).toMatch(/Exported 12 records to \/home\/ada\/records.csv\./));
    expect(button(view, "Import…").disabled, "as before the export").toBe(true);
  });
});

describe("one transfer at a time", () => {
  it("refuses a second import while one runs, even from a record list drawn again", async () => {
    let finish: (n: number) => void = () => undefined;
    const client = {
      chooseImportFile: vi.fn(async () => "/home/ada/books.csv"),
      importRecords: vi.fn(() => new Promise<number>((resolve) => (finish = resolve))),
      onBulkProgress: vi.fn(async () => () => undefined),
    } as unknown as Api;
    const first = BulkButtons(true, () => undefined, client);
    const again = BulkButtons(true, () => undefined, client);
    document.body.replaceChildren(first, again);
    button(first, "Import…").click();
    await vi.waitFor(() => expect(client.importRecords).toHaveBeenCalledTimes(1));
    button(again, "Import…").click();
    await vi.waitFor(() => expect(notifications()).toMatch(/still running/));
    expect(client.importRecords).toHaveBeenCalledTimes(1);
    finish(1);
    await vi.waitFor(() => expect(notifications()).toMatch(/Imported 1 record\./));
  });
});

// Import… and Export… for many records at once, with a progress bar.

import { api, type Api } from "../api";
import { h } from "../dom";
import type { BulkProgress } from "../types";
import { errorText } from "./errorText";
import { toast } from "./toasts";

/** The progress bar of an import or export, and the line under it. */
function ProgressLine(kind: BulkProgress["kind"]): { element: HTMLElement; show: (progress: BulkProgress) => void } {
  const label = kind === "import" ? "Import progress" : "Export progress";
  const bar = h("progress", { "aria-label": label, max: 1, value: 0 });
  const text = h("span", { class: "muted" });
  const element = h("div", { class: "bulk-progress", hidden: true }, bar, " ", text);
  const show = (progress: BulkProgress) => {
    element.hidden = false;
    if (progress.total) {
      bar.max = progress.total;
      bar.value = progress.done;
    } else {
      bar.removeAttribute("value");
    }
    const verb = kind === "import" ? "imported" : "exported";
    text.textContent = progress.total ? `${progress.done} of ${progress.total} records ${verb}` : `${progress.done} records ${verb}`;
  };
  return { element, show };
}

/** Whether an import or export runs (in any record list: switching tabs
 * draws the list again while one goes on). */
let running = false;

/** Runs one import or export: shows its progress while it runs, and says
 * how it ended. `run` resolves to the number of records done; null when it
 * failed or another one still runs. */
async function transfer(kind: BulkProgress["kind"], line: ReturnType<typeof ProgressLine>, buttons: HTMLButtonElement[], run: () => Promise<number>, client: Api): Promise<number | null> {
  if (running) {
    toast("An import or export is still running: wait until it is done.", "warning");
    return null;
  }
  running = true;
  const before = buttons.map((b) => b.disabled);
  buttons.forEach((b) => (b.disabled = true));
  line.show({ kind, done: 0, total: null });
  let unlisten: (() => void) | null = null;
  try {
    unlisten = await client.onBulkProgress((progress) => {
      if (progress.kind === kind) line.show(progress);
    });
    return await run();
  } catch (e) {
    toast(errorText(e), "error");
    return null;
  } finally {
    running = false;
    unlisten?.();
    line.element.hidden = true;
    buttons.forEach((b, i) => (b.disabled = before[i]));
  }
}

/** "Import…" and "Export…" for the record list: the desktop's own dialogs
 * pick the file (CSV or JSON lines, by its name), a progress bar shows how
 * far it got, and a bad row is named by its line with nothing imported.
 * `onImported` reads the list again. */
export function BulkButtons(canWrite: boolean, onImported: () => void, client: Api = api): HTMLElement {
  const importLine = ProgressLine("import");
  const exportLine = ProgressLine("export");
  const importButton = h("button", { type: "button", disabled: !canWrite, title: "Add records from a CSV or JSON lines file (a row with an id changes that record)" }, "Import…");
  const exportButton = h("button", { type: "button", title: "Save every record as CSV (for a spreadsheet) or JSON lines" }, "Export…");
  const buttons = [importButton, exportButton];
  importButton.addEventListener("click", async () => {
    const path = await client.chooseImportFile();
    if (!path) return;
    const done = await transfer("import", importLine, buttons, () => client.importRecords(path), client);
    if (done === null) return;
    toast(`Imported ${done} record${done === 1 ? "" : "s"}.`);
    onImported();
  });
  exportButton.addEventListener("click", async () => {
    const path = await client.chooseExportFile(`records-${new Date().toISOString().slice(0, 10)}.csv`);
    if (!path) return;
    const done = await transfer("export", exportLine, buttons, () => client.exportRecords(path), client);
    if (done !== null) toast(`Exported ${done} record${done === 1 ? "" : "s"} to ${path}.`);
  });
  return h("span", { class: "bulk" }, importButton, exportButton, importLine.element, exportLine.element);
}

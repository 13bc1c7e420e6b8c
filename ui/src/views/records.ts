// Records: a searchable, sortable list that stays fast with 100k records
// (only the visible rows exist in the page; rows are fetched a page at a
// time), next to the selected record's details.

import { api, type Api } from "../api";
import { h, replace, when, short } from "../dom";
import type { RecordSort, RecordView, Status } from "../types";
import { RecordDetail, RecordForm } from "./recordEditor";
import { errorText } from "../components/errorText";
import { SetupChecklist } from "../components/setupChecklist";
import { BulkButtons } from "../components/bulkTransfer";

export const ROW_HEIGHT = 44;
export const PAGE_SIZE = 200;

/** A window of rows over a long list, fetched page by page. */
export class RecordWindow {
  private pages = new Map<number, Promise<RecordView[]>>();
  total = 0;

  constructor(
    private client: Api,
    private search: string,
    private sort: RecordSort,
    private includeDeleted = false,
  ) {}

  private query(offset: number) {
    return { search: this.search || null, sort: this.sort, limit: PAGE_SIZE, offset, include_deleted: this.includeDeleted };
  }

  async load(): Promise<void> {
    const first = await this.client.listRecords(this.query(0));
    this.total = first.total;
    this.pages.set(0, Promise.resolve(first.records));
  }

  /** The records in [from, to). */
  async rows(from: number, to: number): Promise<RecordView[]> {
    const first = Math.floor(from / PAGE_SIZE);
    const last = Math.floor(Math.max(from, to - 1) / PAGE_SIZE);
    const chunks: RecordView[][] = [];
    for (let page = first; page <= last; page++) {
      if (!this.pages.has(page)) {
        this.pages.set(
          page,
          this.client.listRecords(this.query(page * PAGE_SIZE)).then((p) => p.records),
        );
      }
      chunks.push(await this.pages.get(page)!);
    }
    const all = chunks.flat();
    const offset = first * PAGE_SIZE;
    return all.slice(from - offset, to - offset);
  }
}

/** Which rows to draw for a scroll position (with a few extra above and below). */
export function visibleRange(scrollTop: number, height: number, total: number): [number, number] {
  const from = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - 5);
  const to = Math.min(total, Math.ceil((scrollTop + height) / ROW_HEIGHT) + 5);
  return [from, to];
}

export function RecordsView(status: Status, names: Map<string, string>, client: Api = api): HTMLElement {
  const search = h("input", { type: "search", placeholder: "Search titles and fields", "aria-label": "Search records" });
  const sort = h(
    "select",
    { "aria-label": "Sort records" },
    h("option", { value: "updated_desc" }, "Recently changed"),
    h("option", { value: "title_asc" }, "Title A–Z"),
    h("option", { value: "title_desc" }, "Title Z–A"),
    h("option", { value: "created_desc" }, "Newest"),
    h("option", { value: "updated_asc" }, "Least recently changed"),
  );
  const count = h("span", { class: "muted", "aria-live": "polite" });
  const showDeleted = h("input", { type: "checkbox", "aria-label": "Show deleted records" });
  const trash = h("label", { class: "toggle" }, showDeleted, " Show deleted");
  const spacer = h("div", { class: "spacer" });
  const rows = h("div", { class: "rows", role: "list", "aria-label": "Records" });
  const scroller = h("div", { class: "scroller" }, spacer, rows);
  const detail = h("section", { class: "detail", "aria-label": "Record details" }, h("p", { class: "empty" }, "Select a record to see its fields and its full history."));
  const canWrite = status.state === "active";
  let window = new RecordWindow(client, "", "updated_desc");
  let selected: string | null = null;
  let focusIndex: number | null = null;

  const emptyState = () => {
    if (status.state === "forming") return SetupChecklist(status);
    if (search.value) return h("p", { class: "empty" }, `No record matches “${search.value}”.`);
    return h("p", { class: "empty" }, "No records yet. Click “New record” to add the first one.");
  };

  // Draws overlap (scrolling, reloads, selection): only the latest one may
  // touch the page.
  let generation = 0;
  const draw = async () => {
    const mine = ++generation;
    const current = window;
    const [from, to] = visibleRange(scroller.scrollTop, scroller.clientHeight || 600, current.total);
    const visible = await current.rows(from, to);
    if (mine !== generation) return;
    const hadFocus = rows.contains(document.activeElement);
    replace(
      rows,
      ...visible.map((record, i) =>
        h(
          "div",
          {
            role: "listitem",
            class: `row${record.id === selected ? " selected" : ""}`,
            style: `top:${(from + i) * ROW_HEIGHT}px`,
            tabindex: 0,
            "data-index": from + i,
            "aria-label": `Record ${record.title}`,
            onclick: () => select(record.id),
            onfocus: () => (focusIndex = from + i),
            onkeydown: (e: Event) => onRowKey(e as KeyboardEvent, from + i, record.id),
          },
          h("span", { class: "title" }, record.title, record.deleted ? h("small", { class: "muted" }, " (deleted)") : null),
          h("span", { class: "muted" }, record.collection),
          h("span", { class: "muted" }, `${when(record.updated_at)} · ${names.get(record.origin) ?? short(record.origin)}`),
        ),
      ),
    );
    if (current.total === 0) rows.replaceChildren(emptyState());
    // Redrawing replaces the rows: keyboard focus stays on the same place.
    if (hadFocus && focusIndex !== null) rows.querySelector<HTMLElement>(`[data-index="${focusIndex}"]`)?.focus();
  };

  /** Enter opens a row; Up, Down, Home and End move the focus, scrolling
   * the list so the focused row is in view. */
  const onRowKey = (event: KeyboardEvent, index: number, id: string) => {
    if (event.key === "Enter") return select(id);
    const last = window.total - 1;
    const next = event.key === "ArrowDown" ? Math.min(index + 1, last) : event.key === "ArrowUp" ? Math.max(index - 1, 0) : event.key === "Home" ? 0 : event.key === "End" ? last : -1;
    if (next < 0) return;
    event.preventDefault();
    focusIndex = next;
    const height = scroller.clientHeight || 600;
    if (next * ROW_HEIGHT < scroller.scrollTop) scroller.scrollTop = next * ROW_HEIGHT;
    else if ((next + 1) * ROW_HEIGHT > scroller.scrollTop + height) scroller.scrollTop = (next + 1) * ROW_HEIGHT - height;
    void draw().then(() => rows.querySelector<HTMLElement>(`[data-index="${next}"]`)?.focus());
  };

  const reload = async () => {
    const next = new RecordWindow(client, search.value.trim(), sort.value as RecordSort, showDeleted.checked);
    try {
      await next.load();
      window = next;
    } catch (e) {
      rows.replaceChildren(h("p", { class: "error" }, errorText(e)));
      return;
    }
    count.textContent = `${window.total} record${window.total === 1 ? "" : "s"}`;
    spacer.style.height = `${window.total * ROW_HEIGHT}px`;
    await draw();
  };

  const select = (id: string) => {
    selected = id;
    void draw();
    // After a delete or restore the list and the details are read again
    // (a deleted record shows how to restore it).
    const onChanged = () => void reload().then(() => select(id));
    replace(detail, RecordDetail(id, names, canWrite, { onChanged, onEdit: (record) => replace(detail, RecordForm(record, done)) }, client));
  };
  const done = async (id?: string) => {
    await reload();
    if (id) select(id);
    else detail.replaceChildren();
  };

  let searchTimer: ReturnType<typeof setTimeout> | undefined;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => void reload(), 200);
  });
  sort.addEventListener("change", () => void reload());
  showDeleted.addEventListener("change", () => void reload());
  scroller.addEventListener("scroll", () => void draw());

  const newRecord = h(
    "button",
    { type: "button", class: "primary", disabled: !canWrite, onclick: () => replace(detail, RecordForm(null, done, client)) },
    "New record",
  );
  void reload();
  const view = h(
    "div",
    { class: "records" },
    h("div", { class: "list" }, h("div", { class: "toolbar" }, search, sort, trash, count, newRecord, BulkButtons(canWrite, () => void reload(), client)), scroller),
    detail,
  );
  (view as HTMLElement & { refresh?: () => void }).refresh = () => void reload();
  return view;
}

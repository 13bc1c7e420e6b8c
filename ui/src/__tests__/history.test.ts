import { describe, expect, it, vi } from "vitest";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn() }));

import type { HistoryEntry, RecordView } from "../types";
import { RecordHistory, historySteps, restoreChange } from "../components/recordHistory";

const entry = (kind: HistoryEntry["kind"], at: number, fields: HistoryEntry["fields"], title: string | null = null): HistoryEntry => ({ op_id: `op${at}`, origin: "p1", seq: at, at, kind, collection: kind === "create" ? "books" : null, title, fields, tags: kind === "create" ? [] : null });

const history = [
  entry("create", 1, { shelf: "B7", note: "old" }, "Atlas"),
  entry("update", 2, { shelf: "C2", note: null }),
  entry("update", 3, {}, "World atlas"),
];

describe("record history", () => {
  it("says what each change did, old value to new", () => {
    const steps = historySteps(history);
    expect(steps.map((s) => s.changes)).toEqual([
      [{ what: "title", from: null, to: "Atlas" }, { what: "shelf", from: null, to: "B7" }, { what: "note", from: null, to: "old" }],
      [{ what: "shelf", from: "B7", to: "C2" }, { what: "note", from: "old", to: null }],
      [{ what: "title", from: "Atlas", to: "World atlas" }],
    ]);
    const list = RecordHistory(steps, () => "Ada", () => {});
    expect(list.textContent).toMatch(/Changed by Ada .*shelf: “B7” → “C2”note removed \(was “old”\)/);
    expect(list.querySelectorAll("button").length).toBe(2);
    expect(RecordHistory(steps, () => "Ada", null).querySelector("button")).toBeNull();
  });

  it("restores an earlier version with the fields it lacked removed", () => {
    const steps = historySteps(history);
    const current: RecordView = { id: "r1", collection: "books", title: "World atlas", fields: { shelf: "C2", extra: 1 }, tags: [], deleted: false, created_at: 1, updated_at: 3, origin: "p1", version: "v" } as RecordView;
    expect(restoreChange(current, steps[0].version)).toEqual({ id: "r1", title: "Atlas", fields: { shelf: "B7", note: "old", extra: null }, tags: null });
    expect(restoreChange({ ...current, fields: { shelf: "C2" } }, steps[2].version)).toBeNull();
  });
});

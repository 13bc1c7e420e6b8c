import { describe, expect, it, vi } from "vitest";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn() }));

import type { Api } from "../api";
import type { RecordView } from "../types";
import { buildPut, conflicts, withoutConflicts, RecordForm, RecordDetail } from "../views/recordEditor";

const book: RecordView = { id: "r1", collection: "books", title: "The Little Prince", fields: { author: "Saint-Exupéry", pages: 96 }, tags: ["classic"], deleted: false, created_at: 1, updated_at: 2, origin: "p", version: "v1" };
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("editing a record", () => {
  it("sends only what the person changed", () => {
    const put = buildPut(book, "", "Le Petit Prince", [{ name: "author", kind: "text", value: "Saint-Exupéry" }, { name: "pages", kind: "number", value: "96" }], "classic");
    expect(put).toEqual({ id: "r1", collection: null, title: "Le Petit Prince", fields: {}, tags: null });
    const removed = buildPut(book, "", book.title, [{ name: "author", kind: "text", value: "A. de Saint-Exupéry" }], "classic, french");
    expect(removed).toEqual({ id: "r1", collection: null, title: null, fields: { author: "A. de Saint-Exupéry", pages: null }, tags: ["classic", "french"] });
  });

  it("finds what someone else changed meanwhile, and can keep theirs", () => {
    const current = { ...book, version: "v2", title: "Le Petit Prince", fields: { author: "Antoine de Saint-Exupéry", pages: 96 } };
    const put = buildPut(book, "", book.title, [{ name: "author", kind: "text", value: "A. Saint-Ex" }, { name: "pages", kind: "number", value: "100" }], "classic");
    const found = conflicts(book, current, put);
    expect(found).toEqual([{ kind: "field", name: "author", was: "Saint-Exupéry", theirs: "Antoine de Saint-Exupéry", mine: "A. Saint-Ex" }]);
    expect(withoutConflicts(put, found).fields).toEqual({ pages: 100 });
    // Their title change is not touched: this edit does not send a title.
    expect(put.title).toBeNull();
  });

  // Attacker review (sixth session): a field named "title" was taken for the
  // record's title, and a field named "toString" for Object.prototype's.
  it("keeps a field named like the title, or like an object's own methods, apart", () => {
    const odd: RecordView = { ...book, fields: { title: "field", toString: "x" } };
    const current = { ...odd, version: "v2", fields: { title: "theirs", toString: "x" } };
    const put = buildPut(odd, "", "A new title", [{ name: "title", kind: "text", value: "mine" }, { name: "toString", kind: "text", value: "x" }], "classic");
    expect(put.fields).toEqual({ title: "mine" });
    const found = conflicts(odd, current, put);
    expect(found.map((c) => [c.kind, c.name])).toEqual([["field", "title"]]);
    const kept = withoutConflicts(put, found);
    expect(kept.title).toBe("A new title");
    expect(kept.fields).toEqual({});
    const fresh = buildPut(book, "", book.title, [{ name: "author", kind: "text", value: "Saint-Exupéry" }, { name: "pages", kind: "number", value: "96" }, { name: "constructor", kind: "text", value: "c" }], "classic");
    expect(fresh.fields).toEqual({ constructor: "c" });
  });

  it("refuses a whole number that a window cannot show exactly", () => {
    expect(() => buildPut(book, "", book.title, [{ name: "pages", kind: "number", value: "9007199254740993" }], "classic")).toThrow(/must lie between/);
    expect(buildPut(book, "", book.title, [{ name: "pages", kind: "number", value: "9007199254740991" }], "classic").fields.pages).toBe(9007199254740991);
  });

  it("asks before overwriting a change made meanwhile, and keeps theirs when asked", async () => {
    const current = { ...book, version: "v2", fields: { author: "Antoine de Saint-Exupéry", pages: 96 } };
    const putRecord = vi.fn(async () => current);
    const client = { getRecord: vi.fn(async () => current), putRecord } as unknown as Api;
    const form = RecordForm(book, () => undefined, client);
    document.body.replaceChildren(form);
    (form.querySelector('[aria-label="Field 1 value"]') as HTMLInputElement).value = "A. Saint-Ex";
    form.querySelector('[aria-label="Field 1 value"]')!.dispatchEvent(new Event("input"));
    (form.querySelector('[aria-label="Field 2 value"]') as HTMLInputElement).value = "100";
    form.querySelector('[aria-label="Field 2 value"]')!.dispatchEvent(new Event("input"));
    form.dispatchEvent(new Event("submit", { cancelable: true }));
    await flush();
    const prompt = form.querySelector('[aria-label="Changed meanwhile"]')!;
    expect(prompt.textContent).toMatch(/Field “author”: was “Saint-Exupéry”, now “Antoine de Saint-Exupéry”; yours “A. Saint-Ex”/);
    expect(putRecord).not.toHaveBeenCalled();
    Array.from(prompt.querySelectorAll("button")).find((b) => b.textContent === "Keep theirs")!.click();
    await flush();
    expect(putRecord).toHaveBeenCalledWith({ id: "r1", collection: null, title: null, fields: { pages: 100 }, tags: null });
  });

  it("points out field names that look the same, in the record and in its form", async () => {
    // "Рrice" starts with a Cyrillic "Р", put there by another member.
    const twin: RecordView = {
      ...book,
      fields: { Price: "12", "Рrice": "1" },
      look_alikes: [
        { of: "field", names: ["Price", "Рrice"], kind: "read_the_same" },
        { of: "field", names: ["Рrice"], kind: "mixes_scripts" },
      ],
    };
    const client = { getRecord: vi.fn(async () => twin), recordHistory: vi.fn(async () => []), members: vi.fn(async () => []) } as unknown as Api;
    const detail = RecordDetail("r1", new Map(), true, { onChanged: () => {}, onEdit: () => {} }, client);
    document.body.replaceChildren(detail);
    await flush();
    const note = detail.querySelector('[aria-label="Look-alike names"]')!;
    expect(note.textContent).toContain("The field names “Price” and “Рrice” look the same but are different fields.");
    expect(note.textContent).toContain("The field name “Рrice” mixes letters of different alphabets");
    const form = RecordForm(twin, () => undefined, client);
    expect(form.querySelector('[aria-label="Look-alike names"]')?.textContent).toContain("“Price” and “Рrice”");
    expect(RecordForm(book, () => undefined, client).querySelector('[aria-label="Look-alike names"]')).toBeNull();
  });
});

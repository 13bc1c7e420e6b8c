// One record: details, full history, and the create/edit form.

import { api, type Api } from "../api";
import { h, field, replace, when, short } from "../dom";
import type { FieldValue, MemberView, PutRecord, RecordView } from "../types";
import { fieldMap, fieldOf } from "../fields";
import { toast } from "../components/toasts";
import { errorText } from "../components/errorText";
import { RecordHistory, historySteps, restoreChange, type Version } from "../components/recordHistory";
import { LookAlikeNote } from "../components/lookAlikeNote";

/** Characters a collection, field name or tag may not hold (as the
 * instance's rule): control, invisible and bidirectional marks, spaces
 * other than the plain one, noncharacters, and `=` / `:`. */
const REFUSED = /[\p{Cc}\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff=:,\u00a0\u034f\u0600-\u0605\u06dd\u070f\u08e2\u115f\u1160\u1680\u17b4\u17b5\u180b-\u180f\u2000-\u200a\u202f\u205f\u206a-\u206f\u2800\u3000\u3164\ufdd0-\ufdef\ufe00-\ufe0f\uffa0\ufff9-\ufffb\u{110bd}\u{110cd}\u{13430}-\u{1345f}\u{1bca0}-\u{1bca3}\u{1d173}-\u{1d17a}\u{e0000}-\u{e007f}\u{e0100}-\u{e01ef}]/u;

/** A noncharacter: U+FFFE and U+FFFF of every plane. */
const isNoncharacter = (name: string) => [...name].some((c) => ((c.codePointAt(0) ?? 0) & 0xfffe) === 0xfffe);

/** A collection, field name or tag in the one Unicode form the instance
 * stores, if it is valid: 1 to 64 characters of any script, words apart by
 * single spaces. */
export function label(text: string): string | null {
  const name = text.normalize("NFC");
  const chars = [...name].length;
  const ok = chars >= 1 && chars <= 64 && new TextEncoder().encode(name).length <= 256 && name === name.trim() && !name.includes("  ") && !REFUSED.test(name) && !isNoncharacter(name);
  return ok ? name : null;
}

const LABEL_RULE = "1 to 64 letters or digits of any language, “-”, “_” or single spaces (no “=”, “:” or “,”)";

type FieldKind = "text" | "number" | "yes/no";

interface FieldDraft {
  name: string;
  kind: FieldKind;
  value: string;
}

function kindOf(value: FieldValue): FieldKind {
  return typeof value === "number" ? "number" : typeof value === "boolean" ? "yes/no" : "text";
}

/** Checks a record form and turns it into the change to send; throws the
 * problem in words. */
export function buildPut(existing: RecordView | null, collection: string, title: string, fields: FieldDraft[], tags: string): PutRecord {
  if (!existing && label(collection) === null) throw new Error(`The collection must be ${LABEL_RULE}.`);
  collection = label(collection) ?? collection;
  if (!title.trim()) throw new Error("A record needs a title.");
  if (title.length > 512) throw new Error("The title is too long (at most 512 characters).");
  const values: Record<string, FieldValue | null> = Object.create(null);
  for (const typed of fields) {
    // A name the record already holds is sent exactly as stored (another
    // member may have written it in another Unicode form).
    const name = existing && Object.hasOwn(existing.fields, typed.name) ? typed.name : label(typed.name);
    if (name === null) throw new Error(`The field name “${typed.name}” must be ${LABEL_RULE}.`);
    const draft = { ...typed, name };
    if (draft.name in values) throw new Error(`The field “${draft.name}” appears twice.`);
    if (draft.kind === "number") {
      const number = Number(draft.value.trim());
      if (!/^-?\d+$/.test(draft.value.trim())) throw new Error(`The field “${draft.name}” must be a whole number.`);
      if (!Number.isSafeInteger(number)) {
        throw new Error(`The field “${draft.name}” must lie between -${Number.MAX_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}.`);
      }
      values[draft.name] = number;
    } else if (draft.kind === "yes/no") {
      values[draft.name] = draft.value === "yes";
    } else {
      values[draft.name] = draft.value;
    }
  }
  const tagList = tags
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean)
    .map((tag) => {
      const name = existing?.tags.includes(tag) ? tag : label(tag);
      if (name === null) throw new Error(`The tag “${tag}” must be ${LABEL_RULE}.`);
      return name;
    });
  if (!existing) return { id: null, collection, title: title.trim(), fields: values, tags: tagList };
  // An edit sends only what the person changed, so that a change made
  // meanwhile elsewhere to another field is not overwritten.
  const changed: Record<string, FieldValue | null> = Object.create(null);
  for (const [name, value] of Object.entries(values)) {
    if (fieldOf(existing.fields, name) !== value) changed[name] = value;
  }
  for (const name of Object.keys(existing.fields)) {
    if (!(name in values)) changed[name] = null;
  }
  const sameTags = tagList.length === existing.tags.length && tagList.every((t) => existing.tags.includes(t));
  return {
    id: existing.id,
    collection: null,
    title: title.trim() === existing.title ? null : title.trim(),
    fields: changed,
    tags: sameTags ? null : tagList,
  };
}

/** A part of a record both this person and someone else changed since the
 * form opened: what it was, what they made it, what this person makes it. */
export interface Conflict {
  /** The record's title, its tags, or the field `name`. */
  kind: "title" | "tags" | "field";
  /** The field's name (for a field). */
  name: string;
  was: string;
  theirs: string;
  mine: string;
}

function shown(value: FieldValue | null | undefined): string {
  return value === null || value === undefined ? "(none)" : String(value);
}

/** The parts of `put` that `current` changed too since `original`. */
export function conflicts(original: RecordView, current: RecordView, put: PutRecord): Conflict[] {
  const found: Conflict[] = [];
  if (put.title != null && current.title !== original.title && current.title !== put.title) {
    found.push({ kind: "title", name: "", was: original.title, theirs: current.title, mine: put.title });
  }
  for (const [name, mine] of Object.entries(put.fields)) {
    const was = fieldOf(original.fields, name);
    const theirs = fieldOf(current.fields, name);
    if (theirs !== was && theirs !== (mine ?? undefined)) found.push({ kind: "field", name, was: shown(was), theirs: shown(theirs), mine: shown(mine) });
  }
  const sameTags = (a: string[], b: string[]) => a.length === b.length && a.every((t) => b.includes(t));
  if (put.tags != null && !sameTags(current.tags, original.tags) && !sameTags(current.tags, put.tags)) {
    found.push({ kind: "tags", name: "", was: original.tags.join(", "), theirs: current.tags.join(", "), mine: put.tags.join(", ") });
  }
  return found;
}

/** `put` without the conflicting parts: "keep theirs". */
export function withoutConflicts(put: PutRecord, found: Conflict[]): PutRecord {
  const names = new Set(found.filter((c) => c.kind === "field").map((c) => c.name));
  const fields = fieldMap<FieldValue | null>();
  for (const [name, value] of Object.entries(put.fields)) if (!names.has(name)) fields[name] = value;
  const has = (kind: Conflict["kind"]) => found.some((c) => c.kind === kind);
  return { ...put, title: has("title") ? null : put.title, tags: has("tags") ? null : put.tags, fields };
}

/** What a conflict is about, in words. */
function conflictSubject(c: Conflict): string {
  return c.kind === "title" ? "Title" : c.kind === "tags" ? "Tags" : `Field “${c.name}”`;
}

/** Asks which version to keep, in the form; resolves with the choice. */
function ConflictPrompt(found: Conflict[], box: HTMLElement): Promise<"mine" | "theirs" | null> {
  return new Promise((resolve) => {
    const choose = (choice: "mine" | "theirs" | null) => {
      box.replaceChildren();
      resolve(choice);
    };
    box.replaceChildren(
      h(
        "div",
        { class: "banner", role: "alertdialog", "aria-label": "Changed meanwhile" },
        h("p", {}, "Someone changed this record while you were editing:"),
        h("ul", {}, ...found.map((c) => h("li", {}, `${conflictSubject(c)}: was “${c.was}”, now “${c.theirs}”; yours “${c.mine}”`))),
        h(
          "div",
          { class: "actions" },
          h("button", { type: "button", onclick: () => choose(null) }, "Back to editing"),
          h("button", { type: "button", onclick: () => choose("theirs") }, "Keep theirs"),
          h("button", { type: "button", class: "primary", onclick: () => choose("mine") }, "Keep mine"),
        ),
      ),
    );
  });
}

export function RecordForm(existing: RecordView | null, done: (id?: string) => void, client: Api = api): HTMLElement {
  const collection = h("input", { type: "text", placeholder: "e.g. books", disabled: Boolean(existing) });
  collection.value = existing?.collection ?? "";
  const title = h("input", { type: "text" });
  title.value = existing?.title ?? "";
  const tags = h("input", { type: "text", placeholder: "comma-separated" });
  tags.value = existing?.tags.join(", ") ?? "";
  const fieldsBox = h("div", { class: "fields" });
  const drafts: FieldDraft[] = Object.entries(existing?.fields ?? {}).map(([name, value]) => ({ name, kind: kindOf(value), value: typeof value === "boolean" ? (value ? "yes" : "no") : String(value) }));
  const error = h("p", { class: "error", role: "alert" });
  const prompt = h("div", {});

  const drawFields = () => {
    fieldsBox.replaceChildren(
      ...drafts.map((draft, i) => {
        const name = h("input", { type: "text", "aria-label": `Field ${i + 1} name`, value: draft.name });
        name.addEventListener("input", () => (draft.name = name.value));
        const kind = h("select", { "aria-label": `Field ${i + 1} type` }, ...(["text", "number", "yes/no"] as FieldKind[]).map((k) => h("option", { value: k, selected: k === draft.kind }, k)));
        kind.addEventListener("change", () => {
          draft.kind = kind.value as FieldKind;
          drawFields();
        });
        const value =
          draft.kind === "yes/no"
            ? h("select", { "aria-label": `Field ${i + 1} value` }, h("option", { value: "yes", selected: draft.value === "yes" }, "yes"), h("option", { value: "no", selected: draft.value !== "yes" }, "no"))
            : h("input", { type: "text", "aria-label": `Field ${i + 1} value`, value: draft.value });
        value.addEventListener("input", () => (draft.value = value.value));
        value.addEventListener("change", () => (draft.value = value.value));
        return h("div", { class: "field-row" }, name, kind, value, h("button", { type: "button", "aria-label": `Remove field ${i + 1}`, onclick: () => { drafts.splice(i, 1); drawFields(); } }, "✕"));
      }),
    );
  };
  drawFields();

  return h(
    "form",
    {
      class: "card",
      "aria-label": existing ? "Edit record" : "New record",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        let put: PutRecord;
        try {
          put = buildPut(existing, collection.value.trim(), title.value, drafts, tags.value);
        } catch (e) {
          error.textContent = (e as Error).message;
          return;
        }
        try {
          if (existing) {
            const current = await client.getRecord(existing.id);
            const found = current.version === existing.version ? [] : conflicts(existing, current, put);
            if (found.length) {
              const choice = await ConflictPrompt(found, prompt);
              if (choice === null) return;
              if (choice === "theirs") put = withoutConflicts(put, found);
            }
          }
          const saved = await client.putRecord(put);
          toast(existing ? "Record saved." : "Record created.");
          done(saved.id);
        } catch (e) {
          error.textContent = errorText(e);
        }
      },
    },
    h("h2", {}, existing ? `Edit “${existing.title}”` : "New record"),
    LookAlikeNote(existing?.look_alikes),
    field("Collection", collection),
    field("Title", title),
    h("h3", {}, "Fields"),
    fieldsBox,
    h("button", { type: "button", onclick: () => { drafts.push({ name: "", kind: "text", value: "" }); drawFields(); } }, "Add field"),
    field("Tags", tags),
    prompt,
    error,
    h("div", { class: "actions" }, h("button", { type: "button", onclick: () => done(existing?.id) }, "Cancel"), h("button", { type: "submit", class: "primary" }, existing ? "Save record" : "Create record")),
  );
}

/** Where this version is known to be: instances whose last checkpoint
 * holds exactly this instance's ops hold it for sure. */
export function replication(members: MemberView[]): string {
  const active = members.filter((m) => m.status === "member");
  const confirmed = active.filter((m) => m.roots === "match").length;
  if (active.length <= 1) return "Stored on this instance.";
  if (confirmed === active.length) return `Replicated: confirmed on all ${active.length} members.`;
  return `Replication: confirmed on ${confirmed} of ${active.length} members so far (the others have not reported this version yet).`;
}

export function RecordDetail(
  id: string,
  names: Map<string, string>,
  canWrite: boolean,
  actions: { onChanged: () => void; onEdit: (record: RecordView) => void },
  client: Api = api,
): HTMLElement {
  const box = h("div", { class: "card" }, h("p", { class: "muted" }, "Loading…"));
  const who = (peer: string) => names.get(peer) ?? short(peer);
  const restoreVersion = async (record: RecordView, version: Version) => {
    const change = restoreChange(record, version);
    if (!change) {
      toast("That version is the one shown now.");
      return;
    }
    try {
      await client.putRecord(change);
      toast(`“${version.title}”: the earlier version is back.`);
      actions.onChanged();
    } catch (e) {
      toast(errorText(e), "error");
    }
  };
  const restore = async (recordId: string) => {
    try {
      const back = await client.restoreRecord(recordId);
      toast(`“${back.title}” restored.`);
      actions.onChanged();
    } catch (e) {
      toast(errorText(e), "error");
    }
  };
  void (async () => {
    try {
      const [record, history, members] = await Promise.all([client.getRecord(id), client.recordHistory(id), client.members().catch(() => [])]);
      const fields = Object.entries(record.fields);
      replace(
        box,
        h("h2", {}, record.title, record.deleted ? h("span", { class: "badge bad" }, " deleted") : null),
        h("p", { class: "muted" }, `Collection ${record.collection} · id ${record.id}`),
        fields.length
          ? h("dl", { class: "fields-view" }, ...fields.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]))
          : h("p", { class: "muted" }, "No fields."),
        record.tags.length ? h("p", {}, "Tags: ", record.tags.join(", ")) : null,
        LookAlikeNote(record.look_alikes),
        h("p", { class: "muted" }, `Last changed ${when(record.updated_at)} on ${who(record.origin)} (version ${short(record.version, 12)}).`),
        h("p", { "aria-label": "Replication" }, replication(members)),
        canWrite && record.deleted
          ? h(
              "div",
              { class: "actions" },
              h("p", { class: "muted" }, "This record is deleted. Restoring it brings it back for everyone, as it was."),
              h("button", { type: "button", class: "primary", onclick: () => void restore(record.id) }, "Restore record"),
            )
          : null,
        canWrite && !record.deleted
          ? h(
              "div",
              { class: "actions" },
              h("button", { type: "button", onclick: () => actions.onEdit(record) }, "Edit record"),
              h(
                "button",
                {
                  type: "button",
                  class: "danger",
                  onclick: async () => {
                    // No "are you sure": the notification offers Undo, and
                    // deleted records can be restored from the list.
                    try {
                      await client.deleteRecord(record.id);
                      toast(`“${record.title}” deleted.`, "info", { label: "Undo", run: () => restore(record.id) });
                      actions.onChanged();
                    } catch (e) {
                      toast(errorText(e), "error");
                    }
                  },
                },
                "Delete record",
              ),
            )
          : null,
        h("h3", {}, "History"),
        RecordHistory(historySteps(history), who, canWrite && !record.deleted ? (version) => void restoreVersion(record, version) : null),
      );
    } catch (e) {
      box.replaceChildren(h("p", { class: "error" }, errorText(e)));
    }
  })();
  return box;
}

// A record's history as changes a person can read ("shelf: B7 → C2"), each
// with the version it made, so that an older version can be restored.

import { h, when } from "../dom";
import { fieldMap, fieldOf } from "../fields";
import type { FieldValue, HistoryEntry, PutRecord, RecordView } from "../types";

/** What one entry changed, in words. */
export interface Change {
  what: string;
  from: string | null;
  to: string | null;
}

/** The record as one entry left it. */
export interface Version {
  title: string;
  fields: Record<string, FieldValue>;
  tags: string[];
  deleted: boolean;
}

/** One entry of the history: who, what changed, and the version after it. */
export interface Step {
  entry: HistoryEntry;
  changes: Change[];
  version: Version;
}

const shown = (value: FieldValue | null | undefined): string | null => (value === null || value === undefined ? null : String(value));

/** Walks the history in order and says what each entry changed. */
export function historySteps(history: HistoryEntry[]): Step[] {
  let version: Version = { title: "", fields: fieldMap(), tags: [], deleted: false };
  return history.map((entry) => {
    const next: Version = { ...version, fields: fieldMap(version.fields), tags: [...version.tags] };
    const changes: Change[] = [];
    if (entry.title !== null && entry.title !== version.title) {
      changes.push({ what: "title", from: entry.kind === "create" ? null : version.title, to: entry.title });
      next.title = entry.title;
    }
    for (const [name, value] of Object.entries(entry.fields)) {
      const before = shown(fieldOf(version.fields, name));
      const after = shown(value);
      if (before === after) continue;
      changes.push({ what: name, from: before, to: after });
      if (value === null) delete next.fields[name];
      else next.fields[name] = value;
    }
    if (entry.tags !== null && entry.tags.join(",") !== version.tags.join(",")) {
      changes.push({ what: "tags", from: version.tags.join(", ") || null, to: entry.tags.join(", ") || null });
      next.tags = entry.tags;
    }
    if (entry.kind === "delete") next.deleted = true;
    if (entry.kind === "restore") next.deleted = false;
    version = next;
    return { entry, changes, version };
  });
}

/** The change that brings `current` back to `version` (fields it lacks are
 * removed), or null when they are the same. */
export function restoreChange(current: RecordView, version: Version): PutRecord | null {
  const fields = fieldMap<FieldValue | null>();
  for (const [name, value] of Object.entries(version.fields)) {
    if (shown(fieldOf(current.fields, name)) !== shown(value)) fields[name] = value;
  }
  for (const name of Object.keys(current.fields)) {
    if (!Object.hasOwn(version.fields, name)) fields[name] = null;
  }
  const title = version.title !== current.title ? version.title : null;
  const tags = version.tags.join(",") !== current.tags.join(",") ? version.tags : null;
  if (!title && !tags && Object.keys(fields).length === 0) return null;
  return { id: current.id, title, fields, tags };
}

function changeText(change: Change): string {
  if (change.from === null) return `${change.what}: “${change.to}”`;
  if (change.to === null) return `${change.what} removed (was “${change.from}”)`;
  return `${change.what}: “${change.from}” → “${change.to}”`;
}

const VERBS: Record<string, string> = { create: "Created", update: "Changed", delete: "Deleted", restore: "Restored" };

/** The history list; `onRestore` (when the viewer may write) restores the
 * version an entry made. */
export function RecordHistory(steps: Step[], who: (peer: string) => string, onRestore: ((version: Version) => void) | null): HTMLElement {
  return h(
    "ol",
    { class: "history", "aria-label": "Record history" },
    ...steps.map((step, i) =>
      h(
        "li",
        {},
        h("strong", {}, VERBS[step.entry.kind] ?? step.entry.kind),
        ` by ${who(step.entry.origin)} on ${when(step.entry.at)}`,
        step.changes.length ? h("ul", { class: "changes" }, ...step.changes.map((c) => h("li", {}, changeText(c)))) : null,
        onRestore && i < steps.length - 1 && !step.version.deleted
          ? h("button", { type: "button", class: "link", "aria-label": `Restore version ${i + 1}`, onclick: () => onRestore(step.version) }, "Restore this version")
          : null,
      ),
    ),
  );
}

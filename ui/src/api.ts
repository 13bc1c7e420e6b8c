// The one typed module that talks to the app: every command and the event.

import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import { getCurrentWindow } from "@tauri-apps/api/window";
import { open as openDialog, save as saveDialog } from "@tauri-apps/plugin-dialog";
import type {
  ErrorCode,
  ErrorKind,
  AppInfo,
  BuildView,
  BulkProgress,
  DanEvent,
  EvidenceView,
  HistoryEntry,
  InviteCreated,
  InvitePreview,
  JoinProgress,
  MemberView,
  ProposalView,
  PutRecord,
  RecordPage,
  RecordQuery,
  RecordView,
  RelayStatus,
  StartAtLogInSetting,
  Status,
  StoredInvite,
} from "./types";

/** Codes the window makes itself: a dialog closed, a failure outside any
 * command. */
export type WindowErrorCode = "cancelled" | "internal";

/** An error from a command: a stable code, its kind and a message for
 * people. */
export interface ApiError {
  code: ErrorCode | WindowErrorCode;
  kind?: ErrorKind;
  message: string;
}

export function isApiError(value: unknown): value is ApiError {
  return typeof value === "object" && value !== null && "code" in value && "message" in value;
}

/** Turns whatever a failed command threw into an ApiError. */
export function toApiError(value: unknown): ApiError {
  if (isApiError(value)) {
    const kind = value.kind === undefined ? {} : { kind: value.kind };
    return { code: value.code, ...kind, message: String(value.message) };
  }
  if (value instanceof Error) return { code: "internal", message: value.message };
  return { code: "internal", message: String(value) };
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (error) {
    throw toApiError(error);
  }
}

export const api = {
  appInfo: () => call<AppInfo>("app_info"),
  createInstance: (name: string, password: string) => call<Status>("create_instance", { name, password }),
  unlock: (password: string) => call<Status>("unlock", { password }),
  status: () => call<Status>("status"),
  adminUnlock: (password: string) => call<number>("admin_unlock", { password }),
  adminLock: () => call<void>("admin_lock"),
  createNetwork: (name: string, minMembers?: number) => call<Status>("create_network", { name, minMembers }),
  previewInvite: (link: string) => call<InvitePreview>("preview_invite", { link }),
  joinNetwork: (link: string, adminName?: string) => call<JoinProgress>("join_network", { link, adminName }),
  listRecords: (query: RecordQuery) => call<RecordPage>("list_records", { query }),
  getRecord: (id: string) => call<RecordView>("get_record", { id }),
  putRecord: (record: PutRecord) => call<RecordView>("put_record", { record }),
  deleteRecord: (id: string) => call<RecordView>("delete_record", { id }),
  restoreRecord: (id: string) => call<RecordView>("restore_record", { id }),
  hideWindow: () => call<void>("hide_window"),
  /** The desktop's own Save dialog for a backup: the chosen path, or null. */
  chooseBackupToWrite: (suggested: string) => saveDialog({ title: "Save the backup", defaultPath: suggested, filters: [{ name: "DAN backup", extensions: ["danbackup"] }] }),
  /** The desktop's own Open dialog for a file of records to import. */
  chooseImportFile: async () => {
    const chosen = await openDialog({ title: "Import records from", multiple: false, directory: false, filters: [{ name: "Records (CSV or JSON lines)", extensions: ["csv", "jsonl", "json"] }] });
    return typeof chosen === "string" ? chosen : null;
  },
  /** The desktop's own Save dialog for an export of every record (CSV
   * unless the name chosen ends otherwise). */
  chooseExportFile: (suggested: string) =>
    saveDialog({ title: "Export every record to", defaultPath: suggested, filters: [{ name: "CSV (spreadsheets)", extensions: ["csv"] }, { name: "JSON lines", extensions: ["jsonl"] }] }),
  /** The desktop's own Open dialog for a backup: the chosen path, or null. */
  chooseBackupToRestore: async () => {
    const chosen = await openDialog({ title: "Restore which backup?", multiple: false, directory: false, filters: [{ name: "DAN backup", extensions: ["danbackup"] }] });
    return typeof chosen === "string" ? chosen : null;
  },
  /** The window's title (the desktop's title bar and task switcher). */
  setWindowTitle: async (title: string) => {
    document.title = title;
    try {
      await getCurrentWindow().setTitle(title);
    } catch {
      // Outside the app (unit tests, a browser) only the document has a title.
    }
  },
  quitApp: () => call<void>("quit_app"),
  autostart: () => call<StartAtLogInSetting>("autostart"),
  setAutostart: (on: boolean) => call<StartAtLogInSetting>("set_autostart", { on }),
  recordHistory: (id: string) => call<HistoryEntry[]>("record_history", { id }),
  members: () => call<MemberView[]>("members"),
  approve: (peer: string) => call<MemberView>("approve", { peer }),
  reject: (peer: string) => call<MemberView>("reject", { peer }),
  proposals: () => call<ProposalView[]>("proposals"),
  vote: (id: string, approve: boolean) => call<ProposalView>("vote", { id, approve }),
  proposeRemove: (peer: string) => call<ProposalView>("propose_remove", { peer }),
  describeBuilds: (source: string) => call<BuildView[]>("describe_builds", { source }),
  proposeBuilds: (builds: BuildView[]) => call<ProposalView>("propose_builds", { builds }),
  approvalRequest: () => call<string>("approval_request"),
  evidence: () => call<EvidenceView[]>("evidence"),
  createInvite: (uses: number, expiresSecs: number, label: string) => call<InviteCreated>("create_invite", { uses, expiresSecs, label }),
  invites: () => call<StoredInvite[]>("invites"),
  inviteQr: (link: string) => call<string>("invite_qr", { link }),
  revokeInvite: (id: string) => call<void>("revoke_invite", { id }),
  /** Uses exactly these relays from now on (admin). */
  setRelays: (relays: string[]) => call<RelayStatus[]>("set_relays", { relays }),
  forkNetwork: (name: string) => call<string>("fork_network", { name }),
  changePassword: (old: string, next: string) => call<void>("change_password", { old, new: next }),
  exportBackup: (path: string) => call<number>("export_backup", { path }),
  restoreBackup: (path: string, password: string) => call<Status>("restore_backup", { path, password }),
  /** Imports the records of a CSV or JSON lines file; progress comes as `onBulkProgress`. */
  importRecords: (path: string) => call<number>("import_records", { path }),
  /** Writes every record to a CSV or JSON lines file; progress comes as `onBulkProgress`. */
  exportRecords: (path: string) => call<number>("export_records", { path }),
  /** Subscribes to how far an import or export got. */
  onBulkProgress: (handler: (progress: BulkProgress) => void) => listen<BulkProgress>("dan://bulk", (event) => handler(event.payload)),
  openDataFolder: () => call<void>("open_data_folder"),
  takeLaunchLink: () => call<string | null>("take_launch_link"),
};

export type Api = typeof api;

/** Subscribes to the instance's events. */
export function onEvent(handler: (event: DanEvent) => void): Promise<UnlistenFn> {
  return listen<DanEvent>("dan://event", (event) => handler(event.payload));
}

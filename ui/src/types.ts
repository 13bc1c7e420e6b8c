// Types of the data the instance sends to the UI (see crates/dan-node/src/api.rs).

export type NetworkState = "none" | "pending" | "forming" | "active" | "suspended" | "unapproved" | "deprecated";
export type FieldValue = string | number | boolean;

/** Every error code the instance sends (`ErrorCode` in crates/dan-node/src/error.rs).
 * A Rust test reads this union (double-quoted names up to the first
 * semicolon) and checks that both lists are the same. */
export type ErrorCode =
  "not_initialized" |
  "already_initialized" |
  "busy" |
  "password_needed" |
  "wrong_password" |
  "weak_password" |
  "secret_error" |
  "no_network" |
  "has_network" |
  "build_not_approved" |
  "not_member" |
  "catching_up" |
  "clock_ahead" |
  "not_found" |
  "invalid" |
  "forming" |
  "rejected" |
  "integrity" |
  "storage" |
  "io" |
  "unreachable" |
  "join_refused" |
  "stopped" |
  "not_running" |
  "unauthorized" |
  "bad_request" |
  "bad_response" |
  "admin_locked" |
  "not_ready" |
  "error";

/** What kind of failure an error is (`ErrorKind`): fix the input, give up,
 * try again, check the connection or the disk. */
export type ErrorKind = "bad_input" | "refused" | "retry" | "network" | "storage" | "other";

export interface JoinProgress {
  network_id: string;
  network_name: string;
  inviter: string;
  inviter_name: string;
  approvals: number;
  needed: number;
  peer_id: string;
  /** Read out to an approving admin, who sees the same code. */
  join_code: string;
}

export interface Status {
  peer_id: string;
  name: string;
  network_id: string | null;
  network_name: string | null;
  state: NetworkState;
  members: number;
  min_members: number | null;
  op_count: number;
  ops_root: string | null;
  state_root: string | null;
  code_hash: string;
  charter_hash: string | null;
  code_approved: boolean | null;
  /** This clock minus the members' (ms), from their signed hellos. */
  clock_skew_ms?: number | null;
  build: BuildView;
  online_peers: number;
  missing_ops: number;
  last_sync: number | null;
  listen_addrs: string[];
  /** Whether others can dial this instance without a relay. */
  reachability?: "public" | "private" | "unknown";
  /** Addresses peers confirmed they can dial. */
  external_addrs?: string[];
  /** Relays this instance reserves a slot on. */
  relays?: RelayStatus[];
  join: JoinProgress | null;
  deprecation: string | null;
  damaged_records: string[];
  own_seq: number;
  own_seq_on_peers: number;
}

/** A relay this instance uses, and whether it holds a slot now. */
export interface RelayStatus {
  addr: string;
  reserved: boolean;
  /** A member at a public address this instance found itself. */
  learnt?: boolean;
  /** Why the last attempt got no slot. */
  error?: string;
}

export interface RecordView {
  id: string;
  collection: string;
  title: string;
  fields: Record<string, FieldValue>;
  tags: string[];
  deleted: boolean;
  created_at: number;
  updated_at: number;
  origin: string;
  version: string;
  /** Field names or tags a reader could mistake (only on a single record). */
  look_alikes?: LookAlike[];
}

/** Labels of one record that read the same, or one that mixes alphabets. */
export interface LookAlike {
  of: "field" | "tag";
  names: string[];
  kind: "read_the_same" | "mixes_scripts";
}

export interface RecordPage {
  records: RecordView[];
  total: number;
}

export type RecordSort = "updated_desc" | "updated_asc" | "title_asc" | "title_desc" | "created_desc" | "id_asc";

export interface RecordQuery {
  collection?: string | null;
  search?: string | null;
  include_deleted?: boolean;
  sort?: RecordSort;
  limit?: number;
  offset?: number;
  /** With `id_asc`: only records whose id sorts after this one. */
  after_id?: string | null;
}

export interface PutRecord {
  id?: string | null;
  collection?: string | null;
  title?: string | null;
  fields: Record<string, FieldValue | null>;
  tags?: string[] | null;
}

export interface HistoryEntry {
  op_id: string;
  origin: string;
  seq: number;
  at: number;
  kind: "create" | "update" | "delete" | "restore";
  collection: string | null;
  title: string | null;
  fields: Record<string, FieldValue | null>;
  tags: string[] | null;
}

export type MemberStatus = "member" | "pending" | "rejected" | "removed" | "deprecated";

/** A build's version, platform and kind. */
export interface BuildLabel {
  version: string;
  platform: string;
  kind: "desktop" | "headless";
}

/** A build as people see it, and where the charter stands on it. */
export interface BuildView {
  code_hash: string;
  label: BuildLabel | null;
  /** "DAN 0.1.0 · desktop · Linux x86-64", or "an unknown build (…)". */
  description: string;
  approval: "approved" | "withdrawing" | "withdrawn" | "not_approved" | null;
  approval_ends_ms: number | null;
}

export interface MemberView {
  peer_id: string;
  name: string;
  admin_name: string;
  status: MemberStatus;
  code_hash: string | null;
  online: boolean;
  last_seen: number | null;
  approvals: number;
  needed: number;
  is_self: boolean;
  refused: string | null;
  state_root: string | null;
  roots: "match" | "mismatch" | "syncing" | null;
  suspended: boolean;
  deprecation: string | null;
  build: BuildView | null;
  /** The code its admin reads out before it is approved. */
  join_code: string;
  /** When it asked (its own clock) and whose invite it used. */
  requested_ms: number | null;
  invited_by: string | null;
  /** For a readmission: the deprecated instance whose seat it takes over. */
  succeeds: string | null;
  /** For a pending readmission: whether admitting it takes that seat over
   * now (the instance it names is deprecated and its seat still free); if
   * not, it stays waiting however many approve it. */
  takes_over_seat: boolean;
  /** For a pending readmission: who already took over the seat it names
   * (it can then never be admitted). */
  seat_taken_by: string | null;
  /** For a pending readmission: another pending request names the same
   * seat; only one of them can take it. */
  seat_contested: boolean;
  /** For a pending readmission: the instance it names was removed by vote,
   * so admitted it gets a seat of its own. */
  seat_removed: boolean;
  /** The instance that took over this deprecated member's seat. */
  succeeded_by: string | null;
  /** A deprecated instance whose admin name looks like this request's,
   * while the request takes over no seat (a possible second seat). */
  second_seat_of: string | null;
}

export interface ProposalView {
  id: string;
  kind: "remove" | "upgrade" | "add_builds";
  summary: string;
  proposer: string;
  yes: number;
  no: number;
  needed: number;
  status: "open" | "passed" | "rejected";
  decided_at: number | null;
  withdraws_at: number | null;
  /** For an upgrade: how long the builds it does not name stay approved. */
  grace_ms: number | null;
  /** For an upgrade: the builds it approves, and those it withdraws. */
  builds: BuildView[];
  withdraws: BuildView[];
  /** This instance's vote, if it has voted (proposing counts as yes). */
  my_vote?: boolean | null;
}

export interface EvidenceView {
  id: string;
  accuser: string;
  offender: string | null;
  status: "proven" | "adopted" | "unfounded" | "pending" | "against_this_instance";
  reason: string;
  cutoff: number | null;
  received_ms: number;
}

/** Someone who joined with an invite, as their join request named them. */
export interface InviteUser {
  peer_id: string;
  instance_name: string;
  admin_name: string;
  used_ms: number;
}

/** Where an invite stands, as its inviter sees it. */
export type InviteStatus = "waiting" | "used_up" | "expired" | "revoked" | "unreachable";

export interface StoredInvite {
  id: string;
  link: string;
  created_ms: number;
  expires_ms: number;
  uses: number;
  used: number;
  revoked: boolean;
  /** Whom it is for ("for Bob"); not part of the link. */
  label: string;
  used_by: InviteUser[];
  status: InviteStatus;
}

export interface InviteCreated {
  invite: StoredInvite;
  qr_svg: string;
}

export interface InvitePreview {
  network_id: string;
  network_name: string;
  inviter: string;
  inviter_name: string;
  expires_ms: number;
  /** This build, approved or not by the network (as of the invite). */
  your_build: BuildView;
  approved_builds: BuildView[];
  /** What to send an admin of the network when this build is not approved. */
  approval_request: string | null;
  /** How the invite's network stands to this instance's. */
  relation: "no_network" | "this_network" | "other_network";
  /** A network this instance knows whose name looks like the invite's, with another id. */
  look_alike: { network_id: string; network_name: string } | null;
}

/** Whether DAN starts at log-in, and on which data folder (one entry per
 * user). */
export interface StartAtLogInSetting {
  on: boolean;
  /** The entry starts another data folder: its path, or "the default data folder". */
  other_folder: string | null;
  /** The entry starts another copy of DAN: its path. */
  other_app: string | null;
}

export interface AppInfo {
  stage: "first_run" | "locked" | "ready";
  data_dir: string;
  admin_remaining_ms: number;
}

export type DanEvent =
  | { kind: "records_changed"; ids: string[] }
  | { kind: "members_changed" }
  | { kind: "evidence"; offender: string; reason: string }
  | { kind: "checkpoint_now" }
  | { kind: "sync_progress"; peer: string; fetched: number; total: number }
  | { kind: "peer_changed"; peer: string; what: string }
  | { kind: "launch_link" }
  | { kind: "close_requested" };

/** How far an import or export of records got (the event `dan://bulk`). */
export interface BulkProgress {
  kind: "import" | "export";
  done: number;
  total: number | null;
}

// Types of the data the instance sends to the UI (see crates/dan-node/src/api.rs).

export type NetworkState = "none" | "pending" | "forming" | "active" | "suspended" | "deprecated";
export type FieldValue = string | number | boolean;

export interface JoinProgress {
  network_id: string;
  network_name: string;
  inviter: string;
  inviter_name: string;
  approvals: number;
  needed: number;
  peer_id: string;
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
  online_peers: number;
  missing_ops: number;
  last_sync: number | null;
  listen_addrs: string[];
  join: JoinProgress | null;
  deprecation: string | null;
  damaged_records: string[];
  own_seq: number;
  own_seq_on_peers: number;
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
}

export interface RecordPage {
  records: RecordView[];
  total: number;
}

export type RecordSort = "updated_desc" | "updated_asc" | "title_asc" | "title_desc" | "created_desc";

export interface RecordQuery {
  collection?: string | null;
  search?: string | null;
  include_deleted?: boolean;
  sort?: RecordSort;
  limit?: number;
  offset?: number;
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
  kind: "create" | "update" | "delete";
  collection: string | null;
  title: string | null;
  fields: Record<string, FieldValue | null>;
  tags: string[] | null;
}

export type MemberStatus = "member" | "pending" | "rejected" | "removed" | "deprecated";

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
}

export interface ProposalView {
  id: string;
  kind: "remove" | "upgrade";
  summary: string;
  proposer: string;
  yes: number;
  no: number;
  needed: number;
  status: "open" | "passed" | "rejected";
  decided_at: number | null;
  withdraws_at: number | null;
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

export interface StoredInvite {
  id: string;
  link: string;
  created_ms: number;
  expires_ms: number;
  uses: number;
  used: number;
  revoked: boolean;
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
  | { kind: "launch_link" };

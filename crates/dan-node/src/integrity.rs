//! The integrity check run on every start: rebuild the state from the signed
//! op log alone and compare it with the materialized tables, so rows edited
//! behind the instance's back are found and named.

use std::collections::{HashMap, HashSet};
use std::fmt;

use dan_core::replica::OpRejection;
use dan_core::{Finding, Hash32, Op, RecordId, RecordView, Replica, SignedGenesis, VerifiedOp};
use dan_store::{Store, StoredOp};
use serde::Serialize;

use crate::error::NodeError;

/// Ops applied per batch while replaying the log.
const REPLAY_BATCH: usize = 1024;

/// A problem with one op of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DamagedOp {
    /// Its position in the log.
    pub pos: i64,
    /// What is wrong.
    pub problem: String,
}

/// A materialized record that does not match the op log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordMismatch {
    /// The record id (as found in the table or the log).
    pub id: String,
    /// What differs.
    pub problem: String,
}

/// What the integrity check found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IntegrityReport {
    /// Ops in the log.
    pub ops_checked: u64,
    /// Records compared.
    pub records_checked: u64,
    /// Ops whose bytes or signature do not verify.
    pub damaged_ops: Vec<DamagedOp>,
    /// Records whose stored row differs from the log.
    pub mismatched_records: Vec<RecordMismatch>,
}

impl IntegrityReport {
    /// Whether everything matched.
    pub fn is_clean(&self) -> bool {
        self.damaged_ops.is_empty() && self.mismatched_records.is_empty()
    }
}

impl fmt::Display for IntegrityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return write!(
                f,
                "integrity check passed: {} ops, {} records",
                self.ops_checked, self.records_checked
            );
        }
        writeln!(
            f,
            "integrity check failed: the stored data does not match the signed op log."
        )?;
        for record in self.mismatched_records.iter().take(20) {
            writeln!(f, "  record {}: {}", record.id, record.problem)?;
        }
        if self.mismatched_records.len() > 20 {
            writeln!(
                f,
                "  … and {} more records",
                self.mismatched_records.len() - 20
            )?;
        }
        for op in self.damaged_ops.iter().take(20) {
            writeln!(f, "  op log entry {}: {}", op.pos, op.problem)?;
        }
        write!(
            f,
            "The instance will not serve this data. Run `dan repair` to rebuild the records from the signed op log."
        )
    }
}

/// The state rebuilt from the op log and what the comparison found.
pub struct Replayed {
    /// The replica rebuilt from the signed op log alone.
    pub replica: Replica,
    /// What the comparison with the materialized tables found.
    pub report: IntegrityReport,
}

/// Most replays of the op log one check makes (see [`check`]).
const MAX_REPLAY_PASSES: usize = 4;

/// Replays the op log into a fresh replica and compares its records with the
/// table. The replay runs on a blocking thread (signatures checked on every
/// core), so the async workers stay free meanwhile.
pub async fn check(
    store: &Store,
    genesis: &SignedGenesis,
    findings: &[(Finding, Hash32)],
) -> Result<Replayed, NodeError> {
    let log = store.ops().await?;
    let rows = store.all_records().await?;
    let genesis = genesis.clone();
    let findings = findings.to_vec();
    let checked = tokio::task::spawn_blocking(move || {
        let (replica, mut report) = rebuild(&log, &genesis, &findings)?;
        compare(&replica, rows, &mut report);
        Ok(Replayed { replica, report })
    })
    .await;
    match checked {
        Ok(checked) => checked,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => Err(NodeError::Invalid("the instance is shutting down".into())),
        },
    }
}

/// Compares the records rebuilt from the log with the stored rows, one row
/// at a time (never a second copy of every record in memory).
fn compare(
    replica: &Replica,
    rows: Vec<Result<RecordView, dan_store::RowError>>,
    report: &mut IntegrityReport,
) {
    report.records_checked = rows.len() as u64;
    let mut stored_ids: HashSet<RecordId> = HashSet::with_capacity(rows.len());
    for row in rows {
        let stored = match row {
            Ok(stored) => stored,
            Err(damaged) => {
                report.mismatched_records.push(RecordMismatch {
                    id: damaged.id,
                    problem: damaged.problem,
                });
                continue;
            }
        };
        let problem = match replica.record(&stored.id) {
            None => "the row has no signed ops behind it".to_owned(),
            Some(truth) if truth != stored => format!(
                "edited outside DAN ({})",
                differing_columns(&truth, &stored)
            ),
            Some(_) => {
                stored_ids.insert(stored.id);
                continue;
            }
        };
        stored_ids.insert(stored.id.clone());
        report.mismatched_records.push(RecordMismatch {
            id: stored.id.to_string(),
            problem,
        });
    }
    for view in replica.records() {
        if !stored_ids.contains(&view.id) {
            report.mismatched_records.push(RecordMismatch {
                id: view.id.to_string(),
                problem: "the row is missing".into(),
            });
        }
    }
    report.mismatched_records.sort_by(|a, b| a.id.cmp(&b.id));
}

/// Rebuilds the state from the op log alone: the replica and what the log
/// itself holds that is damaged.
fn rebuild(
    log: &[StoredOp],
    genesis: &SignedGenesis,
    findings: &[(Finding, Hash32)],
) -> Result<(Replica, IntegrityReport), NodeError> {
    let (verified, damaged, positions) = decode_log(log);
    // The log is in arrival order: a removed member's ops that arrived
    // before its removal was decided would be applied again. Replay until
    // the cut-offs it is given are the ones its end state asks for (one
    // pass when nothing is cut; a few at most).
    let mut hints = std::collections::BTreeMap::new();
    let mut pass = 0;
    let (mut replica, report) = loop {
        let mut replica = Replica::new(genesis.clone())?;
        for (finding, evidence) in findings {
            replica.deprecate(finding, *evidence);
        }
        replica.hint_rebuild(hints.clone());
        let mut report = IntegrityReport {
            ops_checked: log.len() as u64,
            damaged_ops: damaged.clone(),
            ..IntegrityReport::default()
        };
        replay(&mut replica, &verified, &positions, &mut report);
        pass += 1;
        let wanted = replica.rebuild_hints();
        if wanted == hints || pass >= MAX_REPLAY_PASSES {
            break (replica, report);
        }
        hints = wanted;
    };
    replica.finish_rebuild();
    Ok((replica, report))
}

/// Decodes and verifies the log once: the verified ops in log order, the
/// damaged entries, and each op's log position.
fn decode_log(log: &[StoredOp]) -> (Vec<VerifiedOp>, Vec<DamagedOp>, HashMap<Hash32, i64>) {
    let mut positions = HashMap::with_capacity(log.len());
    let mut damaged = Vec::new();
    let mut decoded = Vec::with_capacity(log.len());
    for stored in log {
        match Op::decode(&stored.bytes) {
            Ok(op) if op.id().0[..] == stored.op_id[..] => {
                positions.insert(op.id(), stored.pos);
                decoded.push(op);
            }
            Ok(_) => damaged.push(DamagedOp {
                pos: stored.pos,
                problem: "its id does not match its bytes".into(),
            }),
            Err(e) => damaged.push(DamagedOp {
                pos: stored.pos,
                problem: e.to_string(),
            }),
        }
    }
    let (verified, forged) = crate::verify::verify_parallel(decoded);
    for op in forged {
        damaged.push(DamagedOp {
            pos: positions.get(&op.id()).copied().unwrap_or_default(),
            problem: "its signature does not verify".into(),
        });
    }
    (verified, damaged, positions)
}

/// Applies the log in batches, carrying ops that wait for later ones (a
/// create logged after an edit naming it, a context). Ops of deprecated or
/// removed instances stay in the log but the rules refuse them: expected,
/// not damage.
fn replay(
    replica: &mut Replica,
    log: &[VerifiedOp],
    positions: &HashMap<Hash32, i64>,
    report: &mut IntegrityReport,
) {
    let pos_of = |id: &Hash32| positions.get(id).copied().unwrap_or_default();
    let mut waiting: Vec<VerifiedOp> = Vec::new();
    let mut refused = Vec::new();
    for chunk in log.chunks(REPLAY_BATCH) {
        waiting.extend(chunk.iter().cloned());
        let outcome = replica.apply_batch(std::mem::take(&mut waiting));
        refused.extend(outcome.rejected);
        waiting = outcome.deferred.into_iter().map(|(op, _)| op).collect();
    }
    let outcome = replica.apply_batch(waiting);
    refused.extend(outcome.rejected);
    refused.extend(outcome.deferred);
    for (op, reason) in refused {
        if !matches!(
            reason,
            OpRejection::Deprecated { .. } | OpRejection::Removed(_)
        ) {
            report.damaged_ops.push(DamagedOp {
                pos: pos_of(&op.id()),
                problem: reason.to_string(),
            });
        }
    }
}

fn differing_columns(truth: &RecordView, stored: &RecordView) -> String {
    let checks = [
        ("collection", truth.collection != stored.collection),
        ("title", truth.title != stored.title),
        ("fields", truth.fields != stored.fields),
        ("tags", truth.tags != stored.tags),
        ("deleted", truth.deleted != stored.deleted),
        ("created_at", truth.created_at != stored.created_at),
        ("updated_at", truth.updated_at != stored.updated_at),
        ("origin", truth.origin != stored.origin),
        ("version", truth.version != stored.version),
    ];
    let names: Vec<&str> = checks
        .iter()
        .filter(|(_, differs)| *differs)
        .map(|(n, _)| *n)
        .collect();
    format!("changed: {}", names.join(", "))
}

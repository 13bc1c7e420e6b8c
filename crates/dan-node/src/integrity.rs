//! The integrity check run on every start: rebuild the state from the signed
//! op log alone and compare it with the materialized tables, so rows edited
//! behind the instance's back are found and named.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use dan_core::replica::OpRejection;
use dan_core::{
    Finding, Hash32, Op, PeerKey, RecordId, RecordView, Replica, SignedGenesis, VerifiedOp,
};
use dan_store::{LogDigest, Store, StoredOp};
use serde::Serialize;

use crate::error::NodeError;

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
    /// Whether only a sample of ops and rows was checked: the database is
    /// the one checked and sealed at the last clean shutdown, and the
    /// replica was read back from its checkpoint (see `close_seal`).
    /// `false` when the whole log was replayed and every row compared.
    pub sampled: bool,
    /// Starts in a row, this one included, that read the replica back from
    /// a checkpoint instead of replaying the log (0 when this one replayed
    /// it): the start after [`MAX_CHECKPOINT_STARTS`] of them replays it all
    /// the same, so that a state that drifted from what the log gives does
    /// not live on from checkpoint to checkpoint.
    pub checkpoint_starts: u32,
    /// Ops checked: every op in the log, or the sample.
    pub ops_checked: u64,
    /// Records compared: every row, or the sample.
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
        if self.is_clean() && self.sampled {
            return write!(
                f,
                "integrity check passed: the database is the one checked at the last clean shutdown (a sample of {} ops and {} records checked again)",
                self.ops_checked, self.records_checked
            );
        }
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
    /// The digest of the log as read (see [`dan_store::LogDigest`]);
    /// `None` when the passes of the replay read different logs (something
    /// wrote to it meanwhile).
    pub log: Option<LogDigest>,
}

/// A start after this many starts in a row from a checkpoint replays the
/// whole log (see [`IntegrityReport::checkpoint_starts`]).
pub const MAX_CHECKPOINT_STARTS: u32 = 8;

/// Most replays of the op log one check makes (see [`check`]).
const MAX_REPLAY_PASSES: usize = 4;

/// Ops (and record rows) read, checked and applied per page: the check
/// holds a few pages at a time besides the replica it builds (one being
/// applied, those verified meanwhile), never the whole log or table.
pub(crate) const PAGE: u32 = 2048;

/// Replays the op log into a fresh replica and compares its records with the
/// table, a page at a time. Signatures are checked on every core and the
/// replay runs on blocking threads, so the async workers stay free meanwhile.
///
/// The log is in arrival order: a removed member's ops that arrived before
/// its removal was decided would be applied again. So the log is replayed
/// until the cut-offs it is given are the ones its end state asks for (one
/// pass when nothing is cut; a few at most).
pub async fn check(
    store: &Store,
    genesis: &SignedGenesis,
    findings: &[(Finding, Hash32)],
) -> Result<Replayed, NodeError> {
    let mut hints = BTreeMap::new();
    let mut pass = 0;
    let mut first_log = None;
    let (mut replica, mut report, log) = loop {
        let (replica, report, log) = replay(store, genesis, findings, hints.clone()).await?;
        pass += 1;
        let read = log.value();
        let same_log = *first_log.get_or_insert(read) == read;
        let wanted = replica.rebuild_hints();
        if wanted == hints || pass >= MAX_REPLAY_PASSES {
            break (replica, report, same_log.then_some(log));
        }
        hints = wanted;
    };
    replica.finish_rebuild();
    let replica = compare(store, replica, &mut report).await?;
    let (ops, rows) = (store.op_count().await?, store.record_count().await?);
    // Pages follow the log's positions and the rows' numbers: rows that
    // paging cannot reach (a table rebuilt by hand without its keys) are
    // damage too, not something to skip.
    if ops != report.ops_checked {
        report.damaged_ops.push(DamagedOp {
            pos: 0,
            problem: format!(
                "the log holds {ops} ops but only {} could be read in order: its positions were changed outside DAN",
                report.ops_checked
            ),
        });
    }
    if rows != report.records_checked {
        report.mismatched_records.push(RecordMismatch {
            id: String::new(),
            problem: format!(
                "the table holds {rows} rows but only {} could be read in order: it was changed outside DAN",
                report.records_checked
            ),
        });
    }
    Ok(Replayed {
        replica,
        report,
        log,
    })
}

/// Runs `work` on a blocking thread ([`crate::verify::off_the_workers`]).
pub(crate) async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NodeError> {
    crate::verify::off_the_workers(work)
        .await
        .ok_or_else(|| NodeError::Invalid("the instance is shutting down".into()))
}

/// One pass over the log: decodes and verifies it page by page and applies
/// it to a fresh replica, carrying ops that wait for later ones (a create
/// logged after an edit naming it, a context) from page to page. Ops of
/// deprecated or removed instances stay in the log but the rules refuse
/// them: expected, not damage.
async fn replay(
    store: &Store,
    genesis: &SignedGenesis,
    findings: &[(Finding, Hash32)],
    hints: BTreeMap<PeerKey, u64>,
) -> Result<(Replica, IntegrityReport, LogDigest), NodeError> {
    let mut replica = Replica::new(genesis.clone())?;
    for (finding, evidence) in findings {
        replica.deprecate(finding, *evidence);
    }
    replica.hint_rebuild(hints);
    let started = std::time::Instant::now();
    // Pages are read, decoded and verified while the one before is
    // applied: verifying takes both cores, applying one.
    let (pages, mut checked) = tokio::sync::mpsc::channel::<Checked>(2);
    let (read, applied) = tokio::join!(read_and_verify(store, pages), async move {
        let mut report = IntegrityReport::default();
        let mut positions: HashMap<Hash32, i64> = HashMap::new();
        let mut waiting: Vec<VerifiedOp> = Vec::new();
        while let Some(page) = checked.recv().await {
            positions.extend(page.positions);
            waiting.extend(page.verified);
            let batch = std::mem::take(&mut waiting);
            let (back, outcome) = off_the_workers(move || {
                let outcome = replica.apply_batch(batch);
                (replica, outcome)
            })
            .await?;
            replica = back;
            note_refused(outcome.rejected, &positions, &mut report);
            waiting = outcome.deferred.into_iter().map(|(op, _)| op).collect();
        }
        let (replica, outcome) = off_the_workers(move || {
            let outcome = replica.apply_batch(waiting);
            (replica, outcome)
        })
        .await?;
        note_refused(outcome.rejected, &positions, &mut report);
        note_refused(outcome.deferred, &positions, &mut report);
        Ok::<_, NodeError>((replica, report))
    });
    let (log, mut report) = read?;
    let (replica, applying) = applied?;
    report.damaged_ops.extend(applying.damaged_ops);
    report.damaged_ops.sort_by_key(|damaged| damaged.pos);
    tracing::info!(
        "replayed {} ops in {:.2?}",
        report.ops_checked,
        started.elapsed()
    );
    Ok((replica, report, log))
}

/// One page of the log, decoded and verified: its ops whose signature
/// holds, and their positions.
struct Checked {
    verified: Vec<VerifiedOp>,
    positions: HashMap<Hash32, i64>,
}

/// Reads the log a page at a time, decodes and verifies each and hands it
/// to `pages`: the log's digest and what was found (ops whose bytes or
/// signature are damaged).
async fn read_and_verify(
    store: &Store,
    pages: tokio::sync::mpsc::Sender<Checked>,
) -> Result<(LogDigest, IntegrityReport), NodeError> {
    let mut log = LogDigest::default();
    let mut report = IntegrityReport::default();
    let mut after = None;
    loop {
        let page = store.ops_after(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.pos);
        report.ops_checked += page.len() as u64;
        for stored in &page {
            log.add(stored.pos, &stored.op_id);
        }
        let mut positions = HashMap::new();
        let decoded = decode(&page, &mut positions, &mut report);
        let (verified, forged) = crate::verify::verify(decoded).await;
        note_forged(forged, &positions, &mut report);
        if pages
            .send(Checked {
                verified,
                positions,
            })
            .await
            .is_err()
        {
            // Applying stopped (and says why).
            break;
        }
    }
    Ok((log, report))
}

/// Reports the ops whose signature does not verify as damage.
pub(crate) fn note_forged(
    forged: Vec<Op>,
    positions: &HashMap<Hash32, i64>,
    report: &mut IntegrityReport,
) {
    for op in forged {
        report.damaged_ops.push(DamagedOp {
            pos: positions.get(&op.id()).copied().unwrap_or_default(),
            problem: "its signature does not verify".into(),
        });
    }
}

/// Reports the ops the rules refused as damage, as they come (nothing of
/// them is kept), except those of deprecated or removed instances.
fn note_refused(
    refused: Vec<(VerifiedOp, OpRejection)>,
    positions: &HashMap<Hash32, i64>,
    report: &mut IntegrityReport,
) {
    for (op, reason) in refused {
        if !matches!(
            reason,
            OpRejection::Deprecated { .. } | OpRejection::Removed(_)
        ) {
            report.damaged_ops.push(DamagedOp {
                pos: positions.get(&op.id()).copied().unwrap_or_default(),
                problem: reason.to_string(),
            });
        }
    }
}

/// Decodes one page of the log: the ops whose bytes are sound (their
/// positions noted), the others reported as damaged.
pub(crate) fn decode(
    page: &[StoredOp],
    positions: &mut HashMap<Hash32, i64>,
    report: &mut IntegrityReport,
) -> Vec<Op> {
    let mut decoded = Vec::with_capacity(page.len());
    for stored in page {
        match Op::decode(&stored.bytes) {
            Ok(op) if op.id().0[..] == stored.op_id[..] => {
                positions.insert(op.id(), stored.pos);
                decoded.push(op);
            }
            Ok(_) => report.damaged_ops.push(DamagedOp {
                pos: stored.pos,
                problem: "its id does not match its bytes".into(),
            }),
            Err(e) => report.damaged_ops.push(DamagedOp {
                pos: stored.pos,
                problem: e.to_string(),
            }),
        }
    }
    decoded
}

/// Compares the records rebuilt from the log with the stored rows, a page
/// of rows at a time (never a second copy of every record in memory), on
/// blocking threads.
pub(crate) async fn compare(
    store: &Store,
    mut replica: Replica,
    report: &mut IntegrityReport,
) -> Result<Replica, NodeError> {
    let mut stored_ids: HashSet<RecordId> = HashSet::new();
    let mut mismatched = Vec::new();
    let mut after = None;
    let started = std::time::Instant::now();
    loop {
        let rows = store.records_after(after, PAGE).await?;
        let Some((last, _)) = rows.last() else { break };
        after = Some(*last);
        report.records_checked += rows.len() as u64;
        let (back, ids, found) = off_the_workers(move || {
            let (ids, found) = compare_rows(&replica, rows, stored_ids);
            (replica, ids, found)
        })
        .await?;
        replica = back;
        stored_ids = ids;
        mismatched.extend(found);
    }
    let (replica, mut mismatched) = off_the_workers(move || {
        for view in replica.records() {
            if !stored_ids.contains(&view.id) {
                mismatched.push(RecordMismatch {
                    id: view.id.to_string(),
                    problem: "the row is missing".into(),
                });
            }
        }
        (replica, mismatched)
    })
    .await?;
    mismatched.sort_by(|a, b| a.id.cmp(&b.id));
    report.mismatched_records = mismatched;
    tracing::info!(
        "compared {} rows in {:.2?}",
        report.records_checked,
        started.elapsed()
    );
    Ok(replica)
}

/// Compares one page of stored rows with the replica: the ids seen so far
/// (with these) and what differs.
pub(crate) fn compare_rows(
    replica: &Replica,
    rows: Vec<dan_store::NumberedRow>,
    mut stored_ids: HashSet<RecordId>,
) -> (HashSet<RecordId>, Vec<RecordMismatch>) {
    let mut mismatched = Vec::new();
    for (_, row) in rows {
        let stored = match row {
            Ok(stored) => stored,
            Err(damaged) => {
                mismatched.push(RecordMismatch {
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
        mismatched.push(RecordMismatch {
            id: stored.id.to_string(),
            problem,
        });
    }
    (stored_ids, mismatched)
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

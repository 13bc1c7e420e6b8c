//! What a clean close checks before it seals the database (`close_seal`),
//! and what a start from that seal checks again: a random sample.

use std::collections::HashSet;

use dan_core::{Hash32, Replica};
use dan_store::{LogDigest, Store};

use crate::error::NodeError;
use crate::integrity::{self, DamagedOp, IntegrityReport, PAGE};

/// Ops and rows a start from the seal checks again, each.
const SAMPLES: usize = 64;

/// Checks, before a clean close seals it, that the op log and the records
/// hold exactly what this instance wrote: every op row is one the store
/// appended itself (the log's digest is `followed`, the one the store
/// kept; as many rows as the pages reached) with an id that matches its
/// bytes, every op of `replica` is in the log (none was applied without
/// being stored), and every record row matches `replica`. Returns the
/// replica and, if something differs, what (then nothing is sealed, and
/// the next start checks everything and names it). The other tables
/// (settings, evidence, invites, addresses) are not compared: the seal
/// covers them as they are.
pub(crate) async fn check_before_sealing(
    store: &Store,
    replica: Replica,
    followed: ([u8; 32], u64),
) -> Result<(Replica, Option<String>), NodeError> {
    let mut report = IntegrityReport::default();
    let (log, rows) = tokio::join!(
        read_log(store),
        integrity::compare(store, replica, &mut report)
    );
    let replica = rows?;
    let (log, ids, damaged) = log?;
    let (ops, rows) = (store.op_count().await?, store.record_count().await?);
    let found = if log.value() != followed || ops != log.value().1 {
        Some("the op log holds rows this instance did not write".to_owned())
    } else if replica.op_clocks().any(|(_, id)| !ids.contains(&id)) {
        Some("the state holds ops the log does not".to_owned())
    } else if let Some(pos) = damaged {
        Some(format!("op log entry {pos} does not match its id"))
    } else if !report.mismatched_records.is_empty() || rows != report.records_checked {
        Some(format!(
            "{} record rows differ from the signed op log",
            report.mismatched_records.len().max(1)
        ))
    } else {
        None
    };
    Ok((replica, found))
}

/// The digest of the log as it is, the ids it holds, and the first op
/// whose id does not match its bytes.
async fn read_log(store: &Store) -> Result<(LogDigest, HashSet<Hash32>, Option<i64>), NodeError> {
    let mut log = LogDigest::default();
    let mut ids = HashSet::new();
    let mut damaged = None;
    let mut after = None;
    loop {
        let page = store.ops_after(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.pos);
        for stored in &page {
            log.add(stored.pos, &stored.op_id);
            let id = Hash32::of(&stored.bytes);
            if damaged.is_none() && id.0[..] != stored.op_id[..] {
                damaged = Some(stored.pos);
            }
            ids.insert(id);
        }
    }
    Ok((log, ids, damaged))
}

/// At a start from the seal: checks a random sample of the log (bytes,
/// signature, and that the replica read back holds the op, unless its
/// origin was cut off) and of the record rows (each as the replica says).
/// What the seal proves makes this a check of the checkpoint and of the
/// seal's logic, not of the file (hashed whole).
pub(crate) async fn check_samples(
    store: &Store,
    replica: &Replica,
) -> Result<IntegrityReport, NodeError> {
    let mut picks = [0u8; SAMPLES * 16];
    blake3::Hasher::new()
        .update(&crate::secrets::random_bytes()?)
        .finalize_xof()
        .fill(&mut picks);
    let picks: Vec<u64> = picks
        .chunks_exact(8)
        .map(|pick| u64::from_le_bytes(pick.try_into().unwrap_or_default()))
        .collect();
    let (for_ops, for_rows) = picks.split_at(SAMPLES);
    let mut report = IntegrityReport {
        sampled: true,
        ..IntegrityReport::default()
    };
    let ops = store.sample_ops(for_ops).await?;
    report.ops_checked = ops.len() as u64;
    let mut positions = std::collections::HashMap::new();
    let decoded = integrity::decode(&ops, &mut positions, &mut report);
    let (verified, forged) = crate::verify::verify(decoded).await;
    integrity::note_forged(forged, &positions, &mut report);
    for op in verified {
        let origin = op.body().origin;
        // As the replay: ops of origins deprecated, removed or no longer
        // admitted stay in the log without counting.
        let cut_off =
            replica.deprecation(&origin).is_some() || !replica.answers_for_its_ops(&origin);
        if !replica.contains(&op.id()) && !cut_off {
            report.damaged_ops.push(DamagedOp {
                pos: positions.get(&op.id()).copied().unwrap_or_default(),
                problem: "the op is not in the state checked at the last clean shutdown".into(),
            });
        }
    }
    let rows = store.sample_records(for_rows).await?;
    report.records_checked = rows.len() as u64;
    let (_, mismatched) = integrity::compare_rows(replica, rows, HashSet::new());
    report.mismatched_records = mismatched;
    Ok(report)
}

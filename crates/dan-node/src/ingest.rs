//! The ingest pipeline for ops that arrive from elsewhere: decode with size
//! limits, batch-verify signatures, check chain, membership and rules in the
//! replica, then persist the whole batch in one SQLite transaction.

use std::collections::HashMap;
use std::future::Future;

use dan_core::replica::OpRejection;
use dan_core::{Op, OpId, RecordId, RecordView, Replica, VerifiedOp};
use dan_store::Store;

use crate::error::NodeError;

/// Most ops accepted in one batch.
pub const MAX_BATCH_OPS: usize = 4096;

/// What happened to a batch.
#[derive(Debug, Default)]
pub struct IngestOutcome {
    /// Ops applied and stored, in order.
    pub accepted: Vec<VerifiedOp>,
    /// The records they changed, at their new versions.
    pub changed: Vec<RecordView>,
    /// Ops already held.
    pub duplicates: usize,
    /// Valid ops that wait for others (a gap, an admission not yet seen).
    pub deferred: Vec<VerifiedOp>,
    /// Ops refused for good, with the reason.
    pub rejected: Vec<(Option<OpId>, String)>,
    /// Validly signed ops the rules refuse, with the typed reason: the
    /// material for evidence against their origin.
    pub violations: Vec<(VerifiedOp, OpRejection)>,
}

/// A batch decoded and its signatures checked: what needs no replica, so
/// that the next batch of a pull is prepared while this one is applied and
/// stored.
#[derive(Debug, Default)]
pub struct Prepared {
    verified: Vec<VerifiedOp>,
    rejected: Vec<(Option<OpId>, String)>,
    duplicates: usize,
}

/// Refuses a batch over [`MAX_BATCH_OPS`].
fn check_size(batch: &[Vec<u8>]) -> Result<(), NodeError> {
    if batch.len() > MAX_BATCH_OPS {
        return Err(NodeError::Invalid(format!(
            "a batch of {} ops exceeds the limit of {MAX_BATCH_OPS}",
            batch.len()
        )));
    }
    Ok(())
}

/// Decodes `batch` (leaving out what `held` says is held: no signature is
/// checked for it) and checks the signatures on every core.
async fn decode_and_verify(batch: &[Vec<u8>], held: impl Fn(&OpId) -> bool) -> Prepared {
    let mut prepared = Prepared::default();
    let mut decoded = Vec::with_capacity(batch.len());
    let mut seen = std::collections::HashSet::new();
    for bytes in batch {
        match Op::decode(bytes) {
            // Copies in one batch are checked once.
            Ok(op) if held(&op.id()) || !seen.insert(op.id()) => prepared.duplicates += 1,
            Ok(op) => decoded.push(op),
            Err(e) => prepared.rejected.push((None, e.to_string())),
        }
    }
    let (verified, forged) = crate::verify::verify(decoded).await;
    for op in forged {
        prepared
            .rejected
            .push((Some(op.id()), "signature does not verify".into()));
    }
    prepared.verified = verified;
    prepared
}

/// Decodes `batch` and checks its signatures, without the replica.
pub async fn prepare(batch: Vec<Vec<u8>>) -> Result<Prepared, NodeError> {
    check_size(&batch)?;
    Ok(decode_and_verify(&batch, |_| false).await)
}

/// Prepares batch k+1 while `take` applies and stores batch k: signature
/// checks (on every core) overlap with the replica and the disk.
pub async fn pipelined<Taking>(
    batches: impl IntoIterator<Item = Vec<Vec<u8>>>,
    mut take: impl FnMut(Prepared) -> Taking,
) -> Result<(), NodeError>
where
    Taking: Future<Output = Result<(), NodeError>>,
{
    let mut batches = batches.into_iter();
    let Some(first) = batches.next() else {
        return Ok(());
    };
    let mut current = prepare(first).await?;
    loop {
        let next = batches.next();
        let preparing = async {
            match next {
                Some(batch) => Some(prepare(batch).await),
                None => None,
            }
        };
        let (taken, prepared) = tokio::join!(take(current), preparing);
        taken?;
        match prepared {
            Some(prepared) => current = prepared?,
            None => return Ok(()),
        }
    }
}

/// Runs `batch` (canonical op bytes, plus ops deferred earlier) through the
/// pipeline at wall time `now_ms`: ops dated too far ahead of it are held
/// back with the deferred ones. On a storage error the replica has moved
/// ahead of the store: the caller must rebuild it from the store.
pub async fn ingest(
    replica: &mut Replica,
    store: &Store,
    batch: Vec<Vec<u8>>,
    waiting: Vec<VerifiedOp>,
    now_ms: u64,
) -> Result<IngestOutcome, NodeError> {
    check_size(&batch)?;
    // Ops already held are left out before their signatures are checked.
    let prepared = decode_and_verify(&batch, |id| replica.contains(id)).await;
    ingest_prepared(replica, store, prepared, waiting, now_ms).await
}

/// [`ingest`] of a batch already [`prepare`]d.
pub async fn ingest_prepared(
    replica: &mut Replica,
    store: &Store,
    prepared: Prepared,
    waiting: Vec<VerifiedOp>,
    now_ms: u64,
) -> Result<IngestOutcome, NodeError> {
    let mut outcome = IngestOutcome {
        rejected: prepared.rejected,
        duplicates: prepared.duplicates,
        ..IngestOutcome::default()
    };
    let mut verified = prepared.verified;
    verified.extend(waiting);
    let mut seen = std::collections::HashSet::new();
    verified.retain(|op| seen.insert(op.id()));
    let (early, verified): (Vec<VerifiedOp>, Vec<VerifiedOp>) = verified
        .into_iter()
        .partition(|op| op.body().hlc.too_far_ahead(now_ms));
    let applied = replica.apply_batch(verified);
    outcome.duplicates += applied.duplicates;
    outcome.deferred = applied.deferred.into_iter().map(|(op, _)| op).collect();
    outcome.deferred.extend(early);
    for (op, why) in applied.rejected {
        outcome.rejected.push((Some(op.id()), why.to_string()));
        outcome.violations.push((op, why));
    }
    let mut changed: HashMap<RecordId, RecordView> = HashMap::new();
    for (op, view) in applied.applied {
        if let Some(view) = view {
            changed.insert(view.id.clone(), view);
        }
        outcome.accepted.push(op);
    }
    outcome.changed = changed.into_values().collect();
    if !outcome.accepted.is_empty() {
        store.commit(&outcome.accepted, &outcome.changed).await?;
    }
    Ok(outcome)
}

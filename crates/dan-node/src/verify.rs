//! Signature checks spread over the machine's cores and kept off the async
//! workers: verification is most of the cost of ingest and start-up, and
//! while it runs the instance must go on answering peers and the UI.

use dan_core::op::verify_ops;
use dan_core::{Op, VerifiedOp};

/// Fewest ops worth a thread (and a hop off the async workers) of their own.
const MIN_OPS_PER_THREAD: usize = 256;

/// Checks the signatures of `ops` on as many cores as help: the verified
/// ops and the forged ones, each in their order.
pub(crate) fn verify_parallel(mut ops: Vec<Op>) -> (Vec<VerifiedOp>, Vec<Op>) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(ops.len() / MIN_OPS_PER_THREAD).max(1);
    let per_thread = ops.len().div_ceil(threads);
    let mut parts = Vec::with_capacity(threads);
    while ops.len() > per_thread {
        let rest = ops.split_off(per_thread);
        parts.push(std::mem::replace(&mut ops, rest));
    }
    parts.push(ops);
    let checked: Vec<(Vec<VerifiedOp>, Vec<Op>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || verify_ops(part)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e))
            })
            .collect()
    });
    let mut verified = Vec::new();
    let mut forged = Vec::new();
    for (good, bad) in checked {
        verified.extend(good);
        forged.extend(bad);
    }
    (verified, forged)
}

/// [`verify_parallel`] on a blocking thread, so the async workers stay
/// free; a few ops are checked where they are.
pub(crate) async fn verify(ops: Vec<Op>) -> (Vec<VerifiedOp>, Vec<Op>) {
    if ops.len() < MIN_OPS_PER_THREAD {
        return verify_ops(ops);
    }
    // The runtime shutting down: nothing is verified.
    off_the_workers(move || verify_parallel(ops))
        .await
        .unwrap_or_default()
}

/// Runs `work` on a blocking thread, so the async workers stay free (a
/// panic there goes on here); `None` when the runtime is shutting down.
pub(crate) async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => Some(done),
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use dan_core::op::{OpBody, Payload};
    use dan_core::{Hash32, Hlc, Keypair, RecordAction, RecordId};

    use super::*;

    fn signed(key: &Keypair, seq: u64) -> Op {
        let body = OpBody {
            network: Hash32::of(b"net"),
            origin: key.public(),
            seq,
            prev: Hash32::ZERO,
            hlc: Hlc {
                wall_ms: seq,
                counter: 0,
            },
            context: None,
            payload: Payload::Record {
                id: RecordId::new(&format!("r{seq}")).expect("id"),
                action: RecordAction::Delete,
            },
        };
        let op = VerifiedOp::sign(body, key).expect("sign");
        Op::decode(op.bytes()).expect("decode")
    }

    #[test]
    fn bad_input_forged_ops_among_thousands_are_found_and_the_order_is_kept() {
        let key = Keypair::from_secret([7; 32]);
        let other = Keypair::from_secret([8; 32]);
        let mut ops: Vec<Op> = (1..=3000).map(|seq| signed(&key, seq)).collect();
        // Ops 100 and 2500 claim `key` as origin but carry `other`'s signature.
        for at in [99, 2499] {
            let forged = signed(&other, at as u64 + 1);
            let mut bytes = ops[at].bytes().to_vec();
            let sig = forged.signature().to_bytes();
            let len = bytes.len();
            bytes[len - 64..].copy_from_slice(&sig);
            ops[at] = Op::decode(&bytes).expect("still well-formed");
        }
        let ids: Vec<Hash32> = ops.iter().map(Op::id).collect();
        let (verified, forged) = verify_parallel(ops);
        assert_eq!(verified.len(), 2998);
        let forged: Vec<Hash32> = forged.iter().map(Op::id).collect();
        assert_eq!(forged, vec![ids[99], ids[2499]]);
        let kept: Vec<Hash32> = verified.iter().map(VerifiedOp::id).collect();
        let expected: Vec<Hash32> = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 99 && *i != 2499)
            .map(|(_, id)| *id)
            .collect();
        assert_eq!(kept, expected);
    }
}

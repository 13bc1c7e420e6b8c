//! Benchmark: ingest of signed ~300-byte record ops (decode, signature
//! verification, chain and rule checks, one SQLite transaction per batch)
//! into a real SQLite file, and the start-up integrity check over the result.
//!
//! Run: `cargo bench -p dan-node --bench ingest` (set `DAN_BENCH_OPS` to
//! change the number of records, default 100000).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use dan_core::charter::Charter;
use dan_core::op::verify_ops;
use dan_core::{
    FieldValue, Genesis, Hash32, Keypair, Op, Payload, RecordAction, RecordId, Replica,
    SignedGenesis, VerifiedOp,
};
use dan_node::ingest::{MAX_BATCH_OPS, ingest, ingest_prepared, pipelined};
use dan_node::integrity;
use dan_store::Store;

const BATCH: usize = 1000;

fn genesis(key: &Keypair) -> SignedGenesis {
    let mut charter = Charter::new("Benchmark", BTreeSet::from([Hash32::of(b"bench")]));
    charter.min_members = 1;
    let genesis = Genesis {
        charter,
        founder: key.public(),
        founder_name: "bench".into(),
        created_ms: 1_700_000_000_000,
        fork_of: None,
    };
    SignedGenesis::sign(genesis, key).expect("genesis")
}

fn signed_ops(key: &Keypair, genesis: &SignedGenesis, count: usize) -> Vec<Vec<u8>> {
    let mut replica = Replica::new(genesis.clone()).expect("replica");
    (0..count)
        .map(|n| {
            let payload = Payload::Record {
                id: RecordId::derive(&key.public(), n as u64 + 1, &[0; 16]),
                action: RecordAction::Create {
                    collection: "bench".into(),
                    title: format!("Benchmark record number {n}"),
                    fields: BTreeMap::from([(
                        "body".to_owned(),
                        FieldValue::Text("x".repeat(100)),
                    )]),
                    tags: BTreeSet::new(),
                },
            };
            let body = replica.next_body(key.public(), 1_700_000_000_000 + n as u64, payload);
            let op = VerifiedOp::sign(body, key).expect("sign");
            replica.apply(&op).expect("apply");
            op.bytes().to_vec()
        })
        .collect()
}

fn main() {
    let count: usize = std::env::var("DAN_BENCH_OPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let key = Keypair::from_secret([42; 32]);
    let genesis = genesis(&key);

    let start = Instant::now();
    let ops = signed_ops(&key, &genesis, count);
    let mean_len = ops.iter().map(Vec::len).sum::<usize>() / ops.len().max(1);
    println!(
        "signed {count} ops of {mean_len} bytes on average in {:.2?}",
        start.elapsed()
    );

    let start = Instant::now();
    for chunk in ops.chunks(BATCH) {
        let decoded: Vec<Op> = chunk
            .iter()
            .map(|b| Op::decode(b).expect("decode"))
            .collect();
        let (good, bad) = verify_ops(decoded);
        assert!(bad.is_empty() && good.len() == chunk.len());
    }
    let verify = start.elapsed();
    println!(
        "decode + verify only (one core): {:.0} ops/s ({verify:.2?})",
        count as f64 / verify.as_secs_f64()
    );

    let dir = tempfile::tempdir().expect("tempdir");
    runtime.block_on(async {
        let store = Store::open(&dir.path().join("bench.db")).await.expect("store");
        let mut replica = Replica::new(genesis.clone()).expect("replica");
        let start = Instant::now();
        for chunk in ops.chunks(BATCH) {
            let outcome = ingest(&mut replica, &store, chunk.to_vec(), Vec::new(), u64::MAX).await.expect("ingest");
            assert_eq!(outcome.accepted.len(), chunk.len());
        }
        let elapsed = start.elapsed();
        println!(
            "ingest (decode, verify, check, persist; {BATCH} ops per transaction, synchronous=FULL): {:.0} ops/s ({elapsed:.2?} for {count})",
            count as f64 / elapsed.as_secs_f64()
        );

        // As a pull ingests what it fetched: batches of MAX_BATCH_OPS, the
        // next one's signatures checked while one is applied and stored.
        let pulled_dir = tempfile::tempdir().expect("tempdir");
        let pulled = Store::open(&pulled_dir.path().join("bench.db")).await.expect("store");
        let pulled_replica =
            tokio::sync::Mutex::new(Replica::new(genesis.clone()).expect("replica"));
        let start = Instant::now();
        let batches = ops.chunks(MAX_BATCH_OPS).map(<[Vec<u8>]>::to_vec);
        pipelined(batches, |prepared| async {
            let mut held = pulled_replica.lock().await;
            let outcome = ingest_prepared(&mut held, &pulled, prepared, Vec::new(), u64::MAX).await?;
            assert!(outcome.rejected.is_empty() && outcome.deferred.is_empty());
            Ok(())
        })
        .await
        .expect("ingest");
        let elapsed = start.elapsed();
        assert_eq!(pulled_replica.lock().await.state_root(), replica.state_root());
        println!(
            "ingest as a pull does ({MAX_BATCH_OPS} ops per transaction, the next batch verified while one is stored): {:.0} ops/s ({elapsed:.2?} for {count})",
            count as f64 / elapsed.as_secs_f64()
        );
        pulled.close().await;

        let start = Instant::now();
        let replayed = integrity::check(&store, &genesis, &[]).await.expect("check");
        let elapsed = start.elapsed();
        assert!(replayed.report.is_clean());
        assert_eq!(replayed.replica.state_root(), replica.state_root());
        println!(
            "integrity check over {} ops and {} records: {elapsed:.2?}",
            replayed.report.ops_checked, replayed.report.records_checked
        );
        store.close().await;
    });
}

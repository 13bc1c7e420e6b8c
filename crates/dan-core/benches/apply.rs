//! Benchmark: applying already verified ops to a replica, the pure core's
//! share of ingest and of a start-up replay. Governance ops (proposals and
//! votes among five members) and record ops (creates and updates) are timed
//! apart, since the governance fold is recomputed as ops arrive.
//!
//! The record ops are also applied in batches of 2048, as a start-up replay
//! and an ingest apply them.
//!
//! Then the same governance ops again, with each proposal's votes (cast at
//! once) arriving in the reverse of their clock order, as gossip may bring
//! them: the cost of folding ops that sort before one already folded.
//!
//! Run: `cargo bench -p dan-core --bench apply` (set `DAN_BENCH_GOV` and
//! `DAN_BENCH_RECORDS` to change the counts, default 10000 and 100000).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use dan_core::charter::Charter;
use dan_core::governance::Proposal;
use dan_core::{
    FieldValue, Genesis, GovernanceAction, Hash32, Keypair, Payload, RecordAction, RecordId,
    Replica, SignedGenesis, SignedJoinRequest, VerifiedOp,
};

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sign(replica: &mut Replica, key: &Keypair, clock: u64, payload: Payload) -> VerifiedOp {
    let body = replica.next_body(key.public(), clock, payload);
    let op = VerifiedOp::sign(body, key).expect("sign");
    replica.apply(&op).expect("apply");
    op
}

/// Five members, then `gov` governance ops (each proposal to remove an
/// absent key followed by the others' yes votes) and `records` record ops
/// (every fifth a create, the rest updates of recent records).
fn history(gov: usize, records: usize) -> (SignedGenesis, Vec<VerifiedOp>, Vec<VerifiedOp>) {
    let keys: Vec<Keypair> = (1..=5u8).map(|i| Keypair::from_secret([i; 32])).collect();
    let mut charter = Charter::new("Benchmark", BTreeSet::from([Hash32::of(b"bench")]));
    charter.min_members = 3;
    let genesis = Genesis {
        charter,
        founder: keys[0].public(),
        founder_name: "k0".into(),
        created_ms: 1_700_000_000_000,
        fork_of: None,
    };
    let genesis = SignedGenesis::sign(genesis, &keys[0]).expect("genesis");
    let mut replica = Replica::new(genesis.clone()).expect("replica");
    let mut clock = 1_700_000_000_001;
    let mut tick = || {
        clock += 1;
        clock
    };
    let mut gov_ops = Vec::new();
    for (n, joiner) in keys.iter().enumerate().skip(1) {
        let request = dan_core::JoinRequest {
            network: replica.network_id(),
            joiner: joiner.public(),
            instance_name: format!("k{n}"),
            admin_name: format!("k{n}"),
            code_hash: Hash32::of(b"bench"),
            invite: None,
            requested_ms: 1,
            succeeds: None,
        };
        let request = SignedJoinRequest::sign(request, joiner).expect("request");
        for approver in &keys[..n.div_ceil(2).max(1) + usize::from(n % 2 == 0)] {
            let action = GovernanceAction::Approve {
                request: Box::new(request.clone()),
            };
            gov_ops.push(sign(
                &mut replica,
                approver,
                tick(),
                Payload::Governance(action),
            ));
            if replica.is_member(&joiner.public()) {
                break;
            }
        }
        assert!(replica.is_member(&joiner.public()), "k{n} admitted");
    }
    let mut n = 0u64;
    while gov_ops.len() < gov {
        n += 1;
        let absent = Keypair::from_secret([
            200,
            (n % 250) as u8,
            (n / 250) as u8,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
        ]);
        let proposer = &keys[n as usize % 5];
        let action = GovernanceAction::Propose(Proposal::Remove {
            peer: absent.public(),
        });
        let proposal = sign(&mut replica, proposer, tick(), Payload::Governance(action));
        let id = proposal.id();
        gov_ops.push(proposal);
        // The three votes are cast at once: each signer had seen the
        // proposal, not the others' votes.
        let base = replica.clone();
        for voter in keys.iter().cycle().skip(n as usize % 5 + 1).take(3) {
            let action = GovernanceAction::Vote {
                proposal: id,
                approve: true,
            };
            let body = base.next_body(voter.public(), tick(), Payload::Governance(action));
            let vote = VerifiedOp::sign(body, voter).expect("sign");
            replica.apply(&vote).expect("apply");
            gov_ops.push(vote);
        }
    }
    let mut record_ops = Vec::with_capacity(records);
    for n in 0..records {
        let key = &keys[n % 5];
        let action = if n % 5 == 0 {
            RecordAction::Create {
                collection: "notes".into(),
                title: format!("note {n}"),
                fields: BTreeMap::from([("count".into(), FieldValue::Int(n as i64))]),
                tags: BTreeSet::new(),
            }
        } else {
            RecordAction::Update {
                title: None,
                fields: BTreeMap::from([("count".into(), Some(FieldValue::Int(n as i64)))]),
                tags: None,
            }
        };
        let id = RecordId::new(&format!("r{}", n / 5)).expect("id");
        record_ops.push(sign(
            &mut replica,
            key,
            tick(),
            Payload::Record { id, action },
        ));
    }
    (genesis, gov_ops, record_ops)
}

fn main() {
    let (gov, records) = (
        count("DAN_BENCH_GOV", 10_000),
        count("DAN_BENCH_RECORDS", 100_000),
    );
    let (genesis, gov_ops, record_ops) = history(gov, records);
    let mut replica = Replica::new(genesis.clone()).expect("replica");
    let started = Instant::now();
    for op in &gov_ops {
        replica.apply(op).expect("governance op");
    }
    let gov_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for op in &record_ops {
        replica.apply(op).expect("record op");
    }
    let record_secs = started.elapsed().as_secs_f64();
    // The same record ops in batches, as a start-up replay and an ingest
    // apply them (the digests hashed once per batch).
    let mut batched = Replica::new(genesis.clone()).expect("replica");
    batched.apply_batch(gov_ops.clone());
    let started = Instant::now();
    for batch in record_ops.chunks(2048) {
        let outcome = batched.apply_batch(batch.to_vec());
        assert!(outcome.rejected.is_empty() && outcome.deferred.is_empty());
    }
    let batched_secs = started.elapsed().as_secs_f64();
    assert_eq!(batched.state_root(), replica.state_root());
    // The same governance ops as gossip may bring them: each proposal's
    // three votes in the reverse of their clock order, so two of them sort
    // before an op already folded.
    let mut late = gov_ops.clone();
    let first_proposal = late
        .iter()
        .position(|op| {
            matches!(
                op.body().payload,
                Payload::Governance(GovernanceAction::Propose(_))
            )
        })
        .unwrap_or(late.len());
    for round in late[first_proposal..].chunks_mut(4) {
        round[1..].reverse();
    }
    let mut replica = Replica::new(genesis).expect("replica");
    let started = Instant::now();
    for op in &late {
        replica.apply(op).expect("governance op out of order");
    }
    let late_secs = started.elapsed().as_secs_f64();
    println!(
        "apply {} governance ops: {gov_secs:.3} s ({:.0} ops/s)",
        gov_ops.len(),
        gov_ops.len() as f64 / gov_secs
    );
    println!(
        "apply {} record ops after them: {record_secs:.3} s ({:.0} ops/s)",
        record_ops.len(),
        record_ops.len() as f64 / record_secs
    );
    println!(
        "the same record ops in batches of 2048: {batched_secs:.3} s ({:.0} ops/s)",
        record_ops.len() as f64 / batched_secs
    );
    println!(
        "apply the {} governance ops with each proposal's votes in reverse order: {late_secs:.3} s ({:.0} ops/s)",
        late.len(),
        late.len() as f64 / late_secs
    );
}

//! Membership by quorum (invariant 1) and the conformance handshake.

use std::collections::{BTreeMap, BTreeSet};

use dan_core::conformance::{SignedHello, Verdict, judge};
use dan_core::replica::OpRejection;
use dan_core::{
    FieldValue, GovernanceAction, Hash32, Keypair, MemberStatus, Payload, RecordAction, RecordId,
    Replica, VerifiedOp,
};
use proptest::prelude::*;

use crate::support::{govern, hello, join_request, solo_genesis, trio};

#[test]
fn no_single_admin_third_member_needs_two_approvals_and_records_wait_for_three_members() {
    let t = trio();
    let mut replica = Replica::new(t.genesis.clone()).expect("replica");
    let network = replica.network_id();
    replica
        .apply(&t.admissions[0])
        .expect("bob approved by alice");
    assert!(
        replica.is_member(&t.keys[1].public()),
        "the second member needs one approval"
    );
    assert!(replica.is_forming());

    let record = {
        let payload = Payload::Record {
            id: RecordId::new("early").expect("id"),
            action: RecordAction::Create {
                collection: "notes".into(),
                title: "too early".into(),
                fields: BTreeMap::new(),
                tags: BTreeSet::new(),
            },
        };
        VerifiedOp::sign(
            replica.next_body(t.keys[0].public(), 15, payload),
            &t.keys[0],
        )
        .expect("sign")
    };
    assert!(matches!(
        replica.apply(&record),
        Err(OpRejection::Forming {
            members: 2,
            needed: 3
        })
    ));

    replica
        .apply(&t.admissions[1])
        .expect("alice approves carol");
    let carol = t.keys[2].public();
    assert_eq!(
        replica.member(&carol).map(|m| m.status),
        Some(MemberStatus::Pending)
    );
    assert_eq!(replica.member(&carol).map(|m| m.approvals.len()), Some(1));
    replica.apply(&t.admissions[2]).expect("bob approves carol");
    assert!(replica.is_member(&carol));
    assert!(!replica.is_forming());
    let _ = network;
}

#[test]
fn no_single_admin_a_quorum_of_rejections_refuses_a_candidate() {
    let t = trio();
    let mut replica = Replica::new(t.genesis.clone()).expect("replica");
    for op in &t.admissions {
        replica.apply(op).expect("admission");
    }
    let dave = Keypair::from_secret([4; 32]);
    let request = join_request(replica.network_id(), &dave, "dave");
    govern(
        &mut replica,
        &t.keys[0],
        GovernanceAction::Approve {
            request: Box::new(request),
        },
        40,
    );
    govern(
        &mut replica,
        &t.keys[1],
        GovernanceAction::Reject {
            peer: dave.public(),
        },
        41,
    );
    assert_eq!(
        replica.member(&dave.public()).map(|m| m.status),
        Some(MemberStatus::Pending)
    );
    govern(
        &mut replica,
        &t.keys[2],
        GovernanceAction::Reject {
            peer: dave.public(),
        },
        42,
    );
    assert_eq!(
        replica.member(&dave.public()).map(|m| m.status),
        Some(MemberStatus::Rejected)
    );
}

#[test]
fn everything_signed_a_forged_join_request_in_an_approval_is_rejected() {
    let t = trio();
    let mut replica = Replica::new(t.genesis.clone()).expect("replica");
    let mallory = Keypair::from_secret([9; 32]);
    let mut request = join_request(replica.network_id(), &mallory, "mallory");
    request.request.instance_name = "renamed after signing".into();
    let body = replica.next_body(
        t.keys[0].public(),
        5,
        Payload::Governance(GovernanceAction::Approve {
            request: Box::new(request),
        }),
    );
    let op = VerifiedOp::sign(body, &t.keys[0]).expect("sign");
    let root = replica.state_root();
    assert!(matches!(
        replica.apply(&op),
        Err(OpRejection::BadGovernance(_))
    ));
    assert_eq!(replica.state_root(), root);
}

fn record_op(
    replica: &mut Replica,
    key: &Keypair,
    record: u8,
    field: u8,
    value: i64,
    clock: u64,
) -> Option<VerifiedOp> {
    let id = RecordId::new(&format!("r{record}")).expect("id");
    let action = if replica.record(&id).is_none() {
        RecordAction::Create {
            collection: "notes".into(),
            title: format!("note {record}"),
            fields: BTreeMap::new(),
            tags: BTreeSet::new(),
        }
    } else {
        RecordAction::Update {
            title: None,
            fields: BTreeMap::from([(format!("f{field}"), Some(FieldValue::Int(value)))]),
            tags: None,
        }
    };
    let body = replica.next_body(key.public(), clock, Payload::Record { id, action });
    let op = VerifiedOp::sign(body, key).expect("sign");
    replica.apply(&op).ok().map(|_| op)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Invariant 3 with three writers: ops from every member, with clashing
    /// clocks and concurrent edits of the same fields, delivered in any
    /// order and with duplicates, give the same roots everywhere.
    #[test]
    fn determinism_three_writers_in_any_order_give_the_same_roots(
        writes in prop::collection::vec((0usize..3, 0u8..4, 0u8..3, -dan_core::record::MAX_FIELD_INT..=dan_core::record::MAX_FIELD_INT, 0u64..20), 1..40),
        shuffle in any::<u64>(),
        batch in 1usize..6,
    ) {
        let t = trio();
        // Each writer works on its own replica that has seen only the
        // admissions and its own earlier ops: edits are concurrent.
        let mut writers: Vec<Replica> = (0..3)
            .map(|_| {
                let mut r = Replica::new(t.genesis.clone()).expect("replica");
                for op in &t.admissions {
                    r.apply(op).expect("admission");
                }
                r
            })
            .collect();
        let mut ops: Vec<VerifiedOp> = t.admissions.clone();
        for (writer, record, field, value, clock) in writes {
            if let Some(op) = record_op(&mut writers[writer], &t.keys[writer], record, field, value, 100 + clock) {
                ops.push(op);
            }
        }
        let deliver = |order: &[VerifiedOp]| {
            let mut replica = Replica::new(t.genesis.clone()).expect("replica");
            let mut pending = Vec::new();
            for chunk in order.chunks(batch) {
                pending.extend(chunk.iter().cloned());
                let outcome = replica.apply_batch(std::mem::take(&mut pending));
                assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
                pending = outcome.deferred.into_iter().map(|(op, _)| op).collect();
            }
            let outcome = replica.apply_batch(pending);
            (outcome.deferred.len(), replica.ops_root(), replica.state_root(), replica.op_count())
        };
        let in_order = deliver(&ops);
        let mut shuffled = ops.clone();
        shuffled.extend(ops.iter().take(5).cloned());
        let mut rng = shuffle;
        for i in (1..shuffled.len()).rev() {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (rng >> 33) as usize % (i + 1));
        }
        let any_order = deliver(&shuffled);
        prop_assert_eq!(in_order.0, 0);
        prop_assert_eq!(in_order, any_order);
    }
}

#[test]
fn conformance_handshake_refuses_every_kind_of_non_conforming_peer_with_a_reason() {
    let t = trio();
    let mut replica = Replica::new(t.genesis.clone()).expect("replica");
    for op in &t.admissions {
        replica.apply(op).expect("admission");
    }
    let me = t.keys[0].public();
    let bob = &t.keys[1];
    let verdict =
        |h: &SignedHello| judge(&me, Some(&replica.snapshot()), None, &bob.public(), h, 0);
    let refused =
        |v: Verdict, words: &str| matches!(v, Verdict::Refuse(ref r) if r.contains(words));

    assert_eq!(verdict(&hello(bob, &replica, |_| {})), Verdict::Replicate);
    assert!(refused(
        verdict(&hello(bob, &replica, |h| h.network = Some(Hash32::of(b"x")))),
        "another network"
    ));
    assert!(refused(
        verdict(&hello(bob, &replica, |h| h.code_hash = Hash32::of(b"build B"))),
        "not approved"
    ));
    assert!(refused(
        verdict(&hello(bob, &replica, |h| h.charter_hash = Some(Hash32::of(b"c")))),
        "charter"
    ));
    assert!(refused(
        verdict(&hello(bob, &replica, |h| h.state_root = Some(Hash32::of(b"s")))),
        "state root"
    ));
    assert!(refused(
        verdict(&hello(bob, &replica, |h| h.protocol_version = 99)),
        "protocol version"
    ));
    let mut forged = hello(bob, &replica, |_| {});
    forged.hello.op_count += 1;
    assert!(refused(verdict(&forged), "not signed"));
    let other_key = Keypair::from_secret([8; 32]);
    assert!(refused(
        judge(
            &me,
            Some(&replica.snapshot()),
            None,
            &bob.public(),
            &hello(&other_key, &replica, |_| {}),
            0
        ),
        "not signed"
    ));

    // Another charter is tolerated while the op sets differ (an upgrade in flight).
    assert_eq!(
        verdict(&hello(bob, &replica, |h| {
            h.charter_hash = Some(Hash32::of(b"c"));
            h.ops_root = Some(Hash32::of(b"more ops"));
        })),
        Verdict::Replicate
    );
    let stranger = Keypair::from_secret([7; 32]);
    assert_eq!(
        judge(
            &me,
            Some(&replica.snapshot()),
            None,
            &stranger.public(),
            &hello(&stranger, &replica, |_| {}),
            0
        ),
        Verdict::Candidate
    );
    let solo = Replica::new(solo_genesis()).expect("solo");
    assert!(matches!(
        judge(
            &me,
            None,
            None,
            &bob.public(),
            &hello(bob, &solo, |_| {}),
            0
        ),
        Verdict::Refuse(_)
    ));
    assert_eq!(
        judge(
            &stranger.public(),
            None,
            Some(replica.network_id()),
            &bob.public(),
            &hello(bob, &replica, |_| {}),
            0
        ),
        Verdict::PullOnly
    );
}

#[test]
fn determinism_a_deprecation_learnt_before_or_after_an_op_gives_the_same_state() {
    let t = trio();
    let admitted = || {
        let mut replica = Replica::new(t.genesis.clone()).expect("replica");
        for op in &t.admissions {
            replica.apply(op).expect("admission");
        }
        replica
    };
    let carol_cheated = dan_core::Finding {
        offender: t.keys[2].public(),
        cutoff: 1,
        reason: "signed two different ops with seq 1".into(),
    };
    let evidence = Hash32::of(b"evidence");

    let mut op_first = admitted();
    let op =
        record_op(&mut op_first, &t.keys[0], 1, 0, 0, 40).expect("a formed network takes records");
    op_first.deprecate(&carol_cheated, evidence);

    let mut deprecation_first = admitted();
    deprecation_first.deprecate(&carol_cheated, evidence);
    deprecation_first
        .apply(&op)
        .expect("the network stays formed: a deprecated member was admitted");

    assert_eq!(op_first.ops_root(), deprecation_first.ops_root());
    assert_eq!(op_first.state_root(), deprecation_first.state_root());
    assert_eq!(
        op_first.deprecations_root(),
        deprecation_first.deprecations_root()
    );
}

#[test]
fn builds_an_upgrade_names_its_builds_and_a_label_for_another_hash_is_refused() {
    use dan_core::governance::Proposal;
    use dan_core::{BuildKind, BuildLabel, GovernanceAction};
    let t = trio();
    let mut replica = Replica::new(t.genesis.clone()).expect("replica");
    for op in &t.admissions {
        replica.apply(op).expect("admission");
    }
    let build_b = Hash32::of(b"build B");
    let label = BuildLabel {
        version: "0.2.0".into(),
        platform: "linux-x86_64".into(),
        kind: BuildKind::Headless,
    };
    let stray = BTreeMap::from([(Hash32::of(b"build C"), label.clone())]);
    let bad = replica.next_body(
        t.keys[0].public(),
        1_700_000_100_000,
        dan_core::Payload::Governance(GovernanceAction::Propose(Proposal::Upgrade {
            code_hashes: BTreeSet::from([build_b]),
            grace_ms: 0,
            builds: stray,
        })),
    );
    let bad = dan_core::VerifiedOp::sign(bad, &t.keys[0]).expect("sign");
    let roots = (replica.ops_root(), replica.state_root());
    assert!(
        replica.apply(&bad).is_err(),
        "a label must name a proposed hash"
    );
    assert_eq!((replica.ops_root(), replica.state_root()), roots);

    let upgrade = Proposal::Upgrade {
        code_hashes: BTreeSet::from([Hash32::of(b"build A"), build_b]),
        grace_ms: 0,
        builds: BTreeMap::from([(build_b, label.clone())]),
    };
    let proposal = govern(
        &mut replica,
        &t.keys[0],
        GovernanceAction::Propose(upgrade),
        1_700_000_100_000,
    );
    govern(
        &mut replica,
        &t.keys[1],
        GovernanceAction::Vote {
            proposal: proposal.id(),
            approve: true,
        },
        1_700_000_100_001,
    );
    assert!(replica.charter().approves(&build_b, 1_700_000_200_000));
    assert_eq!(replica.charter().builds.get(&build_b), Some(&label));
    let invite_builds = replica.charter().approved_builds(1_700_000_200_000);
    assert_eq!(invite_builds.len(), 2);
    assert_eq!(
        invite_builds[0].label.as_ref(),
        Some(&label),
        "labelled builds first"
    );
}

#[test]
fn builds_adding_builds_never_withdraws_others_and_can_approve_a_withdrawn_build_again() {
    use dan_core::governance::Proposal;
    let t = trio();
    let mut replica = Replica::new(t.genesis.clone()).expect("replica");
    for op in &t.admissions {
        replica.apply(op).expect("admission");
    }
    let (a, b, c) = (
        Hash32::of(b"build A"),
        Hash32::of(b"build B"),
        Hash32::of(b"build C"),
    );
    let pass = |replica: &mut Replica, proposal: Proposal, clock: u64| {
        let op = govern(
            replica,
            &t.keys[0],
            GovernanceAction::Propose(proposal),
            clock,
        );
        govern(
            replica,
            &t.keys[1],
            GovernanceAction::Vote {
                proposal: op.id(),
                approve: true,
            },
            clock + 1,
        );
    };
    // An upgrade to B with a week's grace, then adding C: A keeps its date.
    pass(
        &mut replica,
        Proposal::Upgrade {
            code_hashes: BTreeSet::from([b]),
            grace_ms: 7 * 86_400_000,
            builds: BTreeMap::new(),
        },
        1_700_000_100_000,
    );
    let withdrawal = replica.charter().withdrawals.get(&a).copied();
    assert!(withdrawal.is_some());
    pass(
        &mut replica,
        Proposal::AddBuilds {
            code_hashes: BTreeSet::from([c]),
            builds: BTreeMap::new(),
        },
        1_700_000_200_000,
    );
    assert_eq!(replica.charter().withdrawals.get(&a).copied(), withdrawal);
    assert!(replica.charter().approves(&b, 1_800_000_000_000));
    assert!(replica.charter().approves(&c, 1_800_000_000_000));
    assert!(!replica.charter().approves(&a, 1_800_000_000_000));
    // Naming A again approves it again, and only it.
    pass(
        &mut replica,
        Proposal::AddBuilds {
            code_hashes: BTreeSet::from([a]),
            builds: BTreeMap::new(),
        },
        1_700_000_300_000,
    );
    assert!(replica.charter().approves(&a, 1_800_000_000_000));
}

/// The trio admits two more, then `rounds` times one member proposes and
/// the four others vote at once (each signing on the state right after
/// the proposal, without the others' votes): the ops of the five keys.
fn concurrent_votes(rounds: usize) -> (Replica, Vec<VerifiedOp>) {
    let t = trio();
    let mut replica = t.replica();
    let mut ops = t.admissions.clone();
    let mut keys: Vec<Keypair> = t.keys.to_vec();
    let mut clock = 40;
    for n in 0..2u8 {
        let newcomer = Keypair::from_secret([60 + n; 32]);
        let request = join_request(replica.network_id(), &newcomer, &format!("n{n}"));
        for approver in &keys[..keys.len().min(2 + usize::from(n))] {
            clock += 1;
            ops.push(govern(
                &mut replica,
                approver,
                GovernanceAction::Approve {
                    request: Box::new(request.clone()),
                },
                clock,
            ));
        }
        keys.push(newcomer);
    }
    for round in 0..rounds {
        clock += 1;
        let proposer = &keys[round % keys.len()];
        let absent = Keypair::from_secret([200; 32]).public();
        let proposal = govern(
            &mut replica,
            proposer,
            GovernanceAction::Propose(dan_core::governance::Proposal::Remove { peer: absent }),
            clock,
        );
        ops.push(proposal.clone());
        let base = replica.clone();
        for voter in keys.iter().filter(|k| k.public() != proposer.public()) {
            clock += 1;
            let body = base.next_body(
                voter.public(),
                clock,
                Payload::Governance(GovernanceAction::Vote {
                    proposal: proposal.id(),
                    approve: round % 3 != 0,
                }),
            );
            let vote = VerifiedOp::sign(body, voter).expect("sign");
            replica.apply(&vote).expect("a concurrent vote");
            ops.push(vote);
        }
    }
    (replica, ops)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// Governance ops that arrive out of clock order fold again from a
    /// kept copy of the fold (one every 128 ops), not from the genesis:
    /// whatever the order, the outcome is the fold of the whole set.
    #[test]
    fn determinism_governance_ops_out_of_order_fold_to_what_the_whole_set_folds_to(
        shuffle in any::<u64>(),
        window in 2usize..12,
        far in 0usize..3,
    ) {
        let (in_order, ops) = concurrent_votes(120);
        prop_assert!(ops.len() > 600);
        // Each op arrives up to `window` places away from its clock order.
        let mut order = ops.clone();
        let mut rng = shuffle;
        for start in (0..order.len()).step_by(window) {
            let end = (start + window).min(order.len());
            for i in (start + 1..end).rev() {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                order.swap(i, start + (rng >> 33) as usize % (i - start + 1));
            }
        }
        // One op held back to the very end (the ops that build on it wait
        // for it): from about 430 ops before the end, it folds again from
        // a kept copy; from 600, from the genesis.
        if far > 0 {
            let late = order.remove(if far == 1 { order.len() / 3 } else { 50 });
            order.push(late);
        }
        let mut replica = Replica::new(in_order.genesis().clone()).expect("replica");
        let mut waiting: Vec<VerifiedOp> = Vec::new();
        for op in order {
            waiting.push(op);
            // One op at a time, as gossip brings them; those that wait
            // for an earlier one are tried again after each.
            loop {
                let before = waiting.len();
                waiting.retain(|op| match replica.apply(op) {
                    Ok(_) => false,
                    Err(e) => {
                        assert!(e.is_transient(), "{e}");
                        true
                    }
                });
                if waiting.len() == before || waiting.is_empty() {
                    break;
                }
            }
        }
        prop_assert!(waiting.is_empty());
        prop_assert_eq!(replica.state_root(), in_order.state_root());
        prop_assert_eq!(
            replica.proposals().collect::<Vec<_>>(),
            in_order.proposals().collect::<Vec<_>>()
        );
        prop_assert_eq!(
            replica.members().collect::<Vec<_>>(),
            in_order.members().collect::<Vec<_>>()
        );
    }
}

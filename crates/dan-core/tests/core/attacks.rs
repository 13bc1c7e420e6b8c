//! Regression tests for attacks a member admin can make on the core by
//! signing whatever its key allows (security review of December 2026,
//! issue 9). Each test names the finding; each failed on `e0617a0`.

use std::collections::{BTreeMap, BTreeSet};

use dan_core::evidence::{Finding, adoptable};
use dan_core::governance::Proposal;
use dan_core::replica::{MAX_WALL_MS, OpRejection};
use dan_core::{
    Evidence, GovernanceAction, Hash32, Hlc, Keypair, MemberStatus, Payload, RecordAction,
    RecordId, Replica, VerifiedOp,
};

use crate::support::{govern, join_request, trio};

/// A four-member network (alice, bob, carol, dave) and the four keys.
fn four() -> (Replica, [Keypair; 4]) {
    let t = trio();
    let mut replica = Replica::new(t.genesis.clone()).expect("replica");
    for op in &t.admissions {
        replica.apply(op).expect("admission");
    }
    let dave = Keypair::from_secret([4; 32]);
    let request = join_request(replica.network_id(), &dave, "dave");
    for (key, clock) in [(&t.keys[0], 40), (&t.keys[1], 50)] {
        govern(
            &mut replica,
            key,
            GovernanceAction::Approve {
                request: Box::new(request.clone()),
            },
            clock,
        );
    }
    assert!(replica.is_member(&dave.public()), "dave admitted");
    let [a, b, c] = t.keys;
    (replica, [a, b, c, dave])
}

/// A record op of `key` at its next seq, with `id` and `hlc` as given.
fn record_op(replica: &Replica, key: &Keypair, id: &str, hlc: Hlc) -> VerifiedOp {
    let mut body = replica.next_body(
        key.public(),
        1_700_000_500_000,
        Payload::Record {
            id: RecordId::new("placeholder").expect("id"),
            action: RecordAction::Create {
                collection: "notes".into(),
                title: "t".into(),
                fields: BTreeMap::new(),
                tags: BTreeSet::new(),
            },
        },
    );
    // A peer's op is decoded, not built: any id and clock can arrive.
    let mut json = serde_json::to_value(&body).expect("encode");
    json["payload"]["Record"]["id"] = serde_json::Value::String(id.into());
    body = serde_json::from_value(json).expect("decode");
    body.hlc = hlc;
    VerifiedOp::sign(body, key).expect("sign")
}

// Finding 2: on e0617a0 a colluder's yes vote kept counting after it got
// itself deprecated while it left the denominator, so two colluders of four
// removed an honest member.
#[test]
fn no_single_admin_a_voter_deprecated_after_voting_does_not_lower_the_bar() {
    let (mut replica, [_alice, bob, carol, dave]) = four();
    let proposal = govern(
        &mut replica,
        &carol,
        GovernanceAction::Propose(Proposal::Remove { peer: bob.public() }),
        100,
    );
    govern(
        &mut replica,
        &dave,
        GovernanceAction::Vote {
            proposal: proposal.id(),
            approve: true,
        },
        110,
    );
    assert!(replica.is_member(&bob.public()), "2 of 4 do not remove");
    let finding = Finding {
        offender: dave.public(),
        cutoff: replica.chain_len(&dave.public()) + 1,
        reason: "signed two different ops with one seq".into(),
    };
    replica.deprecate(&finding, Hash32::of(b"evidence"));
    assert_eq!(
        replica.member(&bob.public()).map(|m| m.status),
        Some(MemberStatus::Member),
        "the colluder's deprecation must not pass the removal"
    );
    assert_eq!(
        replica.voters().len(),
        4,
        "a deprecated member stays a voter"
    );
}

// Finding 1: on e0617a0 the accused left the denominator of the adoption
// quorum, so two members backing a claim against the other two of four were
// "a majority of the conforming members".
#[test]
fn evidence_an_accusation_does_not_take_its_targets_out_of_the_adoption_quorum() {
    let (replica, [alice, bob, carol, dave]) = four();
    let against = |key: &Keypair| Finding {
        offender: key.public(),
        cutoff: 1,
        reason: "it runs software the charter never approved".into(),
    };
    let claims = vec![against(&alice), against(&bob)];
    let findings: Vec<&Finding> = claims.iter().collect();
    let root = replica.deprecations_root_with(&findings);
    let announced = BTreeMap::from([(carol.public(), root), (dave.public(), root)]);
    assert_eq!(
        adoptable(&replica, &claims, &announced),
        Vec::<usize>::new()
    );
}

// Finding 4: on e0617a0 a record id from a peer was never validated, and
// every instance then refused to start.
#[test]
fn bad_input_a_record_op_from_a_peer_with_a_malformed_id_is_refused_and_changes_nothing() {
    let (mut replica, [alice, ..]) = four();
    for id in ["a b", "", &"x".repeat(100 * 1024)] {
        let op = record_op(
            &replica,
            &alice,
            id,
            Hlc {
                wall_ms: 1_700_000_500_000,
                counter: 0,
            },
        );
        let roots = (replica.ops_root(), replica.state_root());
        assert!(
            matches!(replica.apply(&op), Err(OpRejection::Record(_))),
            "id {:?} accepted",
            id.chars().take(10).collect::<String>()
        );
        assert_eq!((replica.ops_root(), replica.state_root()), roots);
        let evidence = Evidence::InvalidOp {
            op: op.bytes().to_vec(),
        };
        assert!(
            matches!(evidence.check(&replica), dan_core::EvidenceCheck::Proven(_)),
            "the same rule proves it as evidence"
        );
    }
}

// Finding 12: on e0617a0 an op dated u64::MAX froze every instance's clock.
#[test]
fn determinism_an_op_with_a_clock_past_the_year_9999_is_refused_and_is_evidence() {
    let (mut replica, [alice, ..]) = four();
    for hlc in [
        Hlc {
            wall_ms: u64::MAX,
            counter: 0,
        },
        Hlc {
            wall_ms: MAX_WALL_MS + 1,
            counter: 0,
        },
        Hlc {
            wall_ms: 1_700_000_500_000,
            counter: u32::MAX,
        },
    ] {
        let op = record_op(&replica, &alice, "r1", hlc);
        assert!(
            matches!(replica.apply(&op), Err(OpRejection::BadClock(_))),
            "{hlc:?}"
        );
        let evidence = Evidence::InvalidOp {
            op: op.bytes().to_vec(),
        };
        assert!(matches!(
            evidence.check(&replica),
            dan_core::EvidenceCheck::Proven(_)
        ));
    }
    let fine = record_op(
        &replica,
        &alice,
        "r1",
        Hlc {
            wall_ms: MAX_WALL_MS,
            counter: 0,
        },
    );
    assert!(
        replica.apply(&fine).is_ok(),
        "the year 9999 itself is representable"
    );
    assert!(
        fine.body().hlc.too_far_ahead(1_700_000_500_000),
        "held back by the ingest"
    );
}

// Found in review: with counters capped, a peer op at the cap's edge left
// every honest writer unable to stamp its next op (all writes and votes
// refused for as long as the peer's clock led).
#[test]
fn determinism_a_peer_clock_at_the_counter_limit_does_not_stop_honest_writers() {
    let (mut replica, [alice, bob, ..]) = four();
    let edge = Hlc {
        wall_ms: 1_700_000_500_000,
        counter: dan_core::replica::MAX_COUNTER,
    };
    let op = record_op(&replica, &alice, "r1", edge);
    replica.apply(&op).expect("a clock at the limit is valid");
    let body = replica.next_body(
        bob.public(),
        1_700_000_400_000,
        Payload::Record {
            id: RecordId::new("r2").expect("id"),
            action: RecordAction::Create {
                collection: "notes".into(),
                title: "honest".into(),
                fields: BTreeMap::new(),
                tags: BTreeSet::new(),
            },
        },
    );
    assert!(body.hlc > edge, "the next clock moves past the peer's");
    let honest = VerifiedOp::sign(body, &bob).expect("sign");
    assert!(replica.apply(&honest).is_ok(), "honest writes go on");
}

// Found in review: with deprecated members in every denominator, nothing
// could remove them, so they held every later decision to unanimity.
#[test]
fn no_single_admin_the_others_remove_a_deprecated_member_and_the_bar_comes_down() {
    let (mut replica, [alice, bob, _carol, dave]) = four();
    replica.deprecate(
        &Finding {
            offender: dave.public(),
            cutoff: replica.chain_len(&dave.public()) + 1,
            reason: "signed two different ops with one seq".into(),
        },
        Hash32::of(b"evidence"),
    );
    let proposal = govern(
        &mut replica,
        &alice,
        GovernanceAction::Propose(Proposal::Remove {
            peer: dave.public(),
        }),
        100,
    );
    assert_eq!(replica.voters().len(), 4, "one vote of three is not enough");
    govern(
        &mut replica,
        &bob,
        GovernanceAction::Vote {
            proposal: proposal.id(),
            approve: true,
        },
        110,
    );
    assert_eq!(
        replica.voters().len(),
        3,
        "two of the three others remove the deprecated member"
    );
    assert!(!replica.voters().contains(&dave.public()));
}

// Found in review: a pending candidate caught breaking a rule was marked
// `Deprecated`, and deprecated rows counted for the forming rule, so a
// member could fill a forming network with sock puppets.
#[test]
fn no_single_admin_a_deprecated_candidate_does_not_count_towards_the_forming_rule() {
    let t = trio();
    let mut replica = Replica::new(t.genesis.clone()).expect("replica");
    replica.apply(&t.admissions[0]).expect("bob admitted");
    assert!(replica.is_forming(), "two of three members");
    let puppet = Keypair::from_secret([9; 32]);
    let request = join_request(replica.network_id(), &puppet, "puppet");
    govern(
        &mut replica,
        &t.keys[0],
        GovernanceAction::Approve {
            request: Box::new(request),
        },
        40,
    );
    assert_eq!(
        replica.member(&puppet.public()).map(|m| m.status),
        Some(MemberStatus::Pending)
    );
    replica.deprecate(
        &Finding {
            offender: puppet.public(),
            cutoff: 1,
            reason: "its op's clock is out of range".into(),
        },
        Hash32::of(b"evidence"),
    );
    assert!(replica.is_forming(), "a deprecated candidate is no member");
    assert_eq!(replica.voters().len(), 2);
}

/// Deprecates `key` in `replica` from its next op on.
fn deprecate(replica: &mut Replica, key: &Keypair) {
    replica.deprecate(
        &Finding {
            offender: key.public(),
            cutoff: replica.chain_len(&key.public()) + 1,
            reason: "signed two different ops with one seq".into(),
        },
        Hash32::of(key.public().to_string().as_bytes()),
    );
}

/// `new`'s join request naming `old` as the key whose seat it takes over
/// (signed by `old`).
fn readmission_request(
    replica: &Replica,
    old: &Keypair,
    new: &Keypair,
) -> dan_core::SignedJoinRequest {
    let network = replica.network_id();
    let mut request = join_request(network, new, "carol").request;
    request.succeeds = Some(dan_core::Succession::sign(&network, &new.public(), old));
    dan_core::SignedJoinRequest::sign(request, new).expect("request")
}

/// `approvers` approve `request`, one after the other from `clock` on.
fn approve_all(
    replica: &mut Replica,
    request: &dan_core::SignedJoinRequest,
    approvers: &[&Keypair],
    clock: u64,
) -> Vec<VerifiedOp> {
    approvers
        .iter()
        .enumerate()
        .map(|(n, approver)| {
            govern(
                replica,
                approver,
                GovernanceAction::Approve {
                    request: Box::new(request.clone()),
                },
                clock + n as u64,
            )
        })
        .collect()
}

/// `proposer` proposes to remove `target` at `clock` and `voter` votes yes
/// just after.
fn remove_by_vote(
    replica: &mut Replica,
    target: &Keypair,
    [proposer, voter]: [&Keypair; 2],
    clock: u64,
) {
    let removal = govern(
        replica,
        proposer,
        GovernanceAction::Propose(Proposal::Remove {
            peer: target.public(),
        }),
        clock,
    );
    govern(
        replica,
        voter,
        GovernanceAction::Vote {
            proposal: removal.id(),
            approve: true,
        },
        clock + 10,
    );
}

/// `new` asks to join, naming `old` as the key whose seat it takes over
/// (signed by `old`), and `approvers` approve it: it is readmitted.
fn readmit(
    replica: &mut Replica,
    old: &Keypair,
    new: &Keypair,
    approvers: &[&Keypair],
    clock: u64,
) {
    let request = readmission_request(replica, old, new);
    approve_all(replica, &request, approvers, clock);
    assert!(replica.is_member(&new.public()), "readmitted");
}

// Second attacker review: a deprecated key kept its seat and its votes, and
// its readmission under a new key added a seat, so three readmissions in a
// network of three passed the readmitted admin's proposal against the
// other two. A readmission now names the old key, signed by it, and the new
// key takes over that one seat.
#[test]
fn no_single_admin_a_readmitted_admin_takes_over_its_old_seat_and_votes_there_once() {
    let t = trio();
    let mut replica = t.replica();
    let [alice, bob, carol] = &t.keys;
    let proposal = govern(
        &mut replica,
        carol,
        GovernanceAction::Propose(Proposal::Remove { peer: bob.public() }),
        100,
    );
    let mut seat = carol.clone();
    for round in 0..3u8 {
        deprecate(&mut replica, &seat);
        let next = Keypair::from_secret([20 + round; 32]);
        readmit(
            &mut replica,
            &seat,
            &next,
            &[alice, bob],
            200 + 100 * u64::from(round),
        );
        assert_eq!(
            replica.member(&seat.public()).and_then(|m| m.succeeded_by),
            Some(next.public())
        );
        // Its inherited yes already counts: its own vote changes nothing.
        govern(
            &mut replica,
            &next,
            GovernanceAction::Vote {
                proposal: proposal.id(),
                approve: true,
            },
            250 + 100 * u64::from(round),
        );
        assert_eq!(
            replica.voters().len(),
            3,
            "one seat per admin, round {round}"
        );
        seat = next;
    }
    let state = replica
        .proposals()
        .find(|p| p.id == proposal.id())
        .expect("proposal");
    assert_eq!(
        state.status,
        dan_core::ProposalStatus::Open,
        "one yes of three"
    );
    assert!(replica.is_member(&bob.public()), "bob stays");
    // The other two still decide: their no rejects it.
    govern(
        &mut replica,
        alice,
        GovernanceAction::Vote {
            proposal: proposal.id(),
            approve: false,
        },
        1000,
    );
    govern(
        &mut replica,
        bob,
        GovernanceAction::Vote {
            proposal: proposal.id(),
            approve: false,
        },
        1010,
    );
    let state = replica
        .proposals()
        .find(|p| p.id == proposal.id())
        .expect("proposal");
    assert_eq!(state.status, dan_core::ProposalStatus::Rejected);
}

// Third attacker review: a hand-over from a key that was not deprecated
// gave the newcomer a seat of its own, which the key could then take back
// by getting deprecated (its votes since voided by the hand-over). A request
// that hands a seat over now waits until it can take that seat.
#[test]
fn no_single_admin_a_hand_over_from_a_key_that_is_not_deprecated_waits_and_gives_no_seat() {
    let t = trio();
    let mut replica = t.replica();
    let [alice, bob, carol] = &t.keys;
    let next = Keypair::from_secret([30; 32]);
    let request = readmission_request(&replica, carol, &next);
    approve_all(&mut replica, &request, &[alice, bob], 200);
    assert_eq!(
        replica.member(&next.public()).map(|m| m.status),
        Some(MemberStatus::Pending),
        "carol is no deprecated member: the request waits"
    );
    assert_eq!(replica.voters().len(), 3, "no seat of its own");
    deprecate(&mut replica, carol);
    assert!(
        replica.is_member(&next.public()),
        "carol deprecated, the approvals already given admit it"
    );
    assert_eq!(
        replica.member(&carol.public()).and_then(|m| m.succeeded_by),
        Some(next.public())
    );
    assert_eq!(replica.voters().len(), 3, "one seat for carol");
}

// Third attacker review: a second key handed the same seat got a seat of
// its own once the first had taken it, so one deprecated admin could sign
// hand-overs to several new keys and outvote the others.
#[test]
fn no_single_admin_one_seat_handed_over_to_two_keys_gives_one_seat_whatever_the_order() {
    let t = trio();
    let mut replica = t.replica();
    let [alice, bob, carol] = &t.keys;
    deprecate(&mut replica, carol);
    let (first, second) = (
        Keypair::from_secret([33; 32]),
        Keypair::from_secret([34; 32]),
    );
    let mut ops = Vec::new();
    // alice then bob approve `first`, then `second`: ops 0 and 2 are
    // alice's, 1 and 3 bob's.
    for (n, new) in [&first, &second].into_iter().enumerate() {
        let request = readmission_request(&replica, carol, new);
        ops.extend(approve_all(
            &mut replica,
            &request,
            &[alice, bob],
            200 + 10 * n as u64,
        ));
    }
    let admitted = |replica: &Replica| {
        [&first, &second]
            .iter()
            .filter(|k| replica.is_member(&k.public()))
            .count()
    };
    assert_eq!(admitted(&replica), 1, "one of the two takes the seat");
    assert_eq!(replica.voters().len(), 3);
    assert_eq!(
        replica.member(&second.public()).map(|m| m.status),
        Some(MemberStatus::Pending),
        "the seat is taken: the second waits for ever"
    );
    // Another replica, one op at a time in another order (alice's both
    // first, so bob's first approval sorts before what is folded and the
    // fold starts again): the same outcome.
    let mut other = t.replica();
    deprecate(&mut other, carol);
    let mut waiting = Vec::new();
    for i in [0, 2, 3, 1] {
        waiting.push(ops[i].clone());
        let outcome = other.apply_batch(std::mem::take(&mut waiting));
        assert!(outcome.rejected.is_empty());
        waiting = outcome.deferred.into_iter().map(|(op, _)| op).collect();
    }
    assert!(waiting.is_empty());
    assert_eq!(admitted(&other), 1);
    assert_eq!(other.voters().len(), 3);
    assert_eq!(other.state_root(), replica.state_root());
}

// Third attacker review: each approval set the seat its candidate takes
// over from its own copy of the request, so a colluder approving a version
// without the hand-over last decided that the readmitted admin got a seat
// of its own beside its deprecated one.
#[test]
fn no_single_admin_an_approval_of_another_version_of_a_request_does_not_decide_its_seat() {
    let (mut replica, keys) = four();
    let [alice, bob, carol, dave] = &keys;
    deprecate(&mut replica, carol);
    let next = Keypair::from_secret([35; 32]);
    let handing_over = readmission_request(&replica, carol, &next);
    let without = join_request(replica.network_id(), &next, "carol");
    approve_all(&mut replica, &handing_over, &[alice, bob], 300);
    approve_all(&mut replica, &without, &[dave], 310);
    let row = replica.member(&next.public()).expect("row");
    assert_eq!(row.status, MemberStatus::Pending, "not admitted");
    assert!(
        !row.approvals.contains(&dave.public()),
        "dave approved another request"
    );
    assert_eq!(
        row.succeeds,
        Some(carol.public()),
        "the request the first approval approved"
    );
    assert_eq!(replica.voters().len(), 4, "no seat beside carol's");
    assert_eq!(
        replica.join_request(&next.public()),
        Some(&handing_over),
        "approving again approves the version that counts"
    );
}

// Fourth attacker review: a request handing over the seat of a key removed
// by vote waited for ever (the seat was not a member's any more), and a
// colluder's backdated vote moving the removal before an admission threw an
// admitted successor out. The seat is gone from every quorum: the
// successor gets a seat of its own.
#[test]
fn no_single_admin_a_readmission_whose_old_key_was_removed_by_vote_gets_a_seat_of_its_own() {
    let t = trio();
    let mut replica = t.replica();
    let [alice, bob, carol] = &t.keys;
    deprecate(&mut replica, carol);
    remove_by_vote(&mut replica, carol, [alice, bob], 100);
    assert!(
        replica
            .member(&carol.public())
            .is_some_and(|m| m.removed_at.is_some()),
        "carol removed"
    );
    assert_eq!(replica.voters().len(), 2);
    let next = Keypair::from_secret([37; 32]);
    readmit(&mut replica, carol, &next, &[alice, bob], 200);
    assert_eq!(replica.voters().len(), 3, "a seat of its own");
}

// Fourth attacker review: the hand-over waited until the deciding approver
// had seen every op of the old key that counts, which an approver may never
// see (evidence that proves a cutoff without the chain). Instead an op the
// old key signed before its cutoff that sorts after the take-over counts
// for the seat, once.
#[test]
fn no_single_admin_an_old_keys_vote_sorting_after_the_take_over_counts_once_for_the_seat() {
    let (mut replica, keys) = four();
    let [alice, bob, carol, dave] = &keys;
    let absent = Keypair::from_secret([38; 32]).public();
    let proposal = govern(
        &mut replica,
        alice,
        GovernanceAction::Propose(Proposal::Remove { peer: absent }),
        100,
    );
    // Carol signed a yes before she was caught (her cutoff is after it),
    // dated after what the approvers of her readmission had seen of her.
    let body = replica.next_body(
        carol.public(),
        500,
        Payload::Governance(GovernanceAction::Vote {
            proposal: proposal.id(),
            approve: true,
        }),
    );
    let late_yes = VerifiedOp::sign(body, carol).expect("sign");
    replica.deprecate(
        &Finding {
            offender: carol.public(),
            cutoff: late_yes.body().seq + 1,
            reason: "signed two different ops with one seq".into(),
        },
        Hash32::of(b"carol"),
    );
    let next = Keypair::from_secret([39; 32]);
    readmit(&mut replica, carol, &next, &[alice, bob, dave], 300);
    replica
        .apply(&late_yes)
        .expect("an op from before her cutoff");
    fn state(replica: &Replica, id: dan_core::OpId) -> dan_core::ProposalState {
        replica
            .proposals()
            .find(|p| p.id == id)
            .expect("proposal")
            .clone()
    }
    assert!(
        state(&replica, proposal.id()).yes.contains(&next.public()),
        "carol's yes, dated after the take-over, counts for her seat"
    );
    govern(
        &mut replica,
        &next,
        GovernanceAction::Vote {
            proposal: proposal.id(),
            approve: false,
        },
        600,
    );
    let state = state(&replica, proposal.id());
    assert!(state.no.is_empty(), "the seat already said yes");
    assert_eq!(
        state.status,
        dan_core::ProposalStatus::Open,
        "two yes of four"
    );
}

// Third attacker review: once carol's seat was taken over, evidence against
// her old key was not decided (she was no voter any more), so evidence that
// lowers her cutoff split the instances that knew of the hand-over from
// those that did not.
#[test]
fn evidence_against_a_key_whose_seat_was_taken_over_is_still_decided() {
    let t = trio();
    let mut replica = t.replica();
    let [alice, bob, carol] = &t.keys;
    deprecate(&mut replica, carol);
    readmit(
        &mut replica,
        carol,
        &Keypair::from_secret([36; 32]),
        &[alice, bob],
        200,
    );
    let checkpoint = crate::support::hello(carol, &replica, |h| {
        h.code_hash = Hash32::of(b"tampered build");
        h.origin_seq = 0;
    });
    let evidence = dan_core::Evidence::UnapprovedCode {
        checkpoint: checkpoint.to_bytes(),
    };
    assert!(
        matches!(evidence.check(&replica), dan_core::EvidenceCheck::Proven(_)),
        "decided like any evidence against a member"
    );
}

#[test]
fn bad_input_a_hand_over_not_signed_by_the_old_key_is_refused() {
    let t = trio();
    let replica = t.replica();
    let network = replica.network_id();
    let (carol, thief, next) = (
        &t.keys[2],
        Keypair::from_secret([31; 32]),
        Keypair::from_secret([32; 32]),
    );
    let mut request = join_request(network, &next, "carol").request;
    let mut forged = dan_core::Succession::sign(&network, &next.public(), &thief);
    forged.predecessor = carol.public();
    request.succeeds = Some(forged);
    let signed = dan_core::SignedJoinRequest::sign(request.clone(), &next).expect("signed");
    assert!(signed.verify().is_err(), "a hand-over carol did not sign");
    request.succeeds = Some(dan_core::Succession::sign(&network, &thief.public(), carol));
    let signed = dan_core::SignedJoinRequest::sign(request, &next).expect("signed");
    assert!(signed.verify().is_err(), "carol's hand-over to another key");
}

// Fifth attacker review: once the seat of a deprecated key was taken over,
// removing that key by vote (a natural clean-up) let a second request
// naming it in as a seat of its own at the next approval, so its admin
// held two seats.
#[test]
fn no_single_admin_a_seat_taken_over_and_then_removed_gives_a_second_request_no_seat() {
    let t = trio();
    let mut replica = t.replica();
    let [alice, bob, carol] = &t.keys;
    deprecate(&mut replica, carol);
    let (first, second) = (
        Keypair::from_secret([40; 32]),
        Keypair::from_secret([41; 32]),
    );
    readmit(&mut replica, carol, &first, &[alice, bob], 200);
    let request = readmission_request(&replica, carol, &second);
    approve_all(&mut replica, &request, &[alice, bob], 210);
    remove_by_vote(&mut replica, carol, [alice, bob], 300);
    approve_all(&mut replica, &request, &[alice], 400);
    assert_eq!(
        replica.member(&second.public()).map(|m| m.status),
        Some(MemberStatus::Pending),
        "the seat it names is held by another key"
    );
    assert_eq!(replica.voters().len(), 3, "alice, bob and carol's one seat");
}

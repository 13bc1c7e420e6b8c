//! Evidence that the op set has moved past: what it claims, and when a
//! newcomer takes a deprecation over from a quorum of members.

use std::collections::BTreeMap;

use dan_core::evidence::adoptable;
use dan_core::governance::Proposal;
use dan_core::{Evidence, EvidenceCheck, GovernanceAction, Hash32, PeerKey, Replica};

use crate::support::{govern, hello, trio};

/// Alice's replica of the trio, with carol's checkpoint announcing a build
/// the charter never approved.
fn caught_carol() -> (Replica, Evidence, [dan_core::Keypair; 3]) {
    let t = trio();
    let mut replica = Replica::new(t.genesis.clone()).expect("replica");
    for op in &t.admissions {
        replica.apply(op).expect("admission");
    }
    let checkpoint = hello(&t.keys[2], &replica, |h| {
        h.code_hash = Hash32::of(b"tampered build");
        h.origin_seq = 0;
    });
    let evidence = Evidence::UnapprovedCode {
        checkpoint: checkpoint.to_bytes(),
    };
    (replica, evidence, t.keys)
}

#[test]
fn evidence_claim_says_what_the_check_proves() {
    let (replica, evidence, keys) = caught_carol();
    let EvidenceCheck::Proven(proven) = evidence.check(&replica) else {
        panic!("the evidence holds on the same op set");
    };
    assert_eq!(evidence.claim(), Some(proven.clone()));
    assert_eq!(proven.offender, keys[2].public());
}

#[test]
fn evidence_a_newcomer_adopts_a_deprecation_only_when_a_quorum_announces_it() {
    let (mut replica, evidence, keys) = caught_carol();
    let carol = keys[2].public();
    govern(
        &mut replica,
        &keys[0],
        GovernanceAction::Propose(Proposal::Remove { peer: carol }),
        40,
    );
    assert!(
        matches!(evidence.check(&replica), EvidenceCheck::Undecidable(_)),
        "the op set has moved past the checkpoint"
    );
    let claim = evidence.claim().expect("a claim");
    let with_carol = replica.deprecations_root_with(&[&claim]);
    let claims = [claim];
    let announce = |peers: &[&PeerKey], root: Hash32| -> BTreeMap<PeerKey, Hash32> {
        peers.iter().map(|p| (**p, root)).collect()
    };
    let (alice, bob) = (keys[0].public(), keys[1].public());

    let everyone = announce(&[&alice, &bob], with_carol);
    assert_eq!(adoptable(&replica, &claims, &everyone), vec![0]);

    let one = announce(&[&alice], with_carol);
    assert!(
        adoptable(&replica, &claims, &one).is_empty(),
        "one member is not a quorum"
    );

    let offender_says_so = announce(&[&alice, &carol], with_carol);
    assert!(
        adoptable(&replica, &claims, &offender_says_so).is_empty(),
        "the accused does not count towards its own deprecation"
    );

    let nothing_deprecated = announce(&[&alice, &bob], replica.deprecations_root());
    assert!(adoptable(&replica, &claims, &nothing_deprecated).is_empty());
}

#[test]
fn evidence_a_claim_the_quorum_does_not_back_is_left_out() {
    let (replica, evidence, keys) = caught_carol();
    let claim = evidence.claim().expect("a claim");
    let against_bob = Evidence::UnapprovedCode {
        checkpoint: hello(&keys[1], &replica, |h| h.code_hash = Hash32::of(b"x")).to_bytes(),
    }
    .claim()
    .expect("a claim");
    let with_carol = replica.deprecations_root_with(&[&claim]);
    let announced: BTreeMap<PeerKey, Hash32> = [keys[0].public(), keys[1].public()]
        .into_iter()
        .map(|p| (p, with_carol))
        .collect();
    assert_eq!(
        adoptable(&replica, &[against_bob, claim], &announced),
        vec![1],
        "only the deprecation the members announce is taken over"
    );
}

#[test]
fn evidence_a_member_that_says_its_build_awaits_approval_is_refused_but_not_accused() {
    let t = trio();
    let mut replica = Replica::new(t.genesis.clone()).expect("replica");
    for op in &t.admissions {
        replica.apply(op).expect("admission");
    }
    let waiting = hello(&t.keys[2], &replica, |h| {
        h.code_hash = Hash32::of(b"a newer build");
        h.awaiting_approval = true;
    });
    assert_eq!(dan_core::conformance::evidence_in(&replica, &waiting), None);
    let accusation = Evidence::UnapprovedCode {
        checkpoint: waiting.to_bytes(),
    };
    assert!(matches!(
        accusation.check(&replica),
        EvidenceCheck::Unfounded(_)
    ));
    let verdict = dan_core::conformance::judge(
        &t.keys[0].public(),
        Some(&replica.snapshot()),
        None,
        &t.keys[2].public(),
        &waiting,
        1,
    );
    assert!(
        matches!(&verdict, dan_core::conformance::Verdict::Refuse(why) if why.contains("has not approved yet")),
        "{verdict:?}"
    );
}

// Security review finding 5 (core part): on e0617a0 a hello signed by a
// throwaway key became a deprecation (and one with `origin_seq` at
// `u64::MAX` overflowed the cutoff).
#[test]
fn evidence_against_a_key_that_is_not_a_member_is_not_decided_and_cutoffs_do_not_overflow() {
    let t = trio();
    let replica = t.replica();
    let stranger = dan_core::Keypair::from_secret([77; 32]);
    let checkpoint = hello(&stranger, &replica, |h| {
        h.code_hash = Hash32::of(b"tampered build");
        h.origin_seq = u64::MAX;
    });
    let evidence = Evidence::UnapprovedCode {
        checkpoint: checkpoint.to_bytes(),
    };
    assert!(matches!(
        evidence.check(&replica),
        EvidenceCheck::Undecidable(_)
    ));
    let member = hello(&t.keys[2], &replica, |h| {
        h.code_hash = Hash32::of(b"tampered build");
        h.origin_seq = u64::MAX;
    });
    let evidence = Evidence::UnapprovedCode {
        checkpoint: member.to_bytes(),
    };
    assert!(matches!(
        evidence.check(&replica),
        EvidenceCheck::Proven(f) if f.cutoff == u64::MAX
    ));
}

//! A replica read back from its checkpoint is the replica it was: the same
//! roots, records, members and proposals, and the same state after more
//! ops (what lets a clean start skip replaying the op log).

use dan_core::{GovernanceAction, Proposal, Replica, VerifiedOp};
use proptest::prelude::*;

use crate::support::{Change, govern, sign_changes, solo_genesis, trio};

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (0u8..6).prop_map(Change::Create),
        (0u8..6, 0u8..4, -1000i64..1000).prop_map(|(n, f, v)| Change::Set(n, f, v)),
        (0u8..6).prop_map(Change::Delete),
        (0u8..6).prop_map(Change::Restore),
    ]
}

/// Everything a reader of the replica sees, to compare two replicas.
fn seen(replica: &Replica) -> String {
    let mut records: Vec<_> = replica.records().collect();
    records.sort_by(|a, b| a.id.cmp(&b.id));
    let members: Vec<_> = replica.members().collect();
    let proposals: Vec<_> = replica.proposals().collect();
    format!(
        "{:?} {:?} {} {records:?} {members:?} {proposals:?} {:?} {}",
        replica.ops_root(),
        replica.state_root(),
        replica.op_count(),
        replica.voters(),
        replica.needs_rebuild()
    )
}

fn apply_all(replica: &mut Replica, ops: &[VerifiedOp]) {
    let outcome = replica.apply_batch(ops.to_vec());
    assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    assert!(outcome.deferred.is_empty(), "{:?}", outcome.deferred);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A replica checkpointed after any prefix of the ops and read back
    /// ends, after the rest, exactly where one that never stopped ends.
    #[test]
    fn a_replica_read_back_from_its_checkpoint_goes_on_as_if_it_never_stopped(
        changes in prop::collection::vec((change(), 0u64..50), 1..40),
        cut in any::<prop::sample::Index>(),
    ) {
        let ops = sign_changes(&changes);
        prop_assume!(!ops.is_empty());
        let cut = cut.index(ops.len() + 1);
        let mut kept = Replica::new(solo_genesis()).expect("genesis");
        apply_all(&mut kept, &ops[..cut]);
        // A batch hashes its digests once at its end: the same roots as
        // applying the ops one by one.
        let mut one_by_one = Replica::new(solo_genesis()).expect("genesis");
        for op in &ops[..cut] {
            one_by_one.apply(op).expect("apply");
        }
        prop_assert_eq!(seen(&one_by_one), seen(&kept));
        let mut restored = Replica::from_own_checkpoint(&solo_genesis(), &kept.to_checkpoint())
            .expect("read back");
        prop_assert_eq!(seen(&restored), seen(&kept));
        apply_all(&mut kept, &ops[cut..]);
        apply_all(&mut restored, &ops[cut..]);
        prop_assert_eq!(seen(&restored), seen(&kept));
        for op in &ops {
            prop_assert!(restored.contains(&op.id()));
        }
    }
}

#[test]
fn a_checkpoint_keeps_the_governance_and_its_votes_go_on() {
    let trio = trio();
    let mut kept = trio.replica();
    let [founder, bob, carol] = &trio.keys;
    let proposal = govern(
        &mut kept,
        bob,
        GovernanceAction::Propose(Proposal::Remove {
            peer: carol.public(),
        }),
        1_700_000_100_000,
    );
    let mut restored =
        Replica::from_own_checkpoint(&trio.genesis, &kept.to_checkpoint()).expect("read back");
    assert_eq!(seen(&restored), seen(&kept));
    let vote = |replica: &mut Replica, key| {
        govern(
            replica,
            key,
            GovernanceAction::Vote {
                proposal: proposal.id(),
                approve: true,
            },
            1_700_000_100_001,
        )
    };
    let yes = vote(&mut kept, founder);
    restored.apply(&yes).expect("the same vote");
    assert_eq!(seen(&restored), seen(&kept));
    assert!(
        !restored.is_member(&carol.public()),
        "the removal passed in both"
    );
    // One vote per member and proposal: the restored replica remembers.
    let body = restored.next_body(
        founder.public(),
        1_700_000_100_002,
        dan_core::Payload::Governance(GovernanceAction::Vote {
            proposal: proposal.id(),
            approve: false,
        }),
    );
    let again = VerifiedOp::sign(body, founder).expect("sign");
    assert_eq!(restored.apply(&again).is_err(), kept.apply(&again).is_err());
    assert!(restored.apply(&again).is_err(), "a second vote");
}

#[test]
fn bad_input_a_checkpoint_of_another_network_or_format_is_refused() {
    let trio = trio();
    let bytes = trio.replica().to_checkpoint();
    assert!(Replica::from_own_checkpoint(&solo_genesis(), &bytes).is_err());
    let mut other_format = bytes.clone();
    other_format[0] ^= 0xff;
    assert!(Replica::from_own_checkpoint(&trio.genesis, &other_format).is_err());
    assert!(Replica::from_own_checkpoint(&trio.genesis, &bytes[..bytes.len() / 2]).is_err());
    assert!(Replica::from_own_checkpoint(&trio.genesis, &[]).is_err());
}

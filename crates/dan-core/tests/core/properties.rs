//! Property tests of the protocol core (invariants 2, 3 and 6 of DESIGN.md).

use std::collections::{BTreeMap, BTreeSet};

use crate::support::{Change, sign_changes, solo_genesis};
use dan_core::record::{RecordState, Stamp};
use dan_core::replica::OpRejection;
use dan_core::{FieldValue, Hash32, Hlc, PeerKey, RecordAction, RecordId, Replica, VerifiedOp};
use proptest::prelude::*;

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (0u8..6).prop_map(Change::Create),
        (
            0u8..6,
            0u8..4,
            -dan_core::record::MAX_FIELD_INT..=dan_core::record::MAX_FIELD_INT
        )
            .prop_map(|(n, f, v)| Change::Set(n, f, v)),
        (0u8..6).prop_map(Change::Delete),
        (0u8..6).prop_map(Change::Restore),
    ]
}

/// Ops applied in `order` (indices into `ops`, repeats allowed) through
/// batches of `batch` ops, as a network would deliver them.
fn replay(ops: &[VerifiedOp], order: &[usize], batch: usize) -> Replica {
    let mut replica = Replica::new(solo_genesis()).expect("genesis");
    let mut pending: Vec<VerifiedOp> = Vec::new();
    for chunk in order.chunks(batch.max(1)) {
        pending.extend(chunk.iter().map(|&i| ops[i].clone()));
        let outcome = replica.apply_batch(std::mem::take(&mut pending));
        assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
        pending = outcome.deferred.into_iter().map(|(op, _)| op).collect();
    }
    let outcome = replica.apply_batch(pending);
    assert!(outcome.deferred.is_empty() && outcome.rejected.is_empty());
    replica
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Invariant 3: any permutation and any duplication of the same valid op
    /// set gives the same ops_root and state_root.
    #[test]
    fn determinism_any_permutation_and_duplication_gives_the_same_roots(
        changes in prop::collection::vec((change(), 0u64..50), 1..40),
        shuffle in any::<u64>(),
        extra in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        batch in 1usize..8,
    ) {
        let ops = sign_changes(&changes);
        prop_assume!(!ops.is_empty());
        let in_order = replay(&ops, &(0..ops.len()).collect::<Vec<_>>(), ops.len());
        let mut order: Vec<usize> = (0..ops.len()).collect();
        order.extend(extra.iter().map(|i| i.index(ops.len())));
        let mut rng = shuffle;
        for i in (1..order.len()).rev() {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            order.swap(i, (rng >> 33) as usize % (i + 1));
        }
        let shuffled = replay(&ops, &order, batch);
        prop_assert_eq!(in_order.ops_root(), shuffled.ops_root());
        prop_assert_eq!(in_order.state_root(), shuffled.state_root());
        prop_assert_eq!(in_order.op_count(), ops.len() as u64);
        prop_assert_eq!(shuffled.op_count(), ops.len() as u64);
    }

    /// Per-field merge is commutative and idempotent across writers: the
    /// same changes from several origins in any order give the same record.
    #[test]
    fn determinism_record_merge_is_order_independent(
        writes in prop::collection::vec((0u8..3, 0u8..4, any::<i64>(), 0u64..10, any::<u8>()), 1..30),
        shuffle in any::<u64>(),
    ) {
        let id = RecordId::new("r").expect("id");
        let create = (RecordAction::Create {
            collection: "notes".into(),
            title: "t".into(),
            fields: BTreeMap::new(),
            tags: BTreeSet::new(),
        }, Stamp { hlc: Hlc::default(), op: Hash32::ZERO }, PeerKey([0; 32]));
        let mut items = vec![create];
        for (origin, field, value, ms, tie) in writes {
            let action = RecordAction::Update {
                title: None,
                fields: BTreeMap::from([(format!("f{field}"), Some(FieldValue::Int(value)))]),
                tags: None,
            };
            // An op id is the digest of the op's content: equal ids only
            // for equal ops. `tie` keeps clock ties (same ms) frequent.
            let op = Hash32::tagged("test op", &[&[origin, field, tie], &value.to_le_bytes(), &ms.to_le_bytes()]);
            let stamp = Stamp { hlc: Hlc { wall_ms: ms, counter: 0 }, op };
            items.push((action, stamp, PeerKey([origin; 32])));
        }
        let mut a = RecordState::new(id.clone());
        for (action, stamp, origin) in &items {
            a.apply("notes", action, *stamp, *origin);
        }
        let mut shuffled = items.clone();
        shuffled.extend(items.iter().take(3).cloned());
        let mut rng = shuffle;
        for i in (1..shuffled.len()).rev() {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (rng >> 33) as usize % (i + 1));
        }
        let mut b = RecordState::new(id);
        for (action, stamp, origin) in &shuffled {
            b.apply("notes", action, *stamp, *origin);
        }
        prop_assert_eq!(a.view(), b.view());
    }

    /// Invariant 6: a flipped bit anywhere in an op's bytes is rejected before
    /// it reaches the state (decode, canonical form or signature).
    #[test]
    fn bad_input_any_corrupted_op_is_rejected(
        byte in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let ops = sign_changes(&[(Change::Create(1), 5)]);
        let mut bytes = ops[0].bytes().to_vec();
        let i = byte.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let accepted = dan_core::Op::decode(&bytes)
            .map(|op| dan_core::op::verify_ops(vec![op]).0)
            .unwrap_or_default();
        prop_assert!(accepted.is_empty());
    }
}

#[test]
fn everything_signed_forged_signature_is_rejected_and_changes_nothing() {
    let ops = sign_changes(&[(Change::Create(1), 5)]);
    let mut bytes = ops[0].bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    let op = dan_core::Op::decode(&bytes).expect("still decodes");
    let (good, bad) = dan_core::op::verify_ops(vec![op]);
    assert!(good.is_empty());
    assert_eq!(bad.len(), 1);
}

#[test]
fn everything_signed_broken_chain_and_gap_are_rejected_and_change_nothing() {
    let ops = sign_changes(&[
        (Change::Create(1), 5),
        (Change::Create(2), 6),
        (Change::Create(3), 7),
    ]);
    let mut replica = Replica::new(solo_genesis()).expect("genesis");
    let root = replica.state_root();
    assert!(matches!(
        replica.apply(&ops[1]),
        Err(OpRejection::ChainGap {
            expected: 1,
            got: 2,
            ..
        })
    ));
    assert_eq!(replica.state_root(), root);
    assert_eq!(replica.op_count(), 0);

    // An op whose `prev` names something else than the previous op.
    let key = crate::support::founder();
    let mut body = ops[1].body().clone();
    body.prev = Hash32::of(b"not the previous op");
    let forged_prev = VerifiedOp::sign(body, &key).expect("sign");
    replica.apply(&ops[0]).expect("first op");
    let root = replica.state_root();
    assert!(matches!(
        replica.apply(&forged_prev),
        Err(OpRejection::BrokenChain { seq: 2, .. })
    ));
    assert_eq!(replica.state_root(), root);
}

#[test]
fn everything_signed_equivocation_is_rejected_and_changes_nothing() {
    let ops = sign_changes(&[(Change::Create(1), 5)]);
    let other = sign_changes(&[(Change::Create(2), 5)]);
    assert_eq!(ops[0].body().seq, other[0].body().seq);
    let mut replica = Replica::new(solo_genesis()).expect("genesis");
    replica.apply(&ops[0]).expect("first");
    let root = replica.state_root();
    let rejection = replica.apply(&other[0]);
    assert!(
        matches!(rejection, Err(OpRejection::Equivocation { seq: 1, existing, .. }) if existing == ops[0].id())
    );
    assert_eq!(replica.state_root(), root);
}

#[test]
fn bad_input_oversized_field_is_rejected_and_changes_nothing() {
    let key = crate::support::founder();
    let mut replica = Replica::new(solo_genesis()).expect("genesis");
    let root = replica.state_root();
    let payload = dan_core::Payload::Record {
        id: RecordId::new("big").expect("id"),
        action: RecordAction::Create {
            collection: "notes".into(),
            title: "big".into(),
            fields: BTreeMap::from([("body".to_owned(), FieldValue::Text("x".repeat(20_000)))]),
            tags: BTreeSet::new(),
        },
    };
    let op = VerifiedOp::sign(replica.next_body(key.public(), 1, payload), &key).expect("sign");
    assert!(matches!(
        replica.apply(&op),
        Err(OpRejection::Record(
            dan_core::record::RecordError::FieldTooLong { .. }
        ))
    ));
    assert_eq!(replica.state_root(), root);
    assert_eq!(replica.op_count(), 0);
}

#[test]
fn bad_input_op_from_a_non_member_is_rejected() {
    let stranger = dan_core::Keypair::from_secret([9; 32]);
    let mut replica = Replica::new(solo_genesis()).expect("genesis");
    let payload = dan_core::Payload::Record {
        id: RecordId::new("x").expect("id"),
        action: RecordAction::Delete,
    };
    let op = VerifiedOp::sign(replica.next_body(stranger.public(), 1, payload), &stranger)
        .expect("sign");
    assert!(
        matches!(replica.apply(&op), Err(OpRejection::NotAMember(p)) if p == stranger.public())
    );
}

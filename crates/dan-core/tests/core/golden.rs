//! Golden vectors: fixed inputs must give these exact bytes, ids, signatures
//! and roots on every machine and every build. If one changes, the canonical
//! encoding changed and instances of different builds would disagree.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::{founder, solo_genesis};
use dan_core::{FieldValue, Payload, RecordAction, RecordId, Replica, VerifiedOp};

fn golden_op() -> (Replica, VerifiedOp) {
    let mut replica = Replica::new(solo_genesis()).expect("genesis");
    let payload = Payload::Record {
        id: RecordId::new("golden").expect("id"),
        action: RecordAction::Create {
            collection: "notes".into(),
            title: "Golden record".into(),
            fields: BTreeMap::from([
                ("count".to_owned(), FieldValue::Int(-42)),
                ("done".to_owned(), FieldValue::Bool(true)),
                ("text".to_owned(), FieldValue::Text("héllo".into())),
            ]),
            tags: BTreeSet::from(["a".to_owned(), "b".to_owned()]),
        },
    };
    let body = replica.next_body(founder().public(), 1_700_000_000_123, payload);
    let op = VerifiedOp::sign(body, &founder()).expect("sign");
    replica.apply(&op).expect("apply");
    (replica, op)
}

#[test]
fn determinism_golden_vectors_pin_the_canonical_encoding() {
    let (replica, op) = golden_op();
    let actual = [
        ("founder", founder().public().to_string()),
        ("network_id", replica.network_id().to_hex()),
        ("op_bytes", hex::encode(op.bytes())),
        ("op_id", op.id().to_hex()),
        ("signature", hex::encode(op.op().signature().to_bytes())),
        ("ops_root", replica.ops_root().to_hex()),
        ("state_root", replica.state_root().to_hex()),
    ];
    let expected = [
        (
            "founder",
            "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5",
        ),
        (
            "network_id",
            "0f0e46fb8db910dc33c36baf6d0325b86c501f08d012bba9c1257a774eeec162",
        ),
        (
            "op_bytes",
            "0f0e46fb8db910dc33c36baf6d0325b86c501f08d012bba9c1257a774eeec1628a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c010000000000000000000000000000000000000000000000000000000000000000fbd095ffbc3100000006676f6c64656e00056e6f7465730d476f6c64656e207265636f72640305636f756e74015304646f6e6502010474657874000668c3a96c6c6f0201610162409340d5b974c96db363bf4341e788f2f59af6acdca2af637ed5d67b9a146d6461d3691d2ca812bcf1753ed1312855dd6dffa4fd07f3c80063e92059496a25ef0c",
        ),
        (
            "op_id",
            "b1f5c289b952f7dfe32fd89dc18c538635c9e260e0f2d6917d38b41128b5c703",
        ),
        (
            "signature",
            "9340d5b974c96db363bf4341e788f2f59af6acdca2af637ed5d67b9a146d6461d3691d2ca812bcf1753ed1312855dd6dffa4fd07f3c80063e92059496a25ef0c",
        ),
        (
            "ops_root",
            "beb7b704aa8a3b5b11e11958fc93f108ced8a8ba15d68e764005deacb39753eb",
        ),
        (
            "state_root",
            "18bdb25531f19c3d1b4d6a294ac6aa14da9149b3a4b0ab46810c5023b03a9fc6",
        ),
    ];
    for ((name, got), (_, want)) in actual.iter().zip(expected) {
        assert_eq!(got, want, "golden vector `{name}` changed");
    }
}

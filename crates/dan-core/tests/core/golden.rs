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
            "73e9cfa00707abf3743f87a2b10973cab46f0e502816a93e3cac2f9881bb1a78",
        ),
        (
            "op_bytes",
            "73e9cfa00707abf3743f87a2b10973cab46f0e502816a93e3cac2f9881bb1a788a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c010000000000000000000000000000000000000000000000000000000000000000fbd095ffbc3100000006676f6c64656e00056e6f7465730d476f6c64656e207265636f72640305636f756e74015304646f6e6502010474657874000668c3a96c6c6f020161016240974e1d4c1e1332ba7d96f8eaa949bcaaa30771dd6aaaeb065adf60caf7b6f7d6a6aa795abf24b558015480a699a3a05392c1850672c50794c567fa7c6f676708",
        ),
        (
            "op_id",
            "304b603b6be60f8ee0df7237d26950e9097da30f7949356a26fb4341fd5050e7",
        ),
        (
            "signature",
            "974e1d4c1e1332ba7d96f8eaa949bcaaa30771dd6aaaeb065adf60caf7b6f7d6a6aa795abf24b558015480a699a3a05392c1850672c50794c567fa7c6f676708",
        ),
        (
            "ops_root",
            "4e32648589b915897f5d72b260d802cb8adf8a5a85e12abbc85bf7fa2046c750",
        ),
        (
            "state_root",
            "80b709fe8f93554da16d61769e4d12876e4c1334143f9db8125297b1d232c8b8",
        ),
    ];
    for ((name, got), (_, want)) in actual.iter().zip(expected) {
        assert_eq!(got, want, "golden vector `{name}` changed");
    }
}

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
            "8a69ba3f8c7ee6592ce90a1418acf35b04603508ed44a2d6ad886c627d455812",
        ),
        (
            "op_bytes",
            "8a69ba3f8c7ee6592ce90a1418acf35b04603508ed44a2d6ad886c627d4558128a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c010000000000000000000000000000000000000000000000000000000000000000fbd095ffbc31000006676f6c64656e00056e6f7465730d476f6c64656e207265636f72640305636f756e74015304646f6e6502010474657874000668c3a96c6c6f020161016240928f0f198441960607b1b5a176f330c75f7dc4d59c9f1ccbba0b9788d84844c3e6f9398ed1007354e8153861f7499fe0edb41cc1ffd92280ec7d18f21dd1e40a",
        ),
        (
            "op_id",
            "21d1c014399b7c5126e5a62256244d08aeeab83f27771a9b901ed9f12b98c08c",
        ),
        (
            "signature",
            "928f0f198441960607b1b5a176f330c75f7dc4d59c9f1ccbba0b9788d84844c3e6f9398ed1007354e8153861f7499fe0edb41cc1ffd92280ec7d18f21dd1e40a",
        ),
        (
            "ops_root",
            "c8189f939e106a90add11166d48fbb98f63d09a64490f38d79348aa24314260f",
        ),
        (
            "state_root",
            "a8cc6f21659f2db498124bdb2d621b4e3de4117682155c6a89c071bd1ab43322",
        ),
    ];
    for ((name, got), (_, want)) in actual.iter().zip(expected) {
        assert_eq!(got, want, "golden vector `{name}` changed");
    }
}

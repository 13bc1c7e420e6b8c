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
            "7151cc57211c33f70c7ee8395257817039b9cdc2e384a68bf905f2c63b1df945",
        ),
        (
            "op_bytes",
            "7151cc57211c33f70c7ee8395257817039b9cdc2e384a68bf905f2c63b1df9458a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c010000000000000000000000000000000000000000000000000000000000000000fbd095ffbc31000006676f6c64656e00056e6f7465730d476f6c64656e207265636f72640305636f756e74015304646f6e6502010474657874000668c3a96c6c6f0201610162402ea2a168dac718632f31955d8ad3069191c3daf992dcc5d3d72e856b5dad022a39c39a6304829473dd6ddc9ff50455014456e8e33c0993c1c995c4bda15f5f0b",
        ),
        (
            "op_id",
            "8e2ad8b2c8b31b3a9c781daf70501f59634da94dfd0507a644105f09f56f3741",
        ),
        (
            "signature",
            "2ea2a168dac718632f31955d8ad3069191c3daf992dcc5d3d72e856b5dad022a39c39a6304829473dd6ddc9ff50455014456e8e33c0993c1c995c4bda15f5f0b",
        ),
        (
            "ops_root",
            "1416f493ceda4d1dc3fe4a5e712348c0cabc9e4553068e949a7f004279568489",
        ),
        (
            "state_root",
            "b9bbe273de5d9a57565174ff023331de02cdd80242a9f000f676028df8713bd4",
        ),
    ];
    for ((name, got), (_, want)) in actual.iter().zip(expected) {
        assert_eq!(got, want, "golden vector `{name}` changed");
    }
}

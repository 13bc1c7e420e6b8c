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
            "1cedb6f8f743a9c0980701bfc48c66fff07a69764c349ed0e400c473cca443d4",
        ),
        (
            "op_bytes",
            "1cedb6f8f743a9c0980701bfc48c66fff07a69764c349ed0e400c473cca443d48a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c010000000000000000000000000000000000000000000000000000000000000000fbd095ffbc3100000006676f6c64656e00056e6f7465730d476f6c64656e207265636f72640305636f756e74015304646f6e6502010474657874000668c3a96c6c6f020161016240036c83e6c9b680c3d2a05c110ed35576ae86f8c051db7d5b538acf46cbaadb863aea25dabffea3f6f6a1f300f77b46d46db6ebe997c898bafa0a98931d98e80e",
        ),
        (
            "op_id",
            "ce914af960831b06747cbfcdfc07888ae6b1dda5d3d9cd72ebda91e2900ff149",
        ),
        (
            "signature",
            "036c83e6c9b680c3d2a05c110ed35576ae86f8c051db7d5b538acf46cbaadb863aea25dabffea3f6f6a1f300f77b46d46db6ebe997c898bafa0a98931d98e80e",
        ),
        (
            "ops_root",
            "f38903453245dc3d3711176b4310a15a03d51691f12d987d1a88ea9b305f2074",
        ),
        (
            "state_root",
            "33d44dd2b689dd581dc2409f8203e92dae6bbfbc26a390270ef417c331cf4c08",
        ),
    ];
    for ((name, got), (_, want)) in actual.iter().zip(expected) {
        assert_eq!(got, want, "golden vector `{name}` changed");
    }
}

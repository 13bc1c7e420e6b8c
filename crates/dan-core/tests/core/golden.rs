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
            "227537c5cea62e830234b762fb809454958a3d466c48f221e2caebea733c75ba",
        ),
        (
            "op_bytes",
            "227537c5cea62e830234b762fb809454958a3d466c48f221e2caebea733c75ba8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c010000000000000000000000000000000000000000000000000000000000000000fbd095ffbc31000006676f6c64656e00056e6f7465730d476f6c64656e207265636f72640305636f756e74015304646f6e6502010474657874000668c3a96c6c6f020161016240350088b2c5fe4c55fb451efb38d1b94b7ed2f451fb2cc63f6ae09f4818f967eccbebfefd5bcf798fc08a5cb77d3cd87a395a89d6679056ea73cf235c72e28e03",
        ),
        (
            "op_id",
            "8fbcbe75bc89a5c45901bb566994b0ba6513e591b99fa2ee1f4d8c18e06729cf",
        ),
        (
            "signature",
            "350088b2c5fe4c55fb451efb38d1b94b7ed2f451fb2cc63f6ae09f4818f967eccbebfefd5bcf798fc08a5cb77d3cd87a395a89d6679056ea73cf235c72e28e03",
        ),
        (
            "ops_root",
            "ee5fbfd4a44dd17d2fa40def22302980f8e8184fb0d6d5ea17b5bf15770b246d",
        ),
        (
            "state_root",
            "2212bc3edb57fe4988da56072f2feb207e3a2479ff65bb62ccde1ce1f66bcdfc",
        ),
    ];
    for ((name, got), (_, want)) in actual.iter().zip(expected) {
        assert_eq!(got, want, "golden vector `{name}` changed");
    }
}

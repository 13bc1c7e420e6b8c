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
            "fa6b598a5cbb47e90c632591be09bc988dd49d072b4e0d231b9ebdda67a65f37",
        ),
        (
            "op_bytes",
            "fa6b598a5cbb47e90c632591be09bc988dd49d072b4e0d231b9ebdda67a65f378a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c010000000000000000000000000000000000000000000000000000000000000000fbd095ffbc3100000006676f6c64656e00056e6f7465730d476f6c64656e207265636f72640305636f756e74015304646f6e6502010474657874000668c3a96c6c6f020161016240c551c13c5e2611c5b91815287baf6b341291e56850baacbfe8f7b756de1eca54763eb9e385f545fd8004e5887a088753121d16187fe54cd08941a63dc31bfb0e",
        ),
        (
            "op_id",
            "8d92e19473f857dea84af5fdcdab73c399d92accc28540da01a1b604b23a2c7b",
        ),
        (
            "signature",
            "c551c13c5e2611c5b91815287baf6b341291e56850baacbfe8f7b756de1eca54763eb9e385f545fd8004e5887a088753121d16187fe54cd08941a63dc31bfb0e",
        ),
        (
            "ops_root",
            "c7c79cb9fa33c3d9c6ad5815b711feeb31ce0e065a2a54603838a2cfa84f873b",
        ),
        (
            "state_root",
            "3383d933d8cb995389d0b1554062973ea56b0efa90c2152206704051e5f2eae0",
        ),
    ];
    for ((name, got), (_, want)) in actual.iter().zip(expected) {
        assert_eq!(got, want, "golden vector `{name}` changed");
    }
}

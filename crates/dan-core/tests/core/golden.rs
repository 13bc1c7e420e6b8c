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
            "86f3a5945960268fde456d265fcadc43e275477b9287c70e52e40edc77bf8ec0",
        ),
        (
            "op_bytes",
            "86f3a5945960268fde456d265fcadc43e275477b9287c70e52e40edc77bf8ec08a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c010000000000000000000000000000000000000000000000000000000000000000fbd095ffbc31000006676f6c64656e00056e6f7465730d476f6c64656e207265636f72640305636f756e74015304646f6e6502010474657874000668c3a96c6c6f0201610162401eae6082407e33e69cc90dedb7979443e195f939455cb64ae19c5dd732bdfb0680a73f17d99d80156286e5d6901495dad9be30da498b8686b19fe5ebaddea70f",
        ),
        (
            "op_id",
            "05c8d6538a05676548515f143ff4a006a67bd8cedd95f913f7f9519534160c76",
        ),
        (
            "signature",
            "1eae6082407e33e69cc90dedb7979443e195f939455cb64ae19c5dd732bdfb0680a73f17d99d80156286e5d6901495dad9be30da498b8686b19fe5ebaddea70f",
        ),
        (
            "ops_root",
            "0a41386528f483ffae0d4f5c1378ec02bddfc80c9d8c9905207eb0a8be720183",
        ),
        (
            "state_root",
            "ab51c47275f4fddc398ab662fec71fdaa98173f9cf0ed30278eb8080a2c01ca3",
        ),
    ];
    for ((name, got), (_, want)) in actual.iter().zip(expected) {
        assert_eq!(got, want, "golden vector `{name}` changed");
    }
}

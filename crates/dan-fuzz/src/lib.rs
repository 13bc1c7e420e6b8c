//! # dan-fuzz
//!
//! One harness per decoder that takes bytes from a peer, a file or a user.
//! Each feeds the input to the same function the instance uses, must never
//! panic, and where the format is canonical checks the round trip (decode,
//! encode, same bytes). The cargo-fuzz targets in `fuzz/` call these, and
//! `tests/corpora.rs` replays every stored corpus and regression input
//! through them in the normal test run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use dan_core::charter::{self, Charter};
use dan_core::conformance::{self, Hello, SignedHello};
use dan_core::evidence::{self, Evidence};
use dan_core::invite::{Invite, MAX_JOIN_REQUEST_BYTES, MAX_LINK_LEN, SignedInvite};
use dan_core::op::MAX_OP_BYTES;
use dan_core::{
    FieldValue, Genesis, GovernanceAction, Hash32, JoinRequest, Keypair, Op, OpBody, Payload,
    RecordAction, RecordId, Replica, ReplicaSnapshot, SignedEvidence, SignedGenesis,
    SignedJoinRequest, VerifiedOp, codec,
};
use dan_node::backup::BackupFile;
use dan_node::net::wire::{self, Gossip, Request, Response};
use dan_node::release::ReleaseManifest;
use negentropy::{Id, NegentropyStorageVector};
use serde::Serialize;

pub mod seeds;

/// Whether `input` gets past the decoder of target `name`.
pub fn decodes(name: &str, input: &[u8]) -> bool {
    TARGETS
        .iter()
        .find(|(target, _)| *target == name)
        .is_some_and(|(_, harness)| harness(input))
}

/// A harness: takes any bytes, panics only on a bug; says whether the
/// input got past the decoder (for the seeds' test).
pub type Harness = fn(&[u8]) -> bool;

/// Every target by name (the folder names under `fuzz/corpus/`).
pub const TARGETS: &[(&str, Harness)] = &[
    ("op", op),
    ("op_apply", op_apply),
    ("hello", hello),
    ("evidence", evidence),
    ("genesis", genesis),
    ("invite_link", invite_link),
    ("join_request", join_request),
    ("wire", wire_message),
    ("reconcile", reconcile),
    ("backup_file", backup_file),
    ("control_line", control_line),
    ("field_arg", field_arg),
    ("release_manifest", release_manifest),
];

/// The time every harness takes as "now" (inputs must not depend on the
/// machine's clock to reproduce).
pub const NOW_MS: u64 = 1_800_000_000_000;

/// The build every fixture network approves.
pub fn fixture_build() -> Hash32 {
    Hash32::of(b"fuzz build")
}

/// A three-member network accepting records, with one record: the keys of
/// its members (founder first) and an outsider, and the replica.
pub struct Fixture {
    /// The members' keys, then an outsider's.
    pub keys: [Keypair; 4],
    /// The genesis.
    pub genesis: SignedGenesis,
    /// The replica after the admissions and one record.
    pub replica: Replica,
    /// Its snapshot, as an instance judges peers by.
    pub snapshot: ReplicaSnapshot,
}

/// The shared fixture, built once.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build_fixture)
}

fn build_fixture() -> Fixture {
    let keys = [1u8, 2, 3, 4].map(|n| Keypair::from_secret([n; 32]));
    let mut charter = Charter::new("Fuzz network", BTreeSet::from([fixture_build()]));
    charter.min_members = 3;
    let genesis = Genesis {
        charter,
        founder: keys[0].public(),
        founder_name: "alice".into(),
        created_ms: NOW_MS - 1_000_000,
        fork_of: None,
    };
    let genesis = SignedGenesis::sign(genesis, &keys[0]).expect("the fixture genesis is valid");
    let mut replica = Replica::new(genesis.clone()).expect("the fixture genesis is valid");
    let network = replica.network_id();
    let request = |key: &Keypair, name: &str| {
        Box::new(
            SignedJoinRequest::sign(
                JoinRequest {
                    network,
                    joiner: key.public(),
                    instance_name: name.into(),
                    admin_name: name.into(),
                    code_hash: fixture_build(),
                    invite: None,
                    requested_ms: NOW_MS - 900_000,
                    succeeds: None,
                },
                key,
            )
            .expect("the fixture join request is valid"),
        )
    };
    let steps = [
        (
            0,
            Payload::Governance(GovernanceAction::Approve {
                request: request(&keys[1], "bob"),
            }),
        ),
        (
            0,
            Payload::Governance(GovernanceAction::Approve {
                request: request(&keys[2], "carol"),
            }),
        ),
        (
            1,
            Payload::Governance(GovernanceAction::Approve {
                request: request(&keys[2], "carol"),
            }),
        ),
        (
            0,
            Payload::Record {
                id: RecordId::new("r1").expect("the fixture record id is valid"),
                action: RecordAction::Create {
                    collection: "notes".into(),
                    title: "first".into(),
                    fields: BTreeMap::from([("n".into(), FieldValue::Int(1))]),
                    tags: BTreeSet::new(),
                },
            },
        ),
    ];
    for (clock, (signer, payload)) in (1u64..).zip(steps) {
        let key: &Keypair = &keys[signer];
        let body = replica.next_body(key.public(), NOW_MS - 800_000 + clock * 1000, payload);
        let op = VerifiedOp::sign(body, key).expect("the fixture op signs");
        replica.apply(&op).expect("the fixture op applies");
    }
    Fixture {
        keys,
        genesis,
        snapshot: replica.snapshot(),
        replica,
    }
}

fn utf8(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

fn assert_canonical<T: Serialize>(value: &T, data: &[u8]) {
    assert_eq!(
        codec::encode(value),
        data,
        "accepted bytes are not canonical"
    );
}

/// Op bytes from a peer: decoded, verified, and applied if they verify.
pub fn op(data: &[u8]) -> bool {
    let Ok(decoded) = Op::decode(data) else {
        return false;
    };
    assert_eq!(decoded.bytes(), data);
    let (verified, _) = dan_core::op::verify_ops(vec![decoded]);
    let mut replica = fixture().replica.clone();
    for op in verified {
        let _ = replica.apply(&op);
    }
    true
}

/// The rules on any op content: the first byte picks the signer (a member
/// or the outsider), the rest is an op body, signed here so that the
/// replica's checks (not the signature) see it.
pub fn op_apply(data: &[u8]) -> bool {
    let Some((&signer, body)) = data.split_first() else {
        return false;
    };
    let Ok(mut body) = codec::decode::<OpBody>(body, MAX_OP_BYTES) else {
        return false;
    };
    let fixture = fixture();
    let key = &fixture.keys[usize::from(signer) % fixture.keys.len()];
    body.origin = key.public();
    if let Payload::Governance(GovernanceAction::Approve { request }) = &mut body.payload {
        // The joiner's signature is not what is tested here: sign the
        // fuzzed request as the outsider.
        let outsider = &fixture.keys[3];
        let mut inner = request.request.clone();
        inner.joiner = outsider.public();
        if let Ok(signed) = SignedJoinRequest::sign(inner, outsider) {
            **request = signed;
        }
    }
    let Ok(op) = VerifiedOp::sign(body, key) else {
        return true;
    };
    let mut replica = fixture.replica.clone();
    if replica.apply(&op).is_ok() {
        assert!(
            replica.apply(&op).is_ok(),
            "an op applied once must apply again as a duplicate"
        );
        let _ = replica.state_root();
    }
    true
}

/// The fixture key a byte picks (a member, or the outsider).
fn key_of(pick: u8) -> &'static Keypair {
    let keys = &fixture().keys;
    &keys[usize::from(pick) % keys.len()]
}

/// Splits off the first byte: even, the rest is signed bytes as a peer
/// sends them; odd, the rest is unsigned content that the fixture key the
/// second byte picks signs here, so that the checks behind the signature
/// see fuzzed content too.
fn mode(data: &[u8]) -> Option<(bool, u8, &[u8])> {
    match data {
        [m, rest @ ..] if m % 2 == 0 => Some((false, 0, rest)),
        [_, pick, rest @ ..] => Some((true, *pick, rest)),
        _ => None,
    }
}

/// A hello or checkpoint from a peer: decoded and judged (from a member,
/// the outsider or anyone).
pub fn hello(data: &[u8]) -> bool {
    let Some((sign, pick, data)) = mode(data) else {
        return false;
    };
    let hello = if sign {
        let Ok(hello) = codec::decode::<Hello>(data, conformance::MAX_HELLO_BYTES) else {
            return false;
        };
        let key = key_of(pick);
        SignedHello::sign(
            Hello {
                peer: key.public(),
                ..hello
            },
            key,
        )
    } else {
        let Ok(hello) = SignedHello::from_bytes(data) else {
            return false;
        };
        assert_canonical(&hello, data);
        hello
    };
    let fixture = fixture();
    let me = fixture.keys[0].public();
    let from = hello.hello.peer;
    let _ = conformance::judge(&me, Some(&fixture.snapshot), None, &from, &hello, NOW_MS);
    let _ = conformance::judge(
        &me,
        None,
        Some(fixture.replica.network_id()),
        &from,
        &hello,
        NOW_MS,
    );
    true
}

/// Evidence from a peer: decoded and checked. Signed mode: the accuser's
/// evidence is signed here, and so are the ops inside it (op bodies signed
/// by their origin, when that is a fixture key), so the rules the evidence
/// claims were broken are what gets tested.
pub fn evidence(data: &[u8]) -> bool {
    let Some((sign, pick, data)) = mode(data) else {
        return false;
    };
    let evidence = if sign {
        let Ok((claim, seq, time)) =
            codec::decode::<(Evidence, u64, u64)>(data, evidence::MAX_EVIDENCE_BYTES)
        else {
            return false;
        };
        SignedEvidence::sign(sign_inner_ops(claim), key_of(pick), seq, time)
    } else {
        let Ok(evidence) = SignedEvidence::from_bytes(data) else {
            return false;
        };
        assert_canonical(&evidence, data);
        evidence
    };
    let _ = evidence.check(&fixture().replica);
    true
}

/// Evidence whose op fields hold unsigned op bodies gets them signed by
/// the fixture key of their origin (others are left as they are).
fn sign_inner_ops(claim: Evidence) -> Evidence {
    let sign = |bytes: Vec<u8>| -> Vec<u8> {
        let Ok(body) = codec::decode::<OpBody>(&bytes, MAX_OP_BYTES) else {
            return bytes;
        };
        let key = fixture().keys.iter().find(|k| k.public() == body.origin);
        key.and_then(|key| VerifiedOp::sign(body, key).ok())
            .map_or(bytes, |op| op.bytes().to_vec())
    };
    match claim {
        Evidence::Equivocation { first, second } => Evidence::Equivocation {
            first: sign(first),
            second: sign(second),
        },
        Evidence::InvalidOp { op } => Evidence::InvalidOp { op: sign(op) },
        other => other,
    }
}

/// A genesis from an inviter: decoded, verified and started from (signed
/// mode: any genesis content, signed by its founder here).
pub fn genesis(data: &[u8]) -> bool {
    let Some((sign, pick, data)) = mode(data) else {
        return false;
    };
    let genesis = if sign {
        let Ok(genesis) = codec::decode::<Genesis>(data, charter::MAX_GENESIS_BYTES) else {
            return false;
        };
        let key = key_of(pick);
        let Ok(genesis) = SignedGenesis::sign(
            Genesis {
                founder: key.public(),
                ..genesis
            },
            key,
        ) else {
            return true;
        };
        genesis
    } else {
        let Ok(genesis) = SignedGenesis::from_bytes(data) else {
            return false;
        };
        assert_eq!(genesis.to_bytes(), data);
        genesis
    };
    let _ = Replica::new(genesis);
    true
}

/// An invite link someone pasted (signed mode: any invite content, made
/// into a link by a fixture key).
pub fn invite_link(data: &[u8]) -> bool {
    let Some((sign, pick, data)) = mode(data) else {
        return false;
    };
    let invite = if sign {
        let Ok(invite) = codec::decode::<Invite>(data, MAX_LINK_LEN) else {
            return false;
        };
        let key = key_of(pick);
        let Ok(invite) = SignedInvite::sign(
            Invite {
                inviter: key.public(),
                ..invite
            },
            key,
        ) else {
            return true;
        };
        invite
    } else {
        let Some(text) = utf8(data) else {
            return false;
        };
        let Ok(invite) = SignedInvite::from_link(text) else {
            return false;
        };
        invite
    };
    let link = invite.to_link();
    if link.len() <= MAX_LINK_LEN {
        let again = SignedInvite::from_link(&link).expect("an issued link reads back");
        assert_eq!(again, invite);
    }
    let _ = invite.check(NOW_MS);
    true
}

/// A join request from a joiner (signed mode: any request content, signed
/// by a fixture key, and approved on the fixture replica).
pub fn join_request(data: &[u8]) -> bool {
    let Some((sign, pick, data)) = mode(data) else {
        return false;
    };
    let request = if sign {
        let Ok(request) = codec::decode::<JoinRequest>(data, MAX_JOIN_REQUEST_BYTES) else {
            return false;
        };
        let key = key_of(pick);
        let Ok(request) = SignedJoinRequest::sign(
            JoinRequest {
                joiner: key.public(),
                ..request
            },
            key,
        ) else {
            return true;
        };
        request
    } else {
        let Ok(request) = SignedJoinRequest::from_bytes(data) else {
            return false;
        };
        assert_eq!(request.to_bytes(), data);
        request
    };
    let _ = request.verify();
    let replica = &fixture().replica;
    let founder = &fixture().keys[0];
    let approve = Payload::Governance(GovernanceAction::Approve {
        request: Box::new(request),
    });
    let body = replica.next_body(founder.public(), NOW_MS, approve);
    if let Ok(op) = VerifiedOp::sign(body, founder) {
        let _ = replica.clone().apply(&op);
    }
    true
}

/// Decodes `data` as one wire message of type `M` and checks that what it
/// decodes to encodes to bytes that decode to the same again.
fn wire_round_trip<M>(data: &[u8], limit: u64) -> bool
where
    M: Serialize + for<'de> serde::Deserialize<'de>,
{
    let Ok(message) = wire::decode_message::<M>(data, limit) else {
        return false;
    };
    let bytes = postcard::to_stdvec(&message).expect("a decoded message encodes");
    let again: M = wire::decode_message(&bytes, u64::MAX).expect("an encoded message decodes");
    assert_eq!(postcard::to_stdvec(&again).ok(), Some(bytes));
    true
}

/// A `/dan/sync/1` request, response or gossip message (first byte picks
/// which), as it comes off the network.
pub fn wire_message(data: &[u8]) -> bool {
    let Some((&kind, message)) = data.split_first() else {
        return false;
    };
    match kind % 3 {
        0 => wire_round_trip::<Request>(message, wire::MAX_REQUEST_BYTES),
        1 => wire_round_trip::<Response>(message, wire::MAX_RESPONSE_BYTES),
        _ => wire_round_trip::<Gossip>(message, wire::MAX_REQUEST_BYTES),
    }
}

/// A reconciliation round from a peer, answered from the fixture's ops.
pub fn reconcile(data: &[u8]) -> bool {
    static SET: OnceLock<NegentropyStorageVector> = OnceLock::new();
    let set = SET.get_or_init(|| {
        let mut set = NegentropyStorageVector::new();
        for (ms, id) in fixture().replica.op_stamps() {
            set.insert(ms, Id::from_byte_array(id.0))
                .expect("fixture stamps insert");
        }
        set.seal().expect("the fixture set seals");
        set
    });
    let Ok(reply) = wire::answer_reconcile(set, data) else {
        return false;
    };
    assert!(reply.len() as u64 <= wire::RECONCILE_FRAME_BYTES + 1024);
    true
}

/// A backup file chosen to restore.
pub fn backup_file(data: &[u8]) -> bool {
    let Ok(file) = BackupFile::parse(data) else {
        return false;
    };
    assert_eq!(file.to_bytes(), data);
    true
}

/// One line on the local control channel.
pub fn control_line(data: &[u8]) -> bool {
    let Some(line) = utf8(data) else {
        return false;
    };
    let Ok(envelope) = dan_node::control::parse_line(line) else {
        return false;
    };
    let text = serde_json::to_string(&envelope).expect("a request encodes");
    // Re-encoding may lengthen the line (`1e2` becomes `100.0`): read it
    // back without the channel's length limit.
    let again: dan_node::control::Envelope =
        serde_json::from_str(&text).expect("an encoded request reads back");
    assert_eq!(serde_json::to_string(&again).ok(), Some(text));
    true
}

/// One `--field` argument of `dan record put`.
pub fn field_arg(data: &[u8]) -> bool {
    let Some(text) = utf8(data) else {
        return false;
    };
    let Ok((key, value)) = dan_node::api::parse_field_arg(text) else {
        return false;
    };
    if key.contains('=') || key.contains(':') {
        return true;
    }
    let json = serde_json::to_string(&value).expect("a field value encodes");
    let again = dan_node::api::parse_field_arg(&format!("{key}:={json}"))
        .expect("a typed field reads back");
    assert_eq!(again, (key, value));
    true
}

/// A release manifest or approval request pasted or read from a file.
pub fn release_manifest(data: &[u8]) -> bool {
    let Some(text) = utf8(data) else {
        return false;
    };
    let Ok(manifest) = ReleaseManifest::parse(text) else {
        return false;
    };
    let again = ReleaseManifest::parse(&manifest.to_line()).expect("a manifest reads back");
    assert_eq!(again.to_line(), manifest.to_line());
    true
}

//! Valid inputs for every target, made with the instance's own
//! constructors: the starting corpora (`fuzz-seeds` writes them), so the
//! fuzzer begins from inputs that pass the first checks.

use std::collections::{BTreeMap, BTreeSet};

use dan_core::conformance::{Hello, SignedHello};
use dan_core::evidence::Evidence;
use dan_core::governance::Proposal;
use dan_core::{
    BuildKind, BuildLabel, FieldValue, GovernanceAction, Invite, JoinRequest, Keypair, OpBody,
    PROTOCOL_VERSION, Payload, RecordAction, RecordId, Replica, SignedEvidence, SignedInvite,
    SignedJoinRequest, VerifiedOp, codec,
};
use dan_node::api::PutRecord;
use dan_node::backup::BackupFile;
use dan_node::control::{ControlRequest, Envelope};
use dan_node::net::wire::{Gossip, Request, Response};
use dan_node::operation;
use dan_node::release::ReleaseManifest;
use negentropy::{Id, Negentropy, NegentropyStorageVector};

use crate::{NOW_MS, fixture, fixture_build};

/// `(target, input)` pairs: at least one valid input per target.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let f = fixture();
    let replica = &f.replica;
    let bodies = op_bodies(replica, &f.keys);
    let ops: Vec<Vec<u8>> = bodies
        .iter()
        .map(|(signer, body)| signed(body, &f.keys[usize::from(*signer)]))
        .collect();
    let hello = hello_of(&f.keys[1], replica).to_bytes();
    let join = join_request(replica, &f.keys[3]).to_bytes();
    let mut seeds: Vec<(&'static str, Vec<u8>)> = Vec::new();
    seeds.extend(ops.iter().map(|op| ("op", op.clone())));
    seeds.extend(bodies.iter().map(|(signer, body)| {
        let mut input = vec![*signer];
        input.extend(codec::encode(body));
        ("op_apply", input)
    }));
    let signed_hello = hello_of(&f.keys[1], replica);
    let evidence = equivocation(replica, &f.keys);
    let invite = invite(replica, &f.keys[0]);
    let request = join_request(replica, &f.keys[3]);
    for (target, raw, unsigned) in [
        ("hello", hello.clone(), codec::encode(&signed_hello.hello)),
        (
            "evidence",
            evidence.to_bytes(),
            codec::encode(&(&evidence.evidence, 1u64, NOW_MS)),
        ),
        (
            "genesis",
            f.genesis.to_bytes(),
            codec::encode(&f.genesis.genesis),
        ),
        (
            "invite_link",
            invite.to_link().into_bytes(),
            codec::encode(&invite.invite),
        ),
        (
            "join_request",
            join.clone(),
            codec::encode(&request.request),
        ),
    ] {
        seeds.push((target, [&[0u8][..], &raw].concat()));
        seeds.push((target, [&[1u8, 1][..], &unsigned].concat()));
    }
    let unsigned_twins = Evidence::Equivocation {
        first: codec::encode(&bodies[1].1),
        second: codec::encode(&replica.next_body(
            f.keys[2].public(),
            NOW_MS - 999,
            bodies[0].1.payload.clone(),
        )),
    };
    let claim = codec::encode(&(unsigned_twins, 1u64, NOW_MS));
    seeds.push(("evidence", [&[1u8, 1][..], &claim].concat()));
    seeds.extend([
        wire(0, &Request::Hello(hello.clone())),
        wire(0, &Request::Join(join)),
        wire(
            0,
            &Request::Fetch(replica.op_stamps().map(|(_, id)| id).collect()),
        ),
        wire(0, &Request::Bye("closing".into())),
        wire(1, &Response::Ops(ops.clone())),
        wire(
            1,
            &Response::ChainHead {
                seq: 1,
                op: ops.first().cloned(),
            },
        ),
        wire(
            1,
            &Response::Joined {
                genesis: f.genesis.to_bytes(),
                approvals: 1,
                needed: 2,
            },
        ),
        wire(2, &Gossip::Ops(ops)),
        wire(2, &Gossip::Checkpoint(hello)),
    ]);
    seeds.push(("reconcile", reconcile_opening(replica)));
    let backup = BackupFile {
        salt: [1; 16],
        nonce: [2; 24],
        sealed: vec![3; 64],
    };
    seeds.push(("backup_file", backup.to_bytes()));
    for request in [
        ControlRequest::from(operation::Status {}),
        ControlRequest::from(operation::PutRecord {
            record: PutRecord {
                id: Some("r1".into()),
                collection: None,
                title: Some("renamed".into()),
                fields: BTreeMap::from([("n".into(), Some(FieldValue::Int(2)))]),
                tags: None,
            },
        }),
    ] {
        let envelope = Envelope {
            token: "00ff".into(),
            request,
        };
        let line = serde_json::to_string(&envelope).expect("a request encodes");
        seeds.push(("control_line", line.into_bytes()));
    }
    for arg in ["title=hello", "n:=5", "ok:=true", "s:=\"x\"", "empty="] {
        seeds.push(("field_arg", arg.as_bytes().to_vec()));
    }
    let label = BuildLabel {
        version: "0.1.0".into(),
        platform: "linux-x86_64".into(),
        kind: BuildKind::Headless,
    };
    let manifest = ReleaseManifest::approval_request(fixture_build(), &label, "dan");
    seeds.push(("release_manifest", manifest.to_line().into_bytes()));
    seeds
}

/// A `wire` input: the kind byte, then the message.
fn wire<M: serde::Serialize>(kind: u8, message: &M) -> (&'static str, Vec<u8>) {
    let mut input = vec![kind];
    input.extend(postcard::to_stdvec(message).expect("a message encodes"));
    ("wire", input)
}

fn signed(body: &OpBody, key: &Keypair) -> Vec<u8> {
    VerifiedOp::sign(body.clone(), key)
        .expect("a seed op signs")
        .bytes()
        .to_vec()
}

fn op_bodies(replica: &Replica, keys: &[Keypair; 4]) -> Vec<(u8, OpBody)> {
    let r1 = || RecordId::new("r1").expect("a seed record id is valid");
    let payloads = [
        (
            1,
            Payload::Record {
                id: r1(),
                action: RecordAction::Update {
                    title: Some("second".into()),
                    fields: BTreeMap::from([("n".into(), Some(FieldValue::Int(2)))]),
                    tags: None,
                },
            },
        ),
        (
            2,
            Payload::Record {
                id: RecordId::new("r2").expect("a seed record id is valid"),
                action: RecordAction::Create {
                    collection: "notes".into(),
                    title: "new".into(),
                    fields: BTreeMap::new(),
                    tags: BTreeSet::from(["t".into()]),
                },
            },
        ),
        (
            0,
            Payload::Record {
                id: r1(),
                action: RecordAction::Delete,
            },
        ),
        (
            0,
            Payload::Governance(GovernanceAction::Approve {
                request: Box::new(join_request(replica, &keys[3])),
            }),
        ),
        (
            1,
            Payload::Governance(GovernanceAction::Propose(Proposal::Remove {
                peer: keys[2].public(),
            })),
        ),
        (
            3,
            Payload::Governance(GovernanceAction::Reject {
                peer: keys[3].public(),
            }),
        ),
    ];
    payloads
        .into_iter()
        .map(|(signer, payload)| {
            let key: &Keypair = &keys[usize::from(signer)];
            (
                signer,
                replica.next_body(key.public(), NOW_MS - 1000, payload),
            )
        })
        .collect()
}

fn hello_of(key: &Keypair, replica: &Replica) -> SignedHello {
    SignedHello::sign(
        Hello {
            peer: key.public(),
            protocol_version: PROTOCOL_VERSION,
            code_hash: fixture_build(),
            network: Some(replica.network_id()),
            charter_hash: Some(replica.charter().hash()),
            ops_root: Some(replica.ops_root()),
            deprecations_root: Some(replica.deprecations_root()),
            state_root: Some(replica.state_root()),
            op_count: replica.op_count(),
            origin_seq: 1,
            sent_ms: NOW_MS,
            awaiting_approval: false,
        },
        key,
    )
}

fn join_request(replica: &Replica, key: &Keypair) -> SignedJoinRequest {
    let request = JoinRequest {
        network: replica.network_id(),
        joiner: key.public(),
        instance_name: "dave".into(),
        admin_name: "Dave".into(),
        code_hash: fixture_build(),
        invite: None,
        requested_ms: NOW_MS,
        succeeds: None,
    };
    SignedJoinRequest::sign(request, key).expect("a seed join request signs")
}

fn invite(replica: &Replica, key: &Keypair) -> SignedInvite {
    let invite = Invite {
        network: replica.network_id(),
        network_name: replica.charter().name.clone(),
        inviter: key.public(),
        inviter_name: "alice".into(),
        addrs: vec!["/ip4/127.0.0.1/tcp/4001".into()],
        id: [7; 16],
        expires_ms: NOW_MS + 86_400_000,
        uses: 1,
        approved: Vec::new(),
        approved_complete: false,
    };
    SignedInvite::sign(invite, key).expect("a seed invite signs")
}

/// Two different ops of carol at one seq, reported by bob.
fn equivocation(replica: &Replica, keys: &[Keypair; 4]) -> SignedEvidence {
    let carol = &keys[2];
    let twin = |title: &str| {
        let payload = Payload::Record {
            id: RecordId::new("r9").expect("a seed record id is valid"),
            action: RecordAction::Create {
                collection: "notes".into(),
                title: title.into(),
                fields: BTreeMap::new(),
                tags: BTreeSet::new(),
            },
        };
        signed(
            &replica.next_body(carol.public(), NOW_MS - 500, payload),
            carol,
        )
    };
    let evidence = Evidence::Equivocation {
        first: twin("one"),
        second: twin("two"),
    };
    SignedEvidence::sign(evidence, &keys[1], 1, NOW_MS)
}

/// The opening message of a peer that holds one op fewer.
fn reconcile_opening(replica: &Replica) -> Vec<u8> {
    let mut set = NegentropyStorageVector::new();
    for (ms, id) in replica.op_stamps().skip(1) {
        set.insert(ms, Id::from_byte_array(id.0))
            .expect("seed stamps insert");
    }
    set.seal().expect("the seed set seals");
    let mut negentropy = Negentropy::borrowed(&set, dan_node::net::wire::RECONCILE_FRAME_BYTES)
        .expect("a seed reconciliation starts");
    negentropy.initiate().expect("a seed reconciliation starts")
}

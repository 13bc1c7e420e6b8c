//! Builders shared by the core's integration tests.

use std::collections::{BTreeMap, BTreeSet};

use dan_core::charter::Charter;
use dan_core::conformance::{Hello, SignedHello};
use dan_core::{
    FieldValue, Genesis, Hash32, Keypair, Payload, RecordAction, RecordId, Replica, SignedGenesis,
    VerifiedOp,
};

/// The founder's key in every test network.
pub(crate) fn founder() -> Keypair {
    Keypair::from_secret([1; 32])
}

/// A signed genesis for a network that accepts records with one member.
pub(crate) fn solo_genesis() -> SignedGenesis {
    let mut charter = Charter::new("Test network", BTreeSet::from([Hash32::of(b"build A")]));
    charter.min_members = 1;
    let genesis = Genesis {
        charter,
        founder: founder().public(),
        founder_name: "alice".into(),
        created_ms: 1_700_000_000_000,
        fork_of: None,
    };
    SignedGenesis::sign(genesis, &founder()).expect("valid genesis")
}

/// One record change for the generators.
#[derive(Clone, Debug)]
pub(crate) enum Change {
    /// Create record `n`.
    Create(u8),
    /// Set field `field` of record `n` to `value`.
    Set(u8, u8, i64),
    /// Delete record `n`.
    Delete(u8),
    /// Restore record `n`.
    Restore(u8),
}

/// Signs `changes` as consecutive ops of the founder, skipping changes to
/// records not created yet. Clock values come from `clock`, so tests can make
/// ties and clock jumps.
pub(crate) fn sign_changes(changes: &[(Change, u64)]) -> Vec<VerifiedOp> {
    let key = founder();
    let mut replica = Replica::new(solo_genesis()).expect("genesis");
    let mut ops = Vec::new();
    for (change, clock) in changes {
        let (id, action) = match change {
            Change::Create(n) => (
                *n,
                RecordAction::Create {
                    collection: "notes".into(),
                    title: format!("note {n}"),
                    fields: BTreeMap::new(),
                    tags: BTreeSet::new(),
                },
            ),
            Change::Set(n, field, value) => (
                *n,
                RecordAction::Update {
                    title: None,
                    fields: BTreeMap::from([(format!("f{field}"), Some(FieldValue::Int(*value)))]),
                    tags: None,
                },
            ),
            Change::Delete(n) => (*n, RecordAction::Delete),
            Change::Restore(n) => (*n, RecordAction::Restore),
        };
        let payload = Payload::Record {
            id: RecordId::new(&format!("r{id}")).expect("id"),
            action,
        };
        let body = replica.next_body(key.public(), *clock, payload);
        let op = VerifiedOp::sign(body, &key).expect("sign");
        if replica.apply(&op).is_ok() {
            ops.push(op);
        }
    }
    ops
}

/// A network with three members (founder, bob, carol) accepting records:
/// the genesis and the governance ops that admitted bob and carol.
pub(crate) struct Trio {
    pub(crate) genesis: SignedGenesis,
    pub(crate) keys: [Keypair; 3],
    pub(crate) admissions: Vec<VerifiedOp>,
}

impl Trio {
    /// A replica holding the genesis and the three admissions.
    pub(crate) fn replica(&self) -> Replica {
        let mut replica = Replica::new(self.genesis.clone()).expect("replica");
        for op in &self.admissions {
            replica.apply(op).expect("admission");
        }
        replica
    }
}

/// A signed join request from `joiner` for `network`.
pub(crate) fn join_request(
    network: dan_core::NetworkId,
    joiner: &Keypair,
    name: &str,
) -> dan_core::SignedJoinRequest {
    let request = dan_core::JoinRequest {
        network,
        joiner: joiner.public(),
        instance_name: name.into(),
        admin_name: name.into(),
        code_hash: Hash32::of(b"build A"),
        invite: None,
        requested_ms: 1,
        succeeds: None,
    };
    dan_core::SignedJoinRequest::sign(request, joiner).expect("join request")
}

/// Signs a governance op by `key` on top of `replica` and applies it.
pub(crate) fn govern(
    replica: &mut Replica,
    key: &Keypair,
    action: dan_core::GovernanceAction,
    clock: u64,
) -> VerifiedOp {
    let body = replica.next_body(key.public(), clock, Payload::Governance(action));
    let op = VerifiedOp::sign(body, key).expect("sign");
    replica.apply(&op).expect("apply governance op");
    op
}

/// Builds the three-member network.
pub(crate) fn trio() -> Trio {
    trio_with(|_| {})
}

/// Builds the three-member network on a charter `tweak`ed first.
pub(crate) fn trio_with(tweak: impl FnOnce(&mut Charter)) -> Trio {
    let keys = [
        founder(),
        Keypair::from_secret([2; 32]),
        Keypair::from_secret([3; 32]),
    ];
    let mut charter = Charter::new("Trio", BTreeSet::from([Hash32::of(b"build A")]));
    charter.min_members = 3;
    tweak(&mut charter);
    let genesis = Genesis {
        charter,
        founder: keys[0].public(),
        founder_name: "alice".into(),
        created_ms: 1_700_000_000_000,
        fork_of: None,
    };
    let genesis = SignedGenesis::sign(genesis, &keys[0]).expect("genesis");
    let mut replica = Replica::new(genesis.clone()).expect("replica");
    let network = replica.network_id();
    let bob = join_request(network, &keys[1], "bob");
    let carol = join_request(network, &keys[2], "carol");
    let admissions = vec![
        govern(
            &mut replica,
            &keys[0],
            dan_core::GovernanceAction::Approve {
                request: Box::new(bob),
            },
            10,
        ),
        govern(
            &mut replica,
            &keys[0],
            dan_core::GovernanceAction::Approve {
                request: Box::new(carol.clone()),
            },
            20,
        ),
        govern(
            &mut replica,
            &keys[1],
            dan_core::GovernanceAction::Approve {
                request: Box::new(carol),
            },
            30,
        ),
    ];
    Trio {
        genesis,
        keys,
        admissions,
    }
}

/// A signed hello (checkpoint) of `key` describing `replica`, then `tweak`ed.
pub(crate) fn hello(
    key: &Keypair,
    replica: &Replica,
    tweak: impl FnOnce(&mut Hello),
) -> SignedHello {
    let mut hello = Hello {
        peer: key.public(),
        protocol_version: dan_core::PROTOCOL_VERSION,
        code_hash: Hash32::of(b"build A"),
        network: Some(replica.network_id()),
        charter_hash: Some(replica.charter().hash()),
        ops_root: Some(replica.ops_root()),
        deprecations_root: Some(replica.deprecations_root()),
        state_root: Some(replica.state_root()),
        op_count: replica.op_count(),
        origin_seq: 0,
        sent_ms: 1,
        awaiting_approval: false,
    };
    tweak(&mut hello);
    SignedHello::sign(hello, key)
}

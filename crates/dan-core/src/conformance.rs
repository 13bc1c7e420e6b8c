//! The conformance handshake: what two instances tell each other first on
//! every connection, and the pure decision whether to replicate with a peer.
//!
//! A signed hello is also the instance's *checkpoint*: a signed statement
//! "for the op set with root O (n ops), my state root is S, my charter hash
//! C, my code hash K, my own chain is at seq q, at time t". Instances gossip
//! it periodically; anyone holding the same op set recomputes S.
//!
//! Replication is asymmetric on purpose. An instance *serves* ops (answers
//! reconciliation, accepts pushes) only to peers its own replica knows as
//! members running approved code. It may *pull* from any peer of the same
//! network running approved code, because every op pulled is verified on its
//! own (signature, chain, membership from the genesis on): a peer's word is
//! never taken for anything that can be checked.

use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::charter::PROTOCOL_VERSION;
use crate::codec::{self, CodecError};
use crate::evidence::Evidence;
use crate::hash::{CodeHash, Hash32, NetworkId};
use crate::identity::{Keypair, PeerKey};
use crate::replica::Replica;
use crate::snapshot::ReplicaSnapshot;

/// Largest encoded hello, in bytes.
pub const MAX_HELLO_BYTES: usize = 4096;

/// What an instance announces about itself on every connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender.
    pub peer: PeerKey,
    /// The protocol version it speaks.
    pub protocol_version: u32,
    /// BLAKE3 of the executable it runs.
    pub code_hash: CodeHash,
    /// Its network, if it has one (a joining instance names the network of
    /// its invite).
    pub network: Option<NetworkId>,
    /// Digest of its current charter.
    pub charter_hash: Option<Hash32>,
    /// Digest of its op set.
    pub ops_root: Option<Hash32>,
    /// Digest of the deprecations it applies (offenders and cutoffs).
    pub deprecations_root: Option<Hash32>,
    /// Digest of its state.
    pub state_root: Option<Hash32>,
    /// How many ops it holds.
    pub op_count: u64,
    /// The length of its own op chain (so a checkpoint also fixes where
    /// its own history stood).
    pub origin_seq: u64,
    /// When it was made (ms since the Unix epoch, sender's clock).
    pub sent_ms: u64,
    /// The sender's own charter does not approve the build it runs (a new
    /// version installed before the vote): it announces the build only to be
    /// let back in once the network approves it. Such a hello is refused but
    /// is no evidence of unapproved code.
    pub awaiting_approval: bool,
}

/// A hello signed by its sender, so that what it announced (e.g. its code
/// hash) can later serve as evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHello {
    /// The content.
    pub hello: Hello,
    /// The sender's signature.
    pub signature: Signature,
}

impl SignedHello {
    /// Signs `hello`.
    pub fn sign(hello: Hello, key: &Keypair) -> Self {
        let signature = key.sign(&Self::signing_bytes(&hello));
        SignedHello { hello, signature }
    }

    fn signing_bytes(hello: &Hello) -> Vec<u8> {
        let mut bytes = b"dan hello v1\0".to_vec();
        bytes.extend(codec::encode(hello));
        bytes
    }

    /// Whether the signature is the claimed sender's.
    pub fn verify(&self) -> bool {
        self.hello
            .peer
            .verify(&Self::signing_bytes(&self.hello), &self.signature)
    }

    /// The canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes canonical bytes (the signature is checked by
    /// [`judge`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        codec::decode(bytes, MAX_HELLO_BYTES)
    }
}

/// What to do with a peer after its hello.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A conforming member: replicate both ways.
    Replicate,
    /// Same network and approved code, but not (yet) a member in this
    /// replica: this instance may pull from it (everything pulled is
    /// verified) but does not serve it. Joining instances are in this state
    /// until their admission ops arrive.
    PullOnly,
    /// Not a member but the same network: may only ask to join.
    Candidate,
    /// Runs a build whose approval ended with an upgrade's grace period:
    /// nothing flows until it runs an approved build (not a tamperer).
    Suspended(String),
    /// Deprecated by verified evidence: nothing flows any more.
    Deprecated(String),
    /// Disconnect, for the reason given (logged and shown on both sides).
    Refuse(String),
}

/// Decides how to treat `connected_peer` after its signed hello. `me` is
/// this instance, `replica` its view of its network (`None` while it has
/// none), `joining` the network it is joining through an invite, `now_ms`
/// the wall clock (for upgrade grace periods).
pub fn judge(
    me: &PeerKey,
    replica: Option<&ReplicaSnapshot>,
    joining: Option<NetworkId>,
    connected_peer: &PeerKey,
    hello: &SignedHello,
    now_ms: u64,
) -> Verdict {
    let h = &hello.hello;
    if h.peer != *connected_peer || !hello.verify() {
        return Verdict::Refuse("its hello is not signed by the connected instance".into());
    }
    if h.protocol_version != PROTOCOL_VERSION {
        return Verdict::Refuse(format!(
            "it speaks protocol version {}, this instance speaks {PROTOCOL_VERSION}",
            h.protocol_version
        ));
    }
    if joining.is_some()
        && joining == h.network
        && replica.is_none_or(|r| Some(r.network_id()) != joining)
    {
        // Joining another network than the one held (first join, or a
        // fork): pull from its members, verifying everything.
        return Verdict::PullOnly;
    }
    let Some(replica) = replica else {
        return Verdict::Refuse("this instance is not part of a network yet".into());
    };
    if h.network != Some(replica.network_id()) {
        return Verdict::Refuse(match h.network {
            Some(other) => format!("it belongs to another network ({})", other.short()),
            None => "it is not part of a network".into(),
        });
    }
    if let Some(deprecation) = replica.deprecation(&h.peer) {
        return Verdict::Deprecated(deprecation.reason.clone());
    }
    if !replica.charter().approves(&h.code_hash, now_ms) {
        return if replica.ever_approved(&h.code_hash) {
            Verdict::Suspended(format!(
                "upgrade required: it runs build {}, whose approval ended with a software upgrade",
                h.code_hash.short()
            ))
        } else {
            Verdict::Refuse(if h.awaiting_approval {
                format!(
                    "it runs a version (code hash {}) this network has not approved yet; it waits for the vote",
                    h.code_hash.short()
                )
            } else {
                format!(
                    "it runs software whose code hash {} is not approved by the charter",
                    h.code_hash.short()
                )
            })
        };
    }
    if !replica.is_member(&h.peer) {
        return if replica.is_member(me) {
            Verdict::Candidate
        } else {
            Verdict::PullOnly
        };
    }
    let same_inputs = h.ops_root == Some(replica.ops_root())
        && h.deprecations_root == Some(replica.deprecations_root());
    if same_inputs && h.charter_hash != Some(replica.charter().hash()) {
        return Verdict::Refuse("it holds the same ops but announces another charter hash".into());
    }
    if same_inputs && h.state_root != Some(replica.state_root()) {
        return Verdict::Refuse("it holds the same ops but announces another state root".into());
    }
    Verdict::Replicate
}

/// Evidence that a signed hello (a checkpoint) proves on its own against
/// its sender: a code hash the charter never approved, or a state root
/// that is wrong for the op set this replica also holds.
pub fn evidence_in(replica: &Replica, hello: &SignedHello) -> Option<Evidence> {
    let h = &hello.hello;
    if !hello.verify() || h.network != Some(replica.network_id()) {
        return None;
    }
    // Judged only on the same op set: with other ops the sender may know of
    // an upgrade, or simply hold another state.
    if h.ops_root != Some(replica.ops_root()) {
        return None;
    }
    let checkpoint = hello.to_bytes();
    if !replica.ever_approved(&h.code_hash) {
        return (!h.awaiting_approval).then_some(Evidence::UnapprovedCode { checkpoint });
    }
    if h.deprecations_root == Some(replica.deprecations_root())
        && h.state_root != Some(replica.state_root())
    {
        return Some(Evidence::WrongStateRoot { checkpoint });
    }
    None
}

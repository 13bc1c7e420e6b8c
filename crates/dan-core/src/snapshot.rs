//! What a replica says about its network, as a value: the member table,
//! the proposals, the charter and the digests, taken at one moment.
//!
//! An instance publishes one each time it lets go of its replica, so that
//! status, the member table and the proposals are read at once, never
//! behind a long ingest or a rebuild that holds the replica.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::charter::Charter;
use crate::governance::{Member, MemberStatus, ProposalState};
use crate::hash::{CodeHash, Hash32, NetworkId, OpId};
use crate::identity::PeerKey;
use crate::invite::SignedJoinRequest;
use crate::replica::Deprecation;

/// A replica's network as of one moment (see [`crate::Replica::snapshot`]).
/// The readers mirror the replica's own, with the same meaning.
#[derive(Clone, Debug)]
pub struct ReplicaSnapshot {
    pub(crate) network_id: NetworkId,
    pub(crate) charter: Charter,
    pub(crate) members: BTreeMap<PeerKey, Member>,
    pub(crate) voters: BTreeSet<PeerKey>,
    pub(crate) join_requests: BTreeMap<PeerKey, SignedJoinRequest>,
    pub(crate) proposals: Vec<Arc<ProposalState>>,
    pub(crate) ever_approved: BTreeSet<CodeHash>,
    pub(crate) forming: bool,
    pub(crate) deprecations: BTreeMap<PeerKey, Deprecation>,
    /// Per origin: its chain's length and last op.
    pub(crate) chains: HashMap<PeerKey, (u64, OpId)>,
    pub(crate) op_count: u64,
    pub(crate) ops_root: Hash32,
    pub(crate) state_root: Hash32,
    pub(crate) deprecations_root: Hash32,
}

impl ReplicaSnapshot {
    /// The network id.
    pub fn network_id(&self) -> NetworkId {
        self.network_id
    }

    /// The charter in force.
    pub fn charter(&self) -> &Charter {
        &self.charter
    }

    /// The member table (members, pending and rejected candidates).
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// One member-table row.
    pub fn member(&self, peer: &PeerKey) -> Option<&Member> {
        self.members.get(peer)
    }

    /// Whether `peer` is a member in good standing.
    pub fn is_member(&self, peer: &PeerKey) -> bool {
        self.member(peer)
            .is_some_and(|m| m.status == MemberStatus::Member)
    }

    /// Members in good standing.
    pub fn member_count(&self) -> usize {
        self.members()
            .filter(|m| m.status == MemberStatus::Member)
            .count()
    }

    /// The members whose votes count and who count in every quorum (see
    /// [`crate::Replica::voters`]).
    pub fn voters(&self) -> &BTreeSet<PeerKey> {
        &self.voters
    }

    /// The join request approved for `peer`, if any (see
    /// [`crate::Replica::join_request`]).
    pub fn join_request(&self, peer: &PeerKey) -> Option<&SignedJoinRequest> {
        self.join_requests.get(peer)
    }

    /// Every proposal, open or decided.
    pub fn proposals(&self) -> impl Iterator<Item = &ProposalState> {
        self.proposals.iter().map(|p| &**p)
    }

    /// Whether the charter approves, or ever approved, `code`.
    pub fn ever_approved(&self, code: &CodeHash) -> bool {
        self.ever_approved.contains(code)
    }

    /// Whether the network has not formed yet.
    pub fn is_forming(&self) -> bool {
        self.forming
    }

    /// Why and from where `peer` is deprecated, if it is.
    pub fn deprecation(&self, peer: &PeerKey) -> Option<&Deprecation> {
        self.deprecations.get(peer)
    }

    /// The latest seq applied for `origin` (0 if none).
    pub fn chain_len(&self, origin: &PeerKey) -> u64 {
        self.chains.get(origin).map_or(0, |(len, _)| *len)
    }

    /// The id of `origin`'s latest applied op.
    pub fn chain_last(&self, origin: &PeerKey) -> Option<OpId> {
        self.chains.get(origin).map(|(_, last)| *last)
    }

    /// Number of applied ops.
    pub fn op_count(&self) -> u64 {
        self.op_count
    }

    /// Digest of the set of applied op ids.
    pub fn ops_root(&self) -> Hash32 {
        self.ops_root
    }

    /// Digest of the materialized state.
    pub fn state_root(&self) -> Hash32 {
        self.state_root
    }

    /// Digest of the deprecations applied.
    pub fn deprecations_root(&self) -> Hash32 {
        self.deprecations_root
    }
}

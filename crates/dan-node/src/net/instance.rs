//! What the replication conversations ([`super::sync`]) and the judging
//! of gossip ([`super::gossip`]) ask, as two traits: [`Instance`], the questions put to this instance (the real one
//! is [`Node`]), and [`Link`], what they need of the network (the real one
//! is [`NetHandle`], over the swarm). The conversations know nothing else,
//! so tests run them against an in-memory fake of either side.

use std::future::Future;
use std::sync::Arc;

use dan_core::conformance::{SignedHello, Verdict};
use dan_core::{Hlc, MemberStatus, OpId, PeerKey, SignedEvidence, SignedInvite};
use libp2p::PeerId;
use negentropy::NegentropyStorageVector;

use super::wire::{Request, Response};
use super::{Command, NetHandle, Shared};
use crate::deprecation::EvidenceOutcome;
use crate::error::NodeError;
use crate::ingest::IngestOutcome;
use crate::membership::{JoinAnswer, JoinProgress};
use crate::node::{Node, NodeEvent};
use crate::replication::{Serving, now_ms};

/// The questions the conversations ask of this instance: who it is, what
/// it holds, how it judges a peer, and what it makes of what peers send.
pub(crate) trait Instance: Clone + Send + Sync + 'static {
    /// This instance's key.
    fn peer_id(&self) -> PeerKey;
    /// This instance's signed hello (its checkpoint).
    fn signed_hello(&self) -> impl Future<Output = SignedHello> + Send;
    /// How to treat `peer`, given its hello.
    fn judge(&self, peer: &PeerKey, hello: &SignedHello) -> impl Future<Output = Verdict> + Send;
    /// Looks at a judged member's checkpoint for evidence against it.
    fn check_checkpoint(
        &self,
        hello: &SignedHello,
    ) -> impl Future<Output = Result<(), NodeError>> + Send;
    /// Whether `peer` is a member in good standing (as of the last
    /// published replica; never waits).
    fn is_member(&self, peer: &PeerKey) -> bool;
    /// How much of the op set this instance serves `peer`.
    fn serving(&self, peer: &PeerKey) -> impl Future<Output = Serving> + Send;
    /// The sorted op-id set to reconcile, dated up to `until` if given.
    fn reconcile_set(
        &self,
        until: Option<Hlc>,
    ) -> impl Future<Output = Result<Arc<NegentropyStorageVector>, NodeError>> + Send;
    /// The canonical bytes of the held ops among `ids`.
    fn ops_for(&self, ids: &[OpId])
    -> impl Future<Output = Result<Vec<Vec<u8>>, NodeError>> + Send;
    /// Runs ops a peer sent through the ingest pipeline.
    fn ingest_remote(
        &self,
        batch: Vec<Vec<u8>>,
    ) -> impl Future<Output = Result<IngestOutcome, NodeError>> + Send;
    /// Ingests what a pull fetched (any number of ops, in chain order).
    fn ingest_pulled(
        &self,
        ops: Vec<Vec<u8>>,
    ) -> impl Future<Output = Result<(), NodeError>> + Send;
    /// The length of `peer`'s chain here.
    fn chain_head_of(&self, peer: &PeerKey) -> impl Future<Output = u64> + Send;
    /// How far `peer`'s chain goes here, with its op at that seq.
    fn chain_head_with_op(
        &self,
        peer: &PeerKey,
    ) -> impl Future<Output = Result<(u64, Option<Vec<u8>>), NodeError>> + Send;
    /// Whether `op` is this instance's own signed op at `seq`.
    fn proves_own_chain_head(
        &self,
        seq: u64,
        op: Option<&[u8]>,
    ) -> impl Future<Output = bool> + Send;
    /// The evidence this instance holds as proven.
    fn proven_evidence(&self) -> impl Future<Output = Result<Vec<Vec<u8>>, NodeError>> + Send;
    /// The proven evidence against `peer`, if held.
    fn evidence_against(&self, peer: &PeerKey) -> impl Future<Output = Option<Vec<u8>>> + Send;
    /// Checks evidence a peer sent and acts on it.
    fn accept_evidence(
        &self,
        signed: SignedEvidence,
    ) -> impl Future<Output = Result<EvidenceOutcome, NodeError>> + Send;
    /// Adopts deprecations a quorum of members announces.
    fn adopt_pending_evidence(&self) -> impl Future<Output = Result<(), NodeError>> + Send;
    /// Checks again evidence that waited for ops now held.
    fn retry_pending_evidence(&self) -> impl Future<Output = Result<(), NodeError>> + Send;
    /// The members in good standing this instance is not connected to.
    fn unreachable_members(&self) -> impl Future<Output = Vec<PeerKey>> + Send;
    /// Keeps where `peer` can be reached, for the next start.
    fn remember_addrs(&self, peer: PeerKey, addrs: Vec<String>) -> impl Future<Output = ()> + Send;
    /// Answers `peer`'s signed join request.
    fn handle_join(
        &self,
        peer: &PeerKey,
        request: &[u8],
    ) -> impl Future<Output = Result<JoinAnswer, NodeError>> + Send;
    /// Where `peer`'s join stands here: status, approvals, approvals needed.
    fn join_status_of(
        &self,
        peer: &PeerKey,
    ) -> impl Future<Output = Option<(MemberStatus, u64, u64)>> + Send;
    /// This instance's signed join request for `invite`.
    fn join_request(
        &self,
        invite: &SignedInvite,
        admin_name: &str,
    ) -> impl Future<Output = Result<Vec<u8>, NodeError>> + Send;
    /// Sets the invite being joined through; returns the one before.
    fn set_joining(&self, invite: Option<SignedInvite>) -> Option<SignedInvite>;
    /// Adopts the network's genesis after the inviter took the request.
    fn begin_joining(
        &self,
        invite: &SignedInvite,
        genesis: &[u8],
    ) -> impl Future<Output = Result<(), NodeError>> + Send;
    /// How the join goes, while joining.
    fn join_progress(&self) -> impl Future<Output = Option<JoinProgress>> + Send;
    /// `by` answered this instance's hello: deprecated, for the reason
    /// given, or (`None`) with its own hello. The instance decides what to
    /// believe (see `crate::standing`).
    fn heard_from(&self, by: PeerKey, deprecated: Option<&str>);
    /// Tells the window and the CLI what happened.
    fn emit(&self, event: NodeEvent);
}

/// What the conversations need of the network: ask a peer, tell the swarm,
/// and the table of what is known about peers.
pub(crate) trait Link: Clone + Send + Sync + 'static {
    /// Sends `request` to `peer` and waits for its answer.
    fn request(
        &self,
        peer: PeerId,
        request: Request,
    ) -> impl Future<Output = Result<Response, String>> + Send;
    /// Tells the swarm to dial, disconnect, trust or publish.
    fn command(&self, command: Command) -> impl Future<Output = ()> + Send;
    /// Reads or changes the peer table.
    fn with_shared<T>(&self, f: impl FnOnce(&mut Shared) -> T) -> T;
    /// Starts a conversation with a peer that is no member beside this
    /// one (tracked, and bounded by [`super::MAX_CONVERSATIONS`]).
    fn converse(&self, task: impl Future<Output = ()> + Send + 'static);
    /// Starts a conversation with a member beside this one (tracked).
    fn keep_up(&self, task: impl Future<Output = ()> + Send + 'static);
}

impl Link for NetHandle {
    fn request(
        &self,
        peer: PeerId,
        request: Request,
    ) -> impl Future<Output = Result<Response, String>> + Send {
        NetHandle::request(self, peer, request)
    }

    fn command(&self, command: Command) -> impl Future<Output = ()> + Send {
        NetHandle::command(self, command)
    }

    fn with_shared<T>(&self, f: impl FnOnce(&mut Shared) -> T) -> T {
        NetHandle::with_shared(self, f)
    }

    fn converse(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.converse(task);
    }

    fn keep_up(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.keep_up(task);
    }
}

impl Instance for Node {
    fn peer_id(&self) -> PeerKey {
        Node::peer_id(self)
    }

    async fn signed_hello(&self) -> SignedHello {
        Node::signed_hello(self).await
    }

    async fn judge(&self, peer: &PeerKey, hello: &SignedHello) -> Verdict {
        Node::judge(self, peer, hello).await
    }

    async fn check_checkpoint(&self, hello: &SignedHello) -> Result<(), NodeError> {
        Node::check_checkpoint(self, hello).await
    }

    fn is_member(&self, peer: &PeerKey) -> bool {
        self.inner().ledger.facts().members.contains(peer)
    }

    async fn serving(&self, peer: &PeerKey) -> Serving {
        Node::serving(self, peer).await
    }

    async fn reconcile_set(
        &self,
        until: Option<Hlc>,
    ) -> Result<Arc<NegentropyStorageVector>, NodeError> {
        Node::reconcile_set(self, until).await
    }

    async fn ops_for(&self, ids: &[OpId]) -> Result<Vec<Vec<u8>>, NodeError> {
        Node::ops_for(self, ids).await
    }

    async fn ingest_remote(&self, batch: Vec<Vec<u8>>) -> Result<IngestOutcome, NodeError> {
        Node::ingest_remote(self, batch).await
    }

    async fn ingest_pulled(&self, ops: Vec<Vec<u8>>) -> Result<(), NodeError> {
        Node::ingest_pulled(self, ops).await
    }

    async fn chain_head_of(&self, peer: &PeerKey) -> u64 {
        Node::chain_head_of(self, peer).await
    }

    async fn chain_head_with_op(
        &self,
        peer: &PeerKey,
    ) -> Result<(u64, Option<Vec<u8>>), NodeError> {
        Node::chain_head_with_op(self, peer).await
    }

    async fn proves_own_chain_head(&self, seq: u64, op: Option<&[u8]>) -> bool {
        Node::proves_own_chain_head(self, seq, op).await
    }

    async fn proven_evidence(&self) -> Result<Vec<Vec<u8>>, NodeError> {
        Node::proven_evidence(self).await
    }

    async fn evidence_against(&self, peer: &PeerKey) -> Option<Vec<u8>> {
        Node::evidence_against(self, peer).await
    }

    async fn accept_evidence(&self, signed: SignedEvidence) -> Result<EvidenceOutcome, NodeError> {
        Node::accept_evidence(self, signed).await
    }

    async fn adopt_pending_evidence(&self) -> Result<(), NodeError> {
        Node::adopt_pending_evidence(self).await
    }

    async fn retry_pending_evidence(&self) -> Result<(), NodeError> {
        Node::retry_pending_evidence(self).await
    }

    async fn unreachable_members(&self) -> Vec<PeerKey> {
        self.members().await.map_or_else(
            |_| Vec::new(),
            |members| {
                members
                    .into_iter()
                    .filter(|m| !m.is_self && !m.online && m.status == MemberStatus::Member)
                    .map(|m| m.peer_id)
                    .collect()
            },
        )
    }

    async fn remember_addrs(&self, peer: PeerKey, addrs: Vec<String>) {
        if let Err(e) = self
            .inner()
            .store
            .save_peer_addrs(&peer.to_string(), &addrs, now_ms())
            .await
        {
            tracing::debug!("remembering addresses of {peer}: {e}");
        }
    }

    async fn handle_join(&self, peer: &PeerKey, request: &[u8]) -> Result<JoinAnswer, NodeError> {
        Node::handle_join(self, peer, request).await
    }

    async fn join_status_of(&self, peer: &PeerKey) -> Option<(MemberStatus, u64, u64)> {
        Node::join_status_of(self, peer).await
    }

    async fn join_request(
        &self,
        invite: &SignedInvite,
        admin_name: &str,
    ) -> Result<Vec<u8>, NodeError> {
        Node::join_request(self, invite, admin_name).await
    }

    fn set_joining(&self, invite: Option<SignedInvite>) -> Option<SignedInvite> {
        match self.inner().joining.lock() {
            Ok(mut joining) => std::mem::replace(&mut *joining, invite),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), invite),
        }
    }

    async fn begin_joining(&self, invite: &SignedInvite, genesis: &[u8]) -> Result<(), NodeError> {
        Node::begin_joining(self, invite, genesis).await
    }

    async fn join_progress(&self) -> Option<JoinProgress> {
        Node::join_progress(self).await
    }

    fn heard_from(&self, by: PeerKey, deprecated: Option<&str>) {
        let replica = self.inner().ledger.snapshot();
        self.inner()
            .standing
            .heard_from(by, deprecated, replica.as_deref());
    }

    fn emit(&self, event: NodeEvent) {
        Node::emit(self, event);
    }
}

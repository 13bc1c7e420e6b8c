//! The replica: the deterministic state machine of one network.
//!
//! It holds the genesis, the member table, every origin's op chain, every
//! record's merge state, and the two digests. [`Replica::apply`] checks an op
//! (network, chain, membership, rules) and applies it, or rejects it with a
//! typed reason and changes nothing. The state is a pure function of the set
//! of applied ops: any order and any duplication give the same roots.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::charter::{Charter, CharterError, SignedGenesis};
use crate::digest::DigestTree;
use crate::evidence::Finding;
use crate::governance::{
    self, Folded, GovernanceAction, GovernanceEntry, KeptFold, Member, MemberStatus, ProposalState,
    Touched,
};
use crate::hash::{Hash32, NetworkId, OpId};
use crate::hlc::Hlc;
use crate::identity::PeerKey;
use crate::op::{Context, MAX_CONTEXT_ORIGINS, OpBody, Payload, VerifiedOp};
use crate::record::{RecordAction, RecordError, RecordId, RecordState, RecordView, Stamp};
use crate::snapshot::ReplicaSnapshot;

/// Why an op was not applied. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpRejection {
    /// The op belongs to another network.
    #[error("the op belongs to another network ({0})")]
    WrongNetwork(NetworkId),
    /// The origin is not a member of this network.
    #[error("{0} is not a member of this network")]
    NotAMember(PeerKey),
    /// Earlier ops of the same origin are missing.
    #[error("op {got} of {origin} arrived before op {expected}")]
    ChainGap {
        /// The origin.
        origin: PeerKey,
        /// The next seq this replica expects.
        expected: u64,
        /// The seq received.
        got: u64,
    },
    /// The op's `prev` does not name the origin's previous op.
    #[error("op {seq} of {origin} does not follow its previous op")]
    BrokenChain {
        /// The origin.
        origin: PeerKey,
        /// The seq received.
        seq: u64,
    },
    /// The origin signed two different ops with the same seq.
    #[error("{origin} signed two different ops with seq {seq}")]
    Equivocation {
        /// The origin.
        origin: PeerKey,
        /// The seq both ops claim.
        seq: u64,
        /// The op this replica holds at that seq.
        existing: OpId,
    },
    /// The record change breaks the limits or the charter's schema.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// An update or delete of a record whose creation is not known yet.
    #[error("record {0} does not exist (yet)")]
    MissingRecord(RecordId),
    /// A governance op is malformed (e.g. a join request whose signature
    /// does not verify).
    #[error("invalid governance op: {0}")]
    BadGovernance(String),
    /// The origin was deprecated (verified evidence) and this op is at or
    /// after its cutoff.
    #[error("{origin} was deprecated ({reason}); its ops from seq {cutoff} on are refused")]
    Deprecated {
        /// The origin.
        origin: PeerKey,
        /// Its first refused seq.
        cutoff: u64,
        /// Why.
        reason: String,
    },
    /// The origin was removed by vote, and this op is past the last
    /// position of its chain that the deciding votes had seen. Transient:
    /// a vote applied later may have seen further.
    #[error("{0} was removed from the network by vote")]
    Removed(PeerKey),
    /// A governance op's causal context is malformed or goes back behind
    /// its signer's previous one: a signed rule violation.
    #[error("invalid causal context: {0}")]
    BadContext(String),
    /// A governance op names ops of another origin this replica does not
    /// hold yet.
    #[error("the op's signer had seen op {seq} of {origin}, which is not here yet")]
    MissingContext {
        /// The origin whose ops are missing.
        origin: PeerKey,
        /// How far the signer had seen its chain.
        seq: u64,
    },
    /// The op's clock is beyond what any instance can hold (past the year
    /// 9999, or a counter at its limit): refused always, and evidence.
    #[error("the op's clock is out of range: {0}")]
    BadClock(String),
    /// The network has too few members to accept records (invariant 1).
    #[error(
        "the network is still forming: it has {members} of the {needed} members it needs before records can be written"
    )]
    Forming {
        /// Current members.
        members: usize,
        /// Members needed.
        needed: usize,
    },
}

impl OpRejection {
    /// Whether the op may become acceptable once other ops arrive (a gap in
    /// the chain, an admission not yet seen), as opposed to being invalid
    /// for good.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            OpRejection::NotAMember(_)
                | OpRejection::ChainGap { .. }
                | OpRejection::MissingRecord(_)
                | OpRejection::Forming { .. }
                | OpRejection::Removed(_)
                | OpRejection::MissingContext { .. }
        )
    }
}

/// The first byte of a checkpoint ([`Replica::to_checkpoint`]): a build
/// that lays the replica out differently changes it.
const CHECKPOINT_FORMAT: u8 = 1;

/// Why and from where an instance is deprecated.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[cfg_attr(feature = "sealed-log", derive(serde::Deserialize))]
pub struct Deprecation {
    /// Its ops from this seq on are refused.
    pub cutoff: u64,
    /// Why, in plain words.
    pub reason: String,
    /// The evidence that proved it.
    pub evidence: Hash32,
}

/// What applying an op did.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Applied {
    /// The op was new and is now part of the state. For a record op, the
    /// record's new version.
    New(Option<Box<RecordView>>),
    /// The op was already applied; nothing changed.
    Duplicate,
}

/// The state of one network as seen by one instance. It serializes into a
/// checkpoint ([`Replica::to_checkpoint`]) that only the instance that
/// wrote it reads back ([`Replica::from_own_checkpoint`]).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "sealed-log", derive(serde::Deserialize))]
pub struct Replica {
    genesis: SignedGenesis,
    network_id: NetworkId,
    charter: Charter,
    members: BTreeMap<PeerKey, Member>,
    proposals: BTreeMap<OpId, std::sync::Arc<ProposalState>>,
    ever_approved: std::collections::BTreeSet<crate::hash::CodeHash>,
    deprecations: BTreeMap<PeerKey, Deprecation>,
    governance: BTreeMap<(Hlc, OpId), GovernanceEntry>,
    /// The fold of `governance`, kept to fold new ops in place.
    folder: KeptFold,
    needs_rebuild: bool,
    /// While rebuilding: per origin, the last seq that counts in the end
    /// (see [`rebuild_hints`](Self::rebuild_hints)).
    hints: BTreeMap<PeerKey, u64>,
    /// Per origin, the applied ops in seq order: id and clock.
    chains: HashMap<PeerKey, Vec<(OpId, Hlc)>>,
    /// Per origin, the context of its latest applied governance op.
    contexts: HashMap<PeerKey, Context>,
    /// The proposals each origin has voted on (one vote per member and
    /// proposal: a second is a rule violation).
    votes_cast: HashMap<PeerKey, std::collections::HashSet<OpId>>,
    records: HashMap<RecordId, RecordState>,
    ops_tree: DigestTree,
    state_tree: DigestTree,
    op_count: u64,
    latest_hlc: Hlc,
}

/// Whether `member` is admitted and not removed, deprecated or not (see
/// [`Replica::answers_for_its_ops`]).
fn answers_for_its_ops(member: &Member) -> bool {
    (member.status == MemberStatus::Member || member.status == MemberStatus::Deprecated)
        && member.since.is_some()
        && member.removed_at.is_none()
}

impl Replica {
    /// A replica holding only the genesis: the founder is the one member.
    pub fn new(genesis: SignedGenesis) -> Result<Self, CharterError> {
        genesis.verify()?;
        let network_id = genesis.network_id();
        let charter = genesis.genesis.charter.clone();
        let mut replica = Replica {
            network_id,
            charter,
            members: BTreeMap::new(),
            proposals: BTreeMap::new(),
            ever_approved: std::collections::BTreeSet::new(),
            deprecations: BTreeMap::new(),
            governance: BTreeMap::new(),
            folder: KeptFold::fold(&genesis, &BTreeMap::new(), BTreeMap::new()),
            needs_rebuild: false,
            hints: BTreeMap::new(),
            chains: HashMap::new(),
            contexts: HashMap::new(),
            votes_cast: HashMap::new(),
            records: HashMap::new(),
            ops_tree: DigestTree::new(),
            state_tree: DigestTree::new(),
            op_count: 0,
            latest_hlc: Hlc::default(),
            genesis,
        };
        replica
            .state_tree
            .insert(charter_key(), replica.charter.hash());
        replica.refold();
        Ok(replica)
    }

    /// Folds the governance ops again from the genesis (after a deprecation,
    /// or an op that sorts before others already folded) and publishes
    /// every row.
    fn refold(&mut self) {
        let reasons = self
            .deprecations
            .iter()
            .map(|(peer, d)| (*peer, d.reason.clone()))
            .collect();
        self.folder = KeptFold::fold(&self.genesis, &self.governance, reasons);
        self.publish_all();
    }

    /// Publishes every row of the fold (after folding again from an
    /// earlier point, anything may have changed).
    fn publish_all(&mut self) {
        let mut touched = self.folder.take_touched();
        touched.members.extend(self.members.keys().copied());
        touched
            .members
            .extend(self.folder.current().governed().members.keys().copied());
        touched.charter = true;
        self.proposals = self.folder.current().governed().proposals.clone();
        self.publish(touched);
    }

    /// Folds in one governance op just inserted: in place when it sorts
    /// after every op folded so far, from an earlier point otherwise
    /// ([`KeptFold::insert`]).
    fn fold_in(&mut self, key: (Hlc, OpId)) {
        // `deprecate` folds again itself, so the folder's deprecations are
        // always this replica's.
        match self.folder.insert(&self.genesis, key, &self.governance) {
            Folded::InPlace => {
                let touched = self.folder.take_touched();
                for id in &touched.proposals {
                    if let Some(state) = self.folder.current().governed().proposals.get(id) {
                        self.proposals.insert(*id, state.clone());
                    }
                }
                self.publish(touched);
            }
            Folded::Again => self.publish_all(),
        }
    }

    /// Copies the rows the fold `touched` into the member table, charter
    /// and state tree. Flags a rebuild when ops already applied may no
    /// longer count: those of a member that lost its admission, or past a
    /// removed member's last counted seq.
    fn publish(&mut self, touched: Touched) {
        for peer in touched.members {
            let new = self.folder.current().member(&peer);
            if let Some(old) = self.members.get(&peer) {
                let cut = match &new {
                    None => old.since.is_some(),
                    // A changed cut-off changes which creations count.
                    Some(m) if m.status == MemberStatus::Removed => {
                        (old.status == MemberStatus::Removed && m.last_seq != old.last_seq)
                            || m.last_seq.is_none_or(|last| self.chain_len(&peer) > last)
                    }
                    Some(m) => old.since.is_some() && m.since.is_none(),
                };
                self.needs_rebuild |= cut;
            }
            match new {
                None => {
                    self.state_tree.remove(&member_key(&peer));
                    self.members.remove(&peer);
                }
                Some(row) => {
                    if self.members.get(&peer) != Some(&row) {
                        self.state_tree.insert(member_key(&peer), row.digest());
                        self.members.insert(peer, row);
                    }
                }
            }
        }
        if touched.charter {
            let governed = self.folder.current().governed();
            if governed.charter != self.charter {
                self.charter = governed.charter.clone();
                self.state_tree.insert(charter_key(), self.charter.hash());
            }
            self.ever_approved = governed.ever_approved.clone();
        }
    }

    /// Records verified evidence: the offender is deprecated and its ops
    /// from the cutoff on are refused. Returns whether ops already applied
    /// must now be taken out (the state must be rebuilt from the op log;
    /// see [`needs_rebuild`](Self::needs_rebuild)).
    pub fn deprecate(&mut self, finding: &Finding, evidence: Hash32) -> bool {
        let entry = self
            .deprecations
            .entry(finding.offender)
            .or_insert_with(|| Deprecation {
                cutoff: finding.cutoff,
                reason: finding.reason.clone(),
                evidence,
            });
        if (finding.cutoff, evidence) < (entry.cutoff, entry.evidence) {
            *entry = Deprecation {
                cutoff: finding.cutoff,
                reason: finding.reason.clone(),
                evidence,
            };
        }
        self.refold();
        let must_rebuild = self.chain_len(&finding.offender) >= finding.cutoff;
        self.needs_rebuild |= must_rebuild;
        must_rebuild
    }

    /// Why and from where `peer` is deprecated, if it is.
    pub fn deprecation(&self, peer: &PeerKey) -> Option<&Deprecation> {
        self.deprecations.get(peer)
    }

    /// Every proposal, open or decided.
    pub fn proposals(&self) -> impl Iterator<Item = &ProposalState> {
        self.proposals.values().map(|state| &**state)
    }

    /// Makes the state root reflect records as stored elsewhere instead of
    /// as the ops say. Only for an instance told to serve damaged data
    /// (`dan run --serve-damaged`): its state root then differs from every
    /// honest instance's, which is how the network notices.
    pub fn serve_stored(&mut self, views: &[RecordView]) {
        for view in views {
            if self.record(&view.id).as_ref() != Some(view) {
                self.state_tree
                    .insert(state_key_of_record(&view.id), view.digest());
            }
        }
    }

    /// Whether the charter approves, or ever approved, `code`.
    pub fn ever_approved(&self, code: &crate::hash::CodeHash) -> bool {
        self.ever_approved.contains(code)
    }

    /// Whether a late governance op changed past membership decisions, so
    /// the state must be rebuilt from the op log (see `dan-node`).
    pub fn needs_rebuild(&self) -> bool {
        self.needs_rebuild
    }

    /// What a rebuild from the op log must refuse from the start so that it
    /// ends in the state of applying the whole set in any order: per origin
    /// whose applied chain goes past what counts, the last seq that counts
    /// (a removal's cut-off; 0 for an origin that is not admitted in the
    /// end). Empty when nothing must be cut.
    ///
    /// Origins hinted for this pass are judged again (a hint may have to be
    /// lifted: with one origin cut, another may count after all), so a
    /// rebuild is done when the hints it was given are the ones it returns.
    pub fn rebuild_hints(&self) -> BTreeMap<PeerKey, u64> {
        let origins: std::collections::BTreeSet<PeerKey> = self
            .chains
            .iter()
            .filter(|(_, chain)| !chain.is_empty())
            .map(|(peer, _)| *peer)
            .chain(self.hints.keys().copied())
            .collect();
        origins
            .into_iter()
            .filter_map(|peer| {
                let last = match self.members.get(&peer) {
                    Some(m) if m.status == MemberStatus::Removed => m.last_seq?,
                    Some(m) if m.since.is_some() => return None,
                    _ => 0,
                };
                let cut = self.chain_len(&peer) > last || self.hints.contains_key(&peer);
                cut.then_some((peer, last))
            })
            .collect()
    }

    /// Starts a rebuild that refuses, per origin, the ops after `hints`'
    /// seq (from [`rebuild_hints`](Self::rebuild_hints) of an earlier pass).
    pub fn hint_rebuild(&mut self, hints: BTreeMap<PeerKey, u64>) {
        self.hints = hints;
    }

    /// Ends a rebuild: the hints are dropped (later ops may make more of
    /// those chains count) and the state no longer needs rebuilding.
    pub fn finish_rebuild(&mut self) {
        self.hints.clear();
        self.needs_rebuild = false;
    }

    /// The last seq of `peer`'s chain that counts here, if it is cut off
    /// (deprecated, removed, or hinted while rebuilding).
    fn last_counted(&self, peer: &PeerKey) -> Option<u64> {
        let deprecated = self
            .deprecations
            .get(peer)
            .map(|d| d.cutoff.saturating_sub(1));
        let removed = self.members.get(peer).and_then(|m| m.last_seq);
        [deprecated, removed, self.hints.get(peer).copied()]
            .into_iter()
            .flatten()
            .min()
    }

    /// One member-table row.
    pub fn member(&self, peer: &PeerKey) -> Option<&Member> {
        self.members.get(peer)
    }

    /// The join request approved for `peer`, if any.
    /// Of the versions its approvals carry, the newest that names the seat
    /// its row says it takes over (approvals of another version do not
    /// count, so approving one again would change nothing).
    pub fn join_request(&self, peer: &PeerKey) -> Option<&crate::invite::SignedJoinRequest> {
        self.approved_requests()
            .find(|request| request.request.joiner == *peer)
    }

    /// The approved join requests, newest first, of the versions that name
    /// the seat their joiner's row says it takes over.
    fn approved_requests(&self) -> impl Iterator<Item = &crate::invite::SignedJoinRequest> {
        self.governance
            .values()
            .rev()
            .filter_map(|entry| match &entry.action {
                GovernanceAction::Approve { request } => Some(request.as_ref()),
                _ => None,
            })
            .filter(|request| {
                let seat = self.member(&request.request.joiner).map(|m| m.succeeds);
                seat.is_none_or(|seat| {
                    request.request.succeeds.as_ref().map(|s| s.predecessor) == seat
                })
            })
    }

    /// The whole replica as bytes, for an instance to read back at its
    /// next start instead of replaying its op log
    /// ([`from_own_checkpoint`](Self::from_own_checkpoint)).
    pub fn to_checkpoint(&self) -> Vec<u8> {
        assert!(
            self.ops_tree.is_current() && self.state_tree.is_current(),
            "a checkpoint of a replica in the middle of a batch"
        );
        let mut bytes = vec![CHECKPOINT_FORMAT];
        // A replica holds only maps, sets, vectors and plain values, all
        // of which postcard writes.
        postcard::to_io(self, &mut bytes).expect("a replica always serializes");
        bytes
    }

    /// Reads back a checkpoint of the network of `genesis` that this
    /// instance wrote ([`to_checkpoint`](Self::to_checkpoint)) and proved
    /// unchanged since (dan-node's clean-close seal names its hash). Its
    /// content is believed as it is, rules and digests included: bytes from
    /// anywhere else go through [`apply`](Self::apply) op by op.
    #[cfg(feature = "sealed-log")]
    pub fn from_own_checkpoint(
        genesis: &SignedGenesis,
        bytes: &[u8],
    ) -> Result<Replica, crate::codec::CodecError> {
        use crate::codec::CodecError;
        let Some((&CHECKPOINT_FORMAT, body)) = bytes.split_first() else {
            return Err(CodecError::Malformed(
                "not a checkpoint of this version".into(),
            ));
        };
        let replica: Replica =
            postcard::from_bytes(body).map_err(|e| CodecError::Malformed(e.to_string()))?;
        if replica.genesis != *genesis || replica.network_id != genesis.network_id() {
            return Err(CodecError::Malformed(
                "the checkpoint is of another network".into(),
            ));
        }
        Ok(replica)
    }

    /// What this replica says about its network now, as a value to read
    /// without holding the replica.
    pub fn snapshot(&self) -> ReplicaSnapshot {
        let mut join_requests = BTreeMap::new();
        for request in self.approved_requests() {
            join_requests
                .entry(request.request.joiner)
                .or_insert_with(|| request.clone());
        }
        ReplicaSnapshot {
            network_id: self.network_id,
            charter: self.charter.clone(),
            members: self.members.clone(),
            voters: self.voters(),
            join_requests,
            proposals: self.proposals.values().cloned().collect(),
            ever_approved: self.ever_approved.clone(),
            forming: self.is_forming(),
            deprecations: self.deprecations.clone(),
            chains: self
                .chains
                .iter()
                .filter_map(|(origin, chain)| {
                    Some((*origin, (chain.len() as u64, chain.last()?.0)))
                })
                .collect(),
            op_count: self.op_count,
            ops_root: self.ops_root(),
            state_root: self.state_root(),
            deprecations_root: self.deprecations_root(),
        }
    }

    /// Whether `peer` is a member in good standing.
    pub fn is_member(&self, peer: &PeerKey) -> bool {
        self.member(peer)
            .is_some_and(|m| m.status == MemberStatus::Member)
    }

    /// Whether evidence against `peer` can be judged here: it is an admitted
    /// member not removed, deprecated ones included, and so is a deprecated
    /// key whose seat a successor took over (its ops before its cutoff
    /// still count, so evidence that lowers the cutoff must stay decidable
    /// everywhere, whether or not the hand-over is known yet).
    pub fn answers_for_its_ops(&self, peer: &PeerKey) -> bool {
        self.member(peer).is_some_and(answers_for_its_ops)
    }

    /// The members whose votes count and who count in every quorum: every
    /// admitted member not removed, deprecated ones included (their votes
    /// from before their cutoff stand, and a deprecation never lowers the
    /// bar), except a deprecated one whose seat a successor (its
    /// readmission) took over. The governance fold decides with the same set.
    pub fn voters(&self) -> std::collections::BTreeSet<PeerKey> {
        self.members()
            .filter(|m| answers_for_its_ops(m) && m.succeeded_by.is_none())
            .map(|m| m.peer)
            .collect()
    }

    /// The signed genesis.
    pub fn genesis(&self) -> &SignedGenesis {
        &self.genesis
    }

    /// The network id.
    pub fn network_id(&self) -> NetworkId {
        self.network_id
    }

    /// The current charter.
    pub fn charter(&self) -> &Charter {
        &self.charter
    }

    /// The member table (members, pending and rejected candidates).
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// Members in good standing.
    pub fn member_count(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.status == MemberStatus::Member)
            .count()
    }

    /// Instances admitted and not removed by vote, deprecated ones
    /// included (what the forming message counts).
    fn admitted_count(&self) -> usize {
        self.voters().len()
    }

    /// Whether the network has not yet formed: it never had `min_members`
    /// admitted members at once in the governance fold. Once formed it
    /// stays formed, so that a record op (which names no governance state)
    /// is judged the same whether an instance learnt of a removal or a
    /// deprecation before or after it; a replay of the op log also applies
    /// deprecations from the start.
    pub fn is_forming(&self) -> bool {
        !self.folder.current().governed().formed
    }

    /// Digest of the deprecations (offender and cutoff) this replica
    /// applies. The state is a function of the ops *and* of these, so two
    /// checkpoints describe the same inputs only if both roots match.
    pub fn deprecations_root(&self) -> Hash32 {
        self.deprecations_root_with(&[])
    }

    /// The deprecations root this replica would have after also applying
    /// `findings`.
    pub fn deprecations_root_with(&self, findings: &[&Finding]) -> Hash32 {
        let mut cutoffs: BTreeMap<PeerKey, u64> = self
            .deprecations
            .iter()
            .map(|(p, d)| (*p, d.cutoff))
            .collect();
        for finding in findings {
            let cutoff = cutoffs.entry(finding.offender).or_insert(finding.cutoff);
            *cutoff = (*cutoff).min(finding.cutoff);
        }
        let entries: Vec<(PeerKey, u64)> = cutoffs.into_iter().collect();
        Hash32::tagged("dan deprecations v1", &[&crate::codec::encode(&entries)])
    }

    /// Digest of the set of applied op ids.
    pub fn ops_root(&self) -> Hash32 {
        self.ops_tree.root()
    }

    /// Digest of the materialized state.
    pub fn state_root(&self) -> Hash32 {
        self.state_tree.root()
    }

    /// The state digest tree, for locating differences.
    pub fn state_tree(&self) -> &DigestTree {
        &self.state_tree
    }

    /// Number of applied ops.
    pub fn op_count(&self) -> u64 {
        self.op_count
    }

    /// Every applied op as (wall-clock ms, id), in no particular order. The
    /// clock orders each origin's chain, so syncing in this order mostly
    /// delivers ops after their predecessors.
    pub fn op_stamps(&self) -> impl Iterator<Item = (u64, OpId)> + '_ {
        self.op_clocks().map(|(hlc, id)| (hlc.wall_ms, id))
    }

    /// Every applied op as (clock, id), in no particular order.
    pub fn op_clocks(&self) -> impl Iterator<Item = (Hlc, OpId)> + '_ {
        self.chains.values().flatten().map(|(id, hlc)| (*hlc, *id))
    }

    /// Whether the op is applied.
    pub fn contains(&self, id: &OpId) -> bool {
        self.ops_tree.get(id).is_some()
    }

    /// The latest seq applied for `origin` (0 if none).
    pub fn chain_len(&self, origin: &PeerKey) -> u64 {
        self.chains
            .get(origin)
            .map_or(0, |chain| chain.len() as u64)
    }

    /// The id of `origin`'s latest applied op.
    pub fn chain_last(&self, origin: &PeerKey) -> Option<OpId> {
        self.chains
            .get(origin)
            .and_then(|c| c.last())
            .map(|(id, _)| *id)
    }

    /// The current version of a record.
    pub fn record(&self, id: &RecordId) -> Option<RecordView> {
        self.records.get(id).and_then(RecordState::view)
    }

    /// Whether `origin` has voted on `proposal`, or proposed it (a member
    /// votes once).
    pub fn has_voted(&self, origin: &PeerKey, proposal: &OpId) -> bool {
        self.votes_cast
            .get(origin)
            .is_some_and(|voted| voted.contains(proposal))
    }

    /// Whether writing `action` to record `id` here keeps the record within
    /// the limits of what a record shows (fields merge across changes, so
    /// one change within its own limits can still make a record too big).
    pub fn check_growth(&self, id: &RecordId, action: &RecordAction) -> Result<(), RecordError> {
        self.records
            .get(id)
            .map_or(Ok(()), |state| state.check_growth(action))
    }

    /// Every visible record's current version, in no particular order.
    pub fn records(&self) -> impl Iterator<Item = RecordView> + '_ {
        self.records.values().filter_map(RecordState::view)
    }

    /// The body of the next op `origin` writes: next seq, previous op id,
    /// and a clock after everything this replica has seen.
    /// A governance op also gets its context: how far this replica holds
    /// every other origin's chain, and never less than `origin`'s previous
    /// governance op said (a chain cut off since, by a deprecation, must
    /// not make the context go back). A record update or delete names the
    /// record's first create.
    pub fn next_body(&self, origin: PeerKey, now_ms: u64, payload: Payload) -> OpBody {
        let chain = self.chains.get(&origin);
        let context = match &payload {
            Payload::Record {
                action: RecordAction::Create { .. },
                ..
            } => None,
            Payload::Record { id, .. } => self
                .records
                .get(id)
                .and_then(RecordState::first_create)
                .map(|at| Context::from([at])),
            Payload::Governance(_) => Some(self.governance_context(origin)),
        };
        OpBody {
            network: self.network_id,
            origin,
            seq: chain.map_or(0, Vec::len) as u64 + 1,
            prev: chain
                .and_then(|c| c.last())
                .map_or(Hash32::ZERO, |(id, _)| *id),
            hlc: Hlc::next(self.latest_hlc, now_ms),
            context,
            payload,
        }
    }

    /// What `origin` has seen, for its next governance op.
    fn governance_context(&self, origin: PeerKey) -> Context {
        let mut context: Context = self
            .chains
            .iter()
            .filter(|(peer, chain)| **peer != origin && !chain.is_empty())
            .map(|(peer, chain)| (*peer, chain.len() as u64))
            .collect();
        for (peer, seq) in self.contexts.get(&origin).into_iter().flatten() {
            let held = context.entry(*peer).or_insert(*seq);
            *held = (*held).max(*seq);
        }
        context
    }

    /// Checks `op` against the chain, membership and rules, and applies it.
    /// On rejection nothing changes.
    pub fn apply(&mut self, op: &VerifiedOp) -> Result<Applied, OpRejection> {
        let body = op.body();
        if body.network != self.network_id {
            return Err(OpRejection::WrongNetwork(body.network));
        }
        if let Some(applied) = self.check_chain(op)? {
            return Ok(applied);
        }
        self.check_in_chain(body)?;
        let record: Option<RecordView> = match &body.payload {
            Payload::Record { id, action } => 'record: {
                let RecordEffect::Change { collection } = self.check_record(id, action, body)?
                else {
                    break 'record None;
                };
                let state = self
                    .records
                    .entry(id.clone())
                    .or_insert_with(|| RecordState::new(id.clone()));
                if let RecordAction::Create { .. } = action {
                    state.note_create((body.origin, body.seq), &collection);
                }
                let stamp = Stamp {
                    hlc: body.hlc,
                    op: op.id(),
                };
                state.apply(&collection, action, stamp, body.origin);
                let view = state.view();
                if let Some(view) = &view {
                    self.state_tree
                        .insert(state_key_of_record(id), view.digest());
                }
                view
            }
            Payload::Governance(action) => {
                // The cheap check first: an op held back for its context
                // is retried, and must not cost a signature check each time.
                let context = body.context.clone().unwrap_or_default();
                self.check_context_held(&context)?;
                self.check_governance(action)?;
                self.governance.insert(
                    (body.hlc, op.id()),
                    GovernanceEntry {
                        origin: body.origin,
                        seq: body.seq,
                        context: context.clone(),
                        action: action.clone(),
                    },
                );
                self.contexts.insert(body.origin, context);
                // Proposing counts as the proposer's yes vote.
                let voted = match action {
                    GovernanceAction::Vote { proposal, .. } => Some(*proposal),
                    GovernanceAction::Propose(_) => Some(op.id()),
                    _ => None,
                };
                if let Some(proposal) = voted {
                    self.votes_cast
                        .entry(body.origin)
                        .or_default()
                        .insert(proposal);
                }
                self.fold_in((body.hlc, op.id()));
                None
            }
        };
        self.chains
            .entry(body.origin)
            .or_default()
            .push((op.id(), body.hlc));
        self.ops_tree.insert(op.id(), op.id());
        self.op_count += 1;
        self.latest_hlc = self.latest_hlc.max(body.hlc);
        Ok(Applied::New(record.map(Box::new)))
    }

    /// `Some(Duplicate)` for an op already applied, `None` for the next op
    /// of its origin's chain, an error otherwise.
    fn check_chain(&self, op: &VerifiedOp) -> Result<Option<Applied>, OpRejection> {
        let body = op.body();
        let origin = body.origin;
        let chain = self.chains.get(&origin).map_or(&[][..], Vec::as_slice);
        if body.seq == 0 {
            return Err(OpRejection::BrokenChain { origin, seq: 0 });
        }
        if let Some(existing) = usize::try_from(body.seq - 1)
            .ok()
            .and_then(|i| chain.get(i))
            .map(|(id, _)| id)
        {
            return if *existing == op.id() {
                Ok(Some(Applied::Duplicate))
            } else {
                Err(OpRejection::Equivocation {
                    origin,
                    seq: body.seq,
                    existing: *existing,
                })
            };
        }
        if self.hints.get(&origin).is_some_and(|last| body.seq > *last) {
            return Err(OpRejection::Removed(origin));
        }
        let Some(row) = self.members.get(&origin).filter(|m| m.since.is_some()) else {
            return Err(OpRejection::NotAMember(origin));
        };
        if let Some(d) = self.deprecations.get(&origin)
            && body.seq >= d.cutoff
        {
            return Err(OpRejection::Deprecated {
                origin,
                cutoff: d.cutoff,
                reason: d.reason.clone(),
            });
        }
        if row.last_seq.is_some_and(|last| body.seq > last) {
            return Err(OpRejection::Removed(origin));
        }
        check_clock(&body.hlc)?;
        let expected = chain.len() as u64 + 1;
        if body.seq != expected {
            return Err(OpRejection::ChainGap {
                origin,
                expected,
                got: body.seq,
            });
        }
        if body.prev != chain.last().map_or(Hash32::ZERO, |(id, _)| *id) {
            return Err(OpRejection::BrokenChain {
                origin,
                seq: body.seq,
            });
        }
        Ok(None)
    }

    /// The rules that compare an op with its origin's previous ops (the
    /// same for applying and for checking evidence): its clock is later
    /// than its previous op's, a governance op carries a well-formed
    /// context that does not go back behind its origin's previous one, and
    /// a record op carries none. Needs the origin's chain held exactly up
    /// to the op (`Err(None)` otherwise: undecidable here).
    pub(crate) fn chain_rule_violation(&self, body: &OpBody) -> Result<Option<OpRejection>, ()> {
        let chain = self.chains.get(&body.origin).map_or(&[][..], Vec::as_slice);
        if chain.len() as u64 + 1 != body.seq
            || body.prev != chain.last().map_or(Hash32::ZERO, |(id, _)| *id)
        {
            return Err(());
        }
        Ok(self.check_in_chain(body).err())
    }

    fn check_in_chain(&self, body: &OpBody) -> Result<(), OpRejection> {
        let chain = self.chains.get(&body.origin).map_or(&[][..], Vec::as_slice);
        if let Some((_, previous)) = chain.last()
            && body.hlc <= *previous
        {
            return Err(OpRejection::BadClock(
                "it is not later than the clock of its origin's previous op".into(),
            ));
        }
        let context = match (&body.payload, &body.context) {
            (
                Payload::Record {
                    action: RecordAction::Create { .. },
                    ..
                },
                None,
            ) => return Ok(()),
            (Payload::Record { action, .. }, context) => {
                let names_one_create = matches!(
                    action,
                    RecordAction::Update { .. } | RecordAction::Delete | RecordAction::Restore
                ) && context
                    .as_ref()
                    .is_some_and(|c| c.len() == 1 && c.values().all(|seq| *seq > 0));
                return if names_one_create {
                    Ok(())
                } else {
                    Err(OpRejection::BadContext(
                        "a record create carries no context; an update or delete names the create it builds on".into(),
                    ))
                };
            }
            (Payload::Governance(_), None) => {
                return Err(OpRejection::BadContext(
                    "a governance op must say what its signer had seen".into(),
                ));
            }
            (Payload::Governance(GovernanceAction::Vote { proposal, .. }), _)
                if self.has_voted(&body.origin, proposal) =>
            {
                return Err(OpRejection::BadGovernance(format!(
                    "{} already voted on proposal {}; a member votes once",
                    body.origin,
                    proposal.short()
                )));
            }
            (Payload::Governance(_), Some(context)) => context,
        };
        if context.len() > MAX_CONTEXT_ORIGINS {
            return Err(OpRejection::BadContext(format!(
                "it names {} origins; the limit is {MAX_CONTEXT_ORIGINS}",
                context.len()
            )));
        }
        if context.contains_key(&body.origin) || context.values().any(|seq| *seq == 0) {
            return Err(OpRejection::BadContext(
                "it names its own chain or an empty one".into(),
            ));
        }
        if let Some(previous) = self.contexts.get(&body.origin)
            && let Some((peer, _)) = previous
                .iter()
                .find(|(peer, seq)| context.get(peer).is_none_or(|now| now < seq))
        {
            return Err(OpRejection::BadContext(format!(
                "it has seen less of {peer} than its signer's previous governance op"
            )));
        }
        Ok(())
    }

    /// Whether this replica holds what a governance op's signer had seen:
    /// every named chain as far as the context says, or as far as that
    /// origin's ops count at all (a deprecated or removed origin's later
    /// ops never arrive, and must not stall the honest members who saw
    /// them).
    fn check_context_held(&self, context: &Context) -> Result<(), OpRejection> {
        for (peer, seq) in context {
            let counted = self.last_counted(peer).map_or(*seq, |last| last.min(*seq));
            if self.chain_len(peer) < counted {
                return Err(OpRejection::MissingContext {
                    origin: *peer,
                    seq: counted,
                });
            }
        }
        Ok(())
    }

    /// Whether `body` is one of the records a fork's founder carries over
    /// from the parent network (its first `carried` ops), which are
    /// accepted while the fork is still forming.
    fn is_carried_over(&self, body: &OpBody) -> bool {
        let genesis = &self.genesis.genesis;
        genesis
            .fork_of
            .as_ref()
            .is_some_and(|fork| body.origin == genesis.founder && body.seq <= fork.carried)
    }

    /// Checks a governance op on its own (signatures, network).
    pub(crate) fn check_governance(&self, action: &GovernanceAction) -> Result<(), OpRejection> {
        match action {
            GovernanceAction::Approve { request } => {
                request
                    .verify()
                    .map_err(|e| OpRejection::BadGovernance(e.to_string()))?;
                if request.request.network != self.network_id {
                    return Err(OpRejection::BadGovernance(
                        "the join request is for another network".into(),
                    ));
                }
                Ok(())
            }
            GovernanceAction::Propose(governance::Proposal::Upgrade {
                code_hashes,
                grace_ms,
                builds,
            }) => {
                check_named_builds(code_hashes, builds)?;
                if *grace_ms > governance::MAX_GRACE_MS {
                    return Err(OpRejection::BadGovernance(
                        "the grace period is longer than a year".into(),
                    ));
                }
                Ok(())
            }
            GovernanceAction::Propose(governance::Proposal::AddBuilds {
                code_hashes,
                builds,
            }) => check_named_builds(code_hashes, builds),
            GovernanceAction::Reject { .. }
            | GovernanceAction::Propose(governance::Proposal::Remove { .. })
            | GovernanceAction::Vote { .. } => Ok(()),
        }
    }

    /// Checks a record change against the limits, the forming rule and the
    /// charter's schema.
    pub(crate) fn check_record(
        &self,
        id: &RecordId,
        action: &RecordAction,
        body: &OpBody,
    ) -> Result<RecordEffect, OpRejection> {
        check_record_fields(id, action)?;
        if self.is_forming() && !self.is_carried_over(body) {
            return Err(OpRejection::Forming {
                members: self.admitted_count(),
                needed: self.charter.min_members as usize,
            });
        }
        let collection = match action {
            RecordAction::Create { collection, .. } => collection.as_str(),
            RecordAction::Update { .. } | RecordAction::Delete | RecordAction::Restore => {
                let Some((creator, seq)) = body
                    .context
                    .as_ref()
                    .and_then(|c| c.iter().next())
                    .map(|(p, s)| (*p, *s))
                else {
                    return Err(OpRejection::BadContext(
                        "an update or delete names the create it builds on".into(),
                    ));
                };
                let named = self
                    .records
                    .get(id)
                    .and_then(|r| r.created_in(&(creator, seq)));
                match named {
                    Some(collection) => collection,
                    // The creation is cut off (its origin deprecated or
                    // removed before it): the change counts as its origin's
                    // op, so its chain goes on, but changes nothing.
                    None if self.last_counted(&creator).is_some_and(|last| last < seq) => {
                        return Ok(RecordEffect::Nothing);
                    }
                    // Not held yet, or held but not (here) a creation of
                    // this record: it waits. The named position may hold
                    // another version of an equivocating origin's op, so
                    // this is never called a violation.
                    None => return Err(OpRejection::MissingRecord(id.clone())),
                }
            }
        };
        self.charter.schema.check(collection, action)?;
        Ok(RecordEffect::Change {
            collection: collection.to_owned(),
        })
    }
}

/// What a valid record op does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RecordEffect {
    /// It changes the record's state in `collection` (the one its create
    /// named).
    Change {
        /// The collection of the create the change builds on.
        collection: String,
    },
    /// It names a creation that is cut off: it changes nothing.
    Nothing,
}

/// Checks the builds a software proposal names: 1 to `MAX_UPGRADE_HASHES`
/// hashes, and labels only for those hashes (`build::check_labels`).
fn check_named_builds(
    code_hashes: &std::collections::BTreeSet<crate::hash::CodeHash>,
    builds: &std::collections::BTreeMap<crate::hash::CodeHash, crate::BuildLabel>,
) -> Result<(), OpRejection> {
    if code_hashes.is_empty() || code_hashes.len() > governance::MAX_UPGRADE_HASHES {
        return Err(OpRejection::BadGovernance(format!(
            "a software proposal names 1 to {} code hashes",
            governance::MAX_UPGRADE_HASHES
        )));
    }
    crate::build::check_labels(builds, |h| code_hashes.contains(h))
        .map_err(|e| OpRejection::BadGovernance(e.to_string()))
}

/// Highest counter a clock may carry; `Hlc::next` moves to the next
/// millisecond before it, so a peer's clock can never leave this instance
/// unable to stamp its own ops.
pub const MAX_COUNTER: u32 = u32::MAX - 1;

/// Latest wall time an op may carry: the last millisecond of the year 9999,
/// far below what the store (signed 64-bit) and every clock can represent.
pub const MAX_WALL_MS: u64 = 253_402_300_799_999;

/// Checks an op's clock is representable everywhere (the same rule for
/// applying and for checking evidence). A clock far ahead of the receiver's
/// but within range is not invalid: the instance holds such ops back until
/// its own clock gets there.
pub fn check_clock(hlc: &crate::Hlc) -> Result<(), OpRejection> {
    if hlc.wall_ms > MAX_WALL_MS {
        return Err(OpRejection::BadClock(format!(
            "{} ms since 1970 is after the year 9999",
            hlc.wall_ms
        )));
    }
    if hlc.counter > MAX_COUNTER {
        return Err(OpRejection::BadClock("its counter is at its limit".into()));
    }
    Ok(())
}

/// Checks a record op's own fields: a well-formed id (ops from peers are
/// decoded, not built through `RecordId::new`) and the record limits. The
/// same rule for applying and for checking evidence.
pub fn check_record_fields(id: &RecordId, action: &RecordAction) -> Result<(), RecordError> {
    crate::record::check_name("record id", id.as_str())?;
    action.check_limits()
}

/// The state-root key of a record, for locating which records differ.
pub fn state_key_of_record(id: &RecordId) -> Hash32 {
    Hash32::tagged("dan state key record", &[id.as_str().as_bytes()])
}

fn member_key(peer: &PeerKey) -> Hash32 {
    Hash32::tagged("dan state key member", &[&peer.0])
}

fn charter_key() -> Hash32 {
    Hash32::tagged("dan state key charter", &[])
}

/// The result of applying a batch of verified ops.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Ops applied, in the order applied, with the record version each
    /// produced.
    pub applied: Vec<(VerifiedOp, Option<RecordView>)>,
    /// Ops that may become acceptable later (see
    /// [`OpRejection::is_transient`]), with the reason.
    pub deferred: Vec<(VerifiedOp, OpRejection)>,
    /// Ops that are invalid for good, with the reason.
    pub rejected: Vec<(VerifiedOp, OpRejection)>,
    /// Ops that were already applied.
    pub duplicates: usize,
}

impl Replica {
    /// Applies a batch of ops in whatever order they arrived: ops are sorted
    /// by clock (which is chain order), and ops that wait for others in the same batch are
    /// retried until no more progress is made.
    pub fn apply_batch(&mut self, ops: Vec<VerifiedOp>) -> BatchOutcome {
        // The digests are hashed once at the end, not at every op.
        self.ops_tree.defer();
        self.state_tree.defer();
        let outcome = self.apply_in_order(ops);
        self.ops_tree.catch_up();
        self.state_tree.catch_up();
        outcome
    }

    /// [`apply_batch`](Self::apply_batch) with the digests deferred.
    fn apply_in_order(&mut self, mut ops: Vec<VerifiedOp>) -> BatchOutcome {
        // Clock order is chain order (clocks increase along every chain),
        // and lets the governance fold fold each op in place.
        ops.sort_by(|a, b| {
            let key = |op: &VerifiedOp| (op.body().hlc, op.body().origin, op.body().seq, op.id());
            key(a).cmp(&key(b))
        });
        ops.dedup_by_key(|op| op.id());
        let mut outcome = BatchOutcome::default();
        let mut waiting = ops;
        loop {
            let before = outcome.applied.len();
            let mut still_waiting = Vec::new();
            for op in waiting {
                match self.apply(&op) {
                    Ok(Applied::New(view)) => outcome.applied.push((op, view.map(|v| *v))),
                    Ok(Applied::Duplicate) => outcome.duplicates += 1,
                    Err(reason) if reason.is_transient() => still_waiting.push((op, reason)),
                    Err(reason) => outcome.rejected.push((op, reason)),
                }
            }
            if outcome.applied.len() == before || still_waiting.is_empty() {
                outcome.deferred = still_waiting;
                return outcome;
            }
            waiting = still_waiting.into_iter().map(|(op, _)| op).collect();
        }
    }
}

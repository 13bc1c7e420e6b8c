//! Governance: who belongs to a network and what its rules are, decided by
//! governance ops.
//!
//! The member table, the open proposals and the effective charter are a
//! pure function of the genesis, the set of governance ops and the set of
//! deprecated instances: the ops are folded in (clock, op id) order, and a
//! decision passes once approvals reach the charter's quorum of every
//! admitted member (a deprecation never lowers the bar). Recomputing the
//! fold whenever a governance op arrives keeps the result independent of
//! arrival order.
//!
//! Clocks cannot be used to jump back: every op's clock is later than its
//! origin's previous op's (`Replica` refuses it otherwise), so a member's
//! governance op sorts after everything that member signed before, and an
//! honest signer's clock is later than everything it had seen. An op
//! counts only if its signer's admission is in its causal context (it had
//! seen itself admitted), and a removal cuts the removed member off at the
//! highest position of its chain that the deciding votes' contexts name.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::build::BuildLabel;
use crate::charter::{Charter, SignedGenesis};
use crate::codec;
use crate::hash::{CodeHash, Hash32, OpId};
use crate::hlc::Hlc;
use crate::identity::PeerKey;
use crate::invite::SignedJoinRequest;

/// Longest grace period of a software upgrade.
pub const MAX_GRACE_MS: u64 = 365 * 24 * 3600 * 1000;
/// Most code hashes one upgrade may approve.
pub const MAX_UPGRADE_HASHES: usize = 16;

/// A member's standing.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    /// Admitted and conforming.
    Member,
    /// Asked to join; approvals not yet at quorum.
    Pending,
    /// Refused by a quorum.
    Rejected,
    /// Removed by a quorum vote.
    Removed,
    /// Caught breaking the rules (verified evidence).
    Deprecated,
}

/// One row of the member table.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Member {
    /// The instance.
    pub peer: PeerKey,
    /// Its instance name.
    pub name: String,
    /// Its admin's display name.
    pub admin_name: String,
    /// The code hash it declared when joining (none for the founder, whose
    /// build is in the genesis charter).
    pub code_hash: Option<CodeHash>,
    /// Its standing.
    pub status: MemberStatus,
    /// Members who approved it.
    pub approvals: BTreeSet<PeerKey>,
    /// Members who rejected it.
    pub rejections: BTreeSet<PeerKey>,
    /// When it was admitted (clock of the deciding op).
    pub since: Option<Hlc>,
    /// When it was removed by vote (the clock of the deciding op).
    pub removed_at: Option<Hlc>,
    /// After a removal, the last seq of its chain that counts: the highest
    /// the deciding votes had seen. Its later ops are refused, whatever
    /// clock they carry.
    pub last_seq: Option<u64>,
    /// Why it was deprecated.
    pub deprecation: Option<String>,
    /// The deprecated key whose seat its join request asked to take over
    /// (a readmission), as the request names it.
    pub succeeds: Option<PeerKey>,
    /// The key that took over this deprecated member's seat, once admitted:
    /// from then on this key counts in no quorum and its votes count only
    /// through the successor.
    pub succeeded_by: Option<PeerKey>,
}

impl Member {
    /// The digest that goes into the state root. The deprecation's wording
    /// is left out: it depends on which evidence an instance saw first, and
    /// the status and the deprecations root already say what matters.
    pub fn digest(&self) -> Hash32 {
        let without_wording = Member {
            deprecation: None,
            ..self.clone()
        };
        Hash32::tagged("dan member v1", &[&codec::encode(&without_wording)])
    }
}

/// A change that needs a quorum of member admins.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Proposal {
    /// Remove a member.
    Remove {
        /// The member.
        peer: PeerKey,
    },
    /// Approve new builds; builds approved before and not named here are
    /// withdrawn when the grace period ends.
    Upgrade {
        /// The new builds' code hashes.
        code_hashes: BTreeSet<CodeHash>,
        /// How long old builds stay approved after the decision (ms).
        grace_ms: u64,
        /// What the named builds are (version, platform, kind), as the
        /// proposer describes them; only for hashes in `code_hashes`.
        builds: BTreeMap<CodeHash, BuildLabel>,
    },
    /// Approve more builds alongside those approved now: nothing else is
    /// withdrawn and no other withdrawal date changes, whatever passes
    /// before or after it (another version, platform or kind of DAN, or a
    /// withdrawn build approved again).
    AddBuilds {
        /// The builds to approve.
        code_hashes: BTreeSet<CodeHash>,
        /// What they are, as the proposer describes them.
        builds: BTreeMap<CodeHash, BuildLabel>,
    },
}

/// A governance decision carried by an op.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum GovernanceAction {
    /// The op's origin approves a join request.
    Approve {
        /// The request, signed by the joining instance.
        request: Box<SignedJoinRequest>,
    },
    /// The op's origin rejects a pending join.
    Reject {
        /// The candidate.
        peer: PeerKey,
    },
    /// The op's origin proposes a change (and votes for it). The proposal's
    /// id is this op's id.
    Propose(Proposal),
    /// The op's origin votes on a proposal.
    Vote {
        /// The proposal (id of the op that made it).
        proposal: OpId,
        /// Yes or no.
        approve: bool,
    },
}

/// Where a proposal stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProposalStatus {
    /// Votes are still open.
    Open,
    /// A quorum said yes.
    Passed,
    /// A quorum said no.
    Rejected,
}

/// A proposal and its votes.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ProposalState {
    /// Its id (the proposing op).
    pub id: OpId,
    /// Who proposed it.
    pub proposer: PeerKey,
    /// What it proposes.
    pub proposal: Proposal,
    /// Members who voted yes.
    pub yes: BTreeSet<PeerKey>,
    /// Members who voted no.
    pub no: BTreeSet<PeerKey>,
    /// Where it stands.
    pub status: ProposalStatus,
    /// When it was decided.
    pub decided_at: Option<Hlc>,
}

/// A governance op as the fold sees it.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "sealed-log", derive(Deserialize))]
pub(crate) struct GovernanceEntry {
    pub(crate) origin: PeerKey,
    pub(crate) seq: u64,
    pub(crate) context: crate::op::Context,
    pub(crate) action: GovernanceAction,
}

impl GovernanceEntry {
    /// How far this op's signer had seen `peer`'s chain (its own chain up
    /// to and including this op).
    fn seen(&self, peer: &PeerKey) -> u64 {
        if *peer == self.origin {
            self.seq
        } else {
            self.context.get(peer).copied().unwrap_or(0)
        }
    }
}

/// The outcome of the fold.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "sealed-log", derive(Deserialize))]
pub(crate) struct Governed {
    pub(crate) members: BTreeMap<PeerKey, Member>,
    /// Shared with the copies [`KeptFold`] keeps: a copy clones pointers,
    /// and a proposal is copied only when it changes.
    pub(crate) proposals: BTreeMap<OpId, Arc<ProposalState>>,
    pub(crate) charter: Charter,
    pub(crate) ever_approved: BTreeSet<CodeHash>,
    /// Whether the network has formed: at some point of the fold it had
    /// `min_members` admitted members at once. It stays formed after
    /// removals and deprecations.
    pub(crate) formed: bool,
}

/// A vote count as people see it: yes and no among the members whose votes
/// count, and how many a decision needs (the same rule the fold applies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    /// Yes votes that count.
    pub yes: usize,
    /// No votes that count.
    pub no: usize,
    /// Votes a decision needs.
    pub needed: usize,
}

impl Tally {
    /// Counts `yes` and `no` among `voters` under `charter`'s quorum.
    pub fn of(
        charter: &Charter,
        voters: &BTreeSet<PeerKey>,
        yes: &BTreeSet<PeerKey>,
        no: &BTreeSet<PeerKey>,
    ) -> Self {
        Tally {
            yes: yes.intersection(voters).count(),
            no: no.intersection(voters).count(),
            needed: charter.quorum.needed(voters.len()),
        }
    }
}

/// A quorum's decision: `Some(true)` once `needed` of `voters` said yes,
/// `Some(false)` once `needed` said no, `None` while neither.
fn decision(
    yes: &BTreeSet<PeerKey>,
    no: &BTreeSet<PeerKey>,
    voters: &BTreeSet<PeerKey>,
    needed: usize,
) -> Option<bool> {
    if yes.intersection(voters).count() >= needed {
        Some(true)
    } else if no.intersection(voters).count() >= needed {
        Some(false)
    } else {
        None
    }
}

/// The governance fold, kept between ops: an op that sorts after every op
/// folded so far is folded in place ([`Folder::step`]); any other change
/// (an op arriving out of clock order, a new deprecation) folds again from
/// the genesis. Either way the result is the fold of the whole set in
/// (clock, op id) order.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "sealed-log", derive(Deserialize))]
pub(crate) struct Folder {
    deprecated: BTreeMap<PeerKey, String>,
    /// The member table before deprecations are marked (the fold itself
    /// treats deprecated members as admitted).
    out: Governed,
    /// The last op folded.
    last: Option<(Hlc, OpId)>,
    /// How many ops were folded.
    folded: usize,
    /// What the steps since the last [`take_touched`](Folder::take_touched)
    /// changed.
    touched: Touched,
    /// Per candidate, every approving op (origin, seq), those after its
    /// admission included.
    approvals_by: BTreeMap<PeerKey, Vec<(PeerKey, u64)>>,
    /// Per admitted member (the founder aside), how many approvals its
    /// admission needed.
    admission_needed: BTreeMap<PeerKey, usize>,
    /// Per member, the context of its latest governance op that counted:
    /// how far it had seen every other chain.
    views: BTreeMap<PeerKey, crate::op::Context>,
}

/// What folding some ops changed.
#[derive(Clone, Debug, Default, Serialize)]
#[cfg_attr(feature = "sealed-log", derive(Deserialize))]
pub(crate) struct Touched {
    pub(crate) members: BTreeSet<PeerKey>,
    pub(crate) proposals: BTreeSet<OpId>,
    pub(crate) charter: bool,
}

impl Folder {
    /// Admitted members. A deprecated member's governance ops still count:
    /// every op of it left in the set predates its cutoff. A key whose seat
    /// a successor took over is not one of them (the successor is).
    fn admitted(&self) -> BTreeSet<PeerKey> {
        self.out
            .members
            .values()
            .filter(|m| m.status == MemberStatus::Member && m.succeeded_by.is_none())
            .map(|m| m.peer)
            .collect()
    }

    /// The admitted members and the votes a decision needs. A deprecated
    /// member stays in the denominator: its votes from before its cutoff
    /// still count, and getting deprecated after voting must never lower
    /// the bar (otherwise two colluders pass a removal in a network of four
    /// by having the second voter deprecated after it voted). A minority
    /// of colluders cannot stall the network this way: the honest members
    /// alone are a strict majority of all admitted ones.
    fn needed(&self) -> (BTreeSet<PeerKey>, usize) {
        let admitted = self.admitted();
        let needed = self.out.charter.quorum.needed(admitted.len());
        (admitted, needed)
    }

    /// Whether `entry`'s signer had seen itself admitted when it signed:
    /// as many approvals of it as its admission needed (any of them, so an
    /// approval dated earlier that arrives late does not void the ops it
    /// signed since), counted by seat (a key and the one that took its
    /// seat over are one approver).
    fn knows_own_admission(&self, entry: &GovernanceEntry, admitted: &BTreeSet<PeerKey>) -> bool {
        let Some(needed) = self.admission_needed.get(&entry.origin) else {
            return true;
        };
        let seen = self.approvals_by.get(&entry.origin).map_or(0, |approvals| {
            approvals
                .iter()
                .filter(|(by, seq)| entry.seen(by) >= *seq)
                .map(|(by, _)| self.seat_of(by, admitted).unwrap_or(*by))
                .collect::<BTreeSet<_>>()
                .len()
        });
        seen >= *needed
    }

    /// The admitted key whose seat `signer` decides for: itself while it is
    /// admitted, or the key that took its seat over (following hand-overs),
    /// so that an op a deprecated key signed before its cutoff still counts
    /// where it sorts after the take-over, for the seat, once.
    fn seat_of(&self, signer: &PeerKey, admitted: &BTreeSet<PeerKey>) -> Option<PeerKey> {
        let mut key = *signer;
        for _ in 0..=self.out.members.len() {
            if admitted.contains(&key) {
                return Some(key);
            }
            key = self.out.members.get(&key)?.succeeded_by?;
        }
        None
    }

    /// The key whose seat `peer` took over, if it did.
    fn predecessor(&self, peer: &PeerKey) -> Option<PeerKey> {
        let old = self.out.members.get(peer)?.succeeds?;
        let taken = self.out.members.get(&old)?.succeeded_by == Some(*peer);
        taken.then_some(old)
    }

    /// Whether `origin`'s seat already decided through the key it took
    /// over (`yes` or `no` holds that key): a seat decides once.
    fn seat_decided(
        &self,
        origin: &PeerKey,
        yes: &BTreeSet<PeerKey>,
        no: &BTreeSet<PeerKey>,
    ) -> bool {
        self.predecessor(origin)
            .is_some_and(|old| yes.contains(&old) || no.contains(&old))
    }

    /// `seat` approves `request` by the op `entry`.
    fn approve(
        &mut self,
        entry: &GovernanceEntry,
        seat: PeerKey,
        request: &SignedJoinRequest,
        hlc: Hlc,
    ) {
        let r = &request.request;
        let offered = r.succeeds.as_ref().map(|s| s.predecessor);
        if let Some(row) = self.out.members.get(&r.joiner) {
            if self.seat_decided(&seat, &row.approvals, &row.rejections) {
                return;
            }
            // The first counted approval fixes whether the candidate asks
            // to take over a seat: an approval of another version of its
            // request (one without the hand-over, say) approves something
            // else, and must not decide what the others approved.
            if row.status == MemberStatus::Pending && row.succeeds != offered {
                return;
            }
        }
        self.approvals_by
            .entry(r.joiner)
            .or_default()
            .push((entry.origin, entry.seq));
        if self.out.members.get(&r.joiner).is_some_and(|m| {
            m.status != MemberStatus::Pending && m.status != MemberStatus::Rejected
        }) {
            return;
        }
        let row = self.out.members.entry(r.joiner).or_insert_with(|| Member {
            peer: r.joiner,
            name: r.instance_name.clone(),
            admin_name: r.admin_name.clone(),
            code_hash: Some(r.code_hash),
            status: MemberStatus::Pending,
            approvals: BTreeSet::new(),
            rejections: BTreeSet::new(),
            since: None,
            removed_at: None,
            last_seq: None,
            deprecation: None,
            succeeds: None,
            succeeded_by: None,
        });
        if row.status == MemberStatus::Rejected {
            row.status = MemberStatus::Pending;
            row.approvals.clear();
            row.rejections.clear();
        }
        row.name = r.instance_name.clone();
        row.admin_name = r.admin_name.clone();
        row.code_hash = Some(r.code_hash);
        row.succeeds = offered;
        row.rejections.remove(&seat);
        row.approvals.insert(seat);
        self.touched.members.insert(r.joiner);
        self.decide_candidate(r.joiner, hlc);
    }

    /// `seat` rejects the candidate `peer`.
    fn reject(&mut self, seat: PeerKey, peer: PeerKey, hlc: Hlc) {
        if let Some(row) = self.out.members.get(&peer)
            && self.seat_decided(&seat, &row.approvals, &row.rejections)
        {
            return;
        }
        let Some(row) = self
            .out
            .members
            .get_mut(&peer)
            .filter(|m| m.status == MemberStatus::Pending)
        else {
            return;
        };
        row.approvals.remove(&seat);
        row.rejections.insert(seat);
        self.touched.members.insert(peer);
        self.decide_candidate(peer, hlc);
    }

    /// Admits or rejects `candidate` once a quorum said so.
    fn decide_candidate(&mut self, candidate: PeerKey, hlc: Hlc) {
        let (conforming, needed) = self.needed();
        let Some(row) = self.out.members.get(&candidate) else {
            return;
        };
        let outcome = decision(&row.approvals, &row.rejections, &conforming, needed);
        // A request that hands a seat over is admitted only by taking that
        // seat (or, the old key removed by vote, as a seat of its own):
        // otherwise one deprecated key could hand its seat to several new
        // keys and each would get a seat of its own.
        let take_over = match row.succeeds.map(|old| self.seat_for_hand_over(&old)) {
            Some(HandOver::Waits) if outcome == Some(true) => return,
            Some(HandOver::TakesOver) => true,
            _ => false,
        };
        let Some(row) = self.out.members.get_mut(&candidate) else {
            return;
        };
        match outcome {
            Some(true) => {
                row.status = MemberStatus::Member;
                row.since = Some(hlc);
                self.admission_needed.insert(candidate, needed);
                if take_over {
                    self.take_over_seat(candidate);
                }
                let min_members = self.out.charter.min_members as usize;
                self.out.formed |= self.admitted().len() >= min_members;
            }
            Some(false) => row.status = MemberStatus::Rejected,
            None => {}
        }
    }

    /// What a request handing over the seat of `old` gets once a quorum
    /// approved it: that seat when `old` is a deprecated, admitted key whose
    /// seat nobody took; a seat of its own when `old` was removed by vote
    /// (its seat is gone, from every quorum, and can never come back) unless
    /// another key took that seat over before; and otherwise nothing yet.
    fn seat_for_hand_over(&self, old: &PeerKey) -> HandOver {
        match self.out.members.get(old) {
            Some(m) if m.status == MemberStatus::Removed && m.succeeded_by.is_none() => {
                HandOver::OwnSeat
            }
            Some(m)
                if m.status == MemberStatus::Member
                    && m.succeeded_by.is_none()
                    && self.deprecated.contains_key(old) =>
            {
                HandOver::TakesOver
            }
            _ => HandOver::Waits,
        }
    }

    /// A newly admitted `successor` whose request names a key takes over
    /// that key's seat ([`seat_for_hand_over`](Self::seat_for_hand_over)
    /// checked it is free): the old key leaves every quorum, and where it had decided
    /// (open proposals, pending candidates) the successor counts as having
    /// decided the same, so that no tally moves and the seat never gets a
    /// second say.
    fn take_over_seat(&mut self, successor: PeerKey) {
        let Some(old) = self.out.members.get(&successor).and_then(|m| m.succeeds) else {
            return;
        };
        let Some(row) = self.out.members.get_mut(&old) else {
            return;
        };
        row.succeeded_by = Some(successor);
        self.touched.members.insert(old);
        for state in self.out.proposals.values_mut() {
            if state.status != ProposalStatus::Open {
                continue;
            }
            if state.yes.contains(&old) {
                Arc::make_mut(state).yes.insert(successor);
                self.touched.proposals.insert(state.id);
            } else if state.no.contains(&old) {
                Arc::make_mut(state).no.insert(successor);
                self.touched.proposals.insert(state.id);
            }
        }
        for row in self.out.members.values_mut() {
            if row.status != MemberStatus::Pending {
                continue;
            }
            if row.approvals.contains(&old) {
                row.approvals.insert(successor);
                self.touched.members.insert(row.peer);
            } else if row.rejections.contains(&old) {
                row.rejections.insert(successor);
                self.touched.members.insert(row.peer);
            }
        }
    }

    /// `seat` proposes by the op `entry` (its signer is the proposer).
    fn propose(
        &mut self,
        entry: &GovernanceEntry,
        seat: PeerKey,
        id: OpId,
        proposal: &Proposal,
        hlc: Hlc,
    ) {
        self.touched.proposals.insert(id);
        self.out.proposals.insert(
            id,
            Arc::new(ProposalState {
                id,
                proposer: entry.origin,
                proposal: proposal.clone(),
                yes: BTreeSet::from([seat]),
                no: BTreeSet::new(),
                status: ProposalStatus::Open,
                decided_at: None,
            }),
        );
        self.decide_proposal(id, hlc);
    }

    /// `seat` votes on proposal `id`. A seat votes once: a second say (the
    /// key it took over had voted, or that key's vote sorts after the
    /// take-over) changes nothing.
    fn vote(&mut self, seat: PeerKey, id: OpId, approve: bool, hlc: Hlc) {
        if self.out.proposals.get(&id).is_some_and(|state| {
            state.yes.contains(&seat)
                || state.no.contains(&seat)
                || self.seat_decided(&seat, &state.yes, &state.no)
        }) {
            return;
        }
        let Some(state) = self
            .out
            .proposals
            .get_mut(&id)
            .filter(|p| p.status == ProposalStatus::Open)
        else {
            return;
        };
        let state = Arc::make_mut(state);
        if approve {
            state.yes.insert(seat);
        } else {
            state.no.insert(seat);
        }
        self.touched.proposals.insert(id);
        self.decide_proposal(id, hlc);
    }

    fn decide_proposal(&mut self, id: OpId, hlc: Hlc) {
        let (mut conforming, mut needed) = self.needed();
        // Removing a deprecated member is decided by the others alone:
        // otherwise deprecated seats, which can never vote again, would
        // hold every later decision to unanimity (or block it) for ever.
        if let Some(Proposal::Remove { peer }) = self.out.proposals.get(&id).map(|p| &p.proposal)
            && self.deprecated.contains_key(peer)
        {
            conforming.retain(|p| !self.deprecated.contains_key(p));
            needed = self.out.charter.quorum.needed(conforming.len());
        }
        let Some(state) = self.out.proposals.get_mut(&id) else {
            return;
        };
        let Some(passed) = decision(&state.yes, &state.no, &conforming, needed) else {
            return;
        };
        let state = Arc::make_mut(state);
        state.decided_at = Some(hlc);
        if passed {
            state.status = ProposalStatus::Passed;
            let proposal = state.proposal.clone();
            self.enact(&proposal, &conforming, needed, hlc);
        } else {
            state.status = ProposalStatus::Rejected;
        }
    }

    /// The last seq of a removed member that counts: the highest position
    /// of its chain that a quorum of the members had all seen, by their
    /// latest governance ops when the removal passed (the `needed`-th
    /// highest view among all `voters` but the target; a member that never
    /// said counts as having seen nothing). A minority can neither raise it
    /// (claiming to have seen more) nor lower it (claiming less).
    fn removal_cut_off(&self, target: &PeerKey, voters: &BTreeSet<PeerKey>, needed: usize) -> u64 {
        let mut views: Vec<u64> = voters
            .iter()
            .filter(|voter| *voter != target)
            .map(|voter| {
                self.views
                    .get(voter)
                    .and_then(|context| context.get(target))
                    .copied()
                    .unwrap_or(0)
            })
            .collect();
        views.sort_unstable_by(|a, b| b.cmp(a));
        let quorum = needed.clamp(1, views.len().max(1));
        views.get(quorum - 1).copied().unwrap_or(0)
    }

    /// Carries out a passed proposal; `voters` are the members whose votes
    /// counted and `needed` how many it took.
    fn enact(&mut self, proposal: &Proposal, voters: &BTreeSet<PeerKey>, needed: usize, hlc: Hlc) {
        match proposal {
            Proposal::Remove { peer } => {
                let last_seq = self.removal_cut_off(peer, voters, needed);
                if let Some(row) = self
                    .out
                    .members
                    .get_mut(peer)
                    .filter(|m| m.status == MemberStatus::Member)
                {
                    row.status = MemberStatus::Removed;
                    row.removed_at = Some(hlc);
                    row.last_seq = Some(last_seq);
                    self.touched.members.insert(*peer);
                }
            }
            Proposal::Upgrade {
                code_hashes,
                grace_ms,
                builds,
            } => {
                self.touched.charter = true;
                let charter = &mut self.out.charter;
                let withdraw_at = hlc.wall_ms.saturating_add(*grace_ms);
                for old in charter.approved_code.difference(code_hashes) {
                    let at = charter.withdrawals.entry(*old).or_insert(withdraw_at);
                    *at = (*at).min(withdraw_at);
                }
                for new in code_hashes {
                    charter.withdrawals.remove(new);
                    charter.approved_code.insert(*new);
                    self.out.ever_approved.insert(*new);
                }
                crate::build::adopt_labels(&mut charter.builds, builds);
            }
            Proposal::AddBuilds {
                code_hashes,
                builds,
            } => {
                self.touched.charter = true;
                let charter = &mut self.out.charter;
                for new in code_hashes {
                    // Only the builds it names: approving a withdrawn build
                    // again is allowed, nothing else changes.
                    charter.withdrawals.remove(new);
                    charter.approved_code.insert(*new);
                    self.out.ever_approved.insert(*new);
                }
                crate::build::adopt_labels(&mut charter.builds, builds);
            }
        }
    }
}

impl Folder {
    /// The fold of no ops: the founder is the one member. `deprecated`
    /// instances (with the reason) are marked in [`member`](Self::member);
    /// they stay in every quorum's denominator, and their votes left in the
    /// op set (all from before their cutoff) still count.
    pub(crate) fn new(genesis: &SignedGenesis, deprecated: BTreeMap<PeerKey, String>) -> Self {
        let founder = &genesis.genesis;
        let members = BTreeMap::from([(
            founder.founder,
            Member {
                peer: founder.founder,
                name: founder.founder_name.clone(),
                admin_name: founder.founder_name.clone(),
                code_hash: None,
                status: MemberStatus::Member,
                approvals: BTreeSet::new(),
                rejections: BTreeSet::new(),
                since: Some(Hlc {
                    wall_ms: founder.created_ms,
                    counter: 0,
                }),
                removed_at: None,
                last_seq: None,
                deprecation: None,
                succeeds: None,
                succeeded_by: None,
            },
        )]);
        Folder {
            deprecated,
            out: Governed {
                members,
                proposals: BTreeMap::new(),
                charter: founder.charter.clone(),
                ever_approved: founder.charter.approved_code.clone(),
                formed: founder.charter.min_members <= 1,
            },
            last: None,
            folded: 0,
            touched: Touched::default(),
            approvals_by: BTreeMap::new(),
            admission_needed: BTreeMap::new(),
            views: BTreeMap::new(),
        }
    }

    /// Whether an op at `key` sorts after every op folded so far, so that
    /// [`step`](Self::step) gives the same result as folding again.
    pub(crate) fn follows(&self, key: &(Hlc, OpId)) -> bool {
        self.last.is_none_or(|last| *key > last)
    }

    /// Folds one op that sorts after every op folded so far.
    pub(crate) fn step(&mut self, (hlc, id): (Hlc, OpId), entry: &GovernanceEntry) {
        self.last = Some((hlc, id));
        self.folded += 1;
        let admitted = self.admitted();
        let Some(seat) = self.seat_of(&entry.origin, &admitted) else {
            return;
        };
        if !self.knows_own_admission(entry, &admitted) {
            return;
        }
        self.views.insert(entry.origin, entry.context.clone());
        match &entry.action {
            GovernanceAction::Approve { request } => self.approve(entry, seat, request, hlc),
            GovernanceAction::Reject { peer } => self.reject(seat, *peer, hlc),
            GovernanceAction::Propose(proposal) => self.propose(entry, seat, id, proposal, hlc),
            GovernanceAction::Vote { proposal, approve } => {
                self.vote(seat, *proposal, *approve, hlc)
            }
        }
    }

    /// What the steps since the last call changed.
    pub(crate) fn take_touched(&mut self) -> Touched {
        std::mem::take(&mut self.touched)
    }

    /// `peer`'s row as the state shows it: only admitted members become
    /// `Deprecated` (a pending candidate caught breaking a rule must not
    /// count as admitted anywhere).
    pub(crate) fn member(&self, peer: &PeerKey) -> Option<Member> {
        let mut row = self.out.members.get(peer)?.clone();
        if let Some(reason) = self.deprecated.get(peer)
            && row.since.is_some()
        {
            row.status = MemberStatus::Deprecated;
            row.deprecation = Some(reason.clone());
        }
        Some(row)
    }

    /// The folded proposals, charter and approved builds.
    pub(crate) fn governed(&self) -> &Governed {
        &self.out
    }
}

/// Governance ops between two copies of the fold kept by [`KeptFold`].
const SNAPSHOT_EVERY: usize = 128;

/// Copies of the fold kept: an op sorting up to about
/// `SNAPSHOT_EVERY * SNAPSHOTS_KEPT` ops before the last one folded folds
/// again from the copy before it, not from the genesis.
const SNAPSHOTS_KEPT: usize = 4;

/// What a request handing a seat over gets once a quorum approved it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HandOver {
    /// The seat it names.
    TakesOver,
    /// A seat of its own (the one it names was removed by vote).
    OwnSeat,
    /// Nothing yet: it waits.
    Waits,
}

/// How an op was folded in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Folded {
    /// In place: [`Folder::take_touched`] says what changed.
    InPlace,
    /// Again from an earlier point: anything may have changed.
    Again,
}

/// The governance fold of a set of ops, with copies of itself taken every
/// [`SNAPSHOT_EVERY`] ops. Ops arrive slightly out of clock order all the
/// time (two members voting at once); each used to fold the whole history
/// again from the genesis, so a network with a long governance history
/// paid for every late op with all of it. The result is always the fold of
/// the whole set in (clock, op id) order.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "sealed-log", derive(Deserialize))]
pub(crate) struct KeptFold {
    current: Folder,
    /// Oldest first, each taken after folding a multiple of
    /// [`SNAPSHOT_EVERY`] ops of the current set. Not kept in a checkpoint
    /// (each would be a copy of the whole fold): a replica read back folds
    /// an early op again from the genesis once.
    #[serde(skip)]
    snapshots: Vec<Folder>,
}

impl KeptFold {
    /// Folds `ops` from the genesis, with `deprecated` instances marked.
    pub(crate) fn fold(
        genesis: &SignedGenesis,
        ops: &BTreeMap<(Hlc, OpId), GovernanceEntry>,
        deprecated: BTreeMap<PeerKey, String>,
    ) -> Self {
        let mut kept = KeptFold {
            current: Folder::new(genesis, deprecated),
            snapshots: Vec::new(),
        };
        kept.replay(ops);
        kept
    }

    /// The fold as it stands.
    pub(crate) fn current(&self) -> &Folder {
        &self.current
    }

    /// What the in-place steps since the last call changed.
    pub(crate) fn take_touched(&mut self) -> Touched {
        self.current.take_touched()
    }

    /// Folds in the op at `key`, just inserted into `ops`: in place when it
    /// sorts after every op folded, otherwise again from the newest copy
    /// taken before it (or from the genesis, `genesis` with the same
    /// deprecations, when none is).
    pub(crate) fn insert(
        &mut self,
        genesis: &SignedGenesis,
        key: (Hlc, OpId),
        ops: &BTreeMap<(Hlc, OpId), GovernanceEntry>,
    ) -> Folded {
        if self.current.follows(&key)
            && let Some(entry) = ops.get(&key)
        {
            self.current.step(key, entry);
            self.keep_copy(ops.len());
            return Folded::InPlace;
        }
        // Copies taken after a point the new op sorts before no longer
        // fold the same set.
        self.snapshots.retain(|copy| copy.follows(&key));
        self.current = match self.snapshots.last() {
            Some(copy) => copy.clone(),
            None => Folder::new(genesis, self.current.deprecated.clone()),
        };
        self.replay(ops);
        Folded::Again
    }

    /// Folds the ops of `ops` after the current fold's last one.
    fn replay(&mut self, ops: &BTreeMap<(Hlc, OpId), GovernanceEntry>) {
        let rest = match self.current.last {
            Some(last) => ops.range((std::ops::Bound::Excluded(last), std::ops::Bound::Unbounded)),
            None => ops.range(..),
        };
        let total = ops.len();
        for (key, entry) in rest {
            self.current.step(*key, entry);
            self.keep_copy(total);
        }
    }

    /// Takes a copy after every [`SNAPSHOT_EVERY`]th op of `total`, but only
    /// among the last ones that will be kept (copies cost a clone of the
    /// whole fold, and a fold from the genesis must not take one every 128
    /// ops of a long history), keeping the newest [`SNAPSHOTS_KEPT`].
    fn keep_copy(&mut self, total: usize) {
        let folded = self.current.folded;
        if !folded.is_multiple_of(SNAPSHOT_EVERY)
            || folded + SNAPSHOT_EVERY * SNAPSHOTS_KEPT < total
        {
            return;
        }
        let mut copy = self.current.clone();
        copy.touched = Touched::default();
        self.snapshots.push(copy);
        if self.snapshots.len() > SNAPSHOTS_KEPT {
            self.snapshots.remove(0);
        }
    }
}

//! Membership: who belongs to a network, decided by governance ops.
//!
//! The member table is a pure function of the genesis and the set of
//! governance ops: the ops are folded in (clock, op id) order, and a
//! candidate becomes a member once approvals from current members reach the
//! charter's quorum. Recomputing the fold whenever a governance op arrives
//! keeps the result independent of arrival order.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::charter::{Quorum, SignedGenesis};
use crate::codec;
use crate::hash::{CodeHash, Hash32, OpId};
use crate::hlc::Hlc;
use crate::identity::PeerKey;
use crate::invite::SignedJoinRequest;

/// A member's standing.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    /// Admitted.
    Member,
    /// Asked to join; approvals not yet at quorum.
    Pending,
    /// Refused by a quorum.
    Rejected,
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
}

impl Member {
    /// The digest that goes into the state root.
    pub fn digest(&self) -> Hash32 {
        Hash32::tagged("dan member v1", &[&codec::encode(self)])
    }
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
}

/// A governance op as the fold sees it.
#[derive(Clone, Debug)]
pub(crate) struct GovernanceEntry {
    pub(crate) origin: PeerKey,
    pub(crate) action: GovernanceAction,
}

/// The member table of a network: the fold of its governance ops.
pub(crate) fn fold(
    genesis: &SignedGenesis,
    quorum: Quorum,
    ops: &BTreeMap<(Hlc, OpId), GovernanceEntry>,
) -> BTreeMap<PeerKey, Member> {
    let founder = &genesis.genesis;
    let mut table = BTreeMap::from([(
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
        },
    )]);
    for ((hlc, _), entry) in ops {
        let is_member = |t: &BTreeMap<PeerKey, Member>, p: &PeerKey| {
            t.get(p).is_some_and(|m| m.status == MemberStatus::Member)
        };
        if !is_member(&table, &entry.origin) {
            continue;
        }
        let candidate = match &entry.action {
            GovernanceAction::Approve { request } => {
                let r = &request.request;
                if is_member(&table, &r.joiner) {
                    continue;
                }
                let row = table.entry(r.joiner).or_insert_with(|| Member {
                    peer: r.joiner,
                    name: r.instance_name.clone(),
                    admin_name: r.admin_name.clone(),
                    code_hash: Some(r.code_hash),
                    status: MemberStatus::Pending,
                    approvals: BTreeSet::new(),
                    rejections: BTreeSet::new(),
                    since: None,
                });
                if row.status == MemberStatus::Rejected {
                    row.status = MemberStatus::Pending;
                    row.approvals.clear();
                    row.rejections.clear();
                }
                row.name = r.instance_name.clone();
                row.admin_name = r.admin_name.clone();
                row.code_hash = Some(r.code_hash);
                row.rejections.remove(&entry.origin);
                row.approvals.insert(entry.origin);
                r.joiner
            }
            GovernanceAction::Reject { peer } => {
                let Some(row) = table
                    .get_mut(peer)
                    .filter(|m| m.status == MemberStatus::Pending)
                else {
                    continue;
                };
                row.approvals.remove(&entry.origin);
                row.rejections.insert(entry.origin);
                *peer
            }
        };
        decide(&mut table, quorum, &candidate, *hlc);
    }
    table
}

fn decide(table: &mut BTreeMap<PeerKey, Member>, quorum: Quorum, candidate: &PeerKey, hlc: Hlc) {
    let members: BTreeSet<PeerKey> = table
        .values()
        .filter(|m| m.status == MemberStatus::Member)
        .map(|m| m.peer)
        .collect();
    let needed = quorum.needed(members.len());
    let Some(row) = table.get_mut(candidate) else {
        return;
    };
    if row.approvals.intersection(&members).count() >= needed {
        row.status = MemberStatus::Member;
        row.since = Some(hlc);
    } else if row.rejections.intersection(&members).count() >= needed {
        row.status = MemberStatus::Rejected;
    }
}

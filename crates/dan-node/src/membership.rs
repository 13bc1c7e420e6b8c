//! Invites, joining and admission, from the instance's side. Admission
//! itself is decided by the governance fold in `dan-core`.

use std::time::Duration;

use dan_core::governance::GovernanceAction;
use dan_core::invite::InviteError;
use dan_core::{
    Invite, JoinRequest, MemberStatus, Payload, PeerKey, Replica, ReplicaSnapshot, SignedGenesis,
    SignedInvite, SignedJoinRequest,
};
use dan_store::{InviteUse, InviteUser, StoredInvite};
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::node::{Ledger, META_GENESIS, META_JOINING, Node, NodeEvent};
use crate::replication::now_ms;
use crate::secrets::random_bytes;
use libp2p::futures::FutureExt;

/// Longest invite lifetime accepted.
pub const MAX_INVITE_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);
/// Default invite lifetime.
pub const DEFAULT_INVITE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// `dan invite`: what to issue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteRequest {
    /// How many instances may join with it (default 1).
    pub uses: Option<u32>,
    /// How long it stays valid (default 7 days).
    pub expires_secs: Option<u64>,
    /// Whom it is for ("for Bob"): kept by the inviter, not in the link.
    #[serde(default)]
    pub label: Option<String>,
}

/// Longest invite link made, in characters: what a QR code holds in byte
/// mode at medium error correction (2,331 bytes), with room to spare.
pub const MAX_QR_LINK: usize = 2300;

/// Longest invite label, in characters.
pub const MAX_INVITE_LABEL: usize = 60;

/// An issued invite with where it stands, for `dan invites` and the window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteView {
    /// The invite as stored (id, link, expiry, uses, label, used by).
    #[serde(flatten)]
    pub invite: StoredInvite,
    /// Whether someone can still join with it right now.
    pub status: InviteStatus,
}

/// Where an invite stands, as its inviter sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InviteStatus {
    /// Usable: not expired, revoked or used up, and this instance listens
    /// on an address the link names.
    Waiting,
    /// Every use is spent (see `used_by`).
    UsedUp,
    /// Past its expiry.
    Expired,
    /// Revoked by this instance.
    Revoked,
    /// Otherwise usable, but this instance listens on none of the
    /// addresses in the link now (it restarted on other ports, or is not
    /// running its network): a joiner cannot reach it with this link.
    Unreachable,
}

impl InviteStatus {
    /// Where `invite` stands at `now_ms`, given the addresses this
    /// instance can be reached at now.
    pub fn of(invite: &StoredInvite, now_ms: u64, listening: &[String]) -> Self {
        if invite.revoked {
            InviteStatus::Revoked
        } else if invite.used >= invite.uses {
            InviteStatus::UsedUp
        } else if now_ms >= invite.expires_ms {
            InviteStatus::Expired
        } else if SignedInvite::from_link(&invite.link)
            .is_ok_and(|link| link.invite.addrs.iter().any(|a| listening.contains(a)))
        {
            InviteStatus::Waiting
        } else {
            InviteStatus::Unreachable
        }
    }
}

/// Checks an invite label: at most [`MAX_INVITE_LABEL`] printable
/// characters (no control or bidi-override characters), trimmed.
pub fn check_invite_label(label: &str) -> Result<String, NodeError> {
    let label = label.trim();
    let bidi = |c: char| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if label.chars().count() > MAX_INVITE_LABEL || label.chars().any(|c| c.is_control() || bidi(c))
    {
        return Err(NodeError::Invalid(format!(
            "an invite label must be at most {MAX_INVITE_LABEL} printable characters"
        )));
    }
    Ok(label.to_owned())
}

/// A member-table row as shown by `dan members`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    /// The instance.
    pub peer_id: PeerKey,
    /// Its instance name.
    pub name: String,
    /// Its admin's display name.
    pub admin_name: String,
    /// `member`, `pending` or `rejected`.
    pub status: MemberStatus,
    /// The code hash it declared when joining, or that it announced.
    pub code_hash: Option<dan_core::Hash32>,
    /// Whether it is connected right now.
    pub online: bool,
    /// When it was last connected (ms since the Unix epoch).
    pub last_seen: Option<u64>,
    /// Approvals so far (for pending instances).
    pub approvals: u64,
    /// Approvals needed (for pending instances).
    pub needed: u64,
    /// Whether this row is this instance.
    pub is_self: bool,
    /// Why the connection was refused, if it was.
    pub refused: Option<String>,
    /// The state root of its last checkpoint.
    pub state_root: Option<dan_core::Hash32>,
    /// `match` (same ops, same state root), `mismatch` (same ops, another
    /// state root), `syncing` (other ops), or none (no checkpoint yet).
    pub roots: Option<String>,
    /// Runs a build whose approval ended (upgrade required).
    pub suspended: bool,
    /// Why it was deprecated.
    pub deprecation: Option<String>,
    /// What its build is and whether the charter approves it.
    pub build: Option<crate::release::BuildView>,
    /// The code its admin reads out before it is approved
    /// (`PeerKey::join_code`).
    pub join_code: String,
    /// When it asked to join (its own clock, as its request says).
    pub requested_ms: Option<u64>,
    /// The instance whose invite it used.
    pub invited_by: Option<String>,
    /// For a readmission: the deprecated key whose seat it asks to take
    /// over (its request carries that key's signed hand-over). Admitted, it
    /// holds that seat instead of a second one.
    pub succeeds: Option<PeerKey>,
    /// For a pending readmission: whether admitting it now takes over the
    /// seat it names (that key is a deprecated member whose seat nobody
    /// took); if not, it stays waiting however many approve it (a request
    /// that hands a seat over is admitted only by taking that seat).
    pub takes_over_seat: bool,
    /// For a pending readmission: the key that already took over the seat
    /// it names (it can then never be admitted).
    pub seat_taken_by: Option<PeerKey>,
    /// For a pending readmission: another pending request names the same
    /// seat. Only one of them can take it: compare the join codes.
    pub seat_contested: bool,
    /// For a pending readmission: the key it names was removed by vote, so
    /// admitted it gets a seat of its own (that seat is gone).
    pub seat_removed: bool,
    /// The key that took over this deprecated member's seat.
    pub succeeded_by: Option<PeerKey>,
    /// For a request that takes over no seat: the instance name of a
    /// deprecated member whose admin name looks like this one's. If it is
    /// the same admin coming back, approving gives them a second seat (a
    /// readmission from the deprecated instance would take over the old).
    pub second_seat_of: Option<String>,
}

/// A peer as shown by `dan peers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    /// The peer.
    pub peer_id: PeerKey,
    /// Connected right now.
    pub online: bool,
    /// Last time it was connected (ms since the Unix epoch).
    pub last_seen: Option<u64>,
    /// What the handshake decided.
    pub verdict: Option<crate::net::PeerVerdict>,
    /// Why the connection was refused (by either side).
    pub refused: Option<String>,
    /// The code hash it announced.
    pub code_hash: Option<dan_core::Hash32>,
    /// How it is connected now: `direct`, `relayed` (only through a relay)
    /// or `none`.
    pub connection: crate::net::Connection,
    /// Its addresses.
    pub addrs: Vec<String>,
}

/// What a member answers a join request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinAnswer {
    /// The network's signed genesis (canonical bytes).
    pub genesis: Vec<u8>,
    /// Approvals so far.
    pub approvals: u64,
    /// Approvals needed.
    pub needed: u64,
}

/// What an invite link says, shown before joining: the network, who
/// invites, and whether the network approves this instance's build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitePreview {
    /// The network's id (compare it with what the inviter tells you).
    pub network_id: dan_core::NetworkId,
    /// Its name.
    pub network_name: String,
    /// The inviting instance.
    pub inviter: PeerKey,
    /// Its name.
    pub inviter_name: String,
    /// When the link expires (ms since the Unix epoch).
    pub expires_ms: u64,
    /// This instance's build, and whether the network approved it when the
    /// invite was made, as the inviter says (`approval`: `approved`,
    /// `not_approved`, or null when the invite's list was cut).
    pub your_build: crate::release::BuildView,
    /// The builds the network approved when the invite was made.
    pub approved_builds: Vec<crate::release::BuildView>,
    /// When this build is not approved: the approval request to send an
    /// admin of the network (paste into "Approve another version" or
    /// `dan upgrade add`).
    pub approval_request: Option<String>,
    /// How the invite's network stands to this instance's.
    pub relation: InviteRelation,
    /// A network this instance knows (its own, or the one it asked to
    /// join) whose name looks like the invite's but whose id differs: a
    /// look-alike, to check with the inviter before joining.
    pub look_alike: Option<KnownNetwork>,
}

/// How an invite's network stands to the network of the instance that
/// reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InviteRelation {
    /// This instance is in no network (nor joining one).
    NoNetwork,
    /// The invite is for the network this instance is in or is joining.
    ThisNetwork,
    /// The invite is for another network: joining it means leaving the
    /// current one.
    OtherNetwork,
}

/// A network by id and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownNetwork {
    /// Its id.
    pub network_id: dan_core::NetworkId,
    /// Its name.
    pub network_name: String,
}

/// Where a join stands, for `dan join` and the UI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinProgress {
    /// The network joined.
    pub network_id: dan_core::NetworkId,
    /// Its name.
    pub network_name: String,
    /// The inviting member.
    pub inviter: PeerKey,
    /// The inviter's instance name.
    pub inviter_name: String,
    /// Approvals so far.
    pub approvals: u64,
    /// Approvals needed.
    pub needed: u64,
    /// The peer id this instance asks to join under (a new one when it asks
    /// to be readmitted): the id the approving admins see.
    pub peer_id: PeerKey,
    /// The code to read out to an approving admin, who sees the same code
    /// next to this request (`PeerKey::join_code`).
    pub join_code: String,
}

fn approvals_of(replica: &ReplicaSnapshot, peer: &PeerKey) -> (u64, u64) {
    let mut voters = replica.voters().clone();
    voters.remove(peer);
    let none = std::collections::BTreeSet::new();
    let approvals = replica.member(peer).map_or(&none, |m| &m.approvals);
    let tally = dan_core::governance::Tally::of(replica.charter(), &voters, approvals, &none);
    (tally.yes as u64, tally.needed as u64)
}

impl Node {
    /// Issues an invite link (admin only).
    pub async fn create_invite(
        &self,
        request: InviteRequest,
        password: &str,
    ) -> Result<InviteView, NodeError> {
        self.verify_admin(password).await?;
        let label = check_invite_label(request.label.as_deref().unwrap_or_default())?;
        let lifetime = request
            .expires_secs
            .map_or(DEFAULT_INVITE_LIFETIME, Duration::from_secs);
        if lifetime.is_zero() || lifetime > MAX_INVITE_LIFETIME {
            return Err(NodeError::Invalid(
                "an invite must expire within 90 days".into(),
            ));
        }
        let uses = request.uses.unwrap_or(1);
        if !(1..=1000).contains(&uses) {
            return Err(NodeError::Invalid("an invite allows 1 to 1000 uses".into()));
        }
        let (network, network_name, approved) = {
            let replica = self.inner().ledger.snapshot().ok_or(NodeError::NoNetwork)?;
            if !replica.is_member(&self.peer_id()) {
                return Err(NodeError::Invalid("only members can invite".into()));
            }
            let charter = replica.charter();
            let approved = charter.approved_builds(now_ms());
            let approving = charter
                .approved_code
                .iter()
                .filter(|h| charter.approves(h, now_ms()))
                .count();
            (
                replica.network_id(),
                charter.name.clone(),
                (approving == approved.len(), approved),
            )
        };
        let (approved_complete, approved) = approved;
        let addrs = self
            .net()
            .map(|net| net.shareable_addrs())
            .unwrap_or_default();
        if addrs.is_empty() {
            return Err(NodeError::Invalid(
                "this instance is not listening on any address; start it with `dan run`".into(),
            ));
        }
        let id: [u8; 16] = random_bytes()?[..16].try_into().unwrap_or_default();
        let now = now_ms();
        let expires_ms =
            now.saturating_add(u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX));
        let mut invite = Invite {
            network,
            network_name,
            inviter: self.peer_id(),
            inviter_name: self.inner().name.clone(),
            addrs,
            id,
            expires_ms,
            uses,
            approved,
            approved_complete,
        };
        let signed = self.sign_fitting(&mut invite)?;
        let stored = StoredInvite {
            id: hex::encode(id),
            link: signed.to_link(),
            created_ms: now,
            expires_ms,
            uses,
            used: 0,
            revoked: false,
            label,
            used_by: Vec::new(),
        };
        self.inner().store.add_invite(&stored, &id).await?;
        Ok(InviteView {
            invite: stored,
            status: InviteStatus::Waiting,
        })
    }

    /// Signs `invite` so that its link fits a QR code: if it is too long, the
    /// build labels go first (the hashes stay), then all but the first
    /// addresses; an invite that still does not fit is refused before it is
    /// stored.
    fn sign_fitting(&self, invite: &mut Invite) -> Result<SignedInvite, NodeError> {
        let sign = |invite: &Invite| {
            SignedInvite::sign(invite.clone(), &self.keypair())
                .map_err(|e| NodeError::Invalid(e.to_string()))
        };
        let mut signed = sign(invite)?;
        if signed.to_link().len() > MAX_QR_LINK {
            invite.approved.iter_mut().for_each(|b| b.label = None);
            signed = sign(invite)?;
        }
        if signed.to_link().len() > MAX_QR_LINK {
            invite.addrs.truncate(4);
            signed = sign(invite)?;
        }
        if signed.to_link().len() > MAX_QR_LINK {
            return Err(NodeError::Invalid(
                "the invite does not fit in a link and QR code (too many approved builds)".into(),
            ));
        }
        Ok(signed)
    }

    /// Invites this instance issued, newest first, with where each stands.
    pub async fn invites(&self) -> Result<Vec<InviteView>, NodeError> {
        let listening: Vec<String> = self
            .net()
            .map(|net| net.listen_addrs().iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        let now = now_ms();
        Ok(self
            .inner()
            .store
            .invites()
            .await?
            .into_iter()
            .map(|invite| InviteView {
                status: InviteStatus::of(&invite, now, &listening),
                invite,
            })
            .collect())
    }

    /// Revokes an invite (admin only).
    pub async fn revoke_invite(&self, id: &str, password: &str) -> Result<(), NodeError> {
        self.verify_admin(password).await?;
        let bytes = hex::decode(id.trim())
            .map_err(|_| NodeError::Invalid(format!("`{id}` is not an invite id")))?;
        if !self.inner().store.revoke_invite(&bytes).await? {
            return Err(NodeError::NotFound(format!("invite {id}")));
        }
        Ok(())
    }

    /// A member's side of a join: checks the joiner's request and the
    /// invite it answers, and approves it (the invite counts as this
    /// member's approval).
    pub async fn handle_join(
        &self,
        from: &PeerKey,
        request_bytes: &[u8],
    ) -> Result<JoinAnswer, NodeError> {
        let bad = |e: InviteError| NodeError::Invalid(e.to_string());
        let signed = SignedJoinRequest::from_bytes(request_bytes).map_err(bad)?;
        let request = &signed.request;
        if request.joiner != *from {
            return Err(NodeError::Invalid(
                "the join request is not from the connected instance".into(),
            ));
        }
        let invite = request
            .invite
            .as_ref()
            .ok_or_else(|| NodeError::Invalid("joining needs an invite from a member".into()))?;
        if invite.invite.inviter != self.peer_id() {
            return Err(NodeError::Invalid(format!(
                "this invite was issued by {}; connect to that instance to join",
                invite.invite.inviter
            )));
        }
        invite.check(now_ms()).map_err(bad)?;
        // The approval it may sign passes the lost-write guard like every
        // write: right after a start, wait for a member to confirm how far
        // this instance's own chain goes.
        self.wait_for_chain_head().await;
        let joiner = request.joiner;
        let genesis = self
            .with_ledger(move |node, ledger| {
                async move { node.approve_joiner(ledger, &signed).await }.boxed()
            })
            .await?;
        let (approvals, needed) = self
            .inner()
            .ledger
            .snapshot()
            .map_or((0, 0), |r| approvals_of(&r, &joiner));
        Ok(JoinAnswer {
            genesis,
            approvals,
            needed,
        })
    }

    /// [`Node::handle_join`]'s part on the replica's owner: checks the
    /// request against the replica and signs this member's approval, if
    /// not signed yet. The genesis, for the joiner.
    async fn approve_joiner(
        &self,
        ledger: &mut Ledger,
        signed: &SignedJoinRequest,
    ) -> Result<Vec<u8>, NodeError> {
        let bad = |e: InviteError| NodeError::Invalid(e.to_string());
        let request = &signed.request;
        let invite = request
            .invite
            .as_ref()
            .ok_or_else(|| NodeError::Invalid("joining needs an invite from a member".into()))?;
        let replica = ledger.replica.as_mut().ok_or(NodeError::NoNetwork)?;
        if invite.invite.network != replica.network_id() {
            return Err(bad(InviteError::WrongNetwork));
        }
        if !replica.charter().approves(&request.code_hash, now_ms()) {
            let approved: Vec<String> = replica
                .charter()
                .approved_builds(now_ms())
                .iter()
                .map(|b| {
                    crate::release::BuildView::of(b.code_hash, b.label.clone(), None, 0).description
                })
                .collect();
            return Err(NodeError::BuildNotApproved(format!(
                "your version of DAN (code hash {}) is not approved by this network; it approves {}. Install one of those, or ask an admin to approve your version",
                request.code_hash.short(),
                approved.join(", ")
            )));
        }
        let row = replica.member(&request.joiner);
        if row.is_some_and(|m| m.status == MemberStatus::Rejected) {
            return Err(NodeError::Invalid(
                "the members rejected this instance's request to join".into(),
            ));
        }
        // Asking again (a lost answer) adds no second approval op.
        let approved_here = row.is_some_and(|m| m.approvals.contains(&self.peer_id()));
        if !replica.is_member(&request.joiner) && !approved_here {
            let user = InviteUser {
                peer_id: request.joiner.to_string(),
                instance_name: request.instance_name.clone(),
                admin_name: request.admin_name.clone(),
                used_ms: now_ms(),
            };
            match self
                .inner()
                .store
                .use_invite(&invite.invite.id, &user)
                .await?
            {
                InviteUse::Counted => {}
                InviteUse::Unknown => {
                    return Err(NodeError::Invalid(
                        "this instance did not issue that invite".into(),
                    ));
                }
                InviteUse::Revoked => {
                    return Err(NodeError::Invalid("the invite was revoked".into()));
                }
                InviteUse::UsedUp => {
                    return Err(NodeError::Invalid("the invite has been used up".into()));
                }
            }
            let payload = Payload::Governance(GovernanceAction::Approve {
                request: Box::new(signed.clone()),
            });
            self.may_write(replica)?;
            self.write(replica, payload).await?;
        }
        Ok(replica.genesis().to_bytes())
    }

    /// Where `peer`'s join stands in this replica.
    pub async fn join_status_of(&self, peer: &PeerKey) -> Option<(MemberStatus, u64, u64)> {
        let replica = self.inner().ledger.snapshot()?;
        let status = replica.member(peer)?.status;
        let (approvals, needed) = approvals_of(&replica, peer);
        Some((status, approvals, needed))
    }

    /// The joiner's side: the signed join request for `invite`.
    pub async fn join_request(
        &self,
        invite: &SignedInvite,
        admin_name: &str,
    ) -> Result<Vec<u8>, NodeError> {
        let request = JoinRequest {
            network: invite.invite.network,
            joiner: self.peer_id(),
            instance_name: self.inner().name.clone(),
            admin_name: admin_name.to_owned(),
            code_hash: self.inner().code_hash,
            invite: Some(invite.clone()),
            requested_ms: now_ms(),
            succeeds: self.succession_in(&invite.invite.network).await,
        };
        let signed = SignedJoinRequest::sign(request, &self.keypair())
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        Ok(signed.to_bytes())
    }

    /// What an invite link says, before joining: checked (well-formed,
    /// untampered, not expired), with whether the network approves this
    /// build.
    pub async fn preview_invite(&self, link: &str) -> Result<InvitePreview, NodeError> {
        let signed =
            SignedInvite::from_link(link).map_err(|e| NodeError::Invalid(e.to_string()))?;
        signed
            .check(now_ms())
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        let invite = signed.invite;
        let known = self.known_networks().await;
        let relation = if known.is_empty() {
            InviteRelation::NoNetwork
        } else if known.iter().any(|k| k.network_id == invite.network) {
            InviteRelation::ThisNetwork
        } else {
            InviteRelation::OtherNetwork
        };
        let look_alike = known.into_iter().find(|k| {
            k.network_id != invite.network
                && dan_core::invite::names_look_alike(&k.network_name, &invite.network_name)
        });
        let own = self.inner().code_hash;
        let approved = invite.approves(&own);
        let mut your_build =
            crate::release::BuildView::of(own, Some(self.inner().build_label.clone()), None, 0);
        your_build.approval =
            approved.map(|yes| if yes { "approved" } else { "not_approved" }.into());
        let approved_builds = invite
            .approved
            .iter()
            .map(|b| {
                let mut view = crate::release::BuildView::of(b.code_hash, b.label.clone(), None, 0);
                view.approval = Some("approved".into());
                view
            })
            .collect();
        Ok(InvitePreview {
            network_id: invite.network,
            network_name: invite.network_name,
            inviter: invite.inviter,
            inviter_name: invite.inviter_name,
            expires_ms: invite.expires_ms,
            your_build,
            approved_builds,
            approval_request: (approved != Some(true)).then(|| self.approval_request()),
            relation,
            look_alike,
        })
    }

    /// The networks this instance is in or asked to join.
    async fn known_networks(&self) -> Vec<KnownNetwork> {
        let mut known = Vec::new();
        if let Some(replica) = self.inner().ledger.snapshot() {
            known.push(KnownNetwork {
                network_id: replica.network_id(),
                network_name: replica.charter().name.clone(),
            });
        }
        let joining = self.inner().joining.lock().ok().and_then(|j| j.clone());
        if let Some(joining) = joining {
            known.push(KnownNetwork {
                network_id: joining.invite.network,
                network_name: joining.invite.network_name,
            });
        }
        known
    }

    /// Checks an invite link before joining: well-formed, untampered, not
    /// expired, approving this build, and this instance free to join.
    pub async fn check_invite_link(
        &self,
        link: &str,
        leave_current: bool,
    ) -> Result<SignedInvite, NodeError> {
        let invite =
            SignedInvite::from_link(link).map_err(|e| NodeError::Invalid(e.to_string()))?;
        invite
            .check(now_ms())
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        if invite.invite.approves(&self.inner().code_hash) == Some(false) {
            let preview = self.preview_invite(link).await?;
            let approved: Vec<String> = preview
                .approved_builds
                .iter()
                .map(|b| b.description.clone())
                .collect();
            return Err(NodeError::BuildNotApproved(format!(
                "“{}” has not approved your version of DAN ({}, code hash {}); it approves {}. Install one of those, or ask an admin of the network to approve yours: in the app under Network → Approve another version, or with `dan upgrade add '{}'`; then ask for a new invite",
                preview.network_name,
                preview.your_build.description,
                self.inner().code_hash.short(),
                approved.join(", "),
                preview.approval_request.unwrap_or_default()
            )));
        }
        if let Some(replica) = self.inner().ledger.snapshot() {
            if replica.network_id() != invite.invite.network && !leave_current {
                return Err(NodeError::HasNetwork(replica.charter().name.clone()));
            }
            if replica.network_id() == invite.invite.network
                && replica.is_member(&self.peer_id())
                && !self.is_deprecated()
            {
                return Err(NodeError::Invalid(format!(
                    "this instance is already a member of {}",
                    replica.charter().name
                )));
            }
        }
        Ok(invite)
    }

    /// The joiner's side: adopts the network's genesis (checked against the
    /// invite's network id) and remembers the join in progress.
    pub async fn begin_joining(
        &self,
        invite: &SignedInvite,
        genesis_bytes: &[u8],
    ) -> Result<(), NodeError> {
        let genesis = SignedGenesis::from_bytes(genesis_bytes)?;
        genesis_matches_invite(&genesis, invite)?;
        let switching = self
            .inner()
            .ledger
            .snapshot()
            .is_some_and(|r| r.network_id() != genesis.network_id());
        if switching {
            self.switch_network(&genesis).await?;
            if let Some(net) = self.net() {
                net.forget_chain_head();
            }
        }
        let (invite, genesis_bytes) = (invite.clone(), genesis_bytes.to_vec());
        self.with_ledger(move |node, ledger| {
            async move {
                let store = &node.inner().store;
                let link = invite.to_link();
                if ledger.replica.is_none() {
                    store
                        .set_meta(&[
                            (META_GENESIS, &genesis_bytes),
                            (META_JOINING, link.as_bytes()),
                        ])
                        .await?;
                    ledger.replica = Some(Replica::new(genesis)?);
                } else {
                    store.set_meta(&[(META_JOINING, link.as_bytes())]).await?;
                }
                if let Ok(mut joining) = node.inner().joining.lock() {
                    *joining = Some(invite);
                }
                Ok(())
            }
            .boxed()
        })
        .await?;
        self.emit(NodeEvent::MembersChanged);
        Ok(())
    }

    /// Called once this instance's own replica shows it admitted.
    pub(crate) async fn finish_joining(&self) -> Result<(), NodeError> {
        if let Ok(mut joining) = self.inner().joining.lock() {
            *joining = None;
        }
        self.inner().store.set_meta(&[(META_JOINING, b"")]).await?;
        tracing::info!("admitted to the network");
        Ok(())
    }

    /// The join in progress, with approvals as far as this replica knows.
    pub async fn join_progress(&self) -> Option<JoinProgress> {
        let invite = self.inner().joining.lock().ok()?.clone()?;
        let (approvals, needed) = self
            .inner()
            .ledger
            .snapshot()
            .map_or((0, 0), |r| approvals_of(&r, &self.peer_id()));
        let net_view = self.net().and_then(|n| n.join_view());
        let (approvals, needed) = net_view.map_or((approvals, needed), |(a, n)| {
            (a.max(approvals), n.max(needed))
        });
        Some(JoinProgress {
            network_id: invite.invite.network,
            network_name: invite.invite.network_name.clone(),
            inviter: invite.invite.inviter,
            inviter_name: invite.invite.inviter_name.clone(),
            approvals,
            needed,
            peer_id: self.peer_id(),
            join_code: self.peer_id().join_code(),
        })
    }

    /// Joins a network through an invite link (admin only): checks the
    /// link, contacts the inviter and waits for its answer. Admission then
    /// needs the members' approvals (see [`Node::join_progress`]). An
    /// instance the network deprecated first starts afresh under a new key
    /// (see the `readmission` module): that is how it asks to be readmitted.
    pub async fn join(
        &self,
        link: &str,
        admin_name: Option<&str>,
        password: &str,
        leave_current: bool,
    ) -> Result<JoinProgress, NodeError> {
        let admin_name = admin_name.unwrap_or(&self.inner().name).trim().to_owned();
        // Before anything changes (a readmission throws the key away).
        if !dan_core::invite::is_plain_name(&admin_name) {
            return Err(NodeError::Invalid(format!(
                "the admin name {:?} cannot be sent: use 1 to 64 characters of plain text, without invisible, padding or direction-changing characters",
                admin_name.chars().take(64).collect::<String>()
            )));
        }
        self.verify_admin(password).await?;
        let invite = self.check_invite_link(link, leave_current).await?;
        if self.deprecated_in(&invite.invite.network) {
            self.start_afresh(password).await?;
        }
        let net = self
            .net()
            .ok_or_else(|| NodeError::Invalid("the network layer is not running".into()))?;
        net.join(self, &invite, &admin_name).await
    }

    /// Every peer seen, with what the handshake decided.
    pub fn peers(&self) -> Vec<PeerView> {
        let Some(net) = self.net() else {
            return Vec::new();
        };
        net.peers()
            .into_iter()
            .map(|(peer_id, info)| PeerView {
                peer_id,
                online: info.online,
                last_seen: info.last_seen,
                verdict: info.verdict,
                refused: info.refused,
                code_hash: info.code_hash,
                connection: info.connection,
                addrs: info.addrs.iter().map(ToString::to_string).collect(),
            })
            .collect()
    }

    /// Approves a pending instance (admin only).
    pub async fn approve(&self, peer: &PeerKey, password: &str) -> Result<MemberView, NodeError> {
        self.verify_admin(password).await?;
        self.wait_for_chain_head().await;
        let candidate = *peer;
        self.with_ledger(move |node, ledger| {
            async move {
                let replica = node.writable(ledger)?;
                let request = pending_request(replica, &candidate)?;
                if !replica
                    .charter()
                    .approved_code
                    .contains(&request.request.code_hash)
                {
                    return Err(NodeError::Invalid(format!(
                        "{candidate} runs software (code hash {}) that the charter does not approve",
                        request.request.code_hash.short()
                    )));
                }
                node.write(
                    replica,
                    Payload::Governance(GovernanceAction::Approve {
                        request: Box::new(request),
                    }),
                )
                .await
                .map(drop)
            }
            .boxed()
        })
        .await?;
        self.member_view(peer).await
    }

    /// Rejects a pending instance (admin only).
    pub async fn reject(&self, peer: &PeerKey, password: &str) -> Result<MemberView, NodeError> {
        self.verify_admin(password).await?;
        self.wait_for_chain_head().await;
        let candidate = *peer;
        self.with_ledger(move |node, ledger| {
            async move {
                let replica = node.writable(ledger)?;
                pending_request(replica, &candidate)?;
                node.write(
                    replica,
                    Payload::Governance(GovernanceAction::Reject { peer: candidate }),
                )
                .await
                .map(drop)
            }
            .boxed()
        })
        .await?;
        self.member_view(peer).await
    }

    async fn member_view(&self, peer: &PeerKey) -> Result<MemberView, NodeError> {
        self.members()
            .await?
            .into_iter()
            .find(|m| m.peer_id == *peer)
            .ok_or_else(|| NodeError::NotFound(peer.to_string()))
    }

    /// The member table with online state and checkpoint comparison, from
    /// the replica's last snapshot (it never waits behind an ingest or a
    /// rebuild).
    pub async fn members(&self) -> Result<Vec<MemberView>, NodeError> {
        let replica = self.inner().ledger.snapshot().ok_or(NodeError::NoNetwork)?;
        let replica = &*replica;
        let net = self.net();
        let net = net.as_ref();
        let mine = (
            Some(replica.ops_root()),
            Some(replica.deprecations_root()),
            Some(replica.state_root()),
        );
        let now = now_ms();
        let deprecated_seats: Vec<&dan_core::Member> = replica
            .voters()
            .iter()
            .filter_map(|p| replica.member(p))
            .filter(|m| m.status == MemberStatus::Deprecated)
            .collect();
        Ok(replica
            .members()
            .map(|m| {
                let second_seat_of = (m.status == MemberStatus::Pending && m.succeeds.is_none())
                    .then(|| {
                        deprecated_seats.iter().find(|d| {
                            dan_core::invite::names_look_alike(&d.admin_name, &m.admin_name)
                        })
                    })
                    .flatten()
                    .map(|d| d.name.clone());
                // For a pending readmission: the seat it names, and its row.
                let pending_seat = m.succeeds.filter(|_| m.status == MemberStatus::Pending);
                let old_seat = pending_seat.and_then(|old| replica.member(&old));
                let (approvals, needed) = approvals_of(replica, &m.peer);
                let peer = net.and_then(|n| n.peer_info(&m.peer));
                let is_self = m.peer == self.peer_id();
                let request = replica.join_request(&m.peer).map(|r| &r.request);
                let code_hash = if is_self {
                    Some(self.inner().code_hash)
                } else {
                    peer.as_ref().and_then(|p| p.code_hash).or(m.code_hash)
                };
                let roots = if is_self {
                    Some(mine)
                } else {
                    peer.as_ref().and_then(|p| p.roots)
                };
                let comparison = roots.map(|(ops, deprecations, state)| {
                    if (ops, deprecations) != (mine.0, mine.1) {
                        "syncing"
                    } else if state == mine.2 {
                        "match"
                    } else {
                        "mismatch"
                    }
                });
                let suspended = code_hash.is_some_and(|c| {
                    !replica.charter().approves(&c, now) && replica.ever_approved(&c)
                });
                MemberView {
                    peer_id: m.peer,
                    name: m.name.clone(),
                    admin_name: m.admin_name.clone(),
                    status: m.status,
                    code_hash,
                    online: is_self || peer.as_ref().is_some_and(|p| p.online),
                    last_seen: if is_self {
                        Some(now)
                    } else {
                        peer.as_ref().and_then(|p| p.last_seen)
                    },
                    approvals,
                    needed,
                    is_self,
                    refused: peer.and_then(|p| p.refused),
                    state_root: roots.and_then(|r| r.2),
                    roots: comparison.map(str::to_owned),
                    suspended,
                    deprecation: m.deprecation.clone(),
                    join_code: m.peer.join_code(),
                    requested_ms: request.map(|r| r.requested_ms),
                    invited_by: request
                        .and_then(|r| r.invite.as_ref())
                        .map(|i| i.invite.inviter_name.clone()),
                    succeeds: m.succeeds,
                    takes_over_seat: pending_seat
                        .is_some_and(|old| deprecated_seats.iter().any(|d| d.peer == old)),
                    seat_taken_by: old_seat.and_then(|o| o.succeeded_by),
                    seat_removed: old_seat.is_some_and(|o| o.removed_at.is_some()),
                    seat_contested: pending_seat.is_some_and(|old| {
                        replica.members().any(|other| {
                            other.peer != m.peer
                                && other.status == MemberStatus::Pending
                                && other.succeeds == Some(old)
                        })
                    }),
                    succeeded_by: m.succeeded_by,
                    second_seat_of,
                    build: code_hash.map(|c| {
                        let label = is_self.then(|| self.inner().build_label.clone());
                        crate::release::BuildView::of(c, label, Some(replica.charter()), now)
                    }),
                }
            })
            .collect())
    }
}

fn pending_request(replica: &Replica, peer: &PeerKey) -> Result<SignedJoinRequest, NodeError> {
    match replica.member(peer).map(|m| m.status) {
        Some(MemberStatus::Pending) => replica
            .join_request(peer)
            .cloned()
            .ok_or_else(|| NodeError::NotFound(format!("join request of {peer}"))),
        Some(MemberStatus::Member) => {
            Err(NodeError::Invalid(format!("{peer} is already a member")))
        }
        Some(MemberStatus::Rejected | MemberStatus::Removed | MemberStatus::Deprecated) => {
            Err(NodeError::Invalid(format!(
                "{peer} was rejected, removed or deprecated; it must ask to join again"
            )))
        }
        None => Err(NodeError::NotFound(format!(
            "no pending join request from {peer}"
        ))),
    }
}

/// Whether the genesis an inviter sent is that of the network its invite
/// named: the same id, and the same name (the preview showed the invite's
/// name; an invite cannot present "Garden club" for a network called
/// something else).
fn genesis_matches_invite(genesis: &SignedGenesis, invite: &SignedInvite) -> Result<(), NodeError> {
    if genesis.network_id() != invite.invite.network {
        return Err(NodeError::Invalid(
            "the inviter sent the genesis of another network".into(),
        ));
    }
    if genesis.genesis.charter.name != invite.invite.network_name {
        return Err(NodeError::Invalid(format!(
            "the invite called the network \"{}\", but it is called \"{}\": not joined; ask the inviter for a correct link",
            invite.invite.network_name, genesis.genesis.charter.name
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use dan_core::charter::Charter;
    use dan_core::{Genesis, Hash32, Invite, Keypair};

    use super::*;

    #[test]
    fn bad_input_an_invite_naming_its_network_otherwise_is_not_joined() {
        let founder = Keypair::from_secret([1; 32]);
        let genesis = SignedGenesis::sign(
            Genesis {
                charter: Charter::new("Commons", BTreeSet::from([Hash32::of(b"build")])),
                founder: founder.public(),
                founder_name: "alice".into(),
                created_ms: 1,
                fork_of: None,
            },
            &founder,
        )
        .expect("genesis");
        let invite = |network, name: &str| {
            SignedInvite::sign(
                Invite {
                    network,
                    network_name: name.into(),
                    inviter: founder.public(),
                    inviter_name: "alice".into(),
                    addrs: vec!["/ip4/127.0.0.1/tcp/1".into()],
                    id: [1; 16],
                    expires_ms: u64::MAX,
                    uses: 1,
                    approved: Vec::new(),
                    approved_complete: false,
                },
                &founder,
            )
            .expect("invite")
        };
        let id = genesis.network_id();
        assert!(genesis_matches_invite(&genesis, &invite(id, "Commons")).is_ok());
        let renamed = genesis_matches_invite(&genesis, &invite(id, "Garden club"));
        assert!(
            matches!(&renamed, Err(NodeError::Invalid(m)) if m.contains("called \"Commons\"")),
            "{renamed:?}"
        );
        let other = genesis_matches_invite(&genesis, &invite(Hash32::of(b"other"), "Commons"));
        assert!(matches!(&other, Err(NodeError::Invalid(m)) if m.contains("another network")));
    }
}

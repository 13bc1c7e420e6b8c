//! Proposals (removal of a member, software upgrades), votes, checkpoints
//! on demand and deliberate forks, from the instance's side. Decisions are
//! made by `dan-core`'s governance fold.

use std::collections::{BTreeMap, BTreeSet};

use dan_core::charter::{ForkPoint, Genesis};
use dan_core::governance::{GovernanceAction, Proposal, ProposalState, ProposalStatus, Tally};
use dan_core::{
    BuildLabel, CodeHash, Hash32, Payload, PeerKey, Replica, ReplicaSnapshot, SignedGenesis,
};
use serde::{Deserialize, Serialize};

use crate::api::PutRecord;
use crate::error::NodeError;
use crate::node::{Ledger, META_GENESIS, Node, NodeEvent};
use crate::release::{BuildView, BuildsToApprove, ReleaseManifest};
use crate::replication::now_ms;
use libp2p::futures::FutureExt;

/// A proposal as shown by `dan proposals`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalView {
    /// Its id (vote with `dan vote ID yes|no`).
    pub id: Hash32,
    /// `remove`, `upgrade` or `add_builds`.
    pub kind: String,
    /// In plain words.
    pub summary: String,
    /// Who proposed it.
    pub proposer: PeerKey,
    /// Yes votes from conforming members.
    pub yes: u64,
    /// No votes from conforming members.
    pub no: u64,
    /// Votes needed.
    pub needed: u64,
    /// `open`, `passed` or `rejected`.
    pub status: ProposalStatus,
    /// When decided (ms since the Unix epoch).
    pub decided_at: Option<u64>,
    /// For an upgrade: when old builds stop being approved.
    pub withdraws_at: Option<u64>,
    /// For an upgrade: how long builds it does not name stay approved
    /// after it passes (ms).
    #[serde(default)]
    pub grace_ms: Option<u64>,
    /// For an upgrade or `add_builds`: the builds it brings in.
    #[serde(default)]
    pub builds: Vec<BuildView>,
    /// For an upgrade: the builds approved now that it does not name, whose
    /// approval ends when its grace period does.
    #[serde(default)]
    pub withdraws: Vec<BuildView>,
    /// This instance's vote (`true` yes, `false` no; proposing counts as
    /// yes), if it has voted: a member votes once.
    #[serde(default)]
    pub my_vote: Option<bool>,
}

/// A build a proposal brings in, as the proposer labels it, with a warning
/// in its description when that label already names another build (the
/// charter keeps the first build a label named, so such a label would not
/// be taken; voters should know someone tried).
fn proposed_build(
    charter: &dan_core::Charter,
    hash: CodeHash,
    labels: &BTreeMap<CodeHash, BuildLabel>,
    now: u64,
) -> BuildView {
    let mut view = BuildView::of(hash, labels.get(&hash).cloned(), Some(charter), now);
    let twin = labels.get(&hash).and_then(|label| {
        charter
            .builds
            .iter()
            .find(|(other, l)| **other != hash && *l == label)
            .map(|(other, _)| *other)
    });
    if let Some(other) = twin {
        view.description = format!(
            "{} — WARNING: that name already belongs to another build (code hash {})",
            view.description,
            other.short()
        );
    }
    view
}

/// A span of time in words: "7 days", "1 hour", "no time".
fn duration_words(ms: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match ms / 1000 {
        0 => "no time".into(),
        s if s % 86_400 == 0 => plural(s / 86_400, "day"),
        s if s % 3600 == 0 => plural(s / 3600, "hour"),
        s if s % 60 == 0 => plural(s / 60, "minute"),
        s => plural(s, "second"),
    }
}

fn upgrade_summary(builds: &[BuildView], withdraws: &[BuildView], grace_ms: u64) -> String {
    let names = |list: &[BuildView]| {
        list.iter()
            .map(|b| b.description.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if withdraws.is_empty() {
        format!(
            "approve {} alongside the builds approved now",
            names(builds)
        )
    } else {
        format!(
            "approve {}; {} stop{} being accepted {} after the vote passes",
            names(builds),
            names(withdraws),
            if withdraws.len() == 1 { "s" } else { "" },
            duration_words(grace_ms)
        )
    }
}

fn view(replica: &ReplicaSnapshot, state: &ProposalState, me: &PeerKey) -> ProposalView {
    let tally = Tally::of(replica.charter(), replica.voters(), &state.yes, &state.no);
    let mut builds = Vec::new();
    let mut withdraws = Vec::new();
    let mut grace = None;
    let (kind, summary, withdraws_at) = match &state.proposal {
        Proposal::Remove { peer } => {
            let name = replica
                .member(peer)
                .map_or_else(|| peer.to_string(), |m| m.name.clone());
            ("remove", format!("remove {name} ({peer})"), None)
        }
        Proposal::Upgrade {
            code_hashes,
            grace_ms,
            builds: labels,
        } => {
            let now = now_ms();
            let charter = replica.charter();
            // What the proposal brings in: the builds it describes, and any
            // not approved now (the rest it only keeps approved).
            builds = code_hashes
                .iter()
                .filter(|h| labels.contains_key(h) || !charter.approves(h, now))
                .map(|h| proposed_build(charter, *h, labels, now))
                .collect();
            withdraws = charter
                .approved_code
                .iter()
                .filter(|h| !code_hashes.contains(h) && charter.approves(h, now))
                .map(|h| BuildView::of(*h, None, Some(charter), now))
                .collect();
            let at = state
                .decided_at
                .map(|at| at.wall_ms.saturating_add(*grace_ms));
            grace = Some(*grace_ms);
            (
                "upgrade",
                upgrade_summary(&builds, &withdraws, *grace_ms),
                at,
            )
        }
        Proposal::AddBuilds {
            code_hashes,
            builds: labels,
        } => {
            let now = now_ms();
            builds = code_hashes
                .iter()
                .map(|h| proposed_build(replica.charter(), *h, labels, now))
                .collect();
            ("add_builds", upgrade_summary(&builds, &[], 0), None)
        }
    };
    ProposalView {
        id: state.id,
        kind: kind.into(),
        summary,
        proposer: state.proposer,
        yes: tally.yes as u64,
        no: tally.no as u64,
        needed: tally.needed as u64,
        status: state.status,
        decided_at: state.decided_at.map(|at| at.wall_ms),
        withdraws_at,
        grace_ms: grace,
        builds,
        withdraws,
        my_vote: if state.yes.contains(me) {
            Some(true)
        } else if state.no.contains(me) {
            Some(false)
        } else {
            None
        },
    }
}

impl Node {
    async fn govern(&self, action: GovernanceAction, password: &str) -> Result<(), NodeError> {
        self.verify_admin(password).await?;
        self.wait_for_chain_head().await;
        self.with_ledger(move |node, ledger| {
            async move {
                let replica = node.writable(ledger)?;
                node.write(replica, Payload::Governance(action))
                    .await
                    .map(drop)
            }
            .boxed()
        })
        .await
    }

    async fn proposal_view(&self, id: &Hash32) -> Result<ProposalView, NodeError> {
        self.proposals()
            .await?
            .into_iter()
            .find(|p| p.id == *id)
            .ok_or_else(|| NodeError::NotFound(format!("proposal {id}")))
    }

    /// Proposes to remove a member (admin only); the proposal counts as the
    /// proposer's yes vote.
    pub async fn propose_remove(
        &self,
        peer: &PeerKey,
        password: &str,
    ) -> Result<ProposalView, NodeError> {
        {
            let replica = self.inner().ledger.snapshot().ok_or(NodeError::NoNetwork)?;
            if !replica.voters().contains(peer) {
                return Err(NodeError::Invalid(format!("{peer} is not a member")));
            }
        }
        self.govern(
            GovernanceAction::Propose(Proposal::Remove { peer: *peer }),
            password,
        )
        .await?;
        self.latest_proposal().await
    }

    /// Proposes a software upgrade (admin only): approve `code_hashes`
    /// (described by `builds`, e.g. from a release manifest), keep older
    /// builds approved for `grace_ms`.
    pub async fn propose_upgrade(
        &self,
        mut code_hashes: BTreeSet<CodeHash>,
        builds: BTreeMap<CodeHash, BuildLabel>,
        grace_ms: u64,
        password: &str,
    ) -> Result<ProposalView, NodeError> {
        code_hashes.extend(builds.keys());
        if code_hashes.is_empty() {
            return Err(NodeError::Invalid(
                "name at least one code hash (see `dan code-hash PATH`)".into(),
            ));
        }
        let upgrade = Proposal::Upgrade {
            code_hashes,
            grace_ms,
            builds,
        };
        self.govern(GovernanceAction::Propose(upgrade), password)
            .await?;
        self.latest_proposal().await
    }

    /// Proposes approving more builds alongside those approved now (admin
    /// only): nothing is withdrawn. This is how a network lets in another
    /// version, platform or kind of DAN.
    pub async fn propose_builds(
        &self,
        builds: BuildsToApprove,
        password: &str,
    ) -> Result<ProposalView, NodeError> {
        let (code_hashes, labels): (BTreeSet<CodeHash>, BTreeMap<CodeHash, BuildLabel>) = {
            let replica = self.inner().ledger.snapshot().ok_or(NodeError::NoNetwork)?;
            let charter = replica.charter();
            let now = now_ms();
            let known =
                |h: &CodeHash| charter.approves(h, now) && !charter.withdrawals.contains_key(h);
            let code_hashes: BTreeSet<CodeHash> = builds
                .hashes
                .iter()
                .filter(|h| !known(h))
                .copied()
                .collect();
            if code_hashes.is_empty() {
                return Err(NodeError::Invalid(
                    "the network already approves every build named".into(),
                ));
            }
            let labels = builds
                .labels
                .into_iter()
                .filter(|(h, _)| code_hashes.contains(h))
                .collect();
            (code_hashes, labels)
        };
        if code_hashes.len() > dan_core::governance::MAX_UPGRADE_HASHES {
            return Err(NodeError::Invalid(format!(
                "a proposal names at most {} builds",
                dan_core::governance::MAX_UPGRADE_HASHES
            )));
        }
        dan_core::build::check_labels(&labels, |_| true)
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        let add = Proposal::AddBuilds {
            code_hashes,
            builds: labels,
        };
        self.govern(GovernanceAction::Propose(add), password)
            .await?;
        self.latest_proposal().await
    }

    /// Reads the builds `source` names (see [`BuildsToApprove::from_source`])
    /// and says what they are and where the charter stands on them, before
    /// an admin proposes them.
    pub async fn describe_builds(&self, source: &str) -> Result<Vec<BuildView>, NodeError> {
        let builds = self.read_builds(source).await?;
        let replica = self.inner().ledger.snapshot();
        let charter = replica.as_deref().map(ReplicaSnapshot::charter);
        let now = now_ms();
        Ok(builds
            .hashes
            .iter()
            .map(|h| BuildView::of(*h, builds.labels.get(h).cloned(), charter, now))
            .collect())
    }

    /// [`Node::propose_builds`] for the builds `source` names (read once).
    pub async fn propose_builds_from(
        &self,
        source: &str,
        password: &str,
    ) -> Result<ProposalView, NodeError> {
        let builds = self.read_builds(source).await?;
        self.propose_builds(builds, password).await
    }

    /// [`BuildsToApprove::from_source`] off the async workers (it may hash
    /// a large file).
    async fn read_builds(&self, source: &str) -> Result<BuildsToApprove, NodeError> {
        let source = source.to_owned();
        let release = self.inner().release.clone();
        tokio::task::spawn_blocking(move || BuildsToApprove::from_source(&source, release.as_ref()))
            .await
            .map_err(|e| NodeError::Invalid(format!("reading the builds failed: {e}")))?
    }

    /// This build's approval request: a one-build release manifest, as one
    /// line of JSON, for an admin of a network that does not approve it.
    pub fn approval_request(&self) -> String {
        let file = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        ReleaseManifest::approval_request(self.inner().code_hash, &self.inner().build_label, &file)
            .to_line()
    }

    async fn latest_proposal(&self) -> Result<ProposalView, NodeError> {
        let me = self.peer_id();
        self.proposals()
            .await?
            .into_iter()
            .filter(|p| p.proposer == me)
            .max_by_key(|p| (p.status == ProposalStatus::Open, p.decided_at))
            .ok_or_else(|| NodeError::NotFound("the new proposal".into()))
    }

    /// Votes on a proposal (admin only).
    pub async fn vote(
        &self,
        id: &Hash32,
        approve: bool,
        password: &str,
    ) -> Result<ProposalView, NodeError> {
        let current = self.proposal_view(id).await?;
        if current.status != ProposalStatus::Open {
            return Err(NodeError::Invalid(format!(
                "proposal {} is already decided",
                id.short()
            )));
        }
        if self.has_voted_on(id).await {
            return Err(NodeError::Invalid(format!(
                "you have already voted on proposal {}; a member votes once",
                id.short()
            )));
        }
        self.govern(
            GovernanceAction::Vote {
                proposal: *id,
                approve,
            },
            password,
        )
        .await?;
        self.proposal_view(id).await
    }

    /// Whether this instance has voted on proposal `id`.
    async fn has_voted_on(&self, id: &Hash32) -> bool {
        let (me, id) = (self.peer_id(), *id);
        self.read_replica(move |replica| replica.has_voted(&me, &id))
            .await
            .unwrap_or(false)
    }

    /// Every proposal, open first, from the replica's last snapshot (it
    /// never waits behind an ingest or a rebuild).
    pub async fn proposals(&self) -> Result<Vec<ProposalView>, NodeError> {
        let replica = self.inner().ledger.snapshot().ok_or(NodeError::NoNetwork)?;
        let mut views: Vec<ProposalView> = replica
            .proposals()
            .map(|p| view(&replica, p, &self.peer_id()))
            .collect();
        views.sort_by_key(|p| {
            (
                p.status != ProposalStatus::Open,
                std::cmp::Reverse(p.decided_at),
            )
        });
        Ok(views)
    }

    /// Signs and gossips a checkpoint now.
    pub fn checkpoint_now(&self) {
        self.emit(NodeEvent::CheckpointNow);
    }

    /// Forks the network (admin only): founds a new network whose genesis
    /// names this network and the op set it starts from, and carries the
    /// current records over. The parent network's data is archived in the
    /// data directory; the parent network itself is unaffected.
    pub async fn fork(&self, name: &str, password: &str) -> Result<SignedGenesis, NodeError> {
        let (node, name, password) = (self.clone(), name.to_owned(), password.to_owned());
        self.to_the_end(async move { node.fork_steps(&name, &password).await })
            .await
    }

    async fn fork_steps(&self, name: &str, password: &str) -> Result<SignedGenesis, NodeError> {
        self.verify_admin(password).await?;
        let (name, code_hash, founder_name, keypair) = (
            name.trim().to_owned(),
            self.inner().code_hash,
            self.inner().name.clone(),
            self.keypair(),
        );
        let (genesis, records) = self
            .read_replica(move |replica| -> Result<_, NodeError> {
                let mut charter = replica.charter().clone();
                charter.name = name;
                // The fork approves what the parent approves now (at most as
                // many builds as a charter may label), not what it withdrew.
                let now = now_ms();
                let current: Vec<dan_core::ApprovedBuild> = charter.approved_builds(now);
                charter.approved_code = current.iter().map(|b| b.code_hash).collect();
                charter.approved_code.insert(code_hash);
                charter
                    .builds
                    .retain(|h, _| current.iter().any(|b| b.code_hash == *h));
                charter.withdrawals.clear();
                let records: Vec<PutRecord> = replica
                    .records()
                    .filter(|r| !r.deleted)
                    .map(|r| PutRecord {
                        id: Some(r.id.to_string()),
                        collection: Some(r.collection),
                        title: Some(r.title),
                        fields: r.fields.into_iter().map(|(k, v)| (k, Some(v))).collect(),
                        tags: Some(r.tags),
                    })
                    .collect();
                let genesis = Genesis {
                    charter,
                    founder: keypair.public(),
                    founder_name,
                    created_ms: now_ms(),
                    fork_of: Some(ForkPoint {
                        parent: replica.network_id(),
                        ops_root: replica.ops_root(),
                        op_count: replica.op_count(),
                        carried: records.len() as u64,
                    }),
                };
                Ok((SignedGenesis::sign(genesis, &keypair)?, records))
            })
            .await??;
        self.switch_network(&genesis).await?;
        if let Some(net) = self.net() {
            net.forget_chain_head();
        }
        if !records.is_empty() {
            self.import_records(records).await?;
        }
        tracing::info!("forked into the new network {}", genesis.network_id());
        Ok(genesis)
    }

    /// Leaves the current network for the one `genesis` founds: the current
    /// data is archived next to the database, then the store starts over.
    pub(crate) async fn switch_network(&self, genesis: &SignedGenesis) -> Result<(), NodeError> {
        self.start_over(genesis, &[]).await
    }

    /// Archives the current data (if any) next to the database and starts
    /// the store over on `genesis`, writing `meta` in the same transaction.
    pub(crate) async fn start_over(
        &self,
        genesis: &SignedGenesis,
        meta: &[(&str, &[u8])],
    ) -> Result<(), NodeError> {
        let genesis = genesis.clone();
        let meta: Vec<(String, Vec<u8>)> = meta
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.to_vec()))
            .collect();
        self.with_ledger(move |node, ledger| {
            async move {
                node.start_over_here(ledger, genesis, &meta).await?;
                node.clear_integrity();
                node.emit(NodeEvent::MembersChanged);
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// [`Node::start_over`]'s part on the replica's owner.
    async fn start_over_here(
        &self,
        ledger: &mut Ledger,
        genesis: SignedGenesis,
        meta: &[(String, Vec<u8>)],
    ) -> Result<(), NodeError> {
        let store = &self.inner().store;
        let genesis_bytes = genesis.to_bytes();
        let mut entries = vec![(META_GENESIS, genesis_bytes.as_slice())];
        entries.extend(
            meta.iter()
                .map(|(key, value)| (key.as_str(), value.as_slice())),
        );
        if let Some(current) = ledger.replica.as_ref() {
            let archive = self.data_dir().join(format!(
                "network-{}-{}.db",
                current.network_id().short(),
                now_ms()
            ));
            store.archive_and_reset(&archive, &entries).await?;
            tracing::info!(
                "archived the data of network {} in {}",
                current.charter().name,
                archive.display()
            );
        } else {
            store.set_meta(&entries).await?;
        }
        ledger.replica = Some(Replica::new(genesis)?);
        ledger.waiting.clear();
        self.inner().standing.forget();
        Ok(())
    }
}

//! Every operation a script or the window asks of a running instance,
//! each defined once: its request (the fields the control channel carries
//! as JSON, under `"cmd"`), its typed answer, and what it does.
//!
//! The control channel runs them ([`ControlRequest::run`]), the CLI sends
//! them and reads their typed answers (`ControlClient::ask`), and the
//! desktop app's commands run the same definitions in process. A new
//! operation is one struct and one line of [`operations!`]; the compiler
//! then makes every caller agree on its fields and its answer.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;

use dan_core::{BuildLabel, Hash32, NetworkId, PeerKey, RecordView};
use dan_store::{RecordQuery, StoredEvidence};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{self, HistoryEntry, RecordShown};
use crate::error::NodeError;
use crate::membership::PeerView;
use crate::membership::{InvitePreview, InviteRequest, InviteView, JoinProgress, MemberView};
use crate::net::RelayStatus;
use crate::node::Node;
use crate::proposals::ProposalView;

/// One operation: what it answers, and how an instance runs it.
pub trait Operation: Into<ControlRequest> {
    /// Its answer, as the control channel sends it.
    type Answer: Serialize + DeserializeOwned;

    /// Runs it on `node`.
    fn run(self, node: &Node) -> impl Future<Output = Result<Self::Answer, NodeError>> + Send;
}

/// Declares [`ControlRequest`], one variant per operation (its `"cmd"` is
/// the name in snake case), and how the control channel runs each.
macro_rules! operations {
    ($($name:ident),* $(,)?) => {
        /// A command for the running instance: one of the operations of
        /// this module, tagged with its name.
        #[derive(Clone, Debug, Serialize, Deserialize)]
        #[serde(tag = "cmd", rename_all = "snake_case")]
        pub enum ControlRequest {
            $(
                #[doc = concat!("[`", stringify!($name), "`]")]
                $name($name),
            )*
        }

        $(
            impl From<$name> for ControlRequest {
                fn from(operation: $name) -> Self {
                    ControlRequest::$name(operation)
                }
            }
        )*

        impl ControlRequest {
            /// Runs the operation on `node`; its answer as JSON.
            pub async fn run(self, node: &Node) -> Result<Value, NodeError> {
                match self {
                    $(ControlRequest::$name(operation) => to_json(operation.run(node).await?),)*
                }
            }
        }
    };
}

operations!(
    Status,
    CreateNetwork,
    PutRecord,
    ImportRecords,
    GetRecord,
    ListRecords,
    ListRecordPage,
    DeleteRecord,
    RestoreRecord,
    History,
    Invite,
    Invites,
    PreviewInvite,
    SetRelays,
    RevokeInvite,
    Join,
    Members,
    Approve,
    Reject,
    Peers,
    Evidence,
    Checkpoint,
    ProposeRemove,
    ProposeUpgrade,
    ProposeBuilds,
    Vote,
    Proposals,
    BackupExport,
    ChangePassword,
    Fork,
);

fn to_json<T: Serialize>(value: T) -> Result<Value, NodeError> {
    serde_json::to_value(value)
        .map_err(|e| NodeError::Invalid(format!("cannot encode the answer: {e}")))
}

fn parse_peer(text: &str) -> Result<PeerKey, NodeError> {
    text.parse()
        .map_err(|e: dan_core::identity::IdentityError| NodeError::Invalid(e.to_string()))
}

/// The instance at a glance.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Status {}

impl Operation for Status {
    type Answer = api::Status;
    async fn run(self, node: &Node) -> Result<api::Status, NodeError> {
        Ok(node.status().await)
    }
}

/// Found a network (admin only); answers the new status.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreateNetwork {
    /// What to create.
    pub network: api::CreateNetwork,
    /// The admin password.
    pub password: String,
}

impl Operation for CreateNetwork {
    type Answer = api::Status;
    async fn run(self, node: &Node) -> Result<api::Status, NodeError> {
        node.create_network(self.network, &self.password).await
    }
}

/// Create or change a record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PutRecord {
    /// The change.
    pub record: api::PutRecord,
}

impl Operation for PutRecord {
    type Answer = RecordView;
    async fn run(self, node: &Node) -> Result<RecordView, NodeError> {
        node.put_record(self.record).await
    }
}

/// Create or change many records in one transaction.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImportRecords {
    /// The changes.
    pub records: Vec<api::PutRecord>,
}

/// How many records an import stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    /// Records created or changed.
    pub imported: u64,
}

impl Operation for ImportRecords {
    type Answer = Imported;
    async fn run(self, node: &Node) -> Result<Imported, NodeError> {
        let views = node.import_records(self.records).await?;
        Ok(Imported {
            imported: views.len() as u64,
        })
    }
}

/// One record, with the labels in it a reader could mistake.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetRecord {
    /// Its id.
    pub id: String,
}

impl Operation for GetRecord {
    type Answer = RecordShown;
    async fn run(self, node: &Node) -> Result<RecordShown, NodeError> {
        Ok(RecordShown::of(node.get_record(&self.id).await?))
    }
}

/// Records matching a query.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ListRecords {
    /// The filter.
    pub query: RecordQuery,
}

impl Operation for ListRecords {
    type Answer = Vec<RecordView>;
    async fn run(self, node: &Node) -> Result<Vec<RecordView>, NodeError> {
        node.list_records(&self.query).await
    }
}

/// One page of the records matching a query, and how many match in all
/// (the window's record list).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ListRecordPage {
    /// The filter, with the page's offset and length.
    pub query: RecordQuery,
}

/// One page of records and how many match in all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordPage {
    /// The records.
    pub records: Vec<RecordView>,
    /// How many match the query.
    pub total: u64,
}

impl Operation for ListRecordPage {
    type Answer = RecordPage;
    async fn run(self, node: &Node) -> Result<RecordPage, NodeError> {
        let (records, total) = node.record_page(&self.query).await?;
        Ok(RecordPage { records, total })
    }
}

/// Delete a record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeleteRecord {
    /// Its id.
    pub id: String,
}

impl Operation for DeleteRecord {
    type Answer = RecordView;
    async fn run(self, node: &Node) -> Result<RecordView, NodeError> {
        node.delete_record(&self.id).await
    }
}

/// Bring a deleted record back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RestoreRecord {
    /// Its id.
    pub id: String,
}

impl Operation for RestoreRecord {
    type Answer = RecordView;
    async fn run(self, node: &Node) -> Result<RecordView, NodeError> {
        node.restore_record(&self.id).await
    }
}

/// A record's history.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct History {
    /// Its id.
    pub id: String,
}

impl Operation for History {
    type Answer = Vec<HistoryEntry>;
    async fn run(self, node: &Node) -> Result<Vec<HistoryEntry>, NodeError> {
        node.history(&self.id).await
    }
}

/// Issue an invite link (admin only).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Invite {
    /// Uses and lifetime.
    pub invite: InviteRequest,
    /// The admin password.
    pub password: String,
}

impl Operation for Invite {
    type Answer = InviteView;
    async fn run(self, node: &Node) -> Result<InviteView, NodeError> {
        node.create_invite(self.invite, &self.password).await
    }
}

/// Invites issued by this instance.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Invites {}

impl Operation for Invites {
    type Answer = Vec<InviteView>;
    async fn run(self, node: &Node) -> Result<Vec<InviteView>, NodeError> {
        node.invites().await
    }
}

/// What an invite link says, before joining with it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PreviewInvite {
    /// The `dan://join/…` link.
    pub link: String,
}

impl Operation for PreviewInvite {
    type Answer = InvitePreview;
    async fn run(self, node: &Node) -> Result<InvitePreview, NodeError> {
        node.preview_invite(&self.link).await
    }
}

/// Use exactly these relays from now on (admin only); answers where each
/// stands.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetRelays {
    /// Relay addresses as `dan relay` prints them.
    pub relays: Vec<String>,
    /// The admin password.
    pub password: String,
}

impl Operation for SetRelays {
    type Answer = Vec<RelayStatus>;
    async fn run(self, node: &Node) -> Result<Vec<RelayStatus>, NodeError> {
        node.set_relays(&self.relays, &self.password).await
    }
}

/// Revoke an invite (admin only).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RevokeInvite {
    /// The invite id.
    pub id: String,
    /// The admin password.
    pub password: String,
}

/// Which invite was revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    /// Its id.
    pub revoked: String,
}

impl Operation for RevokeInvite {
    type Answer = Revoked;
    async fn run(self, node: &Node) -> Result<Revoked, NodeError> {
        node.revoke_invite(&self.id, &self.password).await?;
        Ok(Revoked { revoked: self.id })
    }
}

/// Join a network through an invite link (admin only).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Join {
    /// The `dan://join/…` link.
    pub link: String,
    /// The admin's display name (default: the instance name).
    pub admin_name: Option<String>,
    /// The admin password.
    pub password: String,
    /// Leave the current network (its data is archived) — to follow a
    /// fork.
    #[serde(default)]
    pub leave_current: bool,
}

impl Operation for Join {
    type Answer = JoinProgress;
    async fn run(self, node: &Node) -> Result<JoinProgress, NodeError> {
        node.join(
            &self.link,
            self.admin_name.as_deref(),
            &self.password,
            self.leave_current,
        )
        .await
    }
}

/// The member table.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Members {}

impl Operation for Members {
    type Answer = Vec<MemberView>;
    async fn run(self, node: &Node) -> Result<Vec<MemberView>, NodeError> {
        node.members().await
    }
}

/// Approve a pending instance (admin only).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Approve {
    /// Its peer id.
    pub peer: String,
    /// The admin password.
    pub password: String,
}

impl Operation for Approve {
    type Answer = MemberView;
    async fn run(self, node: &Node) -> Result<MemberView, NodeError> {
        node.approve(&parse_peer(&self.peer)?, &self.password).await
    }
}

/// Reject a pending instance (admin only).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reject {
    /// Its peer id.
    pub peer: String,
    /// The admin password.
    pub password: String,
}

impl Operation for Reject {
    type Answer = MemberView;
    async fn run(self, node: &Node) -> Result<MemberView, NodeError> {
        node.reject(&parse_peer(&self.peer)?, &self.password).await
    }
}

/// Every peer seen, with the handshake's verdict.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Peers {}

impl Operation for Peers {
    type Answer = Vec<PeerView>;
    async fn run(self, node: &Node) -> Result<Vec<PeerView>, NodeError> {
        Ok(node.peers())
    }
}

/// Evidence seen.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Evidence {}

impl Operation for Evidence {
    type Answer = Vec<StoredEvidence>;
    async fn run(self, node: &Node) -> Result<Vec<StoredEvidence>, NodeError> {
        node.evidence().await
    }
}

/// Sign and gossip a checkpoint now; answers what it says.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Checkpoint {}

impl Operation for Checkpoint {
    type Answer = dan_core::conformance::Hello;
    async fn run(self, node: &Node) -> Result<dan_core::conformance::Hello, NodeError> {
        node.checkpoint_now();
        Ok(node.signed_hello().await.hello)
    }
}

/// Propose to remove a member (admin only).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProposeRemove {
    /// Its peer id.
    pub peer: String,
    /// The admin password.
    pub password: String,
}

impl Operation for ProposeRemove {
    type Answer = ProposalView;
    async fn run(self, node: &Node) -> Result<ProposalView, NodeError> {
        node.propose_remove(&parse_peer(&self.peer)?, &self.password)
            .await
    }
}

/// Propose a software upgrade (admin only).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProposeUpgrade {
    /// Code hashes of the new builds.
    pub code_hashes: Vec<Hash32>,
    /// What the new builds are (e.g. from a release manifest).
    #[serde(default)]
    pub builds: BTreeMap<Hash32, BuildLabel>,
    /// Seconds older builds stay approved after the decision.
    pub grace_secs: u64,
    /// The admin password.
    pub password: String,
}

impl Operation for ProposeUpgrade {
    type Answer = ProposalView;
    async fn run(self, node: &Node) -> Result<ProposalView, NodeError> {
        node.propose_upgrade(
            self.code_hashes.into_iter().collect(),
            self.builds,
            self.grace_secs.saturating_mul(1000),
            &self.password,
        )
        .await
    }
}

/// Propose approving more builds alongside those approved now (admin
/// only): `source` is an approval request, or the path of a release
/// manifest or an executable.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProposeBuilds {
    /// What to approve.
    pub source: String,
    /// The admin password.
    pub password: String,
}

impl Operation for ProposeBuilds {
    type Answer = ProposalView;
    async fn run(self, node: &Node) -> Result<ProposalView, NodeError> {
        node.propose_builds_from(&self.source, &self.password).await
    }
}

/// Vote on a proposal (admin only).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Vote {
    /// The proposal id.
    pub id: Hash32,
    /// Yes or no.
    pub approve: bool,
    /// The admin password.
    pub password: String,
}

impl Operation for Vote {
    type Answer = ProposalView;
    async fn run(self, node: &Node) -> Result<ProposalView, NodeError> {
        node.vote(&self.id, self.approve, &self.password).await
    }
}

/// Every proposal.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Proposals {}

impl Operation for Proposals {
    type Answer = Vec<ProposalView>;
    async fn run(self, node: &Node) -> Result<Vec<ProposalView>, NodeError> {
        node.proposals().await
    }
}

/// Write an encrypted backup (admin only).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackupExport {
    /// Where to write it.
    pub path: PathBuf,
    /// The admin password (also the backup's).
    pub password: String,
}

/// A backup written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupWritten {
    /// Where.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

impl Operation for BackupExport {
    type Answer = BackupWritten;
    async fn run(self, node: &Node) -> Result<BackupWritten, NodeError> {
        let bytes = node.export_backup(&self.path, &self.password).await?;
        Ok(BackupWritten {
            path: self.path,
            bytes,
        })
    }
}

/// Change the admin password.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChangePassword {
    /// The current password.
    pub old: String,
    /// The new password.
    pub new: String,
}

/// That the password changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordChanged {
    /// Always true (a failure is an error).
    pub changed: bool,
}

impl Operation for ChangePassword {
    type Answer = PasswordChanged;
    async fn run(self, node: &Node) -> Result<PasswordChanged, NodeError> {
        node.change_password(&self.old, &self.new).await?;
        Ok(PasswordChanged { changed: true })
    }
}

/// Fork the network (admin only).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fork {
    /// The new network's name.
    pub name: String,
    /// The admin password.
    pub password: String,
}

/// The network a fork made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forked {
    /// Its id.
    pub network_id: NetworkId,
    /// Its name.
    pub network_name: String,
    /// The network it forked from.
    pub parent: Option<NetworkId>,
}

impl Operation for Fork {
    type Answer = Forked;
    async fn run(self, node: &Node) -> Result<Forked, NodeError> {
        let genesis = node.fork(&self.name, &self.password).await?;
        Ok(Forked {
            network_id: genesis.network_id(),
            network_name: genesis.genesis.charter.name.clone(),
            parent: genesis.genesis.fork_of.as_ref().map(|f| f.parent),
        })
    }
}

#[cfg(test)]
mod tests;

//! Errors of the instance API, each with a stable code for scripts and the UI.

use std::path::PathBuf;

use dan_core::charter::CharterError;
use dan_core::op::SignError;
use dan_core::record::RecordError;
use dan_core::replica::OpRejection;
use dan_store::StoreError;

use crate::integrity::IntegrityReport;
use crate::secrets::SecretError;

/// What went wrong in an instance operation.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The data directory holds no instance.
    #[error("no DAN instance in {0}: run `dan init --name NAME` first")]
    NotInitialized(PathBuf),
    /// `init` on a directory that already holds an instance.
    #[error("{0} already holds a DAN instance")]
    AlreadyInitialized(PathBuf),
    /// Another process has the data directory open.
    #[error("another DAN instance is already running on {0}")]
    Busy(PathBuf),
    /// The admin password is needed and none was given.
    #[error("the admin password is needed: set DAN_ADMIN_PASSWORD or enter it when asked")]
    PasswordNeeded,
    /// Password or key problems (wrong password, weak password…).
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The instance has no network yet.
    #[error(
        "this instance is not part of a network yet: create one (`dan network create --name NAME`) or join one"
    )]
    NoNetwork,
    /// The instance asked to join but is not admitted yet.
    #[error(
        "this instance is not a member of the network yet: it is waiting for the members' approval"
    )]
    NotMember,
    /// Writes wait while this instance recovers its own ops from peers
    /// (so it never signs a seq twice).
    #[error(
        "this instance is catching up with the network (its own ops: {have} here, {known} known on peers); try again in a moment"
    )]
    Recovering {
        /// Its chain length here.
        have: u64,
        /// The longest known on peers.
        known: u64,
    },
    /// This computer's clock is so far ahead of the other members' that
    /// every member would hold back what it signs: it signs nothing until
    /// the clock is right.
    #[error(
        "this computer's clock is {} minutes ahead of the other members' clocks, so they would hold back every change signed now; set the clock right (turn on automatic date and time) and try again",
        ahead_ms / 60_000
    )]
    ClockAhead {
        /// How far ahead, in ms (median over the members online).
        ahead_ms: i64,
    },
    /// The network does not approve this build: it cannot join (yet).
    #[error("{0}")]
    BuildNotApproved(String),
    /// The instance already belongs to a network.
    #[error("this instance already belongs to the network {0}")]
    HasNetwork(String),
    /// No record with that id.
    #[error("no record with id `{0}`")]
    NotFound(String),
    /// The request itself is invalid (bad id, missing title…).
    #[error("{0}")]
    Invalid(String),
    /// The change breaks a record rule.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The change was refused by the network's rules.
    #[error(transparent)]
    Rejected(#[from] OpRejection),
    /// The charter or genesis is invalid.
    #[error(transparent)]
    Charter(#[from] CharterError),
    /// The op could not be signed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The records on disk do not match the signed op log.
    #[error("{0}")]
    Integrity(Box<IntegrityReport>),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A private file or folder could not be made or read.
    #[error(transparent)]
    File(#[from] dan_store::private::PrivateFileError),
    /// An import or export of many records stopped.
    #[error(transparent)]
    Bulk(#[from] crate::bulk::BulkError),
    /// The instance is stopping, or stopped taking commands after one
    /// failed unexpectedly: start it again (its start-up check finds
    /// anything left half-way) and retry.
    #[error("this DAN instance is stopping or must be started again; start it and retry")]
    Stopped,
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl NodeError {
    /// A stable, machine-readable code (part of the CLI and UI contract).
    pub fn code(&self) -> &'static str {
        match self {
            NodeError::NotInitialized(_) => "not_initialized",
            NodeError::AlreadyInitialized(_) => "already_initialized",
            NodeError::Busy(_) => "busy",
            NodeError::PasswordNeeded => "password_needed",
            NodeError::Secret(SecretError::WrongPassword) => "wrong_password",
            NodeError::Secret(SecretError::WeakPassword) => "weak_password",
            NodeError::Secret(_) => "secret_error",
            NodeError::NoNetwork => "no_network",
            NodeError::HasNetwork(_) => "has_network",
            NodeError::BuildNotApproved(_) => "build_not_approved",
            NodeError::NotMember => "not_member",
            NodeError::Recovering { .. } => "catching_up",
            NodeError::ClockAhead { .. } => "clock_ahead",
            NodeError::NotFound(_) => "not_found",
            NodeError::Invalid(_)
            | NodeError::Record(_)
            | NodeError::Charter(_)
            | NodeError::Sign(_) => "invalid",
            NodeError::Rejected(OpRejection::Forming { .. }) => "forming",
            NodeError::Rejected(_) => "rejected",
            NodeError::Integrity(_) => "integrity",
            NodeError::Store(_) => "storage",
            NodeError::File(_) | NodeError::Io { .. } => "io",
            NodeError::Stopped => "stopped",
            NodeError::Bulk(crate::bulk::BulkError::Io(_)) => "io",
            NodeError::Bulk(_) => "invalid",
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> NodeError {
        let context = context.into();
        move |source| NodeError::Io { context, source }
    }
}

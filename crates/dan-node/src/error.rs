//! Errors of the instance API, each with a stable code for scripts and the UI.

use std::path::PathBuf;

use dan_core::charter::CharterError;
use dan_core::op::SignError;
use dan_core::record::RecordError;
use dan_core::replica::OpRejection;
use dan_store::StoreError;

use crate::integrity::IntegrityReport;
use crate::secrets::SecretError;

/// Declares [`ErrorCode`] once: each code, its wire name and its kind.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $code:ident = $name:literal : $kind:ident,)*) => {
        /// The stable code of every error the CLI, the control channel and
        /// the window report: part of their contract (scripts branch on
        /// it; `ui/src/types.ts` spells the same list).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum ErrorCode {
            $($(#[$doc])* #[serde(rename = $name)] $code,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$code,)*];

            /// Its name on the wire (`wrong_password`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$code => $name,)*
                }
            }

            /// What kind of failure it is.
            pub fn kind(self) -> ErrorKind {
                match self {
                    $(ErrorCode::$code => ErrorKind::$kind,)*
                }
            }
        }
    };
}

error_codes! {
    /// The data directory holds no instance.
    NotInitialized = "not_initialized": Refused,
    /// The data directory already holds one.
    AlreadyInitialized = "already_initialized": Refused,
    /// Another process has the data directory open.
    Busy = "busy": Retry,
    /// The admin password is needed and none was given.
    PasswordNeeded = "password_needed": BadInput,
    /// The admin password is wrong.
    WrongPassword = "wrong_password": Refused,
    /// A new password is too weak.
    WeakPassword = "weak_password": BadInput,
    /// The key could not be sealed, unsealed or kept.
    SecretError = "secret_error": Storage,
    /// No network yet.
    NoNetwork = "no_network": Refused,
    /// Already in a network.
    HasNetwork = "has_network": Refused,
    /// The network does not approve this build.
    BuildNotApproved = "build_not_approved": Refused,
    /// Not admitted yet.
    NotMember = "not_member": Refused,
    /// Recovering its own ops from peers: writes wait.
    CatchingUp = "catching_up": Retry,
    /// This computer's clock is far ahead of the members'.
    ClockAhead = "clock_ahead": Refused,
    /// No such record, invite, proposal or member.
    NotFound = "not_found": BadInput,
    /// The request is wrong (a bad id, a missing title, a malformed link).
    Invalid = "invalid": BadInput,
    /// Fewer members than the charter needs: records wait.
    Forming = "forming": Retry,
    /// The network's rules refuse the change.
    Rejected = "rejected": Refused,
    /// The stored records differ from the signed log.
    Integrity = "integrity": Storage,
    /// The database failed.
    Storage = "storage": Storage,
    /// A file could not be read or written.
    Io = "io": Storage,
    /// Another computer could not be reached, or answered with nonsense.
    Unreachable = "unreachable": Network,
    /// The inviter refused the join (the invite expired, was used up or
    /// revoked, the build is not approved): asking again will not help.
    JoinRefused = "join_refused": Refused,
    /// The instance is stopping, or must be started again.
    Stopped = "stopped": Retry,
    /// No instance runs on the data directory (CLI).
    NotRunning = "not_running": Retry,
    /// The control token is wrong (CLI).
    Unauthorized = "unauthorized": Refused,
    /// The control request could not be read (CLI).
    BadRequest = "bad_request": BadInput,
    /// The instance's answer could not be read (CLI).
    BadResponse = "bad_response": Other,
    /// The window's admin session is locked: it asks for the password.
    AdminLocked = "admin_locked": Refused,
    /// The window's instance is not open yet.
    NotReady = "not_ready": Retry,
    /// Anything else, at the edge of a program (a file given on the
    /// command line that cannot be read, say), and any code this version
    /// does not know (from an instance of a newer one).
    #[serde(other)]
    Error = "error": Other,
}

/// What kind of failure an error is: what a script can do about it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is wrong: fix it; asking again as it is fails again.
    BadInput,
    /// Well-formed, but refused (a password, the network's rules, this
    /// instance's standing): asking again fails until that changes.
    Refused,
    /// Not now: the same request may succeed in a moment.
    Retry,
    /// Another computer could not be reached or answered badly.
    Network,
    /// The disk, the database or the key store.
    Storage,
    /// None of the above.
    #[default]
    Other,
}

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
    /// Another computer could not be reached, or answered with nonsense.
    #[error("{0}")]
    Unreachable(String),
    /// The inviter answered a join with a refusal.
    #[error("{0}")]
    JoinRefused(String),
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
    pub fn code(&self) -> ErrorCode {
        match self {
            NodeError::NotInitialized(_) => ErrorCode::NotInitialized,
            NodeError::AlreadyInitialized(_) => ErrorCode::AlreadyInitialized,
            NodeError::Busy(_) => ErrorCode::Busy,
            NodeError::PasswordNeeded => ErrorCode::PasswordNeeded,
            NodeError::Secret(SecretError::WrongPassword) => ErrorCode::WrongPassword,
            NodeError::Secret(SecretError::WeakPassword) => ErrorCode::WeakPassword,
            NodeError::Secret(_) => ErrorCode::SecretError,
            NodeError::NoNetwork => ErrorCode::NoNetwork,
            NodeError::HasNetwork(_) => ErrorCode::HasNetwork,
            NodeError::BuildNotApproved(_) => ErrorCode::BuildNotApproved,
            NodeError::NotMember => ErrorCode::NotMember,
            NodeError::Recovering { .. } => ErrorCode::CatchingUp,
            NodeError::ClockAhead { .. } => ErrorCode::ClockAhead,
            NodeError::NotFound(_) => ErrorCode::NotFound,
            NodeError::Invalid(_)
            | NodeError::Record(_)
            | NodeError::Charter(_)
            | NodeError::Sign(_) => ErrorCode::Invalid,
            NodeError::Rejected(OpRejection::Forming { .. }) => ErrorCode::Forming,
            NodeError::Rejected(_) => ErrorCode::Rejected,
            NodeError::Integrity(_) => ErrorCode::Integrity,
            NodeError::Store(_) => ErrorCode::Storage,
            NodeError::File(_) | NodeError::Io { .. } => ErrorCode::Io,
            NodeError::Bulk(crate::bulk::BulkError::Io(_)) => ErrorCode::Io,
            NodeError::Bulk(_) => ErrorCode::Invalid,
            NodeError::Unreachable(_) => ErrorCode::Unreachable,
            NodeError::JoinRefused(_) => ErrorCode::JoinRefused,
            NodeError::Stopped => ErrorCode::Stopped,
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> NodeError {
        let context = context.into();
        move |source| NodeError::Io { context, source }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    /// The window's list of codes (`ui/src/types.ts`, `ErrorCode`).
    fn codes_the_window_knows() -> Vec<String> {
        let types = include_str!("../../../ui/src/types.ts");
        let start = types
            .find("export type ErrorCode =")
            .expect("ui/src/types.ts declares ErrorCode");
        let declaration = &types[start..];
        let end = declaration.find(';').expect("the declaration ends");
        declaration[..end]
            .split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_window_knows_every_error_code_and_no_other() {
        let ours: Vec<String> = ErrorCode::ALL
            .iter()
            .map(|code| code.as_str().to_owned())
            .collect();
        assert_eq!(codes_the_window_knows(), ours);
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).expect("encode");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(
                serde_json::from_str::<ErrorCode>(&json).expect("decode"),
                *code
            );
        }
        // From an instance of another version: a code this one does not
        // know, and an error without a kind.
        let newer: crate::control::ControlError =
            serde_json::from_str(r#"{"code":"from_the_future","message":"m"}"#).expect("decode");
        assert_eq!(newer.code, ErrorCode::Error);
        assert_eq!(newer.kind, super::ErrorKind::Other);
    }
}

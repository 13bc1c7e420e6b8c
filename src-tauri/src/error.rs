//! Errors as the UI sees them: a stable code to branch on, its kind and a
//! message for people.

use dan_node::{ErrorCode, ErrorKind, NodeError};
use serde::Serialize;

/// An error returned by a command.
#[derive(Debug, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    /// Machine-readable code (the CLI's error codes, `admin_locked` and
    /// `not_ready` among them).
    pub code: ErrorCode,
    /// What kind of failure it is.
    pub kind: ErrorKind,
    /// What happened and what to do.
    pub message: String,
}

impl CommandError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        CommandError {
            code,
            kind: code.kind(),
            message: message.into(),
        }
    }

    /// The admin lock is closed: the UI asks for the password and retries.
    pub fn admin_locked() -> Self {
        Self::new(
            ErrorCode::AdminLocked,
            "This action needs the admin password.",
        )
    }

    /// No instance is open yet.
    pub fn not_ready() -> Self {
        Self::new(ErrorCode::NotReady, "The instance is not open yet.")
    }
}

impl From<NodeError> for CommandError {
    fn from(error: NodeError) -> Self {
        CommandError::new(error.code(), error.to_string())
    }
}

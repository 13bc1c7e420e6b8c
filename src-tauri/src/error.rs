//! Errors as the UI sees them: a stable code to branch on and a message for
//! people.

use dan_node::NodeError;
use serde::Serialize;

/// An error returned by a command.
#[derive(Debug, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    /// Machine-readable code (the CLI's error codes, plus `admin_locked`,
    /// `not_ready`).
    pub code: String,
    /// What happened and what to do.
    pub message: String,
}

impl CommandError {
    /// An error with `code` and `message`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        CommandError {
            code: code.into(),
            message: message.into(),
        }
    }

    /// The admin lock is closed: the UI asks for the password and retries.
    pub fn admin_locked() -> Self {
        Self::new("admin_locked", "This action needs the admin password.")
    }

    /// No instance is open yet.
    pub fn not_ready() -> Self {
        Self::new("not_ready", "The instance is not open yet.")
    }
}

impl From<NodeError> for CommandError {
    fn from(error: NodeError) -> Self {
        CommandError::new(error.code(), error.to_string())
    }
}

//! # dan-store
//!
//! Persistence for one DAN instance: a single SQLite file holding the signed
//! op log (the source of truth), the materialized records derived from it,
//! and instance settings. Opened in WAL mode with `synchronous=FULL`, so a
//! committed write survives a crash or power loss; a batch of ops and the
//! records it changes are written in one transaction.
//!
//! The store validates nothing about the protocol: `dan-node` checks ops with
//! `dan-core` before handing them here.

mod error;
mod evidence;
mod invites;
mod log_digest;
pub mod private;
mod records;
mod store;

pub use error::StoreError;
pub use evidence::StoredEvidence;
pub use invites::{InviteUse, InviteUser, StoredInvite};
pub use log_digest::LogDigest;
pub use records::{RecordQuery, RecordSort, RowError};
pub use store::{NumberedRow, Store, StoredOp};

//! # dan-node
//!
//! A running DAN instance: it owns the data directory (one SQLite file, an
//! exclusive lock), unlocks the instance key with the admin password, checks
//! the stored data against the signed op log on start, and offers one async
//! API ([`Node`]) to the headless CLI, the local control channel, the tests
//! and the desktop app.

pub mod api;
mod code;
pub mod control;
pub mod deprecation;
mod error;
pub mod ingest;
pub mod integrity;
pub mod membership;
pub mod net;
mod node;
pub mod proposals;
mod replication;
pub mod secrets;

pub use code::{code_hash, hash_file};
pub use dan_store::{RecordQuery, RecordSort};
pub use error::NodeError;
pub use node::{
    Credentials, MAX_INSTANCE_NAME, Node, NodeConfig, NodeEvent, OnDamage, check_instance_name,
};

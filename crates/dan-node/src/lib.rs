//! # dan-node
//!
//! A running DAN instance: it owns the data directory (one SQLite file, an
//! exclusive lock), unlocks the instance key with the admin password, checks
//! the stored data against the signed op log on start, and offers one async
//! API ([`Node`]) to the headless CLI, the local control channel, the tests
//! and the desktop app.

pub mod api;
pub mod backup;
pub mod bulk;
mod code;
pub mod control;
pub mod deprecation;
mod error;
pub mod ingest;
pub mod integrity;
mod ledger;
pub mod membership;
pub mod net;
mod node;
pub mod notices;
pub mod proposals;
mod readmission;
pub mod relays;
pub mod release;
mod replication;
pub mod secrets;
pub mod utc;
mod verify;

pub use code::{code_hash, hash_file};
pub use dan_store::{RecordQuery, RecordSort};
pub use error::NodeError;
pub use node::{
    Credentials, MAX_INSTANCE_NAME, Node, NodeConfig, NodeEvent, OnDamage, check_instance_name,
};

#[cfg(test)]
mod send_tests {
    //! The desktop app runs these futures on a multi-threaded runtime: they
    //! must be `Send`.
    use super::*;

    fn is_send<T: Send>(_: &T) {}

    #[test]
    fn instance_futures_are_send() {
        let config = NodeConfig::new("/nonexistent");
        let open = Node::open(config, Credentials::default());
        is_send(&open);
        let init = Node::init(std::path::Path::new("/nonexistent"), "x", "y");
        is_send(&init);
    }
}

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
mod clean_close;
mod close_seal;
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
pub mod operation;
pub mod proposals;
mod readmission;
pub mod relays;
pub mod release;
mod replication;
pub mod secrets;
mod standing;
pub mod utc;
mod verify;

pub use code::{code_hash, hash_file};
pub use dan_store::{RecordQuery, RecordSort};
pub use error::{ErrorCode, ErrorKind, NodeError};
pub use node::{
    Credentials, MAX_INSTANCE_NAME, Node, NodeConfig, NodeEvent, OnDamage, check_instance_name,
};

#[cfg(test)]
pub(crate) mod test_instance {
    //! A real instance (SQLite file, sealed key) in a temp dir, for the
    //! unit tests that need one.
    use crate::api::CreateNetwork;
    use crate::node::{Credentials, Node, NodeConfig};

    /// Its admin password.
    pub(crate) const PASSWORD: &str = "correct horse battery";

    /// Opens a new instance named "ada" in `dir`, founding the network
    /// "Library" on its own (one member is enough to write).
    pub(crate) async fn founded(dir: &std::path::Path) -> Node {
        Node::init(dir, "ada", PASSWORD).await.expect("init");
        let node = reopened(dir).await;
        let network = CreateNetwork {
            name: "Library".into(),
            min_members: Some(1),
            approve_code: Vec::new(),
        };
        node.create_network(network, PASSWORD)
            .await
            .expect("create");
        node
    }

    /// Makes the replica's owner run a command that ends only when the
    /// returned sender is used (or dropped), as a long ingest or a rebuild
    /// would; the handle ends with it.
    pub(crate) async fn hold_replica(
        node: &Node,
    ) -> (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        use libp2p::futures::FutureExt;
        let (started, running) = tokio::sync::oneshot::channel();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let holder = node.clone();
        let held = tokio::spawn(async move {
            holder
                .inner()
                .ledger
                .change(move |_| {
                    async move {
                        let _ = started.send(());
                        let _ = released.await;
                    }
                    .boxed()
                })
                .await
                .expect("the owner ran it");
        });
        running.await.expect("the owner runs the holding command");
        (release, held)
    }

    /// Returns once a command waits for the replica's owner (10 s at most).
    pub(crate) async fn until_a_command_waits(node: &Node) {
        let queued = async {
            while node.inner().ledger.queued() == 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), queued)
            .await
            .expect("a command waits for the replica");
    }

    /// Opens the instance in `dir` again (after [`founded`] and a close).
    pub(crate) async fn reopened(dir: &std::path::Path) -> Node {
        let credentials = Credentials {
            password: Some(PASSWORD.into()),
            use_keyring: false,
        };
        Node::open(NodeConfig::new(dir), credentials)
            .await
            .expect("open")
    }
}

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

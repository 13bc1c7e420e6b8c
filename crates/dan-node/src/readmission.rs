//! Readmission: an instance the network deprecated asks to come back.
//!
//! Evidence is permanent: the key that broke the rules stays deprecated on
//! every honest instance, and its chain past the cutoff can never be
//! continued without signing a second op for a seq it already used. So a
//! repaired instance comes back as a *new* member: it archives its fork,
//! takes a fresh key (sealed under the same admin password), starts over on
//! the same genesis and asks to join like any newcomer, which needs a fresh
//! quorum of approvals, each checking its code hash.

use dan_core::{Keypair, NetworkId, PeerKey, Succession};

use crate::error::NodeError;
use crate::node::{META_SEALED_KEY, META_SUCCESSION, Node, seal};
use crate::secrets::{keyring_forget, keyring_load, keyring_store, random_bytes};

impl Node {
    /// Whether the network `network` deprecated this instance (it runs as
    /// a fork and can only come back under a new key).
    pub(crate) fn deprecated_in(&self, network: &NetworkId) -> bool {
        let replica = self.inner().ledger.snapshot();
        replica.is_some_and(|r| r.network_id() == *network) && self.is_deprecated()
    }

    /// Whether this instance is deprecated in its network: proven evidence
    /// against itself, or a quorum of its members refusing it (an instance
    /// that served damaged rows cannot prove the evidence against itself:
    /// its own state agrees with its wrong checkpoint). See
    /// [`crate::standing`].
    pub(crate) fn is_deprecated(&self) -> bool {
        let replica = self.inner().ledger.snapshot();
        self.inner()
            .standing
            .deprecation(replica.as_deref(), &self.peer_id())
            .is_some()
    }

    /// Starts afresh to be readmitted: archives the fork's data, takes a
    /// new key sealed under `password` (the old one signs it its seat), and
    /// restarts the network layer under the new identity. Returns the new
    /// peer id.
    pub(crate) async fn start_afresh(&self, password: &str) -> Result<PeerKey, NodeError> {
        let (node, password) = (self.clone(), password.to_owned());
        self.to_the_end(async move { node.start_afresh_steps(&password).await })
            .await
    }

    async fn start_afresh_steps(&self, password: &str) -> Result<PeerKey, NodeError> {
        let previous = self.peer_id();
        let keypair = Keypair::from_secret(random_bytes()?);
        let (sealed, unlock, sealed_json) = seal(&keypair, password).await?;
        let genesis = self
            .read_replica(|replica| replica.genesis().clone())
            .await?;
        let succession = dan_core::codec::encode(&Succession::sign(
            &genesis.network_id(),
            &keypair.public(),
            &self.keypair(),
        ));
        let was_cached = keyring_load(previous).await.is_some();
        let net_config = self.stop_network().await;
        let started_over = self
            .start_over(
                &genesis,
                &[
                    (META_SEALED_KEY, &sealed_json),
                    (META_SUCCESSION, &succession),
                ],
            )
            .await;
        if started_over.is_ok() {
            self.replace_keypair(keypair.clone(), sealed);
            if was_cached {
                keyring_forget(previous).await;
                keyring_store(keypair.public(), unlock).await;
            }
            tracing::warn!(
                "started afresh as {} to ask for readmission (was {previous})",
                keypair.public()
            );
        }
        // Not once the instance is stopping: nothing would stop it again.
        if let Some(config) = net_config.filter(|_| !self.is_closing()) {
            crate::net::start(self, config).await?;
        }
        started_over?;
        Ok(keypair.public())
    }
}

impl Node {
    /// The hand-over of a deprecated key's seat in `network` to this
    /// instance's key, if it started afresh to be readmitted there.
    pub(crate) async fn succession_in(&self, network: &NetworkId) -> Option<Succession> {
        let bytes = self.inner().store.meta(META_SUCCESSION).await.ok()??;
        let succession: Succession =
            dan_core::codec::decode(&bytes, dan_core::invite::MAX_JOIN_REQUEST_BYTES).ok()?;
        // Signed for another network or key, it would only get the request
        // refused.
        succession
            .verify(network, &self.peer_id())
            .is_ok()
            .then_some(succession)
    }
}

//! The lock around the replica, and what it publishes each time it is let
//! go after a change: the facts other tasks read without waiting (the
//! network, its members in good standing and those removed by vote), and
//! the replica's snapshot (member table, proposals, charter, digests), so
//! that judging a peer, status, the member table and the proposals never
//! wait behind a long ingest or rebuild, and nothing reads the replica
//! with `try_lock` (which got nothing while one held it).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use dan_core::{Hlc, MemberStatus, NetworkId, PeerKey, ReplicaSnapshot};
use tokio::sync::{Mutex, MutexGuard, watch};

use crate::node::Ledger;

/// What anyone may read at once about the replica, as of its last unlock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LedgerFacts {
    /// The network, once there is one.
    pub(crate) network: Option<NetworkId>,
    /// Its admitted members in good standing (this instance included).
    pub(crate) members: Vec<PeerKey>,
    /// Members removed by vote, and the clock of the deciding vote.
    pub(crate) removed: Vec<(PeerKey, Hlc)>,
}

impl LedgerFacts {
    fn of(ledger: &Ledger) -> LedgerFacts {
        let Some(replica) = &ledger.replica else {
            return LedgerFacts::default();
        };
        let mut facts = LedgerFacts {
            network: Some(replica.network_id()),
            ..LedgerFacts::default()
        };
        for member in replica.members() {
            match (member.status, member.removed_at) {
                (MemberStatus::Member, _) => facts.members.push(member.peer),
                (MemberStatus::Removed, Some(decided)) => {
                    facts.removed.push((member.peer, decided));
                }
                _ => {}
            }
        }
        facts
    }
}

/// The replica as of its last change, if there is a network.
pub(crate) type Snapshot = Option<Arc<ReplicaSnapshot>>;

fn snapshot_of(ledger: &Ledger) -> Snapshot {
    ledger.replica.as_ref().map(|r| Arc::new(r.snapshot()))
}

/// The replica's lock; [`LedgerLock::facts`] and [`LedgerLock::snapshot`]
/// read without it.
pub(crate) struct LedgerLock {
    ledger: Mutex<Ledger>,
    facts: watch::Sender<LedgerFacts>,
    snapshot: watch::Sender<Snapshot>,
}

impl LedgerLock {
    pub(crate) fn new(ledger: Ledger) -> Self {
        let facts = watch::Sender::new(LedgerFacts::of(&ledger));
        let snapshot = watch::Sender::new(snapshot_of(&ledger));
        LedgerLock {
            ledger: Mutex::new(ledger),
            facts,
            snapshot,
        }
    }

    /// Waits for the replica.
    pub(crate) async fn lock(&self) -> LedgerGuard<'_> {
        LedgerGuard {
            guard: self.ledger.lock().await,
            lock: self,
            changed: false,
        }
    }

    /// The replica as of its last change, without waiting.
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.snapshot.borrow().clone()
    }

    /// The facts as of the last unlock, without waiting.
    pub(crate) fn facts(&self) -> LedgerFacts {
        self.facts.borrow().clone()
    }

    /// Told each time the facts change, once they are published.
    pub(crate) fn watch(&self) -> watch::Receiver<LedgerFacts> {
        self.facts.subscribe()
    }
}

/// The held replica; letting it go after a change (any mutable borrow)
/// publishes its snapshot, and its facts if they changed.
pub(crate) struct LedgerGuard<'a> {
    guard: MutexGuard<'a, Ledger>,
    lock: &'a LedgerLock,
    changed: bool,
}

impl Deref for LedgerGuard<'_> {
    type Target = Ledger;
    fn deref(&self) -> &Ledger {
        &self.guard
    }
}

impl DerefMut for LedgerGuard<'_> {
    fn deref_mut(&mut self) -> &mut Ledger {
        self.changed = true;
        &mut self.guard
    }
}

impl Drop for LedgerGuard<'_> {
    fn drop(&mut self) {
        if !self.changed {
            return;
        }
        self.lock.snapshot.send_replace(snapshot_of(&self.guard));
        let now = LedgerFacts::of(&self.guard);
        self.lock.facts.send_if_modified(|facts| {
            let changed = *facts != now;
            if changed {
                *facts = now;
            }
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::api::{NetworkState, PutRecord};
    use crate::test_instance::founded;

    /// At most this long for a read that must not wait for the replica.
    const AT_ONCE: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn status_members_proposals_and_handshakes_answer_while_the_replica_is_held_and_follow_each_change()
     {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = founded(dir.path()).await;
        let before = node.status().await;
        assert_eq!(before.state, NetworkState::Active);

        // Held as a long ingest or a rebuild holds it.
        let held = node.inner().ledger.lock().await;
        let status = tokio::time::timeout(AT_ONCE, node.status())
            .await
            .expect("status does not wait for the replica");
        assert_eq!(status.ops_root, before.ops_root);
        assert_eq!(status.network_name.as_deref(), Some("Library"));
        let members = tokio::time::timeout(AT_ONCE, node.members())
            .await
            .expect("the member table does not wait for the replica")
            .expect("members");
        assert!(members.iter().any(|m| m.is_self && m.name == "ada"));
        tokio::time::timeout(AT_ONCE, node.proposals())
            .await
            .expect("the proposals do not wait for the replica")
            .expect("proposals");
        // A peer's handshake is answered meanwhile too.
        let hello = tokio::time::timeout(AT_ONCE, node.signed_hello())
            .await
            .expect("the hello does not wait for the replica");
        assert_eq!(hello.hello.ops_root, before.ops_root);
        let stranger = dan_core::Keypair::from_secret([9; 32]);
        let theirs = dan_core::conformance::SignedHello::sign(
            dan_core::conformance::Hello {
                peer: stranger.public(),
                ..hello.hello.clone()
            },
            &stranger,
        );
        let verdict = tokio::time::timeout(AT_ONCE, node.judge(&stranger.public(), &theirs))
            .await
            .expect("judging a peer does not wait for the replica");
        assert_eq!(
            verdict,
            dan_core::conformance::Verdict::Candidate,
            "a stranger in this network is no member"
        );
        drop(held);

        node.put_record(PutRecord {
            collection: Some("books".into()),
            title: Some("Dune".into()),
            ..PutRecord::default()
        })
        .await
        .expect("write");
        let after = node.status().await;
        assert_eq!(
            after.op_count,
            before.op_count + 1,
            "the write is seen at once"
        );
        assert_ne!(after.state_root, before.state_root);
        node.close().await;
    }
}

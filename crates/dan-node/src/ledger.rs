//! The task that owns the replica, and the handle everything else holds.
//!
//! One task owns the [`Ledger`] (the replica, the ops waiting for others
//! and the reconciliation set): writes, ingest, evidence, reconciliation
//! and fetches reach it as commands on a bounded queue, run one after
//! another to their end (a caller that stops waiting, say a control
//! connection that closed, cannot cut a command off half-way between the
//! replica and the store), and answer on a `oneshot`. After each command
//! that may change it, the owner publishes what anyone may read at once:
//! the facts (the network, its members in good standing and those removed
//! by vote) and the replica's snapshot (member table, proposals, charter,
//! digests), so that judging a peer, status, the member table and the
//! proposals never wait behind a long ingest or rebuild.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use dan_core::{Hlc, MemberStatus, NetworkId, PeerKey, ReplicaSnapshot};
use libp2p::futures::FutureExt;
use libp2p::futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::NodeError;
use crate::node::Ledger;

/// Commands that may wait for the owner before callers wait for room.
const QUEUE: usize = 64;

/// Most rebuilds after a panic within [`REBUILDS_WINDOW`]; beyond, a
/// panic someone can repeat would cost a rebuild each time, so the owner
/// stops instead.
const MAX_REBUILDS: usize = 3;
/// See [`MAX_REBUILDS`].
const REBUILDS_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

/// What anyone may read at once about the replica, as of its last change.
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

/// What the owner publishes; the handle subscribes to it.
struct Published {
    facts: watch::Sender<LedgerFacts>,
    snapshot: watch::Sender<Snapshot>,
}

impl Published {
    fn publish(&self, ledger: &Ledger) {
        self.snapshot.send_replace(snapshot_of(ledger));
        let now = LedgerFacts::of(ledger);
        self.facts.send_if_modified(|facts| {
            let changed = *facts != now;
            if changed {
                *facts = now;
            }
            changed
        });
    }
}

/// Gives a command's caller its answer.
type Answer = Box<dyn FnOnce() + Send>;

/// Work for the owner: it borrows the ledger until its future ends, which
/// gives the answer to deliver once what it changed is published.
type Work = Box<dyn for<'a> FnOnce(&'a mut Ledger) -> BoxFuture<'a, Answer> + Send>;

/// What the owner does after a command panicked, to make the ledger whole
/// again from what is stored; `false` when it could not.
pub(crate) type Recovery = Box<dyn for<'a> Fn(&'a mut Ledger) -> BoxFuture<'a, bool> + Send>;

/// One command: its work, and whether it may change the ledger.
struct Command {
    work: Work,
    changes: bool,
}

/// The handle on the replica's owner: cheap to share, every command waits
/// its turn; [`LedgerHandle::facts`] and [`LedgerHandle::snapshot`] read
/// without waiting.
pub(crate) struct LedgerHandle {
    commands: mpsc::Sender<Command>,
    published: Arc<Published>,
}

impl LedgerHandle {
    /// Starts the task that owns `ledger`, which makes it whole with
    /// `recovery` after a command panicked. It runs until every handle is
    /// gone and the commands sent before have run.
    pub(crate) fn spawn(ledger: Ledger, recovery: Recovery) -> Self {
        let published = Arc::new(Published {
            facts: watch::Sender::new(LedgerFacts::of(&ledger)),
            snapshot: watch::Sender::new(snapshot_of(&ledger)),
        });
        let (commands, queue) = mpsc::channel(QUEUE);
        tokio::spawn(own(ledger, queue, published.clone(), recovery));
        LedgerHandle {
            commands,
            published,
        }
    }

    /// Runs `work` on the owner, after the commands sent before it, and
    /// publishes what it changed. It runs to its end even if the caller
    /// stops waiting.
    pub(crate) async fn change<R: Send + 'static>(
        &self,
        work: impl for<'a> FnOnce(&'a mut Ledger) -> BoxFuture<'a, R> + Send + 'static,
    ) -> Result<R, NodeError> {
        self.send(true, work).await
    }

    /// Reads the ledger on the owner, in turn with the changes.
    pub(crate) async fn read<R: Send + 'static>(
        &self,
        work: impl FnOnce(&Ledger) -> R + Send + 'static,
    ) -> Result<R, NodeError> {
        self.send(false, move |ledger: &mut Ledger| {
            let answer = work(ledger);
            async move { answer }.boxed()
        })
        .await
    }

    async fn send<R: Send + 'static>(
        &self,
        changes: bool,
        work: impl for<'a> FnOnce(&'a mut Ledger) -> BoxFuture<'a, R> + Send + 'static,
    ) -> Result<R, NodeError> {
        let (answer, answered) = oneshot::channel();
        let work: Work = Box::new(move |ledger: &mut Ledger| {
            let running = work(ledger);
            async move {
                let result = running.await;
                // The caller may have stopped waiting: the work is done anyway.
                Box::new(move || drop(answer.send(result))) as Answer
            }
            .boxed()
        });
        self.commands
            .send(Command { work, changes })
            .await
            .map_err(|_| NodeError::Stopped)?;
        answered.await.map_err(|_| NodeError::Stopped)
    }

    /// Commands waiting for the owner (for tests that need one queued).
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        QUEUE - self.commands.capacity()
    }

    /// The replica as of its last change, without waiting.
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.published.snapshot.borrow().clone()
    }

    /// The facts as of the last change, without waiting.
    pub(crate) fn facts(&self) -> LedgerFacts {
        self.published.facts.borrow().clone()
    }

    /// Told each time the facts change, once they are published.
    pub(crate) fn watch(&self) -> watch::Receiver<LedgerFacts> {
        self.published.facts.subscribe()
    }
}

/// The owner: runs each command to its end, publishes what it changed and
/// only then answers, so a caller that reads the snapshot next sees its
/// own change. A command that panics may have left the replica half-way
/// (an op applied but not stored): its caller is told
/// [`NodeError::Stopped`] and the ledger is made whole from the store
/// (`recovery`, at most [`MAX_REBUILDS`] times in [`REBUILDS_WINDOW`]); if
/// that fails too, nothing more is published and every command is answered
/// [`NodeError::Stopped`], until a restart checks the store again. A read
/// that panics changed nothing: only its caller is told.
async fn own(
    mut ledger: Ledger,
    mut queue: mpsc::Receiver<Command>,
    published: Arc<Published>,
    recovery: Recovery,
) {
    let mut broken = false;
    let mut rebuilds: Vec<std::time::Instant> = Vec::new();
    while let Some(Command { work, changes }) = queue.recv().await {
        if broken {
            // Dropped unrun: its caller hears that the instance stopped.
            continue;
        }
        match AssertUnwindSafe(async { work(&mut ledger).await })
            .catch_unwind()
            .await
        {
            Ok(answer) => {
                if changes {
                    published.publish(&ledger);
                }
                answer();
            }
            Err(_) if !changes => {
                tracing::error!("a read of the replica panicked; its caller was told");
            }
            Err(_) => {
                tracing::error!("a command on the replica panicked; rebuilding it from the op log");
                let now = std::time::Instant::now();
                rebuilds.retain(|at| now.duration_since(*at) < REBUILDS_WINDOW);
                rebuilds.push(now);
                let recovered = if rebuilds.len() > MAX_REBUILDS {
                    tracing::error!(
                        "more than {MAX_REBUILDS} commands panicked within {} minutes",
                        REBUILDS_WINDOW.as_secs() / 60
                    );
                    false
                } else {
                    AssertUnwindSafe(recovery(&mut ledger))
                        .catch_unwind()
                        .await
                        .unwrap_or(false)
                };
                if recovered {
                    published.publish(&ledger);
                } else {
                    tracing::error!(
                        "the replica could not be rebuilt; this instance runs no more commands until it is started again"
                    );
                    broken = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use libp2p::futures::FutureExt;

    use crate::api::{NetworkState, PutRecord};
    use crate::test_instance::{founded, hold_replica};

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
        let (release, held) = hold_replica(&node).await;
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
        release.send(()).expect("still held");
        held.await.expect("holder");

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

    #[tokio::test]
    async fn a_write_whose_caller_stops_waiting_is_still_made_whole_in_the_replica_and_the_store() {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = founded(dir.path()).await;
        let before = node.status().await.op_count;
        let (release, held) = hold_replica(&node).await;
        let writer = node.clone();
        let write = tokio::spawn(async move {
            writer
                .put_record(PutRecord {
                    collection: Some("books".into()),
                    title: Some("Dune".into()),
                    ..PutRecord::default()
                })
                .await
        });
        // Its command is queued behind the one held, then its caller goes
        // away (a control connection closed, a window reloaded).
        crate::test_instance::until_a_command_waits(&node).await;
        write.abort();
        assert!(write.await.is_err_and(|e| e.is_cancelled()));
        release.send(()).expect("still held");
        held.await.expect("holder");
        // A read queued now runs after the write's command.
        node.read_replica(|_| ()).await.expect("owner");

        // The owner ran it to its end: in the replica, in the store, and
        // the two agree at the next start.
        let records = node
            .list_records(&dan_store::RecordQuery::default())
            .await
            .expect("list");
        assert_eq!(records.len(), 1, "the write was made");
        assert_eq!(node.status().await.op_count, before + 1);
        node.close().await;
        let reopened = crate::test_instance::reopened(dir.path()).await;
        assert!(reopened.integrity().is_clean(), "replica and store agree");
        assert_eq!(reopened.status().await.op_count, before + 1);
        reopened.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_change_is_published_before_its_caller_hears_of_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = founded(dir.path()).await;
        let start = node.status().await.op_count;
        for n in 1..=100 {
            node.put_record(PutRecord {
                collection: Some("books".into()),
                title: Some(format!("Book {n}")),
                ..PutRecord::default()
            })
            .await
            .expect("write");
            // Read on another worker, at once: the snapshot already holds it.
            assert_eq!(node.status().await.op_count, start + n, "write {n}");
        }
        node.close().await;
    }

    #[tokio::test]
    async fn after_a_command_panics_half_way_the_replica_is_rebuilt_from_the_store_and_writes_go_on()
     {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = founded(dir.path()).await;
        let before = node.status().await;
        let (me, keypair) = (node.peer_id(), node.keypair());
        let broke = node
            .inner()
            .ledger
            .change(move |ledger| {
                async move {
                    // Half-way: an op of this instance applied to the
                    // replica but not stored, then a bug.
                    let replica = ledger.replica.as_mut().expect("network");
                    let payload = dan_core::Payload::Record {
                        id: dan_core::RecordId::new("lost").expect("id"),
                        action: dan_core::RecordAction::Create {
                            collection: "books".into(),
                            title: "Never stored".into(),
                            fields: Default::default(),
                            tags: Default::default(),
                        },
                    };
                    let body = replica.next_body(me, crate::replication::now_ms(), payload);
                    let op = dan_core::VerifiedOp::sign(body, &keypair).expect("sign");
                    replica.apply(&op).expect("applied");
                    panic!("a bug half-way through a command");
                }
                .boxed()
            })
            .await;
        assert!(matches!(broke, Err(crate::NodeError::Stopped)), "{broke:?}");
        let status = node.status().await;
        assert_eq!(
            (status.op_count, status.ops_root),
            (before.op_count, before.ops_root),
            "the replica matches the store again"
        );
        // The seq the lost op took is signed again, once: no equivocation
        // anyone could hold.
        let written = node
            .put_record(PutRecord {
                collection: Some("books".into()),
                title: Some("Dune".into()),
                ..PutRecord::default()
            })
            .await
            .expect("writes go on");
        assert_eq!(written.title, "Dune");
        assert_eq!(node.status().await.op_count, before.op_count + 1);
        node.close().await;
        let reopened = crate::test_instance::reopened(dir.path()).await;
        assert!(reopened.integrity().is_clean(), "replica and store agree");
        reopened.close().await;
    }

    #[tokio::test]
    async fn bad_input_a_panic_repeated_more_than_a_few_times_stops_the_owner_instead_of_rebuilding_each_time()
     {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = founded(dir.path()).await;
        let put = || PutRecord {
            collection: Some("books".into()),
            title: Some("Dune".into()),
            ..PutRecord::default()
        };
        // A read that panics changed nothing: no rebuild, writes go on.
        let read = node
            .read_replica(|_| -> () { panic!("a bug in a read") })
            .await;
        assert!(matches!(read, Err(crate::NodeError::Stopped)), "{read:?}");
        node.put_record(put())
            .await
            .expect("a write after a read panicked");
        for n in 0..=super::MAX_REBUILDS {
            let broke = node
                .inner()
                .ledger
                .change(|_| async move { panic!("the same bug again") }.boxed())
                .await;
            assert!(
                matches!(broke, Err(crate::NodeError::Stopped)),
                "{n}: {broke:?}"
            );
        }
        let write = node.put_record(put()).await;
        assert!(
            matches!(write, Err(crate::NodeError::Stopped)),
            "after {} rebuilds the owner stops: {write:?}",
            super::MAX_REBUILDS
        );
    }
}

//! The lock around the replica, and what it publishes each time it is let
//! go: the facts other tasks read without waiting (the network, its
//! members in good standing and those removed by vote), so that judging a
//! peer never waits behind a long ingest or rebuild, and nothing reads the
//! replica with `try_lock` (which got nothing while one held it).

use std::ops::{Deref, DerefMut};

use dan_core::{Hlc, MemberStatus, NetworkId, PeerKey};
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

/// The replica's lock; [`LedgerLock::facts`] reads without it.
pub(crate) struct LedgerLock {
    ledger: Mutex<Ledger>,
    facts: watch::Sender<LedgerFacts>,
}

impl LedgerLock {
    pub(crate) fn new(ledger: Ledger) -> Self {
        let facts = watch::Sender::new(LedgerFacts::of(&ledger));
        LedgerLock {
            ledger: Mutex::new(ledger),
            facts,
        }
    }

    /// Waits for the replica.
    pub(crate) async fn lock(&self) -> LedgerGuard<'_> {
        LedgerGuard {
            guard: self.ledger.lock().await,
            facts: &self.facts,
        }
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

/// The held replica; letting it go publishes its facts if they changed.
pub(crate) struct LedgerGuard<'a> {
    guard: MutexGuard<'a, Ledger>,
    facts: &'a watch::Sender<LedgerFacts>,
}

impl Deref for LedgerGuard<'_> {
    type Target = Ledger;
    fn deref(&self) -> &Ledger {
        &self.guard
    }
}

impl DerefMut for LedgerGuard<'_> {
    fn deref_mut(&mut self) -> &mut Ledger {
        &mut self.guard
    }
}

impl Drop for LedgerGuard<'_> {
    fn drop(&mut self) {
        let now = LedgerFacts::of(&self.guard);
        self.facts.send_if_modified(|facts| {
            let changed = *facts != now;
            if changed {
                *facts = now;
            }
            changed
        });
    }
}

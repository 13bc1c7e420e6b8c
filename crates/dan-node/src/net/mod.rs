//! Networking: libp2p (TCP + Noise + Yamux, QUIC, identify, ping, mDNS,
//! Kademlia, relay + DCUtR, gossipsub, request-response) wired to the
//! instance.
//!
//! One task owns the swarm ([`event_loop`]); the rest of the program holds
//! a [`NetHandle`] that sends it commands over a bounded channel and reads
//! the shared peer table. Every connection starts with the conformance
//! handshake; ops are pushed over gossipsub and pulled with range-based set
//! reconciliation ([`sync`]).

mod behaviour;
mod direct_links;
mod event_loop;
#[cfg(test)]
mod fake;
mod gossip;
mod instance;
mod own_addrs;
mod reachability;
pub mod relay;
mod strangers;
mod sync;
pub mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dan_core::{PeerKey, SignedInvite};
pub use gossip::{GossipCounts, MAX_GOSSIP_IN_FLIGHT, MIN_CHECKPOINT_INTERVAL};
pub use libp2p::Multiaddr;
use libp2p::PeerId;
use libp2p::multiaddr::Protocol;
use serde::{Deserialize, Serialize};
pub use strangers::{MAX_STRANGERS_CONNECTED, MAX_STRANGERS_PER_ADDRESS};
pub use sync::{HANDSHAKE_DEADLINE, MAX_RECONCILE_ROUNDS};
use tokio::sync::{mpsc, oneshot};

use crate::error::NodeError;
use crate::membership::JoinProgress;
use crate::node::Node;
use wire::{Request, Response};

/// How the network layer runs.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Whether to find peers on the local network with mDNS.
    pub mdns: bool,
    /// Whether to relay for any instance behind NAT, not only for the
    /// members of this instance's network (which it always relays for).
    pub relay_server: bool,
    /// Whether to ask the home router to forward a port (UPnP IGD).
    pub upnp: bool,
    /// How often to re-check peers and reconcile.
    pub sync_interval: Duration,
    /// Peers to dial at start (multiaddrs ending in `/p2p/<peer id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// Relays to reserve a slot on (`dan relay` addresses ending in
    /// `/p2p/<relay id>`): peers reach this instance through them.
    pub relays: Vec<Multiaddr>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            listen: vec![
                "/ip4/0.0.0.0/tcp/0"
                    .parse()
                    .unwrap_or_else(|_| Multiaddr::empty()),
                "/ip4/0.0.0.0/udp/0/quic-v1"
                    .parse()
                    .unwrap_or_else(|_| Multiaddr::empty()),
            ],
            mdns: true,
            relay_server: false,
            upnp: true,
            sync_interval: Duration::from_secs(10),
            bootstrap: Vec::new(),
            relays: Vec::new(),
        }
    }
}

/// How this instance is connected to a peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Connection {
    /// At least one connection straight to it.
    Direct,
    /// Only through a relay.
    Relayed,
    /// Not connected.
    #[default]
    None,
}

/// Whether other instances can reach this one without a relay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reachability {
    /// Peers dialled this instance back at an address it announced.
    Public,
    /// Peers could not dial it back (behind NAT or a firewall).
    Private,
    /// Not probed yet, or no peer to probe with.
    #[default]
    Unknown,
}

/// A relay this instance uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayStatus {
    /// Its address, as given to `dan run --relay`.
    pub addr: String,
    /// Whether it holds a slot for this instance now.
    pub reserved: bool,
    /// Whether this instance found it itself: a member of the network at a
    /// public address, used while nobody can dial this instance and no
    /// relay it was given holds a slot.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub learnt: bool,
    /// Why the last attempt to hold a slot failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the last handshake with a peer decided, or that it did not answer
/// in time (shown as `replicate`, `pull-only`, `candidate`, `suspended`,
/// `deprecated`, `refused` or `unanswered`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerVerdict {
    /// A member in good standing: everything flows both ways.
    Replicate,
    /// It may pull from this instance, nothing more.
    PullOnly,
    /// It asks to join (or waits for approval of its build).
    Candidate,
    /// Suspended until the network approves its build again.
    Suspended,
    /// Deprecated by evidence.
    Deprecated,
    /// Refused, by either side.
    Refused,
    /// A member that did not answer the last handshake in time.
    Unanswered,
}

impl PeerVerdict {
    /// The verdict that the handshake's `verdict` records.
    pub fn of(verdict: &dan_core::conformance::Verdict) -> Self {
        use dan_core::conformance::Verdict;
        match verdict {
            Verdict::Replicate => PeerVerdict::Replicate,
            Verdict::PullOnly => PeerVerdict::PullOnly,
            Verdict::Candidate => PeerVerdict::Candidate,
            Verdict::Suspended(_) => PeerVerdict::Suspended,
            Verdict::Deprecated(_) => PeerVerdict::Deprecated,
            Verdict::Refuse(_) => PeerVerdict::Refused,
        }
    }

    /// Whether this instance serves such a peer nothing until a later
    /// hello is accepted.
    pub fn serves_nothing(self) -> bool {
        matches!(
            self,
            PeerVerdict::Suspended
                | PeerVerdict::Deprecated
                | PeerVerdict::Refused
                | PeerVerdict::Unanswered
        )
    }

    /// How it is shown in the log and in `dan peers`.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerVerdict::Replicate => "replicate",
            PeerVerdict::PullOnly => "pull-only",
            PeerVerdict::Candidate => "candidate",
            PeerVerdict::Suspended => "suspended",
            PeerVerdict::Deprecated => "deprecated",
            PeerVerdict::Refused => "refused",
            PeerVerdict::Unanswered => "unanswered",
        }
    }
}

/// What this instance knows about one peer.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PeerInfo {
    /// Connected right now.
    pub online: bool,
    /// Last time it was connected (ms since the Unix epoch).
    pub last_seen: Option<u64>,
    /// What the handshake decided, if it got that far.
    pub verdict: Option<PeerVerdict>,
    /// Why the connection was refused (by either side).
    pub refused: Option<String>,
    /// The code hash it announced.
    pub code_hash: Option<dan_core::Hash32>,
    /// How it is connected now.
    pub connection: Connection,
    /// The roots of its last checkpoint: ops, deprecations, state.
    pub roots: Option<(
        Option<dan_core::Hash32>,
        Option<dan_core::Hash32>,
        Option<dan_core::Hash32>,
    )>,
    /// Its addresses, as learned from identify.
    #[serde(skip)]
    pub addrs: Vec<Multiaddr>,
    /// The addresses last stored for it (once a handshake accepted it).
    #[serde(skip)]
    pub(crate) stored_addrs: Vec<Multiaddr>,
    /// This instance's clock minus the time its last hello was signed at
    /// (ms): positive when this clock is ahead of the peer's.
    #[serde(skip)]
    pub clock_behind_ms: Option<i64>,
}

impl PeerInfo {
    /// Connected now, and accepted by the last handshake as a member to
    /// replicate with.
    pub fn replicating(&self) -> bool {
        self.online && self.verdict == Some(PeerVerdict::Replicate)
    }
}

/// Most peers remembered while offline; strangers go first.
const MAX_PEERS_KEPT: usize = 1024;

impl Shared {
    /// After `left` disconnected: forgets it if no handshake ever judged it
    /// and nothing is stored for it (a peer that only connected), and the longest-gone peers that are
    /// not members once more than [`MAX_PEERS_KEPT`] are kept.
    pub(crate) fn forget_strangers(&mut self, left: PeerKey) {
        if self
            .peers
            .get(&left)
            .is_some_and(|p| p.verdict.is_none() && p.stored_addrs.is_empty())
        {
            self.peers.remove(&left);
        }
        while self.peers.len() > MAX_PEERS_KEPT {
            let oldest = self
                .peers
                .iter()
                .filter(|(_, p)| !p.online && p.verdict != Some(PeerVerdict::Replicate))
                .min_by_key(|(_, p)| p.last_seen)
                .map(|(key, _)| *key);
            match oldest {
                Some(key) => self.peers.remove(&key),
                None => break,
            };
        }
    }
}

/// State shared between the event loop and the handle.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) peers: HashMap<PeerKey, PeerInfo>,
    pub(crate) listen: Vec<Multiaddr>,
    /// Each member's latest checkpoint seen in gossip, and when one of its
    /// checkpoints last spread.
    pub(crate) checkpoints: HashMap<PeerKey, gossip::LastCheckpoint>,
    /// Addresses peers confirmed they can dial this instance at.
    pub(crate) external: Vec<Multiaddr>,
    pub(crate) reachability: Reachability,
    pub(crate) relays: Vec<RelayStatus>,
    pub(crate) syncing: HashSet<PeerKey>,
    pub(crate) missing: HashMap<PeerKey, u64>,
    pub(crate) last_sync_ms: Option<u64>,
    pub(crate) join_view: Option<(u64, u64)>,
    pub(crate) request_counts: HashMap<PeerKey, (u64, u32)>,
    /// The highest seq of this instance's own chain that a peer holds and
    /// this instance does not (lost writes being recovered).
    pub(crate) own_chain_head: u64,
    /// Whether a member has confirmed this instance's chain head.
    pub(crate) chain_confirmed: bool,
    /// Told when a member confirms this instance's chain head.
    pub(crate) chain_news: Arc<tokio::sync::Notify>,
    /// When the network layer started.
    pub(crate) started: Option<std::time::Instant>,
}

/// Commands for the event loop.
pub(crate) enum Command {
    Request {
        peer: PeerId,
        request: Request,
        reply: oneshot::Sender<Result<Response, String>>,
    },
    Respond {
        channel: libp2p::request_response::ResponseChannel<Response>,
        request_id: libp2p::request_response::InboundRequestId,
        peer: PeerId,
        answer: sync::Answer,
    },
    Dial {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
    },
    Disconnect(PeerId),
    Publish(wire::Gossip),
    /// How far gossip may flow with a peer.
    Trust {
        peer: PeerId,
        trust: gossip::Trust,
    },
    /// Reserve slots on exactly these relays from now on.
    UseRelays {
        relays: Vec<Multiaddr>,
        reply: oneshot::Sender<Vec<RelayStatus>>,
    },
    /// What judging a gossip message decided.
    Judged {
        id: libp2p::gossipsub::MessageId,
        from: PeerId,
        author: Option<PeerId>,
        acceptance: libp2p::gossipsub::MessageAcceptance,
    },
    Shutdown(oneshot::Sender<()>),
}

/// A handle to the running network layer. Cheap to clone.
#[derive(Clone)]
pub struct NetHandle {
    traffic: Arc<wire::Traffic>,
    gossip_tally: Arc<gossip::GossipTally>,
    tasks: Arc<Tasks>,
    commands: mpsc::Sender<Command>,
    shared: Arc<Mutex<Shared>>,
    config: Arc<NetConfig>,
}

/// The most tasks of each kind that ran at once (see
/// [`NetHandle::task_peaks`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TaskPeaks {
    /// Inbound requests being answered (bounded by
    /// [`MAX_REQUESTS_IN_FLIGHT`]).
    pub requests: usize,
    /// Gossip messages being judged (bounded by
    /// [`MAX_GOSSIP_IN_FLIGHT`]).
    pub gossip: usize,
    /// Handshakes, pulls, joins and upkeep this instance started (bounded
    /// by [`MAX_CONVERSATIONS`]).
    pub conversations: usize,
}

/// How long after the network layer starts writes wait for a member to
/// confirm how far this instance's own chain goes.
pub const CHAIN_HEAD_PATIENCE: Duration = Duration::from_secs(10);

/// Inbound requests answered at once, from all peers; more are told to
/// slow down.
pub const MAX_REQUESTS_IN_FLIGHT: usize = 128;

/// Handshakes with peers that are not members that run at once (a
/// handshake runs once per peer at a time, and peers are bounded by the
/// connection limits, so this is a backstop): one more is not started, and
/// the next tick starts it again. Members' handshakes and this instance's
/// own upkeep never wait for this room.
pub const MAX_CONVERSATIONS: usize = 1024;

/// How long a request to a peer may take in all, from dialling it (a dial
/// to an address that swallows packets takes minutes before the OS gives
/// up) to its answer.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(90);

/// The tasks the network layer runs: counted, bounded, and waited for
/// when it stops.
#[derive(Debug)]
pub(crate) struct Tasks {
    pub(crate) requests: Arc<TaskGauge>,
    pub(crate) gossip: Arc<TaskGauge>,
    conversations: Arc<TaskGauge>,
    room: Arc<tokio::sync::Semaphore>,
    tracker: tokio_util::task::TaskTracker,
}

impl Default for Tasks {
    fn default() -> Self {
        Tasks {
            requests: Arc::default(),
            gossip: Arc::default(),
            conversations: Arc::default(),
            room: Arc::new(tokio::sync::Semaphore::new(MAX_CONVERSATIONS)),
            tracker: tokio_util::task::TaskTracker::new(),
        }
    }
}

impl Tasks {
    /// Runs `task`, counted by `gauge` and waited for at shutdown; its own
    /// bound is the caller's (a permit it holds).
    pub(crate) fn spawn(
        &self,
        gauge: &Arc<TaskGauge>,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        let running = gauge.enter();
        self.tracker.spawn(async move {
            task.await;
            drop(running);
        });
    }

    /// Runs a conversation with a member, or this instance's own upkeep:
    /// counted and tracked, never refused room (members are few, and each
    /// has one handshake at a time).
    pub(crate) fn keep_up(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.spawn(&self.conversations, task);
    }

    /// Runs the upkeep `make` starts, once at a time: asked again while it
    /// runs, it runs once more after (so an event never goes unseen, and
    /// a burst of events runs it twice, not once per event).
    pub(crate) fn once_at_a_time<F, Fut>(&self, single: &Arc<Single>, make: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        use std::sync::atomic::Ordering::SeqCst;
        single.wanted.store(true, SeqCst);
        if single.running.swap(true, SeqCst) {
            return;
        }
        let single = single.clone();
        self.keep_up(async move {
            loop {
                {
                    // Lets go when the runs end, or when one panics (the
                    // next request then starts afresh).
                    let _release = Release(&single);
                    while single.wanted.swap(false, SeqCst) {
                        make().await;
                    }
                }
                // Asked between the last run and letting go: run again,
                // unless another task took it up meanwhile.
                if !single.wanted.load(SeqCst) || single.running.swap(true, SeqCst) {
                    return;
                }
            }
        });
    }

    /// Runs a conversation with a peer that is no member, if there is
    /// room for one more (see [`MAX_CONVERSATIONS`]).
    pub(crate) fn converse(&self, task: impl Future<Output = ()> + Send + 'static) {
        let Ok(permit) = self.room.clone().try_acquire_owned() else {
            tracing::debug!(
                "{MAX_CONVERSATIONS} conversations run already; the next tick tries again"
            );
            return;
        };
        self.spawn(&self.conversations, async move {
            task.await;
            drop(permit);
        });
    }

    /// Starts no more tasks and waits (at most `patience`) for the running
    /// ones, which end once the event loop has stopped (their requests
    /// fail); says how many were still running.
    pub(crate) async fn stop(&self, patience: std::time::Duration) -> usize {
        self.tracker.close();
        if tokio::time::timeout(patience, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "{} network tasks were still running when the network stopped",
                self.tracker.len()
            );
        }
        self.tracker.len()
    }
}

/// One kind of upkeep that runs once at a time (see
/// [`Tasks::once_at_a_time`]).
#[derive(Debug, Default)]
pub(crate) struct Single {
    running: std::sync::atomic::AtomicBool,
    wanted: std::sync::atomic::AtomicBool,
}

/// Marks a [`Single`] as no longer running when dropped.
struct Release<'a>(&'a Single);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0
            .running
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// How many tasks of one kind run now, and the most that ran at once.
#[derive(Debug, Default)]
pub(crate) struct TaskGauge {
    now: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
}

impl TaskGauge {
    /// Counts one more running task until the guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> TaskGuard {
        use std::sync::atomic::Ordering;
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        TaskGuard(self.clone())
    }

    fn peak(&self) -> usize {
        self.peak.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// One running task (see [`TaskGauge::enter`]).
pub(crate) struct TaskGuard(Arc<TaskGauge>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Whether `address` goes through a relay.
pub(crate) fn is_circuit(address: &Multiaddr) -> bool {
    address.iter().any(|p| p == Protocol::P2pCircuit)
}

pub(crate) fn peer_id_of(key: &PeerKey) -> Option<PeerId> {
    PeerId::from_bytes(&key.to_peer_id_bytes()).ok()
}

pub(crate) fn key_of(peer: &PeerId) -> Option<PeerKey> {
    PeerKey::from_peer_id_bytes(&peer.to_bytes())
}

impl NetHandle {
    pub(crate) fn with_shared<T>(&self, f: impl FnOnce(&mut Shared) -> T) -> T {
        match self.shared.lock() {
            Ok(mut shared) => f(&mut shared),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// The addresses this instance listens on, as text, for invite links
    /// (wildcard addresses left out).
    pub fn shareable_addrs(&self) -> Vec<String> {
        self.with_shared(|s| {
            // Those that reach from anywhere first (an invite that is too
            // long keeps only its first addresses): confirmed external
            // ones, then relayed ones, then the rest (local networks).
            let mut addrs: Vec<&Multiaddr> = s.external.iter().collect();
            addrs.extend(s.listen.iter().filter(|a| is_circuit(a)));
            addrs.extend(s.listen.iter().filter(|a| !is_circuit(a)));
            let mut shared: Vec<String> = Vec::new();
            for addr in addrs.into_iter().map(ToString::to_string) {
                if !addr.contains("/0.0.0.0/") && !addr.contains("/::/") && !shared.contains(&addr)
                {
                    shared.push(addr);
                }
            }
            shared.truncate(dan_core::invite::MAX_INVITE_ADDRS);
            shared
        })
    }

    /// The addresses this instance listens on.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.with_shared(|s| s.listen.clone())
    }

    /// What is known about `peer`.
    pub fn peer_info(&self, peer: &PeerKey) -> Option<PeerInfo> {
        self.with_shared(|s| s.peers.get(peer).cloned())
    }

    /// Every peer seen, with what is known about it.
    pub fn peers(&self) -> Vec<(PeerKey, PeerInfo)> {
        self.with_shared(|s| s.peers.iter().map(|(k, v)| (*k, v.clone())).collect())
    }

    /// How far this instance's clock is ahead of its members' (negative:
    /// behind), in ms: the median over the members replicating now, so a
    /// minority of lying or broken clocks cannot move it far. None without
    /// any.
    pub fn clock_skew_ms(&self) -> Option<i64> {
        let mut skews: Vec<i64> = self.with_shared(|s| {
            s.peers
                .values()
                .filter(|p| p.replicating())
                .filter_map(|p| p.clock_behind_ms)
                .collect()
        });
        skews.sort_unstable();
        skews.get(skews.len() / 2).copied()
    }

    /// How far ahead of its members this instance's clock is, when a quorum
    /// of `replica`'s members each put it more than `bound_ms` ahead (the
    /// least of their figures); `None` otherwise. One member's (or a
    /// minority's) backdated hellos cannot stop this instance writing.
    pub fn clock_ahead_ms(&self, replica: &dan_core::Replica, bound_ms: i64) -> Option<i64> {
        let voters = replica.voters();
        let ahead: Vec<i64> = self.with_shared(|s| {
            s.peers
                .iter()
                .filter(|(key, p)| voters.contains(key) && p.replicating())
                .filter_map(|(_, p)| p.clock_behind_ms)
                .filter(|ms| *ms > bound_ms)
                .collect()
        });
        crate::standing::is_quorum(replica.charter(), voters.len(), ahead.len())
            .then(|| ahead.iter().copied().min().unwrap_or_default())
    }

    /// Peers connected and replicating now.
    pub fn online_peers(&self) -> u64 {
        self.with_shared(|s| s.peers.values().filter(|p| p.replicating()).count() as u64)
    }

    /// Ops known to exist on peers but not fetched yet.
    pub fn missing_ops(&self) -> u64 {
        self.with_shared(|s| s.missing.values().sum())
    }

    /// When a reconciliation last completed (ms since the Unix epoch).
    pub fn last_sync(&self) -> Option<u64> {
        self.with_shared(|s| s.last_sync_ms)
    }

    /// The highest seq of this instance's own chain known on peers, and
    /// whether a peer has confirmed it yet.
    pub fn own_chain_head(&self) -> (u64, bool) {
        self.with_shared(|s| (s.own_chain_head, s.chain_confirmed))
    }

    /// Forgets what peers said about this instance's chain (after moving
    /// to another network, where its chain starts over).
    pub fn forget_chain_head(&self) {
        self.with_shared(|s| s.own_chain_head = 0);
    }

    /// Whether the network layer started less than
    /// [`CHAIN_HEAD_PATIENCE`] ago (writes wait for a member to confirm
    /// this instance's chain head until then).
    pub fn started_recently(&self) -> bool {
        self.chain_head_deadline()
            .is_some_and(|deadline| std::time::Instant::now() < deadline)
    }

    /// Until when writes wait for a member to confirm this instance's
    /// chain head.
    pub(crate) fn chain_head_deadline(&self) -> Option<std::time::Instant> {
        self.with_shared(|s| s.started.map(|t| t + CHAIN_HEAD_PATIENCE))
    }

    /// Told when a member confirms this instance's chain head.
    pub(crate) fn chain_news(&self) -> Arc<tokio::sync::Notify> {
        self.with_shared(|s| s.chain_news.clone())
    }

    /// Approvals and approvals needed for this instance's join, as last
    /// reported by the inviter.
    pub fn join_view(&self) -> Option<(u64, u64)> {
        self.with_shared(|s| s.join_view)
    }

    /// Bytes of sync-protocol messages (sent, received) since start.
    pub fn sync_traffic(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        (
            self.traffic.sent.load(Ordering::Relaxed),
            self.traffic.received.load(Ordering::Relaxed),
        )
    }

    /// Whether peers can reach this instance without a relay (AutoNAT).
    pub fn reachability(&self) -> Reachability {
        self.with_shared(|s| s.reachability)
    }

    /// Addresses peers confirmed they can dial this instance at.
    pub fn external_addrs(&self) -> Vec<Multiaddr> {
        self.with_shared(|s| s.external.clone())
    }

    /// The relays this instance uses and whether each holds a slot.
    pub fn relays(&self) -> Vec<RelayStatus> {
        self.with_shared(|s| s.relays.clone())
    }

    /// Makes the running network reserve slots on exactly `relays`, and
    /// says where each stands.
    pub(crate) async fn use_relays(&self, relays: Vec<Multiaddr>) -> Vec<RelayStatus> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::UseRelays { relays, reply }).await;
        answer.await.unwrap_or_else(|_| self.relays())
    }

    /// What became of the gossip messages this instance received since
    /// start (forwarded, dropped, refused).
    pub fn gossip_counts(&self) -> GossipCounts {
        self.gossip_tally.counts()
    }

    /// The most tasks that ran at once since start, per kind: measured
    /// apart from the limits meant to bound them, so that a test can check
    /// the bounds hold under a flood.
    pub fn task_peaks(&self) -> TaskPeaks {
        TaskPeaks {
            requests: self.tasks.requests.peak(),
            gossip: self.tasks.gossip.peak(),
            conversations: self.tasks.conversations.peak(),
        }
    }

    /// Sends a request and waits for the answer.
    pub(crate) async fn request(&self, peer: PeerId, request: Request) -> Result<Response, String> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Request {
                peer,
                request,
                reply,
            })
            .await
            .map_err(|_| "the network layer has stopped".to_owned())?;
        match tokio::time::timeout(REQUEST_DEADLINE, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err("the network layer has stopped".to_owned()),
            Err(_) => Err(format!("no answer within {} s", REQUEST_DEADLINE.as_secs())),
        }
    }

    pub(crate) async fn command(&self, command: Command) {
        let _ = self.commands.send(command).await;
    }

    /// Joins the network of `invite`: contacts the inviter, sends this
    /// instance's signed join request and adopts the network's genesis.
    pub async fn join(
        &self,
        node: &Node,
        invite: &SignedInvite,
        admin_name: &str,
    ) -> Result<JoinProgress, NodeError> {
        sync::join(self, node, invite, admin_name).await
    }

    /// The settings it was started with.
    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// Stops the event loop, closes all connections and releases the
    /// listening sockets.
    pub async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Shutdown(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Starts the network layer for `node` and attaches it to the node.
pub async fn start(node: &Node, config: NetConfig) -> Result<NetHandle, NodeError> {
    event_loop::start(node, config).await
}

#[cfg(test)]
mod tests {
    use dan_core::Keypair;

    use super::{MAX_PEERS_KEPT, PeerInfo, PeerVerdict, Shared};

    fn key(n: u32) -> dan_core::PeerKey {
        let mut secret = [0; 32];
        secret[..4].copy_from_slice(&n.to_le_bytes());
        Keypair::from_secret(secret).public()
    }

    #[test]
    fn bad_input_throwaway_keys_that_only_connect_leave_nothing_and_members_are_kept() {
        let mut shared = Shared::default();
        let member = key(0);
        shared.peers.insert(
            member,
            PeerInfo {
                verdict: Some(PeerVerdict::Replicate),
                last_seen: Some(1),
                ..PeerInfo::default()
            },
        );
        // A stranger that connected and left, judged by no handshake.
        let stranger = key(1);
        shared.peers.insert(stranger, PeerInfo::default());
        shared.forget_strangers(stranger);
        assert!(!shared.peers.contains_key(&stranger));
        // Peers a handshake judged (candidates, say) are kept while
        // offline, but at most MAX_PEERS_KEPT: the longest gone go first,
        // never a member.
        for n in 2..(MAX_PEERS_KEPT as u32 + 500) {
            shared.peers.insert(
                key(n),
                PeerInfo {
                    verdict: Some(PeerVerdict::Candidate),
                    last_seen: Some(u64::from(n)),
                    ..PeerInfo::default()
                },
            );
            shared.forget_strangers(key(n));
        }
        assert_eq!(shared.peers.len(), MAX_PEERS_KEPT);
        assert!(shared.peers.contains_key(&member), "the member stays");
        assert!(!shared.peers.contains_key(&key(2)), "the longest gone went");
        assert!(shared.peers.contains_key(&key(MAX_PEERS_KEPT as u32 + 499)));
    }

    #[tokio::test]
    async fn upkeep_asked_while_it_runs_runs_once_more_and_never_twice_at_once() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

        use super::{Single, Tasks};

        let tasks = Tasks::default();
        let single = Arc::new(Single::default());
        let (runs, running, most) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (gate_tx, gate) = tokio::sync::watch::channel(false);
        let ask = || {
            let (runs, running, most, gate) =
                (runs.clone(), running.clone(), most.clone(), gate.clone());
            tasks.once_at_a_time(&single, move || {
                let (runs, running, most, mut gate) =
                    (runs.clone(), running.clone(), most.clone(), gate.clone());
                async move {
                    most.fetch_max(running.fetch_add(1, SeqCst) + 1, SeqCst);
                    let _ = gate.wait_for(|open| *open).await;
                    runs.fetch_add(1, SeqCst);
                    running.fetch_sub(1, SeqCst);
                }
            });
        };
        ask();
        // Asked ten times before it starts: still one run.
        for _ in 0..10 {
            ask();
        }
        while running.load(SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // Asked ten times while that run waits: one more run, after.
        for _ in 0..10 {
            ask();
        }
        let _ = gate_tx.send(true);
        assert_eq!(tasks.stop(std::time::Duration::from_secs(5)).await, 0);
        assert_eq!(runs.load(SeqCst), 2, "the first run and one more");
        assert_eq!(most.load(SeqCst), 1, "never two at once");
    }
}

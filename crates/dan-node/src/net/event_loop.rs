//! The task that owns the swarm. It turns swarm events into tasks (the
//! handshake, answering requests, ingesting gossip) and commands from
//! [`NetHandle`] into swarm calls. Anything slow runs in a spawned task, so
//! the swarm is always polled.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dan_core::NetworkId;
use dan_core::PeerKey;
use libp2p::PeerId;
use libp2p::core::transport::ListenerId;
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{
    Multiaddr, Swarm, autonat, dcutr, gossipsub, identify, mdns, relay, request_response, upnp,
};
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot};

use super::behaviour::{Behaviour, BehaviourEvent, build_swarm};
use super::direct_links::{self, Dialler};
use super::relay::RelayGate;
use super::strangers::{
    MAX_STRANGERS_CONNECTED, MAX_STRANGERS_PER_ADDRESS, Room, Source, room_for_one_more, source_of,
};
use super::wire::{Gossip, Response, Traffic, WireCodec};
use super::{
    Command, Connection, NetConfig, NetHandle, Reachability, RelayStatus, Shared, Single, gossip,
    is_circuit, key_of, peer_id_of, reachability, sync,
};
use crate::error::NodeError;
use crate::node::{Node, NodeEvent};
use crate::replication::now_ms;

/// Sync intervals between two checkpoints.
const CHECKPOINT_EVERY_TICKS: u64 = 3;

/// How long a relay that refused this instance a slot is not asked again
/// (unless the members change: a new member may get a slot on a member).
const REFUSED_RELAY_PAUSE: Duration = Duration::from_secs(300);

/// Inbound requests one peer may make per second.
const MAX_REQUESTS_PER_SECOND: u32 = 400;

struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: broadcast::Receiver<NodeEvent>,
    node: Node,
    handle: NetHandle,
    pending:
        HashMap<request_response::OutboundRequestId, oneshot::Sender<Result<Response, String>>>,
    topic: Option<(NetworkId, gossipsub::IdentTopic)>,
    ticks: u64,
    /// Room for gossip messages being judged.
    judging: Arc<Semaphore>,
    /// Room for inbound requests being answered.
    answering: Arc<Semaphore>,
    /// Open connections.
    connections: HashMap<ConnectionId, Link>,
    /// Gossip messages being judged, per publisher.
    judging_by: HashMap<PeerId, usize>,
    /// What AutoNAT probes said about reachability.
    probes: reachability::Probes,
    /// The relays to reserve a slot on.
    relays_wanted: Vec<Multiaddr>,
    /// The relays in use and their circuit listeners.
    relay_listeners: Vec<RelayListener>,
    /// Who this instance's own relay service lets in.
    relay_gate: RelayGate,
    /// Peers that offer a relay service and that this instance dialled at a
    /// public address: where to reach each (see [`EventLoop::learn_relay`]).
    relay_candidates: HashMap<PeerId, Multiaddr>,
    /// Relays that refused a slot, until when they are left alone.
    /// Whether each broke the protocol (kept when the members change).
    relay_refusals: HashMap<PeerId, (Instant, bool)>,
    /// Members removed by vote, and when they are let go: first they get
    /// the time to learn of their own removal (a laptop behind a router
    /// may not be able to connect again).
    leaving: HashMap<PeerId, Instant>,
    /// Accepted gossip not forwarded yet: an untrusted peer is in the mesh.
    held_forwards: gossip::HeldForwards,
    /// The replica's facts, to act as soon as the members change.
    facts: tokio::sync::watch::Receiver<crate::ledger::LedgerFacts>,
    /// Told when the first listening address is known.
    listening: Option<oneshot::Sender<()>>,
    /// Answers that end their connection once sent, by request.
    last_answers: HashMap<request_response::InboundRequestId, PeerId>,
    /// Peers whose last answer was sent, let go a moment later (over QUIC
    /// a connection closed at once may lose what was just sent).
    leaving_soon: tokio_util::time::DelayQueue<PeerId>,
    /// The peers in `leaving_soon`: one entry each, and nothing is
    /// answered to them meanwhile.
    leaving_peers: HashSet<PeerId>,
    /// Upkeep that runs once at a time.
    rescoring: Arc<Single>,
    checkpointing: Arc<Single>,
    polling_join: Arc<Single>,
}

/// How long a peer has to read the last answer before its connection is
/// closed.
const LAST_ANSWER_GRACE: Duration = Duration::from_millis(500);

/// How long a stopping network layer waits for its tasks to end.
const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(10);

/// How long a member removed by vote stays connected: enough for a few
/// handshakes and a pull of the ops up to its removal.
const REMOVED_GRACE: Duration = Duration::from_secs(30);

/// One open connection.
struct Link {
    peer: PeerKey,
    relayed: bool,
    /// Which side dialled it.
    dialler: Dialler,
    /// The public address this instance dialled it at, if it did.
    dialled: Option<Multiaddr>,
    /// Where it came from, if the other side opened it.
    from: Option<Source>,
    /// When it opened.
    opened: Instant,
}

/// A relay this instance holds (or asks for) a slot on.
struct RelayListener {
    relay: Multiaddr,
    listener: ListenerId,
    /// Found by this instance (a member), not given to it.
    learnt: bool,
    /// Whether it holds the slot (libp2p must not be asked to let go of a
    /// reservation still being made).
    held: bool,
    /// No longer wanted: let go once the slot is held.
    let_go: bool,
}

pub(super) async fn start(node: &Node, config: NetConfig) -> Result<NetHandle, NodeError> {
    let traffic = Arc::new(Traffic::default());
    let relay_gate = RelayGate::new(config.relay_server);
    let mut swarm = build_swarm(
        node.keypair().secret(),
        &config,
        WireCodec::new(traffic.clone()),
        &relay_gate,
    )?;
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NodeError::Invalid(format!("cannot listen on {addr}: {e}")))?;
    }
    for addr in &config.bootstrap {
        if let Err(e) = swarm.dial(addr.clone()) {
            tracing::warn!("cannot dial {addr}: {e}");
        }
    }
    let mut relays = config.relays.clone();
    for stored in node.stored_relays().await? {
        if !relays.contains(&stored) {
            relays.push(stored);
        }
    }
    let (commands_tx, commands) = mpsc::channel(1024);
    let (listening, heard) = oneshot::channel();
    let mut shared = Shared {
        started: Some(std::time::Instant::now()),
        ..Shared::default()
    };
    for (peer, addrs) in node.inner().store.peer_addrs().await? {
        if let Ok(key) = peer.parse::<dan_core::PeerKey>() {
            let entry = shared.peers.entry(key).or_default();
            entry.addrs = addrs.iter().filter_map(|a| a.parse().ok()).collect();
            entry.stored_addrs.clone_from(&entry.addrs);
        }
    }
    let handle = NetHandle {
        traffic,
        gossip_tally: Arc::default(),
        tasks: Arc::default(),
        commands: commands_tx,
        shared: Arc::new(Mutex::new(shared)),
        config: Arc::new(config.clone()),
    };
    node.attach_net(handle.clone())?;
    let mut event_loop = EventLoop {
        swarm,
        commands,
        events: node.subscribe(),
        node: node.clone(),
        handle: handle.clone(),
        pending: HashMap::new(),
        topic: None,
        ticks: 0,
        judging: Arc::new(Semaphore::new(gossip::MAX_GOSSIP_IN_FLIGHT)),
        answering: Arc::new(Semaphore::new(super::MAX_REQUESTS_IN_FLIGHT)),
        connections: HashMap::new(),
        judging_by: HashMap::new(),
        probes: reachability::Probes::default(),
        relays_wanted: Vec::new(),
        relay_listeners: Vec::new(),
        relay_gate,
        relay_candidates: HashMap::new(),
        relay_refusals: HashMap::new(),
        leaving: HashMap::new(),
        held_forwards: gossip::HeldForwards::default(),
        facts: node.inner().ledger.watch(),
        listening: Some(listening),
        last_answers: HashMap::new(),
        leaving_soon: tokio_util::time::DelayQueue::new(),
        leaving_peers: HashSet::new(),
        rescoring: Arc::default(),
        checkpointing: Arc::default(),
        polling_join: Arc::default(),
    };
    event_loop.use_relays(relays);
    tokio::spawn(event_loop.run(config.sync_interval));
    // Addresses (and invites naming them) are known once a socket listens.
    if !config.listen.is_empty()
        && tokio::time::timeout(Duration::from_secs(10), heard)
            .await
            .is_err()
    {
        tracing::warn!("no listening address after 10 s");
    }
    Ok(handle)
}

/// The peer id a relay's address ends with.
fn relay_peer(relay: &Multiaddr) -> Option<PeerId> {
    match relay.iter().last() {
        Some(Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

/// Whether `ip` is an address anyone on the internet could dial (not
/// loopback, a private, shared, link-local, documentation, benchmarking or
/// reserved range).
fn is_public_v4(ip: std::net::Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(a == 0
        || ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_documentation()
        || ip.is_broadcast()
        || ip.is_multicast()
        || (a == 100 && (b & 0xc0) == 0x40)
        || (a == 198 && (b & 0xfe) == 18)
        || a >= 240)
}

/// Whether `address` is at an IP address anyone on the internet could
/// dial.
fn is_public(address: &Multiaddr) -> bool {
    address.iter().any(|p| match p {
        Protocol::Ip4(ip) => is_public_v4(ip),
        Protocol::Ip6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => {
                let [first, second, ..] = ip.segments();
                let local = (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80;
                let documentation = first == 0x2001 && second == 0xdb8;
                !(ip.is_loopback()
                    || ip.is_unspecified()
                    || ip.is_multicast()
                    || local
                    || documentation)
            }
        },
        _ => false,
    })
}

/// `address` without a trailing `/p2p/<peer>`.
fn without_peer(address: &Multiaddr) -> Multiaddr {
    let mut address = address.clone();
    if matches!(address.iter().last(), Some(Protocol::P2p(_))) {
        address.pop();
    }
    address
}

/// How a relay said no.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// It did not (it went away, or the connection failed).
    None,
    /// It refused a slot: asked again once the members change.
    Refused,
    /// It broke the protocol: left alone for a while whatever happens.
    Misbehaved,
}

/// Why a relay let its slot go or never gave one, for a person, and how it
/// said no.
fn relay_failure(error: &std::io::Error) -> (String, Refusal) {
    use relay::outbound::hop::ReserveError;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        match current.downcast_ref::<ReserveError>() {
            Some(ReserveError::ResourceLimitExceeded | ReserveError::Refused) => {
                return (
                    "the relay refused a slot (it relays only for members of its network, or is full)"
                        .into(),
                    Refusal::Refused,
                );
            }
            Some(ReserveError::Unsupported) => {
                return (
                    "it does not relay (not a relay, or an instance of another version)".into(),
                    Refusal::Refused,
                );
            }
            Some(ReserveError::Protocol(violation)) => {
                return (
                    format!("the relay broke the protocol ({violation})"),
                    Refusal::Misbehaved,
                );
            }
            Some(other) => return (format!("the relay gave no slot ({other})"), Refusal::None),
            None => cause = current.source(),
        }
    }
    (format!("the relay gave no slot ({error})"), Refusal::None)
}

impl EventLoop {
    async fn run(mut self, sync_interval: Duration) {
        let mut tick = tokio::time::interval(sync_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Gossip held back for a clean mesh is looked at again this often
        // (gossipsub's heartbeat, which prunes, runs every 500 ms).
        let mut held = tokio::time::interval(Duration::from_millis(100));
        held.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    None => break,
                    Some(Command::Shutdown(done)) => {
                        let peers: Vec<_> = self.swarm.connected_peers().copied().collect();
                        for peer in peers {
                            let _ = self.swarm.disconnect_peer_id(peer);
                        }
                        let tasks = self.handle.tasks.clone();
                        // The swarm and the command queue go first, so every
                        // conversation's next request fails and it ends.
                        drop(self);
                        tasks.stop(SHUTDOWN_PATIENCE).await;
                        let _ = done.send(());
                        return;
                    }
                    Some(command) => self.on_command(command),
                },
                event = self.events.recv() => match event {
                    Ok(NodeEvent::LocalOps { ops }) => self.publish(&Gossip::Ops(ops)),
                    Ok(NodeEvent::Evidence { bytes, offender, .. }) => {
                        self.publish(&Gossip::Evidence(bytes));
                        if let Some(peer) = peer_id_of(&offender) {
                            gossip::apply_trust(
                                &mut self.swarm.behaviour_mut().gossip,
                                &peer,
                                gossip::Trust::Refused,
                            );
                        }
                    }
                    Ok(NodeEvent::CheckpointNow) => {
                        self.publish_checkpoint();
                    }
                    // Governance changed (a vote, a new charter): peers
                    // are judged again.
                    Ok(NodeEvent::MembersChanged) => self.follow_members(),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                // The members changed, and the change is published: serving
                // and gossip follow it at once.
                Ok(()) = self.facts.changed() => {
                    let (node, handle) = (self.node.clone(), self.handle.clone());
                    self.handle.tasks.once_at_a_time(&self.rescoring, move || {
                        sync::rescore(node.clone(), handle.clone())
                    });
                    self.follow_members();
                }
                _ = tick.tick() => self.on_tick(),
                Some(leaving) = self.leaving_soon.next(), if !self.leaving_soon.is_empty() => {
                    let peer = leaving.into_inner();
                    self.leaving_peers.remove(&peer);
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                _ = held.tick(), if !self.held_forwards.is_empty() => self.release_held_forwards(),
            }
        }
        tracing::debug!("network event loop stopped");
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                if is_circuit(&address) {
                    self.slot_held(listener_id);
                    return;
                }
                tracing::info!("listening on {address}");
                self.handle.with_shared(|s| {
                    if !s.listen.contains(&address) {
                        s.listen.push(address);
                    }
                });
                if let Some(listening) = self.listening.take() {
                    let _ = listening.send(());
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.handle
                    .with_shared(|s| s.listen.retain(|a| *a != address));
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                reason,
            } => {
                self.handle
                    .with_shared(|s| s.listen.retain(|a| !addresses.contains(a)));
                let Some(index) = self.relay_index(listener_id) else {
                    return;
                };
                let closed = self.relay_listeners.remove(index);
                let (error, refusal) = match reason {
                    Ok(()) => (None, Refusal::None),
                    Err(e) => {
                        let (text, refusal) = relay_failure(&e);
                        (Some(text), refusal)
                    }
                };
                tracing::warn!(
                    "no slot on the relay {}: {}",
                    closed.relay,
                    error.as_deref().unwrap_or("it went away")
                );
                // A relay that said no is left alone for a while (one that
                // refused, until the members change); a given relay that
                // went away is asked again at the next tick, a member that
                // relayed for this instance only after a while.
                let refusal = match refusal {
                    Refusal::None if closed.learnt => Refusal::Refused,
                    other => other,
                };
                if refusal != Refusal::None
                    && let Some(peer) = relay_peer(&closed.relay)
                {
                    self.relay_refusals.insert(
                        peer,
                        (
                            Instant::now() + REFUSED_RELAY_PAUSE,
                            refusal == Refusal::Misbehaved,
                        ),
                    );
                }
                self.forget_relay(&closed, error);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                connection_id,
                endpoint,
                ..
            } => {
                if num_established.get() == 1 {
                    // Nothing is gossiped to it until its handshake says
                    // it is a member this instance replicates with.
                    self.swarm
                        .behaviour_mut()
                        .gossip
                        .set_application_score(&peer_id, gossip::UNTRUSTED_SCORE);
                }
                let Some(key) = key_of(&peer_id) else { return };
                let from = match &endpoint {
                    ConnectedPoint::Listener {
                        local_addr,
                        send_back_addr,
                    } => source_of(local_addr, send_back_addr),
                    ConnectedPoint::Dialer { .. } => None,
                };
                // Only connections others open count against the cap: what
                // this instance dials (an inviter, a relay on the way to a
                // member, a bootstrap peer) it wants. An open relay service
                // serves strangers by design.
                if num_established.get() == 1
                    && endpoint.is_listener()
                    && !self.relay_gate.is_open()
                {
                    match self.room_for(&peer_id, from.as_ref()) {
                        Room::Yes => {}
                        Room::No => {
                            tracing::debug!(
                                "no room for one more peer that is no member (at most {MAX_STRANGERS_CONNECTED}, {MAX_STRANGERS_PER_ADDRESS} from one address): {key} let go"
                            );
                            let _ = self.swarm.disconnect_peer_id(peer_id);
                            return;
                        }
                        Room::Evict(victim) => {
                            tracing::debug!(
                                "every place for peers that are no members is taken: {victim}, from the address holding the most, makes room for {key}"
                            );
                            let _ = self.swarm.disconnect_peer_id(victim);
                        }
                    }
                }
                let relayed = endpoint.is_relayed();
                let dialled = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } if !relayed && is_public(address) => {
                        Some(without_peer(address))
                    }
                    _ => None,
                };
                let dialler = match &endpoint {
                    ConnectedPoint::Dialer {
                        role_override: Endpoint::Dialer,
                        ..
                    } => Dialler::Local,
                    _ => Dialler::Remote,
                };
                if !relayed && self.is_redundant(&peer_id, key, dialler) {
                    tracing::debug!("closing a second direct connection to {key}");
                    self.swarm.close_connection(connection_id);
                    return;
                }
                self.connections.insert(
                    connection_id,
                    Link {
                        peer: key,
                        relayed,
                        dialler,
                        dialled,
                        from,
                        opened: Instant::now(),
                    },
                );
                let connection = self.connection_to(&key);
                self.handle.with_shared(|s| {
                    let info = s.peers.entry(key).or_default();
                    info.online = true;
                    info.last_seen = Some(now_ms());
                    info.connection = connection;
                });
                if num_established.get() == 1 {
                    sync::start_handshake(&self.node, &self.handle, peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                connection_id,
                ..
            } => {
                let Some(key) = key_of(&peer_id) else { return };
                self.connections.remove(&connection_id);
                let connection = self.connection_to(&key);
                self.handle.with_shared(|s| {
                    if let Some(info) = s.peers.get_mut(&key) {
                        info.connection = connection;
                    }
                });
                if num_established == 0 {
                    self.relay_candidates.remove(&peer_id);
                    self.handle.with_shared(|s| {
                        if let Some(info) = s.peers.get_mut(&key) {
                            info.online = false;
                            info.last_seen = Some(now_ms());
                        }
                        s.missing.remove(&key);
                        s.forget_strangers(key);
                    });
                    self.node.emit(NodeEvent::PeerChanged {
                        peer: key,
                        what: "disconnected".into(),
                    });
                }
            }
            // AutoNAT confirms an address on one peer's word: only those
            // two peers dialled back are kept. Relayed addresses are
            // confirmed by the relay's reservation and listed with the
            // relays.
            SwarmEvent::ExternalAddrConfirmed { address }
                if !is_circuit(&address) && !self.probes.external().contains(&address) =>
            {
                self.swarm.remove_external_address(&address);
            }
            // The relay client confirms the address through a relay once
            // the relay holds a slot: peers learn it at once.
            SwarmEvent::ExternalAddrConfirmed { address } if is_circuit(&address) => {
                let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                self.swarm.behaviour_mut().identify.inner_mut().push(peers);
            }
            SwarmEvent::ExternalAddrExpired { address } => {
                self.probes.expired(&address);
                self.publish_reachability();
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!("could not connect to {peer_id:?}: {error}");
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Sync(event) => self.on_sync_event(event),
            BehaviourEvent::Gossip(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => self.on_gossip(propagation_source, message_id, message),
            BehaviourEvent::Dcutr(dcutr::Event {
                remote_peer_id,
                result,
            }) => match result {
                Ok(_) => {
                    tracing::info!("direct connection to {remote_peer_id} through the routers")
                }
                Err(e) => tracing::info!("no direct connection to {remote_peer_id}: {e}"),
            },
            BehaviourEvent::Autonat(event) => self.on_autonat(event),
            BehaviourEvent::Upnp(event) => self.on_upnp(event),
            BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                connection_id,
            }) => {
                // A relay candidate: it relays, and this instance dialled
                // it at an address it listens at itself (not one a hole
                // punch found through its router).
                if info.protocols.contains(&relay::HOP_PROTOCOL_NAME)
                    && let Some(dialled) = self
                        .connections
                        .get(&connection_id)
                        .and_then(|link| link.dialled.clone())
                    && info.listen_addrs.iter().any(|a| without_peer(a) == dialled)
                {
                    self.relay_candidates.insert(peer_id, dialled);
                }
                for addr in &info.listen_addrs {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer_id, addr.clone());
                }
                let Some(key) = key_of(&peer_id) else { return };
                // Kept in memory; stored once a handshake accepts the peer
                // (`sync::record_verdict`), so strangers leave no rows.
                let mut addrs = info.listen_addrs;
                addrs.truncate(dan_core::invite::MAX_INVITE_ADDRS);
                self.handle
                    .with_shared(|s| s.peers.entry(key).or_default().addrs = addrs);
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    self.swarm.add_peer_address(peer, addr);
                    let opts = DialOpts::peer_id(peer)
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build();
                    let _ = self.swarm.dial(opts);
                }
            }
            _ => {}
        }
    }

    fn on_sync_event(&mut self, event: request_response::Event<super::wire::Request, Response>) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request_id,
                        request,
                        channel,
                    },
                ..
            } => {
                let Some(key) = key_of(&peer) else { return };
                // Its connection is closing: the request goes unanswered
                // (it fails on the asking side, which may dial again).
                if self.leaving_peers.contains(&peer) {
                    drop(channel);
                    return;
                }
                let permit = if self.within_rate(key) {
                    self.answering.clone().try_acquire_owned().ok()
                } else {
                    None
                };
                let Some(permit) = permit else {
                    let _ = self.swarm.behaviour_mut().sync.send_response(
                        channel,
                        Response::Error("too many requests; slow down".into()),
                    );
                    return;
                };
                let (node, handle) = (self.node.clone(), self.handle.clone());
                let tasks = handle.tasks.clone();
                tasks.spawn(&tasks.requests, async move {
                    let answer = sync::respond(&node, &handle, peer, key, request).await;
                    drop(permit);
                    handle
                        .command(Command::Respond {
                            channel,
                            request_id,
                            peer,
                            answer,
                        })
                        .await;
                });
            }
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Err(error.to_string()));
                }
            }
            request_response::Event::InboundFailure {
                peer,
                error,
                request_id,
                ..
            } => {
                tracing::debug!("request from {peer} failed: {error}");
                self.answered(request_id);
            }
            request_response::Event::ResponseSent { request_id, .. } => self.answered(request_id),
        }
    }

    /// An answer was sent (or could not be): the connection ends if the
    /// answer was the last (see [`sync::Answer`]).
    fn answered(&mut self, request: request_response::InboundRequestId) {
        if let Some(peer) = self.last_answers.remove(&request)
            && self.leaving_peers.insert(peer)
        {
            self.leaving_soon.insert(peer, LAST_ANSWER_GRACE);
        }
    }

    fn within_rate(&mut self, key: dan_core::PeerKey) -> bool {
        let second = now_ms() / 1000;
        self.handle.with_shared(|s| {
            let entry = s.request_counts.entry(key).or_insert((second, 0));
            if entry.0 != second {
                *entry = (second, 0);
            }
            entry.1 += 1;
            entry.1 <= MAX_REQUESTS_PER_SECOND
        })
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Request {
                peer,
                request,
                reply,
            } => {
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.pending.insert(id, reply);
            }
            Command::Respond {
                channel,
                request_id,
                peer,
                answer,
            } => {
                let sent = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, answer.response);
                if answer.then_disconnect {
                    if sent.is_ok() {
                        self.last_answers.insert(request_id, peer);
                    } else {
                        let _ = self.swarm.disconnect_peer_id(peer);
                    }
                }
            }
            Command::Dial { peer, addrs } => {
                for addr in addrs {
                    self.swarm.add_peer_address(peer, addr);
                }
                let opts = DialOpts::peer_id(peer)
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build();
                if let Err(e) = self.swarm.dial(opts) {
                    tracing::debug!("cannot dial {peer}: {e}");
                }
            }
            Command::Disconnect(peer) => {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Command::UseRelays { relays, reply } => {
                self.use_relays(relays);
                let _ = reply.send(self.handle.relays());
            }
            Command::Trust { peer, trust } => {
                gossip::apply_trust(&mut self.swarm.behaviour_mut().gossip, &peer, trust);
            }
            Command::Judged {
                id,
                from,
                author,
                acceptance,
            } => {
                if let Some(author) = author
                    && let Some(count) = self.judging_by.get_mut(&author)
                {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        self.judging_by.remove(&author);
                    }
                }
                if acceptance == gossipsub::MessageAcceptance::Accept && !self.mesh_clean() {
                    if !self.held_forwards.hold(id.clone(), from, Instant::now()) {
                        self.report_verdict(&id, &from, gossipsub::MessageAcceptance::Ignore);
                    }
                } else {
                    self.report_verdict(&id, &from, acceptance);
                }
            }
            Command::Publish(gossip) => self.publish(&gossip),
            Command::Shutdown(_) => {}
        }
    }

    /// Subscribes to the gossip topic of the current network.
    fn ensure_topic(&mut self) {
        let Some(network) = self.node.inner().ledger.facts().network else {
            return;
        };
        if self.topic.as_ref().is_some_and(|(id, _)| *id == network) {
            return;
        }
        let topic = gossipsub::IdentTopic::new(format!("/dan/ops/{network}"));
        if let Some((_, old)) = self.topic.take() {
            let _ = self.swarm.behaviour_mut().gossip.unsubscribe(&old);
        }
        match self.swarm.behaviour_mut().gossip.subscribe(&topic) {
            Ok(_) => self.topic = Some((network, topic)),
            Err(e) => tracing::warn!("cannot subscribe to the network's gossip: {e}"),
        }
    }

    /// Takes in an AutoNAT probe's outcome (see [`reachability::Probes`]):
    /// the external addresses two peers confirmed are the only ones the
    /// swarm announces, and the verdict is shown in the status.
    fn on_autonat(&mut self, event: autonat::Event) {
        use autonat::{OutboundFailure, OutboundProbeError, OutboundProbeEvent, ResponseError};
        match event {
            autonat::Event::StatusChanged { new, .. } => self
                .probes
                .autonat_private(new == autonat::NatStatus::Private),
            // Only members and the relays this instance was given count:
            // throwaway peers could otherwise confirm any address.
            autonat::Event::OutboundProbe(OutboundProbeEvent::Response {
                peer, address, ..
            }) if self.relay_gate.is_member(&peer)
                || self
                    .relays_wanted
                    .iter()
                    .any(|r| relay_peer(r) == Some(peer)) =>
            {
                // Two confirmations, or one where only one other member
                // (and no given relay) could give one.
                let me = *self.swarm.local_peer_id();
                let confirmers = self
                    .relay_gate
                    .members()
                    .iter()
                    .filter(|m| **m != me)
                    .count()
                    + self.relays_wanted.len();
                self.probes.dialled_back(peer, address, confirmers);
            }
            autonat::Event::OutboundProbe(OutboundProbeEvent::Error {
                peer: Some(peer),
                error:
                    OutboundProbeError::OutboundRequest(
                        OutboundFailure::Timeout | OutboundFailure::Io(_),
                    )
                    | OutboundProbeError::Response(ResponseError::DialError),
                ..
            }) => self.probes.unanswered(peer),
            _ => return,
        }
        self.publish_reachability();
    }

    /// Makes the swarm announce exactly the confirmed external addresses,
    /// and the status show them and the verdict.
    fn publish_reachability(&mut self) {
        let external = self.probes.external().to_vec();
        let announced: Vec<Multiaddr> = self
            .swarm
            .external_addresses()
            .filter(|a| !is_circuit(a))
            .cloned()
            .collect();
        for address in &announced {
            if !external.contains(address) {
                self.swarm.remove_external_address(address);
            }
        }
        for address in &external {
            if !announced.contains(address) {
                self.swarm.add_external_address(address.clone());
            }
        }
        let reachability = self.probes.reachability();
        if self.handle.reachability() != reachability {
            tracing::info!("reachability: {reachability:?}");
        }
        self.handle.with_shared(|s| {
            s.reachability = reachability;
            s.external = external;
        });
    }

    /// Reserves slots on exactly `relays`: listening on a relay's circuit
    /// address makes the reservation (announced once the relay accepts
    /// it); relays no longer listed are let go.
    fn use_relays(&mut self, relays: Vec<Multiaddr>) {
        self.relays_wanted.clone_from(&relays);
        let mut listeners = std::mem::take(&mut self.relay_listeners);
        for listener in listeners.iter_mut().filter(|l| !l.learnt) {
            listener.let_go = !relays.contains(&listener.relay);
        }
        let (dropped, kept): (Vec<_>, Vec<_>) =
            listeners.into_iter().partition(|l| l.let_go && l.held);
        for relay in dropped {
            self.let_go(&relay);
        }
        self.relay_listeners = kept;
        for relay in relays {
            let refused = relay_peer(&relay).is_some_and(|p| self.relay_refusals.contains_key(&p));
            if !refused && !self.relay_listeners.iter().any(|l| l.relay == relay) {
                self.reserve(relay, false);
            }
        }
        let in_use: Vec<String> = self.relays_wanted.iter().map(ToString::to_string).collect();
        self.handle.with_shared(|s| {
            s.relays.retain(|r| r.learnt || in_use.contains(&r.addr));
            for addr in in_use {
                if !s.relays.iter().any(|r| r.addr == addr) {
                    s.relays.push(RelayStatus {
                        addr,
                        ..RelayStatus::default()
                    });
                }
            }
        });
    }

    /// Asks `relay` for a slot: listening on its circuit address makes the
    /// reservation.
    fn reserve(&mut self, relay: Multiaddr, learnt: bool) -> bool {
        match self
            .swarm
            .listen_on(relay.clone().with(Protocol::P2pCircuit))
        {
            Ok(listener) => {
                self.relay_listeners.push(RelayListener {
                    relay,
                    listener,
                    learnt,
                    held: false,
                    let_go: false,
                });
                true
            }
            Err(e) => {
                tracing::warn!("cannot use the relay {relay}: {e}");
                false
            }
        }
    }

    /// Lets go of the member relaying for this instance once it is not
    /// needed (this instance is public, or a relay it was given holds a
    /// slot) or no longer a member.
    fn release_learnt_relay(&mut self, members: &HashSet<PeerId>) {
        let given_held = self
            .handle
            .with_shared(|s| s.relays.iter().any(|r| r.reserved && !r.learnt));
        let public = self.probes.reachability() == Reachability::Public;
        let (dropped, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.relay_listeners)
            .into_iter()
            .partition(|l| {
                l.learnt
                    && l.held
                    && (public
                        || given_held
                        || !relay_peer(&l.relay).is_some_and(|p| members.contains(&p)))
            });
        self.relay_listeners = kept;
        for relay in dropped {
            tracing::info!("no longer using the member at {} as a relay", relay.relay);
            self.let_go(&relay);
            self.forget_relay(&relay, None);
        }
    }

    /// Notes that `relay` no longer holds (or asks for) a slot: a relay
    /// this instance found itself is forgotten, a given one marked.
    fn forget_relay(&mut self, relay: &RelayListener, error: Option<String>) {
        let through = self.address_through(&relay.relay);
        self.handle
            .with_shared(|s| s.listen.retain(|a| *a != through));
        if relay.learnt {
            if let Some(peer) = relay_peer(&relay.relay) {
                self.relay_candidates.remove(&peer);
            }
            let addr = relay.relay.to_string();
            self.handle
                .with_shared(|s| s.relays.retain(|r| !(r.addr == addr && r.learnt)));
        } else {
            self.note_reservation(&relay.relay, false, error);
        }
    }

    /// The address this instance is reached at through `relay`: the
    /// address it reaches the relay at, then `/p2p-circuit/p2p/<self>`.
    fn address_through(&self, relay: &Multiaddr) -> Multiaddr {
        relay
            .clone()
            .with(Protocol::P2pCircuit)
            .with(Protocol::P2p(*self.swarm.local_peer_id()))
    }

    /// Where the relay whose circuit `listener` listens on is in
    /// `relay_listeners`, if it is one.
    fn relay_index(&self, listener: ListenerId) -> Option<usize> {
        self.relay_listeners
            .iter()
            .position(|l| l.listener == listener)
    }

    /// The relay of `listener` holds a slot (its reservation named an
    /// address): announced is the address this instance reaches it at,
    /// never the addresses it named, which it chooses freely (see
    /// `own_addrs`). A relay no longer wanted is let go now.
    fn slot_held(&mut self, listener: ListenerId) {
        let Some(index) = self.relay_index(listener) else {
            return;
        };
        self.relay_listeners[index].held = true;
        if self.relay_listeners[index].let_go {
            let relay = self.relay_listeners.remove(index);
            self.let_go(&relay);
            return;
        }
        let relay = self.relay_listeners[index].relay.clone();
        let through = self.address_through(&relay);
        self.note_reservation(&relay, true, None);
        self.handle.with_shared(|s| {
            if !s.listen.contains(&through) {
                tracing::info!("listening on {through}");
                s.listen.push(through);
            }
        });
    }

    /// Lets go of the slot on `relay` (held: libp2p panics when a
    /// reservation still being made is dropped).
    fn let_go(&mut self, relay: &RelayListener) {
        self.swarm.remove_listener(relay.listener);
    }

    /// While nobody can dial this instance and no relay holds a slot for
    /// it, asks one member it reached at a public address to relay for it
    /// (members relay for each other; see [`RelayGate`]).
    fn learn_relay(&mut self, members: &HashSet<PeerId>) {
        let held = self
            .handle
            .with_shared(|s| s.relays.iter().any(|r| r.reserved));
        let asking = self.relay_listeners.iter().any(|l| l.learnt);
        let me = self.swarm.local_peer_id();
        if held
            || asking
            || self.probes.reachability() == Reachability::Public
            || !members.contains(me)
        {
            return;
        }
        let in_use: HashSet<PeerId> = self
            .relay_listeners
            .iter()
            .filter_map(|l| relay_peer(&l.relay))
            .collect();
        let candidate = self
            .relay_candidates
            .iter()
            .find(|(peer, _)| {
                members.contains(*peer)
                    && !self.relay_refusals.contains_key(*peer)
                    && !in_use.contains(*peer)
            })
            .map(|(peer, addr)| addr.clone().with(Protocol::P2p(*peer)));
        let Some(relay) = candidate else { return };
        if !self.reserve(relay.clone(), true) {
            return;
        }
        tracing::info!("asking the member at {relay} to relay for this instance");
        self.handle.with_shared(|s| {
            s.relays.push(RelayStatus {
                addr: relay.to_string(),
                learnt: true,
                ..RelayStatus::default()
            });
        });
    }

    /// Takes in what the router said about forwarding a port: a mapped
    /// address is only a candidate until AutoNAT confirms it.
    fn on_upnp(&mut self, event: upnp::Event) {
        match event {
            upnp::Event::NewExternalAddr {
                external_addr: address,
                ..
            } => {
                tracing::info!(
                    "the router forwards {address} to this instance; checking that peers can dial it"
                );
                self.swarm.behaviour_mut().autonat.probe_address(address);
            }
            upnp::Event::ExpiredExternalAddr {
                external_addr: address,
                ..
            } => {
                tracing::info!("the router no longer forwards {address}");
                self.probes.expired(&address);
                self.publish_reachability();
            }
            upnp::Event::GatewayNotFound => {
                tracing::debug!("no router that forwards ports on request (UPnP) found");
            }
            upnp::Event::NonRoutableGateway => tracing::info!(
                "the router has no public address (another router is in between): no port forwarding"
            ),
        }
    }

    /// Whether a direct connection to `peer` that `dialler` just opened
    /// is one too many (see [`direct_links`]).
    fn is_redundant(&self, peer: &PeerId, key: PeerKey, dialler: Dialler) -> bool {
        let others = self
            .connections
            .values()
            .filter(|link| link.peer == key && !link.relayed)
            .map(|link| link.dialler);
        direct_links::is_redundant(self.swarm.local_peer_id(), peer, dialler, others)
    }

    /// How this instance is connected to `key` now.
    fn connection_to(&self, key: &PeerKey) -> Connection {
        let relayed: Vec<bool> = self
            .connections
            .values()
            .filter(|link| link.peer == *key)
            .map(|link| link.relayed)
            .collect();
        if relayed.is_empty() {
            Connection::None
        } else if relayed.contains(&false) {
            Connection::Direct
        } else {
            Connection::Relayed
        }
    }

    /// Notes whether `relay` holds a slot for this instance, and why not.
    fn note_reservation(&self, relay: &Multiaddr, reserved: bool, error: Option<String>) {
        let relay = relay.to_string();
        self.handle.with_shared(|s| {
            for status in s.relays.iter_mut().filter(|r| r.addr == relay) {
                status.reserved = reserved;
                status.error.clone_from(&error);
            }
        });
    }

    /// Judges a gossip message off the event loop, if it came from an
    /// accepted member and there is room; gossipsub holds it until then.
    fn on_gossip(&mut self, from: PeerId, id: gossipsub::MessageId, message: gossipsub::Message) {
        let accepted = key_of(&from)
            .and_then(|key| self.handle.peer_info(&key))
            .is_some_and(|p| p.verdict == Some(super::PeerVerdict::Replicate));
        let author = message.source;
        let busy = author.is_some_and(|a| {
            self.judging_by.get(&a).copied().unwrap_or(0) >= gossip::MAX_JUDGING_PER_AUTHOR
        });
        let permit = (accepted && !busy)
            .then(|| self.judging.clone().try_acquire_owned().ok())
            .flatten();
        let Some(permit) = permit else {
            self.on_command(Command::Judged {
                id,
                from,
                author: None,
                acceptance: gossipsub::MessageAcceptance::Ignore,
            });
            return;
        };
        if let Some(author) = author {
            *self.judging_by.entry(author).or_default() += 1;
        }
        let (node, net) = (self.node.clone(), self.handle.clone());
        let tasks = net.tasks.clone();
        tasks.spawn(&tasks.gossip, async move {
            let acceptance = gossip::judge(&node, &net, from, author, &message.data).await;
            drop(permit);
            net.command(Command::Judged {
                id,
                from,
                author,
                acceptance,
            })
            .await;
        });
    }

    /// Whether `peer`, just connected from `from`, may stay: members and
    /// the relays this instance uses always, anyone else while there is
    /// room for one more like it, or by taking the place of a stranger
    /// from the address that holds the most ([`strangers::room_for_one_more`]).
    fn room_for(&self, peer: &PeerId, from: Option<&Source>) -> Room<PeerId> {
        let members = self.node.inner().ledger.facts().members;
        let relays: HashSet<PeerId> = self
            .relays_wanted
            .iter()
            .filter_map(relay_peer)
            .chain(
                self.relay_listeners
                    .iter()
                    .filter_map(|l| relay_peer(&l.relay)),
            )
            .collect();
        let is_stranger = |peer: &PeerId| {
            !relays.contains(peer) && key_of(peer).is_none_or(|k| !members.contains(&k))
        };
        if !is_stranger(peer) {
            return Room::Yes;
        }
        // Each stranger connected, by its oldest connection: where that
        // came from (`None` if this instance dialled it), and when.
        let mut others: Vec<(PeerId, Option<Source>, Instant)> = self
            .swarm
            .connected_peers()
            .filter(|p| *p != peer && is_stranger(p))
            .map(|p| {
                let key = key_of(p);
                let oldest = self
                    .connections
                    .values()
                    .filter(|link| Some(link.peer) == key)
                    .min_by_key(|link| link.opened);
                (
                    *p,
                    oldest.and_then(|link| link.from.clone()),
                    oldest.map_or_else(Instant::now, |link| link.opened),
                )
            })
            .collect();
        others.sort_by_key(|(_, _, opened)| *opened);
        let others: Vec<(PeerId, Option<Source>)> = others
            .into_iter()
            .map(|(peer, from, _)| (peer, from))
            .collect();
        room_for_one_more(&others, from)
    }

    /// Tells gossipsub what a message is worth: forwarded, dropped or
    /// refused (and its sender penalised).
    fn report_verdict(
        &mut self,
        id: &gossipsub::MessageId,
        from: &PeerId,
        acceptance: gossipsub::MessageAcceptance,
    ) {
        let held = self
            .swarm
            .behaviour_mut()
            .gossip
            .report_message_validation_result(id, from, acceptance);
        // A message that expired from the cache while being judged
        // was not forwarded, whatever the verdict.
        let outcome = if held {
            acceptance
        } else {
            gossipsub::MessageAcceptance::Ignore
        };
        self.handle.gossip_tally.count(&outcome);
    }

    /// Whether every peer in the mesh is trusted, so that what is
    /// forwarded reaches members only.
    fn mesh_clean(&self) -> bool {
        self.topic.as_ref().is_none_or(|(_, topic)| {
            !gossip::untrusted_in_mesh(&self.swarm.behaviour().gossip, &topic.hash())
        })
    }

    /// Reports the held verdicts that are due (see [`gossip::HeldForwards`]).
    fn release_held_forwards(&mut self) {
        let clean = self.mesh_clean();
        for (id, from, acceptance) in self.held_forwards.due(clean, Instant::now()) {
            self.report_verdict(&id, &from, acceptance);
        }
    }

    fn publish(&mut self, gossip: &Gossip) {
        self.ensure_topic();
        let Some((_, topic)) = self.topic.clone() else {
            return;
        };
        let Ok(data) = postcard::to_stdvec(gossip) else {
            return;
        };
        if let Err(e) = self.swarm.behaviour_mut().gossip.publish(topic, data) {
            tracing::debug!("gossip publish: {e}");
        }
    }

    /// Periodic work: re-handshake and reconcile with connected peers, dial
    /// members that are not connected, refresh Kademlia.
    /// The periodic tick: what follows the members, and every few ticks a
    /// checkpoint and a Kademlia bootstrap.
    fn on_tick(&mut self) {
        self.ticks += 1;
        self.follow_members();
        if self.ticks.is_multiple_of(CHECKPOINT_EVERY_TICKS) {
            self.publish_checkpoint();
        }
        if self.ticks.is_multiple_of(30) && self.swarm.connected_peers().next().is_some() {
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
    }

    /// Judges the connected peers again, follows the members in the relay
    /// gate, lets go of peers that are no members any more, dials members,
    /// and asks how a join goes. Also run when the members change, which a
    /// member's ops can make happen at its own pace: so this never counts
    /// as a tick (no checkpoint is signed for it).
    fn follow_members(&mut self) {
        self.ensure_topic();
        let now = Instant::now();
        self.relay_refusals.retain(|_, (until, _)| *until > now);
        if self
            .relay_listeners
            .iter()
            .filter(|l| !l.learnt && !l.let_go)
            .count()
            < self.relays_wanted.len()
        {
            self.use_relays(self.relays_wanted.clone());
        }
        let connected: Vec<_> = self.swarm.connected_peers().copied().collect();
        for peer in &connected {
            sync::start_handshake(&self.node, &self.handle, *peer);
        }
        // Read without waiting, as of the ledger's last unlock.
        let facts = self.node.inner().ledger.facts();
        let members = facts.members;
        let member_peers: HashSet<PeerId> = members.iter().filter_map(peer_id_of).collect();
        let before = self.relay_gate.members();
        if self.relay_gate.set_members(member_peers.clone()) {
            // A new member may now get a slot on a member; a relay that
            // broke the protocol is still left alone.
            self.relay_refusals.retain(|_, (_, misbehaved)| *misbehaved);
            // A peer that is no member any more loses what it holds here
            // (a slot on this relay, circuits through it), not at its next
            // renewal: a deprecated one at once, one removed by vote once
            // it had the time to learn of it. Connecting again, it is
            // judged afresh.
            let removed: HashSet<PeerId> = facts
                .removed
                .iter()
                .filter_map(|(peer, _)| peer_id_of(peer))
                .collect();
            for gone in before.difference(&member_peers) {
                let at = if removed.contains(gone) {
                    now + REMOVED_GRACE
                } else {
                    now
                };
                self.leaving.insert(*gone, at);
            }
        }
        let due: Vec<PeerId> = self
            .leaving
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in due {
            self.leaving.remove(&peer);
            if !member_peers.contains(&peer) && self.swarm.is_connected(&peer) {
                tracing::info!("{peer} is no longer a member: disconnected");
                let _ = self.swarm.disconnect_peer_id(peer);
            }
        }
        self.release_learnt_relay(&member_peers);
        self.learn_relay(&member_peers);
        for member in members {
            if member == self.node.peer_id() {
                continue;
            }
            let Some(peer) = peer_id_of(&member) else {
                continue;
            };
            if self.swarm.is_connected(&peer) {
                continue;
            }
            let addrs = self
                .handle
                .peer_info(&member)
                .map(|p| p.addrs)
                .unwrap_or_default();
            self.on_command(Command::Dial { peer, addrs });
        }
        if joining(&self.node).is_some() {
            let (node, handle) = (self.node.clone(), self.handle.clone());
            self.handle
                .tasks
                .once_at_a_time(&self.polling_join, move || {
                    let (node, handle) = (node.clone(), handle.clone());
                    async move {
                        if let Some(invite) = joining(&node) {
                            sync::poll_join(node, handle, invite).await;
                        }
                    }
                });
        }
    }

    /// Signs and gossips a checkpoint (one at a time).
    fn publish_checkpoint(&self) {
        let (node, handle) = (self.node.clone(), self.handle.clone());
        self.handle
            .tasks
            .once_at_a_time(&self.checkpointing, move || {
                sync::publish_checkpoint(node.clone(), handle.clone())
            });
    }
}

/// The invite this instance is joining with, if it is joining.
fn joining(node: &Node) -> Option<dan_core::SignedInvite> {
    node.inner().joining.lock().ok().and_then(|j| j.clone())
}

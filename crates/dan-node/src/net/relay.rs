//! A relay-only service for a machine with a public address (`dan relay`):
//! instances behind home routers reserve a slot on it and are reached
//! through it. It keeps a stable key and nothing else (no network data,
//! no membership), and every reservation and relayed connection is
//! bounded, per instance and in total.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, autonat, connection_limits, identify, identity, noise, ping, relay, tcp,
    yamux,
};

use crate::error::NodeError;

/// Most instances reachable through the relay at once.
pub const MAX_RESERVATIONS: usize = 256;
/// Most relayed connections at once.
pub const MAX_CIRCUITS: usize = 256;
/// Most relayed connections one instance may have open at once.
pub const MAX_CIRCUITS_PER_PEER: usize = 16;
/// Longest one relayed connection lasts (then both sides connect again):
/// long enough for a first sync of 100k records.
pub const MAX_CIRCUIT_DURATION: Duration = Duration::from_secs(3600);
/// Most bytes one relayed connection carries.
pub const MAX_CIRCUIT_BYTES: u64 = 1 << 30;
/// Most connections to the relay at once.
const MAX_CONNECTIONS: u32 = 1024;
/// The relay's key, in its data directory.
const KEY_FILE: &str = "relay.key";

/// How to run a relay.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Where its key is kept (created on first start).
    pub data_dir: PathBuf,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
}

#[derive(NetworkBehaviour)]
struct RelayBehaviour {
    limits: connection_limits::Behaviour,
    relay: relay::Behaviour,
    /// Tells instances whether they can be dialled from outside, by
    /// dialling them back.
    autonat: autonat::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

fn relay_error(what: &str) -> impl Fn(String) -> NodeError + '_ {
    move |e| NodeError::Invalid(format!("starting the relay ({what}): {e}"))
}

/// The relay's key: read from the data directory, or made and stored
/// there (private to this user) on first start.
fn relay_key(data_dir: &Path) -> Result<identity::Keypair, NodeError> {
    dan_store::private::create_dir(data_dir)
        .map_err(|e| relay_error("data directory")(e.to_string()))?;
    let path = data_dir.join(KEY_FILE);
    let mut secret = if path.exists() {
        let bytes = dan_store::private::read_bounded(&path, 32)
            .map_err(|e| relay_error("key")(e.to_string()))?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| relay_error("key")(format!("{} is not a relay key", path.display())))?
    } else {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| relay_error("key")(e.to_string()))?;
        dan_store::private::write_new(&path, &secret)
            .map_err(|e| relay_error("key")(e.to_string()))?;
        secret
    };
    identity::Keypair::ed25519_from_bytes(&mut secret)
        .map_err(|e| relay_error("key")(e.to_string()))
}

/// The limits of the relay: sized for a first sync through it, bounded per
/// instance and in total.
fn limits() -> relay::Config {
    relay::Config {
        max_reservations: MAX_RESERVATIONS,
        max_reservations_per_peer: 4,
        reservation_duration: Duration::from_secs(3600),
        max_circuits: MAX_CIRCUITS,
        max_circuits_per_peer: MAX_CIRCUITS_PER_PEER,
        max_circuit_duration: MAX_CIRCUIT_DURATION,
        max_circuit_bytes: MAX_CIRCUIT_BYTES,
        ..relay::Config::default()
    }
}

/// Who may reserve a slot on an instance's own relay service and open
/// connections through it: the members of its network in good standing
/// (kept up to date by the event loop), or anyone where the instance was
/// started as an open relay (`dan run --relay-server`).
#[derive(Clone, Debug, Default)]
pub(crate) struct RelayGate {
    members: Arc<RwLock<HashSet<PeerId>>>,
    open: bool,
}

impl RelayGate {
    /// A gate for members only, or open to anyone.
    pub(crate) fn new(open: bool) -> RelayGate {
        RelayGate {
            members: Arc::default(),
            open,
        }
    }

    /// Replaces the members let through.
    pub(crate) fn set_members(&self, members: HashSet<PeerId>) {
        match self.members.write() {
            Ok(mut held) => *held = members,
            Err(poisoned) => *poisoned.into_inner() = members,
        }
    }

    fn lets_in(&self, peer: &PeerId) -> bool {
        self.open
            || match self.members.read() {
                Ok(members) => members.contains(peer),
                Err(poisoned) => poisoned.into_inner().contains(peer),
            }
    }
}

/// The limits of an instance's own relay service: those of `dan relay`
/// (sized for a first sync of 100k records), and only for whom `gate`
/// lets in. A refused peer is told the relay is full, and costs the
/// rate limiters nothing.
pub(crate) fn instance_relay(gate: &RelayGate) -> relay::Config {
    let mut config = limits();
    let reservations = gate.clone();
    config.reservation_rate_limiters.insert(
        0,
        Box::new(move |peer: PeerId, _: &Multiaddr, _| reservations.lets_in(&peer)),
    );
    let circuits = gate.clone();
    config.circuit_src_rate_limiters.insert(
        0,
        Box::new(move |peer: PeerId, _: &Multiaddr, _| circuits.lets_in(&peer)),
    );
    config
}

fn is_loopback(address: &Multiaddr) -> bool {
    address.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

/// Runs a relay until `shutdown` completes, calling `on_address` with
/// every address it can be reached at (ending in `/p2p/<relay id>`), which
/// instances pass to `dan run --relay`.
pub async fn serve_relay(
    config: &RelayConfig,
    mut on_address: impl FnMut(Multiaddr),
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    let key = relay_key(&config.data_dir)?;
    let peer_id = key.public().to_peer_id();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| relay_error("tcp")(e.to_string()))?
        .with_behaviour(|key| RelayBehaviour {
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established(Some(MAX_CONNECTIONS))
                    .with_max_established_per_peer(Some(4))
                    .with_max_pending_incoming(Some(128)),
            ),
            relay: relay::Behaviour::new(peer_id, limits()),
            autonat: autonat::Behaviour::new(peer_id, super::behaviour::autonat_config()),
            identify: identify::Behaviour::new(identify::Config::new(
                "/dan/id/1".into(),
                key.public(),
            )),
            ping: ping::Behaviour::new(ping::Config::new()),
        })
        .map_err(|e| relay_error("behaviour")(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
        .build();
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NodeError::Invalid(format!("cannot listen on {addr}: {e}")))?;
    }
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { address, .. } => {
                    // Reservations tell instances where the relay is; a
                    // loopback address reaches nobody else.
                    if !is_loopback(&address) {
                        swarm.add_external_address(address.clone());
                    }
                    on_address(address.with(Protocol::P2p(peer_id)));
                }
                SwarmEvent::Behaviour(RelayBehaviourEvent::Relay(event)) => {
                    tracing::debug!("relay: {event:?}");
                }
                _ => {}
            },
        }
    }
}

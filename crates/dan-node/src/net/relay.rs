//! A relay-only service for a machine with a public address (`dan relay`):
//! instances behind home routers reserve a slot on it and are reached
//! through it. It keeps a stable key and nothing else (no network data,
//! no membership), and every reservation and relayed connection is
//! bounded, per instance and in total.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

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
/// Most instances one IP address (an IPv6 /64) holds slots for at once,
/// whatever keys it makes up; an instance renewing its slot keeps its
/// place.
const MAX_INSTANCES_PER_IP: usize = 16;
/// Most IP addresses whose grants are remembered.
const MAX_IPS_TRACKED: usize = 4096;
/// The relay's key, in its data directory.
const KEY_FILE: &str = "relay.key";

/// How to run a relay.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Where its key is kept (created on first start).
    pub data_dir: PathBuf,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Addresses it is reached at from the internet, announced instead of
    /// the listening ones (behind a 1:1 NAT or a port forward); none:
    /// every non-loopback listening address.
    pub external: Vec<Multiaddr>,
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

/// The instances holding a slot per IP address (IPv6: per /64, what one
/// home or server gets): each instance's last grant, forgotten an hour
/// after it (a slot lasts an hour and is renewed after 45 minutes).
#[derive(Default)]
struct GrantsPerIp {
    grants: HashMap<IpAddr, HashMap<PeerId, Instant>>,
}

/// The address a grant counts against: IPv4 as is, IPv6 by its /64.
fn grant_key(address: &Multiaddr) -> Option<IpAddr> {
    address.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => {
            let prefix = u128::from(ip) & !((1u128 << 64) - 1);
            Some(IpAddr::V6(prefix.into()))
        }
        _ => None,
    })
}

impl GrantsPerIp {
    /// Grants (or renews) `peer` a slot unless its address already holds
    /// [`MAX_INSTANCES_PER_IP`] for other instances.
    fn try_grant(&mut self, peer: PeerId, address: &Multiaddr, now: Instant) -> bool {
        let Some(ip) = grant_key(address) else {
            return true;
        };
        let live = |at: &Instant| now.saturating_duration_since(*at) < Duration::from_secs(3600);
        if !self.grants.contains_key(&ip) && self.grants.len() >= MAX_IPS_TRACKED {
            self.grants.retain(|_, peers| {
                peers.retain(|_, at| live(at));
                !peers.is_empty()
            });
            // Still full: the address granted longest ago makes room.
            if self.grants.len() >= MAX_IPS_TRACKED
                && let Some(oldest) = self
                    .grants
                    .iter()
                    .min_by_key(|(_, peers)| peers.values().max().copied())
                    .map(|(ip, _)| *ip)
            {
                self.grants.remove(&oldest);
            }
        }
        let peers = self.grants.entry(ip).or_default();
        peers.retain(|_, at| live(at));
        if !peers.contains_key(&peer) && peers.len() >= MAX_INSTANCES_PER_IP {
            return false;
        }
        peers.insert(peer, now);
        true
    }
}

/// The limits of `dan relay`: [`limits`], and at most
/// [`MAX_INSTANCES_PER_IP`] slots per IP address.
fn open_relay_limits() -> relay::Config {
    let mut config = limits();
    let mut per_ip = GrantsPerIp::default();
    config.reservation_rate_limiters.push(Box::new(
        move |peer: PeerId, address: &Multiaddr, now: Instant| per_ip.try_grant(peer, address, now),
    ));
    config
}

/// The limits of the relay: sized for a first sync through it, bounded per
/// instance and in total.
fn limits() -> relay::Config {
    relay::Config {
        max_reservations: MAX_RESERVATIONS,
        // libp2p lets one more through than these two say: 4 and 16.
        max_reservations_per_peer: 3,
        reservation_duration: Duration::from_secs(3600),
        max_circuits: MAX_CIRCUITS,
        max_circuits_per_peer: MAX_CIRCUITS_PER_PEER - 1,
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

    /// Whether it lets anyone in (`--relay-server`).
    pub(crate) fn is_open(&self) -> bool {
        self.open
    }

    /// Replaces the members let through; whether they changed.
    pub(crate) fn set_members(&self, members: HashSet<PeerId>) -> bool {
        let mut held = match self.members.write() {
            Ok(held) => held,
            Err(poisoned) => poisoned.into_inner(),
        };
        let changed = *held != members;
        *held = members;
        changed
    }

    /// The members let through now.
    pub(crate) fn members(&self) -> HashSet<PeerId> {
        match self.members.read() {
            Ok(members) => members.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether `peer` is a member let through.
    pub(crate) fn is_member(&self, peer: &PeerId) -> bool {
        match self.members.read() {
            Ok(members) => members.contains(peer),
            Err(poisoned) => poisoned.into_inner().contains(peer),
        }
    }

    fn lets_in(&self, peer: &PeerId) -> bool {
        self.open || self.is_member(peer)
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
            relay: relay::Behaviour::new(peer_id, open_relay_limits()),
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
    // The addresses announced (and named in reservations): its own only.
    let mut own: Vec<Multiaddr> = config.external.clone();
    for addr in &config.external {
        swarm.add_external_address(addr.clone());
        on_address(addr.clone().with(Protocol::P2p(peer_id)));
    }
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { address, .. } => {
                    // Reservations tell instances where the relay is; a
                    // loopback address reaches nobody else, and given
                    // external addresses replace the listening ones.
                    if !config.external.is_empty() {
                        continue;
                    }
                    if !is_loopback(&address) {
                        own.push(address.clone());
                        swarm.add_external_address(address.clone());
                    }
                    on_address(address.with(Protocol::P2p(peer_id)));
                }
                // AutoNAT confirms an address on one peer's word, and
                // identify proposes what peers say they see: neither is
                // announced.
                SwarmEvent::ExternalAddrConfirmed { address } if !own.contains(&address) => {
                    swarm.remove_external_address(&address);
                }
                SwarmEvent::Behaviour(RelayBehaviourEvent::Relay(event)) => {
                    tracing::debug!("relay: {event:?}");
                }
                _ => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::{Duration, Instant};

    use libp2p::{Multiaddr, PeerId};

    use super::{GrantsPerIp, MAX_INSTANCES_PER_IP, RelayGate, instance_relay};

    #[test]
    fn one_ip_address_holds_a_bounded_number_of_slots_on_a_relay_whatever_keys_it_makes_up() {
        let mut grants = GrantsPerIp::default();
        let one: Multiaddr = "/ip4/198.51.100.1/tcp/4001".parse().expect("address");
        let other: Multiaddr = "/ip4/198.51.100.2/tcp/4001".parse().expect("address");
        let start = Instant::now();
        let keys: Vec<PeerId> = (0..MAX_INSTANCES_PER_IP)
            .map(|_| PeerId::random())
            .collect();
        for key in &keys {
            assert!(grants.try_grant(*key, &one, start));
        }
        assert!(
            !grants.try_grant(PeerId::random(), &one, start),
            "one more key from the same address is refused"
        );
        let renewal = start + Duration::from_secs(45 * 60);
        assert!(
            keys.iter().all(|k| grants.try_grant(*k, &one, renewal)),
            "instances renewing their slots keep them"
        );
        assert!(
            grants.try_grant(PeerId::random(), &other, start),
            "another address is not"
        );
        let v6 = |n: u16| -> Multiaddr {
            format!("/ip6/2001:db8:0:1::{n:x}/tcp/4001")
                .parse()
                .expect("address")
        };
        for n in 0..MAX_INSTANCES_PER_IP as u16 {
            assert!(grants.try_grant(PeerId::random(), &v6(n + 1), start));
        }
        assert!(
            !grants.try_grant(PeerId::random(), &v6(999), start),
            "one IPv6 /64 counts as one address"
        );
        assert!(
            grants.try_grant(PeerId::random(), &one, renewal + Duration::from_secs(3600)),
            "an hour after the last renewal there is room again"
        );
    }

    #[test]
    fn a_members_relay_gives_slots_and_circuits_to_members_only() {
        let (member, stranger) = (PeerId::random(), PeerId::random());
        let addr: Multiaddr = "/ip4/198.51.100.1/tcp/4001".parse().expect("address");
        let gate = RelayGate::new(false);
        assert!(gate.set_members(HashSet::from([member])), "a change");
        assert!(!gate.set_members(HashSet::from([member])), "no change");
        let mut config = instance_relay(&gate);
        let now = Instant::now();
        for limiters in [
            &mut config.reservation_rate_limiters,
            &mut config.circuit_src_rate_limiters,
        ] {
            assert!(limiters[0].try_next(member, &addr, now));
            assert!(!limiters[0].try_next(stranger, &addr, now));
        }
        gate.set_members(HashSet::new());
        assert!(
            !config.reservation_rate_limiters[0].try_next(member, &addr, now),
            "a member removed gets no new slot"
        );
        let mut open = instance_relay(&RelayGate::new(true));
        assert!(open.reservation_rate_limiters[0].try_next(stranger, &addr, now));
        assert!(open.circuit_src_rate_limiters[0].try_next(stranger, &addr, now));
    }
}

//! The libp2p behaviour of an instance and how its swarm is built.

use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, Swarm, autonat, connection_limits, dcutr, gossipsub, identify, identity, kad,
    mdns, noise, ping, relay, request_response, tcp, upnp, yamux,
};

use super::own_addrs::OwnListenAddrs;
use super::relay::RelayGate;
use super::wire::{PROTOCOL, WireCodec};
use super::{NetConfig, gossip};
use crate::error::NodeError;

/// Every protocol an instance speaks.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) sync: request_response::Behaviour<WireCodec>,
    pub(crate) gossip: gossipsub::Behaviour,
    pub(crate) identify: OwnListenAddrs<identify::Behaviour>,
    pub(crate) ping: ping::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) mdns: Toggle<OwnListenAddrs<mdns::tokio::Behaviour>>,
    pub(crate) relay_client: relay::client::Behaviour,
    /// Relays for the members of this instance's network (see
    /// [`super::relay::RelayGate`]).
    pub(crate) relay_server: relay::Behaviour,
    pub(crate) dcutr: dcutr::Behaviour,
    pub(crate) autonat: autonat::Behaviour,
    /// Asks the home router to forward a port (UPnP IGD); a mapped address
    /// is announced only once AutoNAT confirms it.
    pub(crate) upnp: Toggle<OwnListenAddrs<upnp::tokio::Behaviour>>,
}

/// Largest gossip message (a batch of new ops).
pub(crate) const MAX_GOSSIP_BYTES: usize = 1024 * 1024;

fn net_error(what: &str) -> impl Fn(String) -> NodeError + '_ {
    move |e| NodeError::Invalid(format!("starting the network ({what}): {e}"))
}

/// How instances and relays find out whether they can be dialled from
/// outside (AutoNAT): a first probe soon after start, answered within
/// 10 s, and as a server a bounded number of dial-backs. Private addresses
/// count too: home networks and the test lab use
/// them, and a server only ever dials the asking peer's own observed
/// address.
pub(crate) fn autonat_config() -> autonat::Config {
    autonat::Config {
        boot_delay: Duration::from_secs(5),
        timeout: Duration::from_secs(10),
        only_global_ips: false,
        // Probed again every 15 s while unsure, every 2 minutes once sure
        // (a router may map a port, or a laptop move, at any time).
        retry_interval: Duration::from_secs(15),
        refresh_interval: Duration::from_secs(120),
        throttle_server_period: Duration::from_secs(15),
        // As a server: at most 30 dial-backs per 30 s, 3 per peer, 4
        // addresses each.
        throttle_clients_period: Duration::from_secs(30),
        max_peer_addresses: 4,
        ..autonat::Config::default()
    }
}

/// Builds the swarm with the instance key as its libp2p identity; its
/// relay service lets in whom `relay_gate` does.
pub(crate) fn build_swarm(
    secret: [u8; 32],
    config: &NetConfig,
    codec: WireCodec,
    relay_gate: &RelayGate,
) -> Result<Swarm<Behaviour>, NodeError> {
    let mut secret = secret;
    let key = identity::Keypair::ed25519_from_bytes(&mut secret)
        .map_err(|e| net_error("identity")(e.to_string()))?;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| net_error("tcp")(e.to_string()))?
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| net_error("relay")(e.to_string()))?
        .with_behaviour(|key, relay_client| {
            let peer_id = key.public().to_peer_id();
            let gossip_config = gossipsub::ConfigBuilder::default()
                .heartbeat_interval(Duration::from_millis(500))
                .validation_mode(gossipsub::ValidationMode::Strict)
                .validate_messages()
                .prune_backoff(Duration::from_secs(10))
                // Messages wait in the cache while they are judged: 10 s.
                .history_length(20)
                .max_transmit_size(MAX_GOSSIP_BYTES)
                .build()
                .map_err(|e| e.to_string())?;
            let mut gossip = gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Signed(key.clone()),
                gossip_config,
            )?;
            let (params, thresholds) = gossip::scoring();
            gossip.with_peer_score(params, thresholds)?;
            let mut kad_config = kad::Config::new(StreamProtocol::new("/dan/kad/1"));
            kad_config.set_query_timeout(Duration::from_secs(30));
            let mut kad = kad::Behaviour::with_config(
                peer_id,
                kad::store::MemoryStore::new(peer_id),
                kad_config,
            );
            kad.set_mode(Some(kad::Mode::Server));
            let mdns = if config.mdns {
                Some(mdns::tokio::Behaviour::new(
                    mdns::Config::default(),
                    peer_id,
                )?)
            } else {
                None
            };
            let limits = connection_limits::ConnectionLimits::default()
                .with_max_established(Some(512))
                .with_max_established_per_peer(Some(4))
                .with_max_pending_incoming(Some(64));
            Ok(Behaviour {
                limits: connection_limits::Behaviour::new(limits),
                sync: request_response::Behaviour::with_codec(
                    codec,
                    [(PROTOCOL, request_response::ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(60))
                        .with_max_concurrent_streams(256),
                ),
                gossip,
                // New addresses (a relay slot, a mapped port) reach the
                // peers at once.
                identify: OwnListenAddrs::new(identify::Behaviour::new(
                    identify::Config::new("/dan/id/1".into(), key.public())
                        .with_push_listen_addr_updates(true),
                )),
                ping: ping::Behaviour::new(ping::Config::new()),
                kad,
                mdns: mdns.map(OwnListenAddrs::new).into(),
                relay_client,
                relay_server: relay::Behaviour::new(
                    peer_id,
                    super::relay::instance_relay(relay_gate),
                ),
                dcutr: dcutr::Behaviour::new(peer_id),
                autonat: autonat::Behaviour::new(peer_id, autonat_config()),
                upnp: config
                    .upnp
                    .then(|| OwnListenAddrs::new(upnp::tokio::Behaviour::default()))
                    .into(),
            })
        })
        .map_err(|e| net_error("behaviour")(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
        .build();
    Ok(swarm)
}

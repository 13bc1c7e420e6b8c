//! The relays this instance reserves a slot on (`dan relay` services that
//! others reach it through from behind a home router): given with
//! `dan run --relay` or chosen in the window, and kept in the database so
//! that a restart finds them again.

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

use crate::error::NodeError;
use crate::net::RelayStatus;
use crate::node::Node;

/// Where the relays are kept.
const META_KEY: &str = "relays";
/// Most relays one instance uses.
pub const MAX_RELAYS: usize = 8;
/// Longest relay address, in bytes.
const MAX_RELAY_ADDR: usize = 256;

/// Checks a relay address: a multiaddr that ends with the relay's
/// `/p2p/<id>` and does not itself go through a relay.
pub fn check_relay(text: &str) -> Result<Multiaddr, NodeError> {
    let bad = |why: &str| NodeError::Invalid(format!("“{text}” is not a relay address: {why}"));
    if text.len() > MAX_RELAY_ADDR {
        return Err(bad("it is too long"));
    }
    let addr: Multiaddr = text.trim().parse().map_err(|_| {
        bad("use the address `dan relay` prints, like /ip4/203.0.113.7/tcp/4001/p2p/12D3KooW…")
    })?;
    if addr.iter().any(|p| p == Protocol::P2pCircuit) {
        return Err(bad("it goes through another relay"));
    }
    if !matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        return Err(bad("it must end with /p2p/ and the relay's id"));
    }
    Ok(addr)
}

/// Checks a list of relay addresses, dropping repeats.
pub fn check_relays<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Multiaddr>, NodeError> {
    let mut relays: Vec<Multiaddr> = Vec::new();
    for text in texts {
        let addr = check_relay(text.as_ref())?;
        if !relays.contains(&addr) {
            relays.push(addr);
        }
    }
    if relays.len() > MAX_RELAYS {
        return Err(NodeError::Invalid(format!(
            "at most {MAX_RELAYS} relays; {} given",
            relays.len()
        )));
    }
    Ok(relays)
}

impl Node {
    /// The relays kept in the database.
    pub async fn stored_relays(&self) -> Result<Vec<Multiaddr>, NodeError> {
        let Some(bytes) = self.inner().store.meta(META_KEY).await? else {
            return Ok(Vec::new());
        };
        let texts: Vec<String> = serde_json::from_slice(&bytes).unwrap_or_default();
        Ok(texts.iter().filter_map(|t| check_relay(t).ok()).collect())
    }

    async fn store_relays(&self, relays: &[Multiaddr]) -> Result<(), NodeError> {
        let texts: Vec<String> = relays.iter().map(ToString::to_string).collect();
        let bytes = serde_json::to_vec(&texts)
            .map_err(|e| NodeError::Invalid(format!("storing the relays: {e}")))?;
        self.inner().store.set_meta(&[(META_KEY, &bytes)]).await?;
        Ok(())
    }

    /// Adds `relays` to the kept ones (`dan run --relay`: a later start
    /// without the flag uses them too).
    pub async fn remember_relays(&self, relays: &[Multiaddr]) -> Result<(), NodeError> {
        let mut kept = self.stored_relays().await?;
        for relay in relays {
            if !kept.contains(relay) {
                kept.push(relay.clone());
            }
        }
        check_relays(&kept.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        self.store_relays(&kept).await
    }

    /// Replaces the relays (admin only), keeps them, and makes the running
    /// network use them now. Returns where each stands.
    pub async fn set_relays<S: AsRef<str>>(
        &self,
        relays: &[S],
        password: &str,
    ) -> Result<Vec<RelayStatus>, NodeError> {
        self.verify_admin(password).await?;
        let relays = check_relays(relays)?;
        self.store_relays(&relays).await?;
        match self.net() {
            Some(net) => Ok(net.use_relays(relays).await),
            None => Ok(relays
                .iter()
                .map(|addr| RelayStatus {
                    addr: addr.to_string(),
                    ..RelayStatus::default()
                })
                .collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{check_relay, check_relays};

    #[test]
    fn bad_input_relay_addresses_are_checked_with_a_reason() {
        let good =
            "/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWRa4g8YxCFH3QJKwvRjDH1S5YboYJMJTmbKRK5fRTL6z5";
        assert!(check_relay(good).is_ok());
        for (bad, why) in [
            ("relay.example.org", "use the address"),
            ("/ip4/203.0.113.7/tcp/4001", "must end with /p2p/"),
            (
                "/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWRa4g8YxCFH3QJKwvRjDH1S5YboYJMJTmbKRK5fRTL6z5/p2p-circuit/p2p/12D3KooWRa4g8YxCFH3QJKwvRjDH1S5YboYJMJTmbKRK5fRTL6z5",
                "another relay",
            ),
            (&"/ip4/1.2.3.4".repeat(40), "too long"),
        ] {
            let error = check_relay(bad).expect_err(bad).to_string();
            assert!(error.contains(why), "{bad}: {error}");
        }
        assert_eq!(
            check_relays(&[good, good]).expect("repeats").len(),
            1,
            "a repeated relay is kept once"
        );
        let many: Vec<String> = (0..9)
            .map(|i| format!("/ip4/203.0.113.{i}/tcp/4001/p2p/12D3KooWRa4g8YxCFH3QJKwvRjDH1S5YboYJMJTmbKRK5fRTL6z5"))
            .collect();
        assert!(check_relays(&many).is_err(), "at most 8 relays");
    }
}

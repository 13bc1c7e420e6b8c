//! In-process instances on real sockets: each has its own data directory,
//! SQLite file, key and libp2p swarm on 127.0.0.1 with a random port.

use std::time::Duration;

use anyhow::{Context, bail};
use dan_core::{Hash32, PeerKey};
use dan_node::api::{CreateNetwork, PutRecord, Status};
use dan_node::membership::InviteRequest;
use dan_node::net::{NetConfig, NetHandle};
use dan_node::{Credentials, Node, NodeConfig};

use crate::process::PASSWORD;

/// One in-process instance.
pub struct TestNode {
    /// Its name.
    pub name: String,
    /// The instance.
    pub node: Node,
    /// Its network layer (none while offline).
    pub net: Option<NetHandle>,
    sync_interval: Duration,
    dir: tempfile::TempDir,
}

async fn open(dir: &std::path::Path) -> anyhow::Result<Node> {
    let credentials = Credentials {
        password: Some(PASSWORD.into()),
        use_keyring: false,
    };
    Ok(Node::open(NodeConfig::new(dir), credentials).await?)
}

async fn start_net(node: &Node, sync_interval: Duration) -> anyhow::Result<NetHandle> {
    let config = NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
        mdns: false,
        upnp: false,
        sync_interval,
        ..NetConfig::default()
    };
    Ok(dan_node::net::start(node, config).await?)
}

impl TestNode {
    /// Creates and starts an instance listening on 127.0.0.1.
    pub async fn start(name: &str, sync_interval: Duration) -> anyhow::Result<TestNode> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let dir = tempfile::Builder::new().prefix("dan-node-").tempdir()?;
        Node::init(dir.path(), name, PASSWORD).await?;
        let node = open(dir.path()).await?;
        let net = start_net(&node, sync_interval).await?;
        Ok(TestNode {
            name: name.to_owned(),
            node,
            net: Some(net),
            sync_interval,
            dir,
        })
    }

    /// The network layer (panics while offline: a test bug).
    pub fn net(&self) -> &NetHandle {
        self.net.as_ref().expect("the node is online")
    }

    /// The instance's secret key, unsealed from its database with the admin
    /// password: what an admin who tampers with their own instance has.
    /// For tests that play a misbehaving instance.
    pub async fn unsealed_keypair(&self) -> anyhow::Result<dan_core::Keypair> {
        let url = format!(
            "sqlite://{}?mode=ro",
            self.dir.path().join("dan.db").display()
        );
        let pool = sqlx::SqlitePool::connect(&url).await?;
        let sealed: Vec<u8> = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'sealed_key'")
            .fetch_one(&pool)
            .await?;
        pool.close().await;
        let sealed: dan_node::secrets::SealedKey = serde_json::from_slice(&sealed)?;
        let unlock = sealed.unlock_key(PASSWORD)?;
        Ok(sealed.open(&unlock)?)
    }

    /// Copies the instance's database as a backup would (instance briefly
    /// closed so the copy is consistent), then reopens it as it was.
    pub async fn backup(&mut self) -> anyhow::Result<tempfile::TempDir> {
        let online = self.net.is_some();
        self.net = None;
        self.node.stop().await;
        let copy = tempfile::tempdir()?;
        std::fs::copy(self.dir.path().join("dan.db"), copy.path().join("dan.db"))?;
        self.reopen(online).await?;
        Ok(copy)
    }

    /// Replaces the instance's database by a backup and restarts it.
    pub async fn restore(&mut self, backup: &tempfile::TempDir) -> anyhow::Result<()> {
        let online = self.net.is_some();
        self.net = None;
        self.node.stop().await;
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(self.dir.path().join(format!("dan.db{suffix}")));
        }
        std::fs::copy(backup.path().join("dan.db"), self.dir.path().join("dan.db"))?;
        self.reopen(online).await
    }

    async fn reopen(&mut self, online: bool) -> anyhow::Result<()> {
        self.node = open(self.dir.path()).await?;
        if online {
            self.net = Some(start_net(&self.node, self.sync_interval).await?);
        }
        Ok(())
    }

    /// Stops networking; the instance keeps running and accepts writes.
    pub async fn go_offline(&mut self) -> anyhow::Result<()> {
        self.net = None;
        self.node.stop().await;
        self.node = open(self.dir.path()).await?;
        Ok(())
    }

    /// Restarts the instance with networking (on a new port).
    pub async fn go_online(&mut self) -> anyhow::Result<()> {
        self.node.close().await;
        self.node = open(self.dir.path()).await?;
        self.net = Some(start_net(&self.node, self.sync_interval).await?);
        Ok(())
    }

    /// This instance's peer id.
    pub fn peer(&self) -> PeerKey {
        self.node.peer_id()
    }

    /// Its status.
    pub async fn status(&self) -> Status {
        self.node.status().await
    }

    /// Writes a record; returns its id.
    pub async fn put(&self, collection: &str, title: &str) -> anyhow::Result<String> {
        let put = PutRecord {
            collection: Some(collection.into()),
            title: Some(title.into()),
            ..PutRecord::default()
        };
        Ok(self.node.put_record(put).await?.id.to_string())
    }

    /// Stops the network layer and closes the database.
    pub async fn stop(self) {
        self.node.stop().await;
    }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(
    timeout: Duration,
    what: &str,
    mut condition: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Admits `joiner` into the network of `inviter` through an invite link,
/// then has every other member approve it, and waits until it is a member.
pub async fn admit(
    inviter: &TestNode,
    others: &[&TestNode],
    joiner: &TestNode,
) -> anyhow::Result<()> {
    let invite = inviter
        .node
        .create_invite(
            InviteRequest {
                uses: Some(1),
                expires_secs: Some(600),
                label: None,
            },
            PASSWORD,
        )
        .await?;
    joiner
        .node
        .join(&invite.invite.link, None, PASSWORD, false)
        .await
        .context("join")?;
    for member in others {
        let peer = joiner.peer();
        eventually(
            Duration::from_secs(30),
            "the join request to reach every member",
            || async { member.node.join_status_of(&peer).await.is_some() },
        )
        .await?;
        let pending = |status: Option<(dan_core::MemberStatus, u64, u64)>| {
            status.is_some_and(|(s, _, _)| s == dan_core::MemberStatus::Pending)
        };
        if pending(member.node.join_status_of(&peer).await)
            && let Err(error) = member.node.approve(&peer, PASSWORD).await
            && pending(member.node.join_status_of(&peer).await)
        {
            return Err(error).context("approve");
        }
    }
    eventually(
        Duration::from_secs(60),
        "the joiner to see itself admitted",
        || async { joiner.status().await.state != dan_node::api::NetworkState::Pending },
    )
    .await
}

/// Starts `names.len()` instances and forms one network: the first creates
/// it, each next one is invited by the first and approved by the others.
pub async fn spawn_network(
    names: &[&str],
    min_members: u32,
    sync_interval: Duration,
) -> anyhow::Result<Vec<TestNode>> {
    let mut nodes = Vec::new();
    for name in names {
        nodes.push(TestNode::start(name, sync_interval).await?);
    }
    let founder = &nodes[0];
    founder
        .node
        .create_network(
            CreateNetwork {
                name: "Test network".into(),
                min_members: Some(min_members),
                approve_code: Vec::new(),
            },
            PASSWORD,
        )
        .await?;
    for i in 1..nodes.len() {
        let others: Vec<&TestNode> = nodes[1..i].iter().collect();
        admit(&nodes[0], &others, &nodes[i]).await?;
    }
    Ok(nodes)
}

/// The (ops root, state root) of every node.
async fn roots(nodes: &[TestNode]) -> Vec<(Option<Hash32>, Option<Hash32>)> {
    let mut seen = Vec::new();
    for node in nodes {
        let status = node.status().await;
        seen.push((status.ops_root, status.state_root));
    }
    seen
}

/// Waits until every node has the same ops root and state root, and
/// returns them.
pub async fn converged(nodes: &[TestNode], timeout: Duration) -> anyhow::Result<(Hash32, Hash32)> {
    let waited = eventually(
        timeout,
        "every instance to reach the same roots",
        || async {
            let seen = roots(nodes).await;
            seen.windows(2).all(|w| w[0] == w[1])
        },
    )
    .await;
    if let Err(error) = waited {
        let mut report = String::new();
        for node in nodes {
            let status = node.status().await;
            report.push_str(&format!(
                "\n  {}: {} ops, ops root {:?}, {} online peers",
                node.name,
                status.op_count,
                status.ops_root.map(|r| r.short()),
                status.online_peers
            ));
        }
        bail!("{error}:{report}");
    }
    match roots(nodes).await.first() {
        Some((Some(ops), Some(state))) => Ok((*ops, *state)),
        _ => bail!("no network"),
    }
}

/// A record creation that `key` signs as the op after `(network, seq,
/// prev)` of its chain, dated a second from now (later than anything it
/// signed before), with the title as its id ("version one" →
/// "version-one"). Signing two at one seq is an equivocation.
pub fn signed_create(
    key: &dan_core::Keypair,
    (network, seq, prev): (dan_core::NetworkId, u64, dan_core::OpId),
    title: &str,
) -> dan_core::VerifiedOp {
    use dan_core::{Hlc, OpBody, Payload, RecordAction, RecordId, VerifiedOp};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let body = OpBody {
        network,
        origin: key.public(),
        seq: seq + 1,
        prev,
        hlc: Hlc {
            wall_ms: now + 1_000,
            counter: 0,
        },
        context: None,
        payload: Payload::Record {
            id: RecordId::new(&title.replace(' ', "-")).expect("a title of id characters"),
            action: RecordAction::Create {
                collection: "notes".into(),
                title: title.into(),
                fields: Default::default(),
                tags: Default::default(),
            },
        },
    };
    VerifiedOp::sign(body, key).expect("signing with a valid key")
}

//! The replication conversations run against an in-memory fake of the
//! instance and of the network (no swarm, no sockets, no SQLite): the
//! handshake, the pull and the join, each side answering with the real
//! [`sync::respond`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dan_core::conformance::{Hello, SignedHello, Verdict};
use dan_core::invite::Invite;
use dan_core::{Hash32, Hlc, Keypair, MemberStatus, OpId, PeerKey, SignedEvidence, SignedInvite};
use libp2p::gossipsub::MessageAcceptance;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use negentropy::{Id, NegentropyStorageVector};

use super::instance::{Instance, Link};
use super::wire::Gossip;
use super::wire::{MAX_FETCH_IDS, Request, Response};
use super::{Command, PeerVerdict, Shared, gossip, gossip::Trust, peer_id_of, sync};
use crate::deprecation::EvidenceOutcome;
use crate::error::NodeError;
use crate::ingest::IngestOutcome;
use crate::membership::{JoinAnswer, JoinProgress};
use crate::node::NodeEvent;
use crate::replication::Serving;

/// What a fake instance holds and answers.
struct State {
    keypair: Keypair,
    network: Hash32,
    /// Ops by id, with the wall clock they are reconciled by.
    ops: BTreeMap<OpId, (u64, Vec<u8>)>,
    members: HashSet<PeerKey>,
    /// How it judges each peer (members replicate, anyone else is refused).
    verdicts: HashMap<PeerKey, Verdict>,
    /// Members it serves nothing (as if their last hello went unanswered
    /// or they were suspended since).
    not_served: HashSet<PeerKey>,
    /// Members it is not connected to.
    offline: Vec<PeerKey>,
    joins: Vec<(PeerKey, Vec<u8>)>,
    /// What it answers a join request with.
    join_answer: Result<JoinAnswer, String>,
    joining: Option<SignedInvite>,
    genesis: Option<Vec<u8>>,
    ingested_batches: usize,
    /// Peers that answered its hello: deprecated and why, or (`None`)
    /// with their own hello.
    heard: Vec<(PeerKey, Option<String>)>,
}

/// The clock an op of the fake is reconciled by: the number it starts
/// with (a real op carries its clock inside too).
fn stamp(bytes: &[u8]) -> u64 {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit());
    digits.fold(0u64, |ms, digit| {
        ms.saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'))
    })
}

/// An instance held in memory: ops are opaque bytes named by their hash.
#[derive(Clone)]
struct FakeInstance(Arc<Mutex<State>>);

impl FakeInstance {
    fn new(seed: u8) -> Self {
        FakeInstance(Arc::new(Mutex::new(State {
            keypair: Keypair::from_secret([seed; 32]),
            network: Hash32([7; 32]),
            ops: BTreeMap::new(),
            members: HashSet::new(),
            verdicts: HashMap::new(),
            not_served: HashSet::new(),
            offline: Vec::new(),
            joins: Vec::new(),
            join_answer: Err("no join expected".into()),
            joining: None,
            genesis: None,
            ingested_batches: 0,
            heard: Vec::new(),
        })))
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn key(&self) -> PeerKey {
        self.with(|s| s.keypair.public())
    }

    /// Adds `count` ops written by `tag`, dated from `from_ms`.
    fn write(&self, tag: &str, count: usize, from_ms: u64) {
        self.with(|s| {
            for i in 0..count {
                let bytes = format!("{} {tag} op {i}", from_ms + i as u64).into_bytes();
                s.ops.insert(Hash32::of(&bytes), (stamp(&bytes), bytes));
            }
        });
    }

    /// Its hello as of now.
    fn hello(&self) -> Hello {
        self.with(|s| {
            let ids: Vec<u8> = s.ops.keys().flat_map(|id| id.0).collect();
            Hello {
                peer: s.keypair.public(),
                protocol_version: dan_core::PROTOCOL_VERSION,
                code_hash: Hash32([1; 32]),
                network: Some(s.network),
                charter_hash: None,
                ops_root: Some(Hash32::of(&ids)),
                deprecations_root: None,
                state_root: None,
                op_count: s.ops.len() as u64,
                origin_seq: 0,
                sent_ms: crate::replication::now_ms(),
                awaiting_approval: false,
            }
        })
    }

    /// `hello` signed by this instance.
    fn signed(&self, hello: Hello) -> SignedHello {
        self.with(|s| SignedHello::sign(hello, &s.keypair))
    }

    fn op_ids(&self) -> HashSet<OpId> {
        self.with(|s| s.ops.keys().copied().collect())
    }

    fn admit(&self, others: &[&FakeInstance]) {
        for other in others {
            let key = other.key();
            self.with(|s| {
                s.members.insert(key);
                s.verdicts.insert(key, Verdict::Replicate);
            });
        }
    }
}

impl Instance for FakeInstance {
    fn peer_id(&self) -> PeerKey {
        self.key()
    }

    async fn signed_hello(&self) -> SignedHello {
        self.signed(self.hello())
    }

    async fn judge(&self, peer: &PeerKey, _hello: &SignedHello) -> Verdict {
        self.with(|s| {
            s.verdicts
                .get(peer)
                .cloned()
                .unwrap_or_else(|| Verdict::Refuse("not a member of this network".into()))
        })
    }

    async fn check_checkpoint(&self, _hello: &SignedHello) -> Result<(), NodeError> {
        Ok(())
    }

    fn is_member(&self, peer: &PeerKey) -> bool {
        self.with(|s| s.members.contains(peer))
    }

    async fn serving(&self, peer: &PeerKey) -> Serving {
        if self.is_member(peer) && !self.with(|s| s.not_served.contains(peer)) {
            Serving::Everything
        } else {
            Serving::Nothing
        }
    }

    async fn reconcile_set(
        &self,
        _until: Option<Hlc>,
    ) -> Result<Arc<NegentropyStorageVector>, NodeError> {
        let stamps: Vec<(u64, OpId)> =
            self.with(|s| s.ops.iter().map(|(id, (ms, _))| (*ms, *id)).collect());
        let bad = |e: negentropy::Error| NodeError::Invalid(e.to_string());
        let mut set = NegentropyStorageVector::with_capacity(stamps.len());
        for (ms, id) in stamps {
            set.insert(ms, Id::from_byte_array(id.0)).map_err(bad)?;
        }
        set.seal().map_err(bad)?;
        Ok(Arc::new(set))
    }

    async fn ops_for(&self, ids: &[OpId]) -> Result<Vec<Vec<u8>>, NodeError> {
        Ok(self.with(|s| {
            ids.iter()
                .filter_map(|id| s.ops.get(id).map(|(_, bytes)| bytes.clone()))
                .collect()
        }))
    }

    async fn ingest_remote(&self, batch: Vec<Vec<u8>>) -> Result<IngestOutcome, NodeError> {
        self.with(|s| {
            s.ingested_batches += 1;
            for bytes in batch {
                s.ops.insert(Hash32::of(&bytes), (stamp(&bytes), bytes));
            }
        });
        Ok(IngestOutcome::default())
    }

    async fn ingest_pulled(&self, ops: Vec<Vec<u8>>) -> Result<(), NodeError> {
        self.ingest_remote(ops).await.map(drop)
    }

    async fn chain_head_of(&self, _peer: &PeerKey) -> u64 {
        0
    }

    async fn chain_head_with_op(
        &self,
        _peer: &PeerKey,
    ) -> Result<(u64, Option<Vec<u8>>), NodeError> {
        Ok((0, None))
    }

    async fn proves_own_chain_head(&self, _seq: u64, _op: Option<&[u8]>) -> bool {
        false
    }

    async fn proven_evidence(&self) -> Result<Vec<Vec<u8>>, NodeError> {
        Ok(Vec::new())
    }

    async fn evidence_against(&self, _peer: &PeerKey) -> Option<Vec<u8>> {
        None
    }

    async fn accept_evidence(&self, _signed: SignedEvidence) -> Result<EvidenceOutcome, NodeError> {
        Ok(EvidenceOutcome::Known)
    }

    async fn adopt_pending_evidence(&self) -> Result<(), NodeError> {
        Ok(())
    }

    async fn retry_pending_evidence(&self) -> Result<(), NodeError> {
        Ok(())
    }

    async fn unreachable_members(&self) -> Vec<PeerKey> {
        self.with(|s| s.offline.clone())
    }

    async fn remember_addrs(&self, _peer: PeerKey, _addrs: Vec<String>) {}

    async fn handle_join(&self, peer: &PeerKey, request: &[u8]) -> Result<JoinAnswer, NodeError> {
        self.with(|s| {
            s.joins.push((*peer, request.to_vec()));
            s.join_answer
                .clone()
                .map_err(|reason| match reason.as_str() {
                    "stopping" => NodeError::Stopped,
                    _ => NodeError::Invalid(reason),
                })
        })
    }

    async fn join_status_of(&self, peer: &PeerKey) -> Option<(MemberStatus, u64, u64)> {
        self.with(|s| {
            s.joins.iter().any(|(joiner, _)| joiner == peer).then(|| {
                if s.members.contains(peer) {
                    (MemberStatus::Member, 2, 2)
                } else {
                    (MemberStatus::Pending, 1, 2)
                }
            })
        })
    }

    async fn join_request(
        &self,
        invite: &SignedInvite,
        admin_name: &str,
    ) -> Result<Vec<u8>, NodeError> {
        Ok(format!("{admin_name} asks to join {}", invite.invite.network_name).into_bytes())
    }

    fn set_joining(&self, invite: Option<SignedInvite>) -> Option<SignedInvite> {
        self.with(|s| std::mem::replace(&mut s.joining, invite))
    }

    async fn begin_joining(&self, _invite: &SignedInvite, genesis: &[u8]) -> Result<(), NodeError> {
        self.with(|s| s.genesis = Some(genesis.to_vec()));
        Ok(())
    }

    async fn join_progress(&self) -> Option<JoinProgress> {
        self.with(|s| {
            let invite = s.joining.as_ref()?;
            Some(JoinProgress {
                network_id: invite.invite.network,
                network_name: invite.invite.network_name.clone(),
                inviter: invite.invite.inviter,
                inviter_name: invite.invite.inviter_name.clone(),
                approvals: 1,
                needed: 2,
                peer_id: s.keypair.public(),
                join_code: s.keypair.public().join_code(),
            })
        })
    }

    fn heard_from(&self, by: PeerKey, deprecated: Option<&str>) {
        self.with(|s| s.heard.push((by, deprecated.map(str::to_owned))));
    }

    fn emit(&self, _event: NodeEvent) {}
}

/// A lie a fake peer tells instead of answering `request` honestly.
type Lie = Arc<dyn Fn(&Request) -> Option<Response> + Send + Sync>;

/// The fake network: every peer's instance, link and lie, by peer id.
type Peers = Arc<Mutex<HashMap<PeerId, (FakeInstance, FakeLink, Option<Lie>)>>>;

/// One instance's view of the fake network: requests go straight to the
/// other side's [`sync::respond`]; commands to the swarm are written down.
#[derive(Clone)]
struct FakeLink {
    me: PeerId,
    peers: Peers,
    shared: Arc<Mutex<Shared>>,
    commands: Arc<Mutex<Vec<String>>>,
}

impl FakeLink {
    fn commands(&self) -> Vec<String> {
        self.commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// What this side's peer table says of `key`.
    fn peer(&self, key: &PeerKey) -> Option<super::PeerInfo> {
        self.with_shared(|s| s.peers.get(key).cloned())
    }

    /// Whether this side told the swarm to disconnect `peer`.
    fn disconnected(&self, peer: PeerId) -> bool {
        self.commands().contains(&format!("disconnect {peer}"))
    }
}

impl Link for FakeLink {
    fn request(
        &self,
        peer: PeerId,
        request: Request,
    ) -> impl Future<Output = Result<Response, String>> + Send {
        // Boxed: the other side's answer may start a conversation back.
        let (me, peers) = (self.me, self.peers.clone());
        let answer: Pin<Box<dyn Future<Output = Result<Response, String>> + Send>> =
            Box::pin(async move {
                // A real request always waits for the wire; so does this
                // one, so a test's timeout can end a conversation that
                // would never stop.
                tokio::task::yield_now().await;
                let other = peers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&peer)
                    .cloned();
                let (instance, link, lie) = other.ok_or("not connected")?;
                if let Some(told) = lie.and_then(|lie| lie(&request)) {
                    return Ok(told);
                }
                let key = super::key_of(&me).ok_or("no key")?;
                let answer = sync::respond(&instance, &link, me, key, request).await;
                if answer.then_disconnect {
                    link.command(Command::Disconnect(me)).await;
                }
                Ok(answer.response)
            });
        answer
    }

    async fn command(&self, command: Command) {
        let line = match command {
            Command::Dial { peer, addrs } => format!("dial {peer} {}", addrs.len()),
            Command::Disconnect(peer) => format!("disconnect {peer}"),
            Command::Trust { peer, trust } => format!("trust {peer} {trust:?}"),
            Command::Publish(_) => "publish".to_owned(),
            _ => "other".to_owned(),
        };
        self.commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }

    fn with_shared<T>(&self, f: impl FnOnce(&mut Shared) -> T) -> T {
        f(&mut self.shared.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn converse(&self, task: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(task);
    }

    fn keep_up(&self, task: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(task);
    }
}

/// A fake network of `instances`, each with its link.
fn network(instances: &[&FakeInstance]) -> Vec<FakeLink> {
    let peers: Peers = Arc::default();
    let links: Vec<FakeLink> = instances
        .iter()
        .map(|instance| FakeLink {
            me: peer_id_of(&instance.key()).expect("a valid key"),
            peers: peers.clone(),
            shared: Arc::default(),
            commands: Arc::default(),
        })
        .collect();
    let mut table = peers.lock().unwrap_or_else(|p| p.into_inner());
    for (instance, link) in instances.iter().zip(&links) {
        table.insert(link.me, ((*instance).clone(), link.clone(), None));
    }
    drop(table);
    links
}

/// Ada and Bea, each counting the other as a member to replicate with.
fn two_members() -> (FakeInstance, FakeInstance) {
    let (ada, bea) = (FakeInstance::new(1), FakeInstance::new(2));
    ada.admit(&[&bea]);
    bea.admit(&[&ada]);
    (ada, bea)
}

/// Makes `link`'s peer answer with `lie` where it returns an answer.
fn lie(link: &FakeLink, lie: Lie) {
    if let Some(entry) = link
        .peers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_mut(&link.me)
    {
        entry.2 = Some(lie);
    }
}

/// Waits (a bounded poll) until `done` holds.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn fake_handshake_judges_the_peer_then_both_sides_pull_what_they_lack() {
    let (ada, bea) = two_members();
    // More than one fetch's worth, so the pull goes in several requests.
    ada.write("ada", MAX_FETCH_IDS + 500, 1_000);
    bea.write("bea", 20, 5_000);
    let links = network(&[&ada, &bea]);
    let (ada_link, bea_link) = (&links[0], &links[1]);

    sync::handshake(bea.clone(), bea_link.clone(), ada_link.me).await;

    assert!(
        ada.op_ids().is_subset(&bea.op_ids()),
        "Bea pulled every op Ada has"
    );
    assert_eq!(bea.op_ids().len(), MAX_FETCH_IDS + 520);
    assert_eq!(
        bea_link.peer(&ada.key()).and_then(|i| i.verdict),
        Some(PeerVerdict::Replicate),
        "Bea recorded Ada as a member to replicate with"
    );
    assert!(
        bea_link
            .commands()
            .contains(&format!("trust {} {:?}", ada_link.me, Trust::Member)),
        "gossip flows with Ada: {:?}",
        bea_link.commands()
    );
    assert!(
        bea_link.with_shared(|s| s.chain_confirmed),
        "a member confirmed Bea's chain head"
    );
    assert_eq!(
        bea.with(|s| s.heard.clone()),
        vec![(ada.key(), None)],
        "Bea's instance hears that Ada accepted it (taking back any refusal)"
    );
    // Ada, which has more, leaves the pull to Bea; at its next tick it
    // handshakes again, now that Bea holds at least as many, and pulls
    // what Bea has extra.
    eventually("Ada's handshake started by Bea's hello to end", || {
        !ada_link.with_shared(|s| s.syncing.contains(&bea.key()))
    })
    .await;
    sync::handshake(ada.clone(), ada_link.clone(), bea_link.me).await;
    assert!(
        bea.op_ids().is_subset(&ada.op_ids()),
        "Ada pulled Bea's ops"
    );
    assert_eq!(
        ada.signed_hello().await.hello.ops_root,
        bea.signed_hello().await.hello.ops_root,
        "both hold the same set"
    );
}

#[tokio::test]
async fn fake_handshake_with_a_peer_that_refuses_takes_nothing_and_disconnects() {
    let (ada, bea) = (FakeInstance::new(1), FakeInstance::new(2));
    // Bea counts Ada as a member; Ada does not know Bea.
    bea.admit(&[&ada]);
    ada.write("ada", 50, 1_000);
    let links = network(&[&ada, &bea]);
    let (ada_link, bea_link) = (&links[0], &links[1]);

    sync::handshake(bea.clone(), bea_link.clone(), ada_link.me).await;

    assert!(bea.op_ids().is_empty(), "Bea got nothing from Ada");
    let refused = bea_link.peer(&ada.key()).and_then(|i| i.refused);
    assert_eq!(
        refused.as_deref(),
        Some("refused by the peer: not a member of this network")
    );
    assert!(
        bea_link.disconnected(ada_link.me),
        "{:?}",
        bea_link.commands()
    );
    assert_eq!(
        ada_link.peer(&bea.key()).and_then(|i| i.verdict),
        Some(PeerVerdict::Refused),
        "Ada judged Bea before answering"
    );
    assert!(
        ada_link.disconnected(bea_link.me),
        "Ada lets Bea go once its refusal is sent: {:?}",
        ada_link.commands()
    );
}

#[tokio::test]
async fn fake_a_peer_answering_deprecated_is_told_to_the_instance_and_gives_nothing() {
    let (ada, bea) = two_members();
    ada.write("ada", 50, 1_000);
    ada.with(|s| {
        s.verdicts.insert(
            bea.key(),
            Verdict::Deprecated("it signed two ops at one seq".into()),
        );
    });
    let links = network(&[&ada, &bea]);
    let (ada_link, bea_link) = (&links[0], &links[1]);

    sync::handshake(bea.clone(), bea_link.clone(), ada_link.me).await;

    assert!(bea.op_ids().is_empty(), "Bea got nothing from Ada");
    assert_eq!(
        bea.with(|s| s.heard.clone()),
        vec![(ada.key(), Some("it signed two ops at one seq".to_owned()))],
        "Ada's word goes to Bea's instance, which alone decides whether to believe it"
    );
    assert!(bea_link.disconnected(ada_link.me));
    assert!(ada_link.disconnected(bea_link.me));
}

#[tokio::test]
async fn bad_input_fake_pull_from_a_peer_answering_with_ops_nobody_asked_for_ends() {
    let (ada, bea) = two_members();
    ada.write("ada", 100, 1_000);
    let links = network(&[&ada, &bea]);
    let (ada_link, bea_link) = (&links[0], &links[1]);
    // Ada reconciles honestly, then answers every fetch with ops of its
    // own making that nobody asked for.
    lie(
        ada_link,
        Arc::new(|request| {
            matches!(request, Request::Fetch(_))
                .then(|| Response::Ops(vec![b"unasked".to_vec(), b"also unasked".to_vec()]))
        }),
    );

    tokio::time::timeout(
        Duration::from_secs(10),
        sync::handshake(bea.clone(), bea_link.clone(), ada_link.me),
    )
    .await
    .expect("the pull ends");

    assert!(
        bea.op_ids().is_empty(),
        "nothing unasked was ingested: {}",
        bea.op_ids().len()
    );
    assert_eq!(bea.with(|s| s.ingested_batches), 0);
}

/// Requests of `kind` a lie counts, answering none of them itself.
fn counting(kind: fn(&Request) -> bool) -> (Arc<std::sync::atomic::AtomicUsize>, Lie) {
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = count.clone();
    let lie: Lie = Arc::new(move |request| {
        if kind(request) {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        None
    });
    (count, lie)
}

#[tokio::test]
async fn fake_an_instance_further_behind_than_one_reconciliation_reaches_catches_up_over_the_next_pulls()
 {
    let (ada, bea) = two_members();
    // Each round carries one frame of ids (256 KiB, about 8,000), so
    // more than `MAX_RECONCILE_ROUNDS` rounds' worth cannot come in one.
    let frame_ids = super::wire::RECONCILE_FRAME_BYTES as usize / 32;
    let behind = frame_ids * (super::MAX_RECONCILE_ROUNDS + 4);
    ada.write("ada", behind, 1_000);
    let links = network(&[&ada, &bea]);
    let (ada_link, bea_link) = (&links[0], &links[1]);
    let (rounds, count_rounds) = counting(|r| matches!(r, Request::Reconcile(_)));
    lie(ada_link, count_rounds);

    sync::handshake(bea.clone(), bea_link.clone(), ada_link.me).await;
    let first = bea.op_ids().len();
    assert_eq!(
        rounds.load(std::sync::atomic::Ordering::SeqCst),
        super::MAX_RECONCILE_ROUNDS,
        "the first pull stopped at the bound"
    );
    assert!(
        first > behind / 2 && first < behind,
        "it took what its rounds found ({first} of {behind})"
    );
    assert!(bea.op_ids().is_subset(&ada.op_ids()));
    eventually("Ada's handshake started by Bea's hello to end", || {
        !ada_link.with_shared(|s| s.syncing.contains(&bea.key()))
    })
    .await;
    sync::handshake(bea.clone(), bea_link.clone(), ada_link.me).await;
    assert_eq!(
        bea.op_ids(),
        ada.op_ids(),
        "the next pull went on from there"
    );
}

#[tokio::test]
async fn bad_input_fake_a_member_that_is_not_served_gets_nothing_though_its_hello_passed() {
    let (ada, bea) = two_members();
    ada.write("ada", 30, 1_000);
    ada.with(|s| s.not_served.insert(bea.key()));
    let links = network(&[&ada, &bea]);
    let (ada_link, bea_link) = (&links[0], &links[1]);

    sync::handshake(bea.clone(), bea_link.clone(), ada_link.me).await;
    assert!(bea.op_ids().is_empty(), "Bea's pull got nothing");

    // Asked straight for ops it knows the ids of, Ada still says no.
    let ids: Vec<OpId> = ada.op_ids().into_iter().collect();
    let answer = bea_link
        .request(ada_link.me, Request::Fetch(ids))
        .await
        .expect("an answer");
    assert!(
        matches!(&answer, Response::Error(reason) if reason.contains("not a member")),
        "{answer:?}"
    );
}

#[tokio::test]
async fn bad_input_fake_a_claim_that_our_chain_goes_further_without_our_op_is_not_believed() {
    let (ada, bea) = two_members();
    let links = network(&[&ada, &bea]);
    let (ada_link, bea_link) = (&links[0], &links[1]);
    // Ada says Bea signed 1000 ops Bea does not hold, and shows none.
    lie(
        ada_link,
        Arc::new(|request| {
            matches!(request, Request::ChainHead).then_some(Response::ChainHead {
                seq: 1000,
                op: None,
            })
        }),
    );

    sync::handshake(bea.clone(), bea_link.clone(), ada_link.me).await;

    assert_eq!(
        bea_link.with_shared(|s| (s.own_chain_head, s.chain_confirmed)),
        (0, false),
        "Bea neither waits for ops it never signed nor counts its chain as confirmed"
    );
}

#[tokio::test]
async fn bad_input_fake_addresses_naming_one_member_again_and_again_dial_it_once() {
    let (ada, bea) = two_members();
    let cleo = Keypair::from_secret([3; 32]).public();
    bea.with(|s| s.offline.push(cleo));
    let links = network(&[&ada, &bea]);
    let (ada_link, bea_link) = (&links[0], &links[1]);
    // Ada names Cleo 256 times, each with 64 addresses of its choosing.
    let cleo_bytes = cleo.to_peer_id_bytes();
    lie(
        ada_link,
        Arc::new(move |request| {
            let addrs: Vec<Vec<u8>> = (0..64u16)
                .map(|port| {
                    Multiaddr::empty()
                        .with(Protocol::Ip4([10, 0, 0, 1].into()))
                        .with(Protocol::Tcp(port))
                        .to_vec()
                })
                .collect();
            matches!(request, Request::Addresses)
                .then(|| Response::Addresses(vec![(cleo_bytes.clone(), addrs); 256]))
        }),
    );

    sync::handshake(bea.clone(), bea_link.clone(), ada_link.me).await;

    let cleo_id = peer_id_of(&cleo).expect("a valid key");
    let dials = bea_link.commands();
    let dials: Vec<&String> = dials
        .iter()
        .filter(|c| c.starts_with(&format!("dial {cleo_id}")))
        .collect();
    assert_eq!(dials.len(), 1, "{dials:?}");
    assert!(
        dials[0].ends_with(" 16"),
        "at most 16 addresses: {}",
        dials[0]
    );
}

/// Ada's invite for Bea's instance, signed by Ada.
fn invite_from(ada: &FakeInstance) -> SignedInvite {
    let invite = Invite {
        network: ada.with(|s| s.network),
        network_name: "Elm Street Library".into(),
        inviter: ada.key(),
        inviter_name: "Ada laptop".into(),
        addrs: vec![format!(
            "/ip4/127.0.0.1/tcp/4001/p2p/{}",
            peer_id_of(&ada.key()).expect("a valid key")
        )],
        id: [3; 16],
        expires_ms: u64::MAX,
        uses: 1,
        approved: Vec::new(),
        approved_complete: false,
    };
    ada.with(|s| SignedInvite::sign(invite, &s.keypair))
        .expect("signed")
}

#[tokio::test]
async fn fake_join_sends_the_request_adopts_the_genesis_and_handshakes_once_admitted() {
    let (ada, bea) = (FakeInstance::new(1), FakeInstance::new(2));
    ada.with(|s| {
        s.join_answer = Ok(JoinAnswer {
            genesis: b"the genesis".to_vec(),
            approvals: 1,
            needed: 2,
        });
    });
    ada.write("ada", 30, 1_000);
    let links = network(&[&ada, &bea]);
    let bea_link = &links[1];
    let invite = invite_from(&ada);

    let progress = sync::join(bea_link, &bea, &invite, "Bea")
        .await
        .expect("joined");

    assert_eq!((progress.approvals, progress.needed), (1, 2));
    assert_eq!(progress.network_name, "Elm Street Library");
    assert_eq!(
        ada.with(|s| s.joins.clone()),
        vec![(bea.key(), b"Bea asks to join Elm Street Library".to_vec())],
        "Ada got Bea's request, from Bea's key"
    );
    assert_eq!(
        bea.with(|s| s.genesis.clone()),
        Some(b"the genesis".to_vec())
    );
    assert_eq!(bea_link.with_shared(|s| s.join_view), Some((1, 2)));
    assert!(
        bea_link.commands()[0].starts_with("dial "),
        "Bea dialled the inviter first: {:?}",
        bea_link.commands()
    );

    // Bea's first handshake, while it waits, is refused and takes nothing.
    eventually("Bea's handshake while pending", || {
        bea_link.with_shared(|s| {
            s.syncing.is_empty() && s.peers.get(&ada.key()).is_some_and(|i| i.refused.is_some())
        })
    })
    .await;
    assert!(bea.op_ids().is_empty(), "nothing for a joiner not admitted");

    // Once Ada admits Bea, Bea's next poll says so and pulls.
    ada.admit(&[&bea]);
    bea.admit(&[&ada]);
    sync::poll_join(bea.clone(), bea_link.clone(), invite).await;
    assert_eq!(bea_link.with_shared(|s| s.join_view), Some((2, 2)));
    assert!(
        ada.op_ids().is_subset(&bea.op_ids()),
        "admitted, Bea pulled"
    );
}

#[tokio::test]
async fn bad_input_fake_join_refused_by_the_inviter_says_why_and_keeps_nothing() {
    let (ada, bea) = (FakeInstance::new(1), FakeInstance::new(2));
    ada.with(|s| s.join_answer = Err("this invite was revoked".into()));
    let links = network(&[&ada, &bea]);
    let bea_link = &links[1];

    let error = sync::join(bea_link, &bea, &invite_from(&ada), "Bea")
        .await
        .expect_err("refused");

    assert_eq!(
        error.to_string(),
        "Ada laptop refused the join: this invite was revoked"
    );
    assert_eq!(error.code(), crate::ErrorCode::JoinRefused);
    assert_eq!(error.code().kind(), crate::ErrorKind::Refused);
    assert!(bea.with(|s| s.joining.is_none()), "not joining after all");
    assert_eq!(bea.with(|s| s.genesis.clone()), None);
}

#[tokio::test]
async fn fake_a_join_the_inviter_cannot_take_now_is_worth_trying_again_and_its_reason_cannot_break_lines()
 {
    let (ada, bea) = (FakeInstance::new(1), FakeInstance::new(2));
    ada.with(|s| s.join_answer = Err("stopping".into()));
    let links = network(&[&ada, &bea]);

    let error = sync::join(&links[1], &bea, &invite_from(&ada), "Bea")
        .await
        .expect_err("not taken");

    assert_eq!(error.code(), crate::ErrorCode::Unreachable);
    assert_eq!(error.code().kind(), crate::ErrorKind::Network);
    assert!(error.to_string().contains("try again"), "{error}");
    assert!(bea.with(|s| s.joining.is_none()), "not joining after all");

    // A refusal whose reason holds line breaks and escapes.
    ada.with(|s| s.join_answer = Err("no\nfake line \u{1b}[2J".into()));
    let error = sync::join(&links[1], &bea, &invite_from(&ada), "Bea")
        .await
        .expect_err("refused");
    assert!(!error.to_string().chars().any(char::is_control), "{error}");
}

/// `hello` as a gossip message.
fn checkpoint(hello: &SignedHello) -> Vec<u8> {
    postcard::to_allocvec(&Gossip::Checkpoint(hello.to_bytes())).expect("encodes")
}

#[tokio::test]
async fn bad_input_fake_gossip_from_a_publisher_not_served_or_not_gossip_goes_no_further() {
    let (ada, bea) = (FakeInstance::new(1), FakeInstance::new(2));
    ada.admit(&[&bea]);
    let links = network(&[&ada, &bea]);
    let (ada_link, bea_link) = (&links[0], &links[1]);
    let ops = postcard::to_allocvec(&Gossip::Ops(vec![b"1 bea op".to_vec()])).expect("encodes");

    // Bea counts Ada as no member: nothing Ada publishes spreads through
    // Bea, nor is it ingested.
    let heard = gossip::judge(&bea, bea_link, ada_link.me, Some(ada_link.me), &ops).await;
    assert_eq!(heard, MessageAcceptance::Ignore);
    assert_eq!(bea.with(|s| s.ingested_batches), 0);

    // Bytes that are not gossip, or gossip without a publisher, are refused.
    let garbage = gossip::judge(&ada, ada_link, bea_link.me, Some(bea_link.me), b"\xff\xff").await;
    assert_eq!(garbage, MessageAcceptance::Reject);
    let anonymous = gossip::judge(&ada, ada_link, bea_link.me, None, &ops).await;
    assert_eq!(anonymous, MessageAcceptance::Reject);
}

#[tokio::test]
async fn bad_input_fake_a_checkpoint_published_by_another_member_is_refused() {
    let (ada, bea, cleo) = (
        FakeInstance::new(1),
        FakeInstance::new(2),
        FakeInstance::new(3),
    );
    ada.admit(&[&bea, &cleo]);
    let links = network(&[&ada, &bea, &cleo]);
    let (ada_link, bea_link, cleo_link) = (&links[0], &links[1], &links[2]);
    // Bea publishes Cleo's checkpoint as if it were hers.
    let cleos = checkpoint(&cleo.signed_hello().await);
    let judged = gossip::judge(&ada, ada_link, bea_link.me, Some(bea_link.me), &cleos).await;
    assert_eq!(judged, MessageAcceptance::Reject);
    // Published by Cleo herself, it spreads.
    let judged = gossip::judge(&ada, ada_link, cleo_link.me, Some(cleo_link.me), &cleos).await;
    assert_eq!(judged, MessageAcceptance::Accept);
    // The same one again goes no further.
    let again = gossip::judge(&ada, ada_link, bea_link.me, Some(cleo_link.me), &cleos).await;
    assert_eq!(again, MessageAcceptance::Ignore);
}

#[tokio::test]
async fn fake_a_members_checkpoint_signed_too_soon_spreads_after_the_interval_unless_overtaken() {
    let (ada, bea) = (FakeInstance::new(1), FakeInstance::new(2));
    ada.admit(&[&bea]);
    let links = network(&[&ada, &bea]);
    let (ada_link, bea_link) = (&links[0], &links[1]);
    let signed_at = |ms: u64| {
        let mut hello = bea.hello();
        hello.sent_ms = ms;
        checkpoint(&bea.signed(hello))
    };
    let judge = |data: Vec<u8>| {
        let (ada, ada_link, from) = (ada.clone(), ada_link.clone(), bea_link.me);
        async move { gossip::judge(&ada, &ada_link, from, Some(from), &data).await }
    };
    assert_eq!(judge(signed_at(1_000)).await, MessageAcceptance::Accept);
    // Two newer ones at once, within the interval: the first is overtaken
    // and gives up at once; the newest waits it out and spreads.
    let started = std::time::Instant::now();
    let bea_key = bea.key();
    let (overtaken, newest) = tokio::join!(
        async {
            let judged = judge(signed_at(2_000)).await;
            (judged, started.elapsed())
        },
        async {
            // Only once the first waits does the newer one come.
            eventually("the first to wait", || {
                ada_link
                    .with_shared(|s| s.checkpoints.get(&bea_key).is_some_and(|c| c.is_waiting()))
            })
            .await;
            judge(signed_at(3_000)).await
        }
    );
    assert_eq!(overtaken.0, MessageAcceptance::Ignore);
    assert!(
        overtaken.1 < gossip::MIN_CHECKPOINT_INTERVAL / 4,
        "the overtaken one gave up its slot at once, not after the wait: {:?}",
        overtaken.1
    );
    assert_eq!(newest, MessageAcceptance::Accept);
    assert!(
        started.elapsed() >= gossip::MIN_CHECKPOINT_INTERVAL / 2,
        "the newest waited for the interval: {:?}",
        started.elapsed()
    );
}

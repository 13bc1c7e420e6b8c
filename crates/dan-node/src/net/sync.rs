//! The replication conversations: the handshake on every connection,
//! pulling with range-based set reconciliation, answering peers, and
//! joining through an invite.

use std::collections::HashSet;
use std::time::Duration;

use dan_core::conformance::{SignedHello, Verdict};
use dan_core::{Hash32, Op, OpId, PeerKey, SignedEvidence, SignedInvite};
use libp2p::futures::{StreamExt, stream};
use libp2p::{Multiaddr, PeerId};
use negentropy::{Id, Negentropy};

use super::gossip::Trust;
use super::instance::{Instance, Link};
use super::wire::{
    self, Gossip, MAX_FETCH_ANSWER_BYTES, MAX_FETCH_IDS, RECONCILE_FRAME_BYTES, Request, Response,
};
use super::{Command, PeerVerdict, key_of, peer_id_of};
use crate::error::{ErrorKind, NodeError};
use crate::membership::JoinProgress;
use crate::node::NodeEvent;
use crate::replication::{Serving, now_ms};

/// Most rounds of one reconciliation. Each round carries at most a frame
/// of ids (about 8,000), so an instance far behind gets what these rounds
/// found and goes on at its next pull; a peer that keeps answering as if
/// ranges still differed must not keep this instance asking for ever.
pub const MAX_RECONCILE_ROUNDS: usize = 32;

/// How long a peer that is no member has to answer the handshake before it
/// is disconnected: one that never answers would otherwise keep its
/// connection for ever, and with it a place under the connection limits.
/// A member that is slow to answer is asked again at the next tick.
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(30);

/// How long a refusal's goodbye may take before the connection is closed
/// anyway.
const BYE_PATIENCE: Duration = Duration::from_secs(5);

/// Whether `key` is still served as it was judged before an answer was
/// read (`until`: up to a removal), now that the replica the answer came
/// from is published: a removal applied meanwhile must not let a removed
/// member read what was written after it.
async fn still_serving<I: Instance>(node: &I, key: &PeerKey, until: Option<dan_core::Hlc>) -> bool {
    match (node.serving(key).await, until) {
        (Serving::Everything, None) => true,
        (Serving::UpTo(now), Some(then)) => now == then,
        _ => false,
    }
}

/// Whether `key` is served everything (a member in good standing whose
/// last hello was not refused).
pub(super) async fn serves<I: Instance>(node: &I, key: &PeerKey) -> bool {
    matches!(node.serving(key).await, Serving::Everything)
}

/// Records what the handshake decided and lets gossip flow (or not).
async fn record_verdict<I: Instance, L: Link>(
    node: &I,
    net: &L,
    peer: PeerId,
    hello: &SignedHello,
    verdict: &Verdict,
) {
    let Some(key) = key_of(&peer) else { return };
    let refusal = refusal_reason(verdict);
    let changed = net.with_shared(|s| {
        let info = s.peers.entry(key).or_default();
        let recorded = PeerVerdict::of(verdict);
        let changed = info.verdict != Some(recorded);
        info.verdict = Some(recorded);
        info.code_hash = Some(hello.hello.code_hash);
        let now = i64::try_from(crate::replication::now_ms()).unwrap_or(i64::MAX);
        let sent = i64::try_from(hello.hello.sent_ms).unwrap_or(i64::MAX);
        info.clock_behind_ms = Some(now.saturating_sub(sent));
        info.roots = Some((
            hello.hello.ops_root,
            hello.hello.deprecations_root,
            hello.hello.state_root,
        ));
        info.refused = refusal
            .as_ref()
            .map(|reason| format!("refused by this instance: {reason}"));
        changed
    });
    if matches!(verdict, Verdict::Replicate | Verdict::Candidate) {
        store_addrs(node, net, key).await;
    }
    let trust = match verdict {
        Verdict::Replicate => Trust::Member,
        Verdict::PullOnly | Verdict::Candidate => Trust::Stranger,
        Verdict::Suspended(_) | Verdict::Deprecated(_) | Verdict::Refuse(_) => Trust::Refused,
    };
    net.command(Command::Trust { peer, trust }).await;
    if changed {
        let what = match &refusal {
            Some(reason) => {
                tracing::warn!("refusing {key}: {reason}");
                format!("refused: {reason}")
            }
            None => {
                let name = PeerVerdict::of(verdict).as_str();
                tracing::info!("peer {key}: {name}");
                format!("connected ({name})")
            }
        };
        node.emit(NodeEvent::PeerChanged { peer: key, what });
    }
}

/// Stores where a peer the handshake accepted can be reached, if that
/// changed, so that a restart finds it again.
async fn store_addrs<I: Instance, L: Link>(node: &I, net: &L, key: PeerKey) {
    let changed = net.with_shared(|s| {
        let info = s.peers.get_mut(&key)?;
        (info.addrs != info.stored_addrs).then(|| {
            info.stored_addrs.clone_from(&info.addrs);
            info.addrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        })
    });
    if let Some(addrs) = changed {
        node.remember_addrs(key, addrs).await;
    }
}

/// After the member table changed (a removal, a deprecation): takes
/// gossip away from connected peers this instance no longer serves, at
/// once rather than at their next handshake (which a peer can delay by
/// keeping a pull open).
pub(super) async fn rescore<I: Instance, L: Link>(node: I, net: L) {
    let replicating: Vec<PeerKey> = net.with_shared(|s| {
        s.peers
            .iter()
            .filter(|(_, info)| info.replicating())
            .map(|(key, _)| *key)
            .collect()
    });
    for key in replicating {
        if !serves(&node, &key).await
            && let Some(peer) = peer_id_of(&key)
        {
            net.with_shared(|s| {
                if let Some(info) = s.peers.get_mut(&key) {
                    info.verdict = None;
                }
            });
            net.command(Command::Trust {
                peer,
                trust: Trust::Stranger,
            })
            .await;
        }
    }
}

/// Why nothing flows with a peer, if nothing does.
fn refusal_reason(verdict: &Verdict) -> Option<String> {
    match verdict {
        Verdict::Refuse(reason) | Verdict::Suspended(reason) => Some(reason.clone()),
        Verdict::Deprecated(reason) => Some(format!("deprecated: {reason}")),
        Verdict::Replicate | Verdict::PullOnly | Verdict::Candidate => None,
    }
}

fn note_refused_by_peer<I: Instance, L: Link>(node: &I, net: &L, key: PeerKey, reason: &str) {
    tracing::warn!("{key} refused this instance: {reason}");
    net.with_shared(|s| {
        let info = s.peers.entry(key).or_default();
        info.verdict = Some(PeerVerdict::Refused);
        info.refused = Some(format!("refused by the peer: {reason}"));
    });
    node.emit(NodeEvent::PeerChanged {
        peer: key,
        what: format!("refused by the peer: {reason}"),
    });
}

/// Runs at most one handshake-and-sync per peer at a time.
struct Session<'a, L: Link> {
    net: &'a L,
    key: PeerKey,
}

impl<'a, L: Link> Session<'a, L> {
    fn begin(net: &'a L, key: PeerKey) -> Option<Self> {
        // `then`, not `then_some`: a Session built and dropped on failure
        // would end the running one's claim.
        net.with_shared(|s| s.syncing.insert(key))
            .then(|| Session { net, key })
    }
}

impl<L: Link> Drop for Session<'_, L> {
    fn drop(&mut self) {
        self.net.with_shared(|s| {
            s.syncing.remove(&self.key);
        });
    }
}

/// The conformance handshake with `peer`, then a pull if our op sets
/// differ.
pub(super) async fn handshake<I: Instance, L: Link>(node: I, net: L, peer: PeerId) {
    let Some(key) = key_of(&peer) else { return };
    let Some(_session) = Session::begin(&net, key) else {
        return;
    };
    let mine = node.signed_hello().await;
    let hello = net.request(peer, Request::Hello(mine.to_bytes()));
    let Ok(answer) = tokio::time::timeout(HANDSHAKE_DEADLINE, hello).await else {
        // A member may be busy (a rebuild after a deprecation holds its
        // replica): it is asked again at the next tick. Anyone else is
        // let go.
        if node.is_member(&key) {
            // Until it answers, it is served nothing and gossip does not
            // flow with it: a member on a build the network withdrew must
            // not keep pulling by never answering.
            tracing::info!(
                "member {key} did not answer the handshake within {} s",
                HANDSHAKE_DEADLINE.as_secs()
            );
            net.with_shared(|s| {
                s.peers.entry(key).or_default().verdict = Some(PeerVerdict::Unanswered);
            });
            net.command(Command::Trust {
                peer,
                trust: Trust::Stranger,
            })
            .await;
        } else {
            tracing::info!(
                "{key} did not answer the handshake within {} s: disconnected",
                HANDSHAKE_DEADLINE.as_secs()
            );
            net.command(Command::Disconnect(peer)).await;
        }
        return;
    };
    match answer {
        Ok(Response::Hello(bytes)) => {
            let Ok(theirs) = SignedHello::from_bytes(&bytes) else {
                net.command(Command::Disconnect(peer)).await;
                return;
            };
            // It answered our hello: whatever it said of us before, it
            // does not refuse us as deprecated now.
            node.heard_from(key, None);
            if let Err(e) = node.check_checkpoint(&theirs).await {
                tracing::warn!("checking the checkpoint of {key}: {e}");
            }
            let verdict = node.judge(&key, &theirs).await;
            record_verdict(&node, &net, peer, &theirs, &verdict).await;
            if let Some(reason) = refusal_reason(&verdict) {
                // A goodbye is not waited for long: the peer may be gone.
                let bye = net.request(peer, Request::Bye(reason));
                let _ = tokio::time::timeout(BYE_PATIENCE, bye).await;
                net.command(Command::Disconnect(peer)).await;
                return;
            }
            if matches!(verdict, Verdict::Replicate | Verdict::PullOnly) {
                // A peer with fewer ops is catching up from us; once it
                // has caught up (or has as many), pull what it has extra.
                // Equal roots are a completed reconciliation too: pushed ops
                // may have converged both sides before any pull was needed.
                if theirs.hello.ops_root == mine.hello.ops_root {
                    net.with_shared(|s| s.last_sync_ms = Some(now_ms()));
                } else if theirs.hello.op_count >= mine.hello.op_count
                    && let Err(e) = pull(&node, &net, peer, key).await
                {
                    tracing::debug!("sync with {key}: {e}");
                }
                if verdict == Verdict::Replicate {
                    exchange_evidence(&node, &net, peer).await;
                    confirm_chain_head(&node, &net, peer).await;
                }
                discover(&node, &net, peer).await;
            }
        }
        Ok(Response::Refused(reason)) => {
            note_refused_by_peer(&node, &net, key, &reason);
            net.command(Command::Disconnect(peer)).await;
        }
        Ok(Response::Deprecated { reason, evidence }) => {
            note_refused_by_peer(
                &node,
                &net,
                key,
                &format!("this instance was deprecated: {reason}"),
            );
            node.heard_from(key, Some(&reason));
            if let Some(signed) = evidence.and_then(|b| SignedEvidence::from_bytes(&b).ok())
                && let Err(e) = node.accept_evidence(signed).await
            {
                tracing::warn!("evidence from {key}: {e}");
            }
            net.command(Command::Disconnect(peer)).await;
        }
        // A busy peer says so (slow down) and is asked again at the next tick.
        Ok(Response::Error(e)) => tracing::debug!("hello to {key} not answered: {e}"),
        Ok(other) => {
            tracing::info!("{key} answered the handshake with {other:?}: disconnected");
            net.command(Command::Disconnect(peer)).await;
        }
        Err(e) => tracing::debug!("hello to {key} failed: {e}"),
    }
}

/// Fetches the evidence `peer` holds and checks it here.
async fn exchange_evidence<I: Instance, L: Link>(node: &I, net: &L, peer: PeerId) {
    let Ok(Response::EvidenceList(list)) = net.request(peer, Request::Evidence).await else {
        return;
    };
    for bytes in list.into_iter().take(1024) {
        if let Ok(signed) = SignedEvidence::from_bytes(&bytes)
            && let Err(e) = node.accept_evidence(signed).await
        {
            tracing::warn!("checking evidence: {e}");
        }
    }
    if let Err(e) = node.adopt_pending_evidence().await {
        tracing::warn!("adopting the network's deprecations: {e}");
    }
}

/// Asks `peer` how far this instance's own chain goes there, so that writes
/// lost here (a restore from backup, a lost disk tail) are recovered before
/// this instance signs new ops, never re-signing a seq it signed before.
async fn confirm_chain_head<I: Instance, L: Link>(node: &I, net: &L, peer: PeerId) {
    if let Ok(Response::ChainHead { seq: head, op }) = net.request(peer, Request::ChainHead).await {
        let mine = node.chain_head_of(&node.peer_id()).await;
        if head > mine && !node.proves_own_chain_head(head, op.as_deref()).await {
            // Without this instance's own signed op at that seq the claim
            // is a lie (it would block every write here for ever).
            tracing::warn!(
                "{peer} claims to hold this instance's ops up to seq {head} without proof; ignored"
            );
            return;
        }
        if head > mine {
            tracing::warn!(
                "peers hold this instance's ops up to seq {head}, this instance only up to {mine}: recovering them before writing"
            );
        }
        net.with_shared(|s| {
            s.own_chain_head = s.own_chain_head.max(head);
            s.chain_confirmed = true;
            s.chain_news.notify_waiters();
        });
    }
}

/// Signs and gossips this instance's checkpoint.
pub(super) async fn publish_checkpoint<I: Instance, L: Link>(node: I, net: L) {
    if node.chain_head_of(&node.peer_id()).await == 0
        && node.signed_hello().await.hello.network.is_none()
    {
        return;
    }
    let hello = node.signed_hello().await;
    net.command(Command::Publish(Gossip::Checkpoint(hello.to_bytes())))
        .await;
}

/// Asks `peer` where the members this instance is not connected to are,
/// and dials them (used when some member is unreachable).
async fn discover<I: Instance, L: Link>(node: &I, net: &L, peer: PeerId) {
    let unreachable = node.unreachable_members().await;
    if unreachable.is_empty() {
        return;
    }
    let Ok(Response::Addresses(known)) = net.request(peer, Request::Addresses).await else {
        return;
    };
    // Each member is dialled once, at 16 addresses at most, however often
    // the answer names it.
    let mut dialled = HashSet::new();
    for (peer_bytes, addrs) in known.into_iter().take(256) {
        let Some(key) = PeerKey::from_peer_id_bytes(&peer_bytes) else {
            continue;
        };
        if !unreachable.contains(&key) || !dialled.insert(key) {
            continue;
        }
        let Some(target) = peer_id_of(&key) else {
            continue;
        };
        let addrs: Vec<Multiaddr> = addrs
            .iter()
            .filter_map(|a| Multiaddr::try_from(a.clone()).ok())
            .take(16)
            .collect();
        if !addrs.is_empty() {
            net.command(Command::Dial {
                peer: target,
                addrs,
            })
            .await;
        }
    }
}

/// Pulls what `peer` has and this instance lacks: reconcile the op-id sets,
/// then fetch the difference in bounded batches.
async fn pull<I: Instance, L: Link>(
    node: &I,
    net: &L,
    peer: PeerId,
    key: PeerKey,
) -> Result<(), String> {
    let set = node.reconcile_set(None).await.map_err(|e| e.to_string())?;
    let mut negentropy =
        Negentropy::borrowed(set.as_ref(), RECONCILE_FRAME_BYTES).map_err(|e| e.to_string())?;
    let mut message = negentropy.initiate().map_err(|e| e.to_string())?;
    let (mut have, mut need): (Vec<Id>, Vec<Id>) = (Vec::new(), Vec::new());
    let mut complete = false;
    for _ in 0..MAX_RECONCILE_ROUNDS {
        match net.request(peer, Request::Reconcile(message)).await? {
            Response::Reconcile(reply) => match negentropy
                .reconcile_with_ids(&reply, &mut have, &mut need)
                .map_err(|e| e.to_string())?
            {
                Some(next) => message = next,
                None => {
                    complete = true;
                    break;
                }
            },
            Response::Error(reason) => return Err(reason),
            other => return Err(format!("unexpected answer to reconcile: {other:?}")),
        }
    }
    if !complete {
        // Far behind (each round carries at most a frame of ids), or a
        // peer that never lets the ranges agree: fetch what was found;
        // the next pull goes on from there.
        tracing::info!(
            "reconciliation with {key} stopped after {MAX_RECONCILE_ROUNDS} rounds; fetching the {} ops found so far",
            need.len()
        );
    }
    let need: Vec<OpId> = need.iter().map(|id| Hash32(**id)).collect();
    let total = need.len() as u64;
    let mut fetched = 0u64;
    let mut buffer = PullBuffer::default();
    net.with_shared(|s| s.missing.insert(key, total));
    // A few fetches in flight at once, so the peer reads the next ids from
    // its store while the answer before travels.
    let chunks: Vec<Vec<OpId>> = need.chunks(MAX_FETCH_IDS).map(<[OpId]>::to_vec).collect();
    let mut fetches = stream::iter(chunks)
        .map(|chunk| fetch_chunk(net.clone(), peer, chunk))
        .buffer_unordered(FETCHES_IN_FLIGHT);
    while let Some(ops) = fetches.next().await {
        let ops = ops?;
        fetched += ops.len() as u64;
        buffer.extend(ops);
        if buffer.bytes > PULL_BUFFER_BYTES {
            buffer.ingest(node).await?;
        }
        net.with_shared(|s| s.missing.insert(key, total.saturating_sub(fetched)));
        node.emit(NodeEvent::SyncProgress {
            peer: key,
            fetched,
            total,
        });
    }
    drop(fetches);
    buffer.ingest(node).await?;
    net.with_shared(|s| {
        s.missing.remove(&key);
        if complete {
            s.last_sync_ms = Some(now_ms());
        }
    });
    node.retry_pending_evidence()
        .await
        .map_err(|e| e.to_string())?;
    if total > 0 {
        tracing::info!("fetched {fetched} ops from {key}");
    }
    Ok(())
}

/// Fetch requests to one peer in flight at once during a pull.
const FETCHES_IN_FLIGHT: usize = 4;

/// Most bytes one chunk's fetch gathers before it hands them over (the
/// rest of its ids wait for the next pull): with [`FETCHES_IN_FLIGHT`]
/// chunks at once, a pull holds at most four of these besides its buffer.
const CHUNK_BYTES: usize = PULL_BUFFER_BYTES / FETCHES_IN_FLIGHT;

/// Fetches the ops of one chunk of ids from `peer`, asking again for those
/// an answer left out. Only what was asked for counts, each op once; an
/// answer with nothing of it ends the chunk (the peer lacks the ops, or
/// lies), so a peer cannot keep this going, or fill memory, with ops
/// nobody asked for or with copies of one.
async fn fetch_chunk<L: Link>(
    net: L,
    peer: PeerId,
    wanted: Vec<OpId>,
) -> Result<Vec<Vec<u8>>, String> {
    let mut wanted: HashSet<OpId> = wanted.into_iter().collect();
    let (mut got, mut bytes) = (Vec::new(), 0);
    while !wanted.is_empty() && bytes < CHUNK_BYTES {
        let asking = wanted.iter().copied().collect();
        let ops = match net.request(peer, Request::Fetch(asking)).await? {
            Response::Ops(ops) => ops,
            Response::Error(reason) => return Err(reason),
            other => return Err(format!("unexpected answer to fetch: {other:?}")),
        };
        let before = got.len();
        for op in ops {
            if wanted.remove(&Hash32::of(&op)) {
                bytes += op.len();
                got.push(op);
            }
        }
        if got.len() == before {
            break;
        }
    }
    Ok(got)
}

/// Fetched ops held before ingesting, at most this many bytes.
const PULL_BUFFER_BYTES: usize = 64 * 1024 * 1024;

/// Ops fetched in one pull, ingested in chain order: reconciliation
/// returns ids in id order, which would make most ops wait for their
/// predecessors.
#[derive(Default)]
struct PullBuffer {
    ops: Vec<(PeerKey, u64, Vec<u8>)>,
    bytes: usize,
}

impl PullBuffer {
    fn extend(&mut self, ops: Vec<Vec<u8>>) {
        for bytes in ops {
            // Undecodable ops still go to ingest, which reports them.
            let (origin, seq) = dan_core::Op::decode(&bytes).map_or((PeerKey([0; 32]), 0), |op| {
                (op.body().origin, op.body().seq)
            });
            self.bytes += bytes.len();
            self.ops.push((origin, seq, bytes));
        }
    }

    async fn ingest<I: Instance>(&mut self, node: &I) -> Result<(), String> {
        if self.ops.is_empty() {
            return Ok(());
        }
        let mut ops = std::mem::take(&mut self.ops);
        self.bytes = 0;
        ops.sort_by_key(|(origin, seq, _)| (*origin, *seq));
        let ops = ops.into_iter().map(|(_, _, bytes)| bytes).collect();
        node.ingest_pulled(ops).await.map_err(|e| e.to_string())
    }
}

/// An answer to one request, and whether the connection ends once it is
/// sent (a refused hello, a goodbye).
pub(crate) struct Answer {
    pub(crate) response: Response,
    pub(crate) then_disconnect: bool,
}

/// Answers one request from `peer`.
pub(super) async fn respond<I: Instance, L: Link>(
    node: &I,
    net: &L,
    peer: PeerId,
    key: PeerKey,
    request: Request,
) -> Answer {
    let (hello, bye) = (
        matches!(request, Request::Hello(_)),
        matches!(request, Request::Bye(_)),
    );
    let response = answer(node, net, peer, key, request).await;
    let refused = matches!(response, Response::Refused(_) | Response::Deprecated { .. });
    Answer {
        then_disconnect: bye || (hello && refused),
        response,
    }
}

/// Starts a handshake with `peer` beside this conversation, unless one
/// with it runs already.
pub(super) fn start_handshake<I: Instance, L: Link>(node: &I, net: &L, peer: PeerId) {
    let Some(key) = key_of(&peer) else { return };
    if net.with_shared(|s| s.syncing.contains(&key)) {
        return;
    }
    let task = handshake(node.clone(), net.clone(), peer);
    if node.is_member(&key) {
        net.keep_up(task);
    } else {
        net.converse(task);
    }
}

/// The answer to one request from `peer` (see [`respond`]).
async fn answer<I: Instance, L: Link>(
    node: &I,
    net: &L,
    peer: PeerId,
    key: PeerKey,
    request: Request,
) -> Response {
    match request {
        Request::Hello(bytes) => {
            let Ok(theirs) = SignedHello::from_bytes(&bytes) else {
                return Response::Refused("malformed hello".into());
            };
            if let Err(e) = node.check_checkpoint(&theirs).await {
                tracing::warn!("checking the checkpoint of {key}: {e}");
            }
            let verdict = node.judge(&key, &theirs).await;
            record_verdict(node, net, peer, &theirs, &verdict).await;
            if refusal_reason(&verdict).is_some() {
                return match verdict {
                    Verdict::Deprecated(reason) => Response::Deprecated {
                        reason,
                        evidence: node.evidence_against(&key).await,
                    },
                    other => Response::Refused(refusal_reason(&other).unwrap_or_default()),
                };
            }
            let mine = node.signed_hello().await;
            if matches!(verdict, Verdict::Replicate | Verdict::PullOnly)
                && theirs.hello.ops_root != mine.hello.ops_root
            {
                start_handshake(node, net, peer);
            }
            Response::Hello(mine.to_bytes())
        }
        Request::Evidence => match node.proven_evidence().await {
            Ok(list) if serves(node, &key).await => Response::EvidenceList(list),
            Ok(_) => Response::Error("not a member of this network (yet)".into()),
            Err(e) => Response::Error(e.to_string()),
        },
        Request::ChainHead => {
            if !serves(node, &key).await {
                return Response::Error("not a member of this network (yet)".into());
            }
            match node.chain_head_with_op(&key).await {
                Ok((seq, op)) => Response::ChainHead { seq, op },
                Err(e) => Response::Error(e.to_string()),
            }
        }
        Request::Reconcile(message) => {
            let until = match node.serving(&key).await {
                Serving::Nothing => {
                    return Response::Error("not a member of this network (yet)".into());
                }
                Serving::UpTo(decided) => Some(decided),
                Serving::Everything => None,
            };
            let set = match node.reconcile_set(until).await {
                Ok(set) => set,
                Err(e) => return Response::Error(e.to_string()),
            };
            if !still_serving(node, &key, until).await {
                return Response::Error("the members changed; ask again".into());
            }
            match wire::answer_reconcile(&set, &message) {
                Ok(reply) => Response::Reconcile(reply),
                Err(e) => Response::Error(format!("reconciliation failed: {e}")),
            }
        }
        Request::Fetch(ids) => {
            let serving = node.serving(&key).await;
            if serving == Serving::Nothing {
                return Response::Error("not a member of this network (yet)".into());
            }
            if ids.len() > MAX_FETCH_IDS {
                return Response::Error(format!("at most {MAX_FETCH_IDS} ids per fetch"));
            }
            let answer = node.ops_for(&ids).await;
            let until = match serving {
                Serving::UpTo(decided) => Some(decided),
                _ => None,
            };
            if !still_serving(node, &key, until).await {
                return Response::Error("the members changed; ask again".into());
            }
            match answer {
                Ok(mut ops) => {
                    if let Serving::UpTo(decided) = serving {
                        ops.retain(|op| Op::decode(op).is_ok_and(|op| op.body().hlc <= decided));
                    }
                    let mut size = 0;
                    ops.retain(|op| {
                        size += op.len();
                        size <= MAX_FETCH_ANSWER_BYTES
                    });
                    Response::Ops(ops)
                }
                Err(e) => Response::Error(e.to_string()),
            }
        }
        Request::Join(bytes) => match node.handle_join(&key, &bytes).await {
            Ok(answer) => {
                tracing::info!(
                    "approved the join request of {key} ({} of {} approvals)",
                    answer.approvals,
                    answer.needed
                );
                Response::Joined {
                    genesis: answer.genesis,
                    approvals: answer.approvals,
                    needed: answer.needed,
                }
            }
            // A refusal (the invite, the build, the rules) the joiner
            // should not repeat, or a failure here it may retry.
            Err(e) if matches!(e.code().kind(), ErrorKind::Refused | ErrorKind::BadInput) => {
                tracing::warn!("refused the join request of {key}: {e}");
                Response::Refused(e.to_string())
            }
            Err(e) => {
                tracing::warn!("could not take the join request of {key}: {e}");
                Response::Error(e.to_string())
            }
        },
        Request::JoinStatus => Response::JoinStatus(node.join_status_of(&key).await.map(
            |(status, approvals, needed)| {
                (approvals, needed, status == dan_core::MemberStatus::Member)
            },
        )),
        Request::Addresses => {
            if !serves(node, &key).await {
                return Response::Error("not a member of this network (yet)".into());
            }
            let peers = net.with_shared(|s| {
                s.peers
                    .iter()
                    .filter(|(_, info)| info.replicating())
                    .map(|(peer, info)| {
                        (
                            peer.to_peer_id_bytes(),
                            info.addrs.iter().map(|a| a.to_vec()).collect(),
                        )
                    })
                    .collect()
            });
            Response::Addresses(peers)
        }
        Request::Bye(reason) => {
            note_refused_by_peer(node, net, key, &reason);
            Response::Ack
        }
    }
}

/// How many times a join request is sent before giving up.
const JOIN_ATTEMPTS: u8 = 4;

/// Joins through `invite`: contacts the inviter with a signed join request.
pub(super) async fn join<I: Instance, L: Link>(
    net: &L,
    node: &I,
    invite: &SignedInvite,
    admin_name: &str,
) -> Result<JoinProgress, NodeError> {
    let inviter = &invite.invite;
    let peer = peer_id_of(&inviter.inviter)
        .ok_or_else(|| NodeError::Invalid("the invite names an invalid inviter".into()))?;
    let addrs: Vec<Multiaddr> = inviter
        .addrs
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    if addrs.is_empty() {
        return Err(NodeError::Invalid(
            "the invite carries no usable address".into(),
        ));
    }
    let previous = node.set_joining(Some(invite.clone()));
    let request = node.join_request(invite, admin_name).await?;
    // A connection that existed before the join (e.g. when following a
    // fork) may be closed by the inviter's handshake of the old network:
    // dial again and retry a few times.
    let mut answer = Err(String::new());
    for attempt in 0..JOIN_ATTEMPTS {
        net.command(Command::Dial {
            peer,
            addrs: addrs.clone(),
        })
        .await;
        answer = net.request(peer, Request::Join(request.clone())).await;
        if answer.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300 * (u64::from(attempt) + 1))).await;
    }
    let restore = |node: &I| {
        node.set_joining(previous.clone());
    };
    match answer {
        Ok(Response::Joined {
            genesis,
            approvals,
            needed,
        }) => {
            node.begin_joining(invite, &genesis).await?;
            // The inviter answered at these addresses: kept, so that an
            // instance restarted before its first handshake as a member
            // finds it again; that handshake stores what the inviter
            // announces in their place (the cache says what is stored).
            if let Some(key) = key_of(&peer) {
                node.remember_addrs(key, addrs.iter().map(ToString::to_string).collect())
                    .await;
                net.with_shared(|s| {
                    if let Some(info) = s.peers.get_mut(&key) {
                        info.stored_addrs.clone_from(&addrs);
                    }
                });
            }
            net.with_shared(|s| s.join_view = Some((approvals, needed)));
            start_handshake(node, net, peer);
            node.join_progress()
                .await
                .ok_or_else(|| NodeError::Invalid("the join was not recorded".into()))
        }
        Ok(Response::Refused(reason)) => {
            restore(node);
            Err(NodeError::JoinRefused(format!(
                "{} refused the join: {}",
                inviter.inviter_name,
                peer_text(&reason)
            )))
        }
        // "Slow down", or the inviter is catching up or stopping: worth
        // trying again (an inviter of an older version sends its
        // refusals this way too).
        Ok(Response::Error(reason)) => {
            restore(node);
            Err(NodeError::Unreachable(format!(
                "{} could not take the join now: {}; try again in a moment",
                inviter.inviter_name,
                peer_text(&reason)
            )))
        }
        Ok(other) => {
            restore(node);
            Err(NodeError::Unreachable(format!(
                "unexpected answer from the inviter: {other:?}"
            )))
        }
        Err(e) => {
            restore(node);
            Err(NodeError::Unreachable(format!(
                "could not reach the inviter {} at {}: {e}",
                inviter.inviter_name,
                inviter.addrs.join(", ")
            )))
        }
    }
}

/// Longest text of a peer's reason put into an error.
const MAX_REASON_CHARS: usize = 300;

/// A reason a peer gave, as one line of at most [`MAX_REASON_CHARS`]
/// characters, its control characters escaped (it reaches terminals and
/// the window).
fn peer_text(reason: &str) -> String {
    let mut text: String = reason
        .chars()
        .take(MAX_REASON_CHARS)
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_unicode().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect();
    if reason.chars().count() > MAX_REASON_CHARS {
        text.push('…');
    }
    text
}

/// While joining: asks the inviter how many approvals the join has.
pub(super) async fn poll_join<I: Instance, L: Link>(node: I, net: L, invite: SignedInvite) {
    let Some(peer) = peer_id_of(&invite.invite.inviter) else {
        return;
    };
    if let Ok(Response::JoinStatus(Some((approvals, needed, admitted)))) =
        net.request(peer, Request::JoinStatus).await
    {
        let changed = net
            .with_shared(|s| s.join_view.replace((approvals, needed)) != Some((approvals, needed)));
        if changed {
            node.emit(NodeEvent::MembersChanged);
        }
        if admitted {
            handshake(node, net, peer).await;
        }
    }
}

//! The instance's side of replication: what the network layer asks of it.
//! Every decision is made by `dan-core` (judge, replica); this module only
//! holds the lock, touches the store and announces what changed.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use dan_core::PeerKey;
use dan_core::conformance::{self, Hello, SignedHello, Verdict};
use dan_core::replica::OpRejection;
use dan_core::{Evidence, OpId, PROTOCOL_VERSION, VerifiedOp};
use negentropy::{Id, NegentropyStorageVector};

use crate::error::NodeError;
use crate::ingest::{IngestOutcome, MAX_BATCH_OPS, Prepared, ingest, ingest_prepared};
use crate::node::{Ledger, Node, NodeEvent};
use libp2p::futures::FutureExt;

/// Most ops kept waiting for missing predecessors.
const MAX_WAITING: usize = 20_000;
/// Most held ops of one origin.
const MAX_WAITING_PER_ORIGIN: usize = 4_096;
/// Most held ops of keys the member table does not name.
const MAX_WAITING_FROM_STRANGERS: usize = 1_024;

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How much of the op set a peer is served (see [`Node::serving`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serving {
    /// Every op.
    Everything,
    /// The ops dated up to this clock.
    UpTo(dan_core::Hlc),
    /// None.
    Nothing,
}

/// The held ops kept for the next batch: one per (origin, seq), at most
/// [`MAX_WAITING_PER_ORIGIN`] per origin and [`MAX_WAITING`] in all, so
/// that no member can push the others' held ops out by signing many
/// alternatives that wait for ops that never come. Ops of origins the
/// member table names (members, candidates) come first; those of unknown
/// keys (an admission not seen yet, or throwaway keys) share at most
/// [`MAX_WAITING_FROM_STRANGERS`], so that keys anyone can make cannot
/// push out what members wait for.
fn bounded_waiting(
    deferred: &[VerifiedOp],
    is_known: impl Fn(&PeerKey) -> bool,
) -> Vec<VerifiedOp> {
    let mut positions = std::collections::HashSet::new();
    let mut per_origin: std::collections::HashMap<PeerKey, usize> =
        std::collections::HashMap::new();
    let (known, strangers): (Vec<&VerifiedOp>, Vec<&VerifiedOp>) =
        deferred.iter().partition(|op| is_known(&op.body().origin));
    let mut keep = |op: &&VerifiedOp| {
        let body = op.body();
        let count = per_origin.entry(body.origin).or_default();
        let keep = *count < MAX_WAITING_PER_ORIGIN && positions.insert((body.origin, body.seq));
        *count += usize::from(keep);
        keep
    };
    let mut kept: Vec<VerifiedOp> = known
        .into_iter()
        .filter(&mut keep)
        .take(MAX_WAITING)
        .cloned()
        .collect();
    let room = MAX_WAITING_FROM_STRANGERS.min(MAX_WAITING - kept.len());
    kept.extend(strangers.into_iter().filter(&mut keep).take(room).cloned());
    kept
}

/// Ops from a peer as they reach the replica: bytes (signatures checked
/// under the lock, after leaving out those already held) or a batch whose
/// signatures were checked beforehand.
enum Arrived {
    Bytes(Vec<Vec<u8>>),
    Checked(Prepared),
}

impl Node {
    /// This instance's signed hello: network, hashes and roots, as of the
    /// replica's last snapshot (one moment's, so the roots agree with each
    /// other), so a handshake never waits behind an ingest or a rebuild.
    pub async fn signed_hello(&self) -> SignedHello {
        let inner = self.inner();
        let snapshot = inner.ledger.snapshot();
        let joining = self.joining_network();
        let replica = snapshot.as_deref();
        let keypair = self.keypair();
        let hello = Hello {
            peer: keypair.public(),
            protocol_version: PROTOCOL_VERSION,
            code_hash: inner.code_hash,
            network: joining.or(replica.map(|r| r.network_id())),
            charter_hash: replica.map(|r| r.charter().hash()),
            ops_root: replica.map(|r| r.ops_root()),
            deprecations_root: replica.map(|r| r.deprecations_root()),
            state_root: replica.map(|r| r.state_root()),
            op_count: replica.map_or(0, |r| r.op_count()),
            origin_seq: replica.map_or(0, |r| r.chain_len(&keypair.public())),
            sent_ms: now_ms(),
            awaiting_approval: replica.is_some_and(|r| {
                joining.is_none_or(|j| j == r.network_id()) && !r.ever_approved(&inner.code_hash)
            }),
        };
        SignedHello::sign(hello, &keypair)
    }

    /// How to treat `peer`, given its hello (see [`conformance::judge`]),
    /// against the replica's last snapshot: judging never waits behind an
    /// ingest or a rebuild.
    pub async fn judge(&self, peer: &PeerKey, hello: &SignedHello) -> Verdict {
        conformance::judge(
            &self.peer_id(),
            self.inner().ledger.snapshot().as_deref(),
            self.joining_network(),
            peer,
            hello,
            now_ms(),
        )
    }

    /// Looks at a peer's checkpoint (its signed hello) for evidence against
    /// it, and reports what it proves.
    pub async fn check_checkpoint(&self, hello: &SignedHello) -> Result<(), NodeError> {
        // Only a member's checkpoint can be evidence (see below): a
        // stranger's takes no turn on the replica.
        let peer = hello.hello.peer;
        let of_member = self
            .inner()
            .ledger
            .snapshot()
            .is_some_and(|r| r.deprecation(&peer).is_none() && r.voters().contains(&peer));
        if !of_member {
            return Ok(());
        }
        let checked = hello.clone();
        let evidence = self
            .read_replica(move |replica| {
                // Only a member's checkpoint can be evidence: anyone can
                // sign hellos with throwaway keys, and each would otherwise
                // become a deprecation stored and spread everywhere.
                if replica.deprecation(&checked.hello.peer).is_none()
                    && replica.voters().contains(&checked.hello.peer)
                {
                    conformance::evidence_in(replica, &checked)
                } else {
                    None
                }
            })
            .await
            .ok()
            .flatten();
        if let Some(evidence) = evidence
            && hello.hello.peer != self.peer_id()
        {
            self.report(evidence).await?;
        }
        Ok(())
    }

    /// The signed evidence that deprecated `peer`, if held.
    pub async fn evidence_against(&self, peer: &PeerKey) -> Option<Vec<u8>> {
        let offender = peer.to_string();
        self.evidence()
            .await
            .ok()?
            .into_iter()
            .find(|e| e.offender.as_deref() == Some(offender.as_str()) && e.status == "proven")
            .map(|e| e.bytes)
    }

    /// The network id, the length of `peer`'s op chain here and the id of
    /// its last op (public data: anyone holding the ops knows it).
    pub async fn chain_tip(&self, peer: &PeerKey) -> Option<(dan_core::NetworkId, u64, OpId)> {
        let replica = self.inner().ledger.snapshot()?;
        let seq = replica.chain_len(peer);
        let last = replica.chain_last(peer).unwrap_or(dan_core::Hash32::ZERO);
        Some((replica.network_id(), seq, last))
    }

    /// The length of `peer`'s chain in this replica (for lost-write
    /// recovery).
    pub async fn chain_head_of(&self, peer: &PeerKey) -> u64 {
        self.inner()
            .ledger
            .snapshot()
            .map_or(0, |r| r.chain_len(peer))
    }

    /// How far `peer`'s chain goes here, with its op at that seq.
    pub async fn chain_head_with_op(
        &self,
        peer: &PeerKey,
    ) -> Result<(u64, Option<Vec<u8>>), NodeError> {
        let replica = self.inner().ledger.snapshot();
        let (seq, last) = (
            replica.as_ref().map_or(0, |r| r.chain_len(peer)),
            replica.as_ref().and_then(|r| r.chain_last(peer)),
        );
        let op = match last {
            Some(id) => self.inner().store.ops_by_id(&[id]).await?.pop(),
            None => None,
        };
        Ok((seq, op))
    }

    /// Whether `op` proves that a peer holds this instance's chain up to
    /// `seq`: this instance's own op at that seq, in this network, with a
    /// valid signature.
    pub async fn proves_own_chain_head(&self, seq: u64, op: Option<&[u8]>) -> bool {
        let Some(op) = op.and_then(|bytes| dan_core::Op::decode(bytes).ok()) else {
            return false;
        };
        let network = self.inner().ledger.snapshot().map(|r| r.network_id());
        let body = op.body();
        body.origin == self.peer_id()
            && body.seq == seq
            && Some(body.network) == network
            && !dan_core::op::verify_ops(vec![op]).0.is_empty()
    }

    /// How much of the op set this instance serves `peer`: everything to a
    /// member in good standing; to a member removed by vote the ops up to
    /// the decision (so that it learns of its own removal, and nothing
    /// written after it); nothing to anyone else.
    pub async fn serving(&self, peer: &PeerKey) -> Serving {
        // A member whose last hello this instance refused (an unapproved or
        // withdrawn build) gets nothing until a later hello is accepted.
        let refused = self
            .net()
            .and_then(|net| net.peer_info(peer))
            .is_some_and(|info| {
                info.verdict
                    .is_some_and(crate::net::PeerVerdict::serves_nothing)
            });
        if refused {
            return Serving::Nothing;
        }
        // As of the replica's last unlock: judging a peer never waits
        // behind an ingest or a rebuild.
        let facts = self.inner().ledger.facts();
        if facts.members.contains(peer) {
            return Serving::Everything;
        }
        facts
            .removed
            .iter()
            .find(|(removed, _)| removed == peer)
            .map_or(Serving::Nothing, |(_, decided)| Serving::UpTo(*decided))
    }

    /// The network this instance is joining through an invite, if any.
    pub(crate) fn joining_network(&self) -> Option<dan_core::NetworkId> {
        self.inner()
            .joining
            .lock()
            .ok()
            .and_then(|j| j.as_ref().map(|i| i.invite.network))
    }

    /// Runs ops received from a peer through the ingest pipeline. Ops that
    /// wait for others are kept and retried with the next batch.
    pub async fn ingest_remote(&self, batch: Vec<Vec<u8>>) -> Result<IngestOutcome, NodeError> {
        self.take_in(Arrived::Bytes(batch)).await
    }

    /// Ingests the ops a pull fetched (any number, in chain order), in
    /// batches of at most [`MAX_BATCH_OPS`], checking the signatures of
    /// the next batch while one is applied and stored.
    pub async fn ingest_pulled(&self, ops: Vec<Vec<u8>>) -> Result<(), NodeError> {
        let mut ops = ops.into_iter().peekable();
        let batches = std::iter::from_fn(|| {
            ops.peek()?;
            Some(ops.by_ref().take(MAX_BATCH_OPS).collect::<Vec<_>>())
        });
        crate::ingest::pipelined(batches, |prepared| async move {
            self.take_in(Arrived::Checked(prepared)).await.map(drop)
        })
        .await
    }

    /// Applies and stores what arrived, on the replica's owner, then
    /// reports what it proves and tells the UI, to the end.
    async fn take_in(&self, arrived: Arrived) -> Result<IngestOutcome, NodeError> {
        let node = self.clone();
        self.to_the_end(async move { node.take_in_steps(arrived).await })
            .await
    }

    async fn take_in_steps(&self, arrived: Arrived) -> Result<IngestOutcome, NodeError> {
        let (outcome, members_changed) = self
            .with_ledger(move |node, ledger| {
                async move { node.apply_arrived(ledger, arrived).await }.boxed()
            })
            .await?;
        self.report_violations(&outcome.violations).await?;
        if !outcome.changed.is_empty() {
            self.emit(NodeEvent::RecordsChanged {
                ids: outcome.changed.iter().map(|v| v.id.to_string()).collect(),
            });
        }
        if members_changed {
            self.emit(NodeEvent::MembersChanged);
        }
        Ok(outcome)
    }

    /// [`Node::take_in`]'s part on the replica's owner: applies, stores,
    /// rebuilds if a late governance op asks for it, and says whether the
    /// member table changed.
    async fn apply_arrived(
        &self,
        ledger: &mut Ledger,
        arrived: Arrived,
    ) -> Result<(IngestOutcome, bool), NodeError> {
        let inner = self.inner();
        let waiting = std::mem::take(&mut ledger.waiting);
        let was_member = ledger
            .replica
            .as_ref()
            .is_some_and(|r| r.is_member(&self.peer_id()));
        let members_before: Vec<_> = ledger
            .replica
            .as_ref()
            .map(|r| r.members().cloned().collect())
            .unwrap_or_default();
        let Some(replica) = ledger.replica.as_mut() else {
            return Err(NodeError::NoNetwork);
        };
        let result = match arrived {
            Arrived::Bytes(batch) => ingest(replica, &inner.store, batch, waiting, now_ms()).await,
            Arrived::Checked(prepared) => {
                ingest_prepared(replica, &inner.store, prepared, waiting, now_ms()).await
            }
        };
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::error!("storing received ops failed, reloading from the op log: {error}");
                self.reload(replica).await?;
                return Err(error);
            }
        };
        if replica.needs_rebuild() {
            tracing::warn!(
                "a late governance op changed past decisions; rebuilding the state from the op log"
            );
            self.reload(replica).await?;
        }
        ledger.waiting = match ledger.replica.as_ref() {
            Some(replica) => {
                bounded_waiting(&outcome.deferred, |origin| replica.member(origin).is_some())
            }
            None => Vec::new(),
        };
        let replica = ledger.replica.as_ref();
        let is_member = replica.is_some_and(|r| r.is_member(&self.peer_id()));
        let members_after: Vec<_> = replica
            .map(|r| r.members().cloned().collect())
            .unwrap_or_default();
        if is_member && !was_member {
            self.finish_joining().await?;
        }
        Ok((outcome, members_after != members_before))
    }

    /// Turns refused ops into evidence against their origin: two ops with
    /// one seq (equivocation), or an op that breaks the rules.
    async fn report_violations(
        &self,
        violations: &[(VerifiedOp, OpRejection)],
    ) -> Result<(), NodeError> {
        for (op, why) in violations {
            let evidence = match why {
                OpRejection::Equivocation { existing, .. } => {
                    let Some(first) = self.inner().store.ops_by_id(&[*existing]).await?.pop()
                    else {
                        continue;
                    };
                    Evidence::Equivocation {
                        first,
                        second: op.bytes().to_vec(),
                    }
                }
                OpRejection::Record(_)
                | OpRejection::BadGovernance(_)
                | OpRejection::BadClock(_)
                | OpRejection::BadContext(_) => Evidence::InvalidOp {
                    op: op.bytes().to_vec(),
                },
                _ => continue,
            };
            self.report(evidence).await?;
        }
        Ok(())
    }

    /// The sorted set of op ids, for range-based reconciliation: every op,
    /// or with `until` only those dated up to it (what a member removed by
    /// vote is served, so that it learns nothing of later ops, not even
    /// their ids).
    pub async fn reconcile_set(
        &self,
        until: Option<dan_core::Hlc>,
    ) -> Result<Arc<NegentropyStorageVector>, NodeError> {
        let cached = || {
            let root = self.inner().ledger.snapshot()?.ops_root();
            let cache = self.inner().reconcile_cache.lock().ok()?;
            let (cached_root, set) = cache.as_ref()?;
            (*cached_root == root).then(|| set.clone())
        };
        if until.is_none()
            && let Some(set) = cached()
        {
            return Ok(set);
        }
        let (root, stamps) = self
            .read_replica(move |replica| {
                let stamps: Vec<(u64, OpId)> = replica
                    .op_clocks()
                    .filter(|(hlc, _)| until.is_none_or(|until| *hlc <= until))
                    .map(|(hlc, id)| (hlc.wall_ms, id))
                    .collect();
                (replica.ops_root(), stamps)
            })
            .await?;
        let bad = |e: negentropy::Error| NodeError::Invalid(format!("reconciliation set: {e}"));
        let mut set = NegentropyStorageVector::with_capacity(stamps.len());
        for (ms, id) in stamps {
            set.insert(ms, Id::from_byte_array(id.0)).map_err(bad)?;
        }
        set.seal().map_err(bad)?;
        let set = Arc::new(set);
        if until.is_none()
            && let Ok(mut cache) = self.inner().reconcile_cache.lock()
        {
            *cache = Some((root, set.clone()));
        }
        Ok(set)
    }

    /// The canonical bytes of the held ops among `ids` (at most
    /// [`MAX_BATCH_OPS`]).
    pub async fn ops_for(&self, ids: &[OpId]) -> Result<Vec<Vec<u8>>, NodeError> {
        let asked: Vec<OpId> = ids.iter().take(MAX_BATCH_OPS).copied().collect();
        let held: Vec<OpId> = self
            .read_replica(move |replica| {
                asked
                    .into_iter()
                    .filter(|id| replica.contains(id))
                    .collect()
            })
            .await?;
        Ok(self.inner().store.ops_by_id(&held).await?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use dan_core::{Hash32, Hlc, Keypair, OpBody, Payload, RecordAction, RecordId, VerifiedOp};

    use super::{MAX_WAITING_FROM_STRANGERS, bounded_waiting};

    fn waiting_op(key: &Keypair, seq: u64) -> VerifiedOp {
        let body = OpBody {
            network: Hash32::of(b"network"),
            origin: key.public(),
            seq,
            prev: Hash32::of(&seq.to_be_bytes()),
            hlc: Hlc {
                wall_ms: 1_700_000_000_000,
                counter: 0,
            },
            context: None,
            payload: Payload::Record {
                id: RecordId::new("r").expect("id"),
                action: RecordAction::Create {
                    collection: "notes".into(),
                    title: "t".into(),
                    fields: BTreeMap::new(),
                    tags: BTreeSet::new(),
                },
            },
        };
        VerifiedOp::sign(body, key).expect("sign")
    }

    #[test]
    fn bad_input_ops_of_throwaway_keys_cannot_push_out_what_members_wait_for() {
        let member = Keypair::from_secret([7; 32]);
        // Throwaway keys first, as a flood would arrive.
        let mut deferred: Vec<VerifiedOp> = (0..MAX_WAITING_FROM_STRANGERS + 200)
            .map(|i| {
                let mut secret = [0u8; 32];
                secret[..8].copy_from_slice(&(i as u64 + 1_000).to_be_bytes());
                waiting_op(&Keypair::from_secret(secret), 2)
            })
            .collect();
        deferred.extend((2..12).map(|seq| waiting_op(&member, seq)));
        let kept = bounded_waiting(&deferred, |origin| *origin == member.public());
        let of_member = kept
            .iter()
            .filter(|op| op.body().origin == member.public())
            .count();
        assert_eq!(of_member, 10, "every op the member waits with is kept");
        assert_eq!(
            kept.len() - of_member,
            MAX_WAITING_FROM_STRANGERS,
            "unknown keys share a bounded room"
        );
    }
}

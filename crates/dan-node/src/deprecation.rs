//! Evidence and deprecation, from the instance's side: report what this
//! instance catches, check what others report (with `dan-core`'s
//! [`SignedEvidence::check`]), deprecate proven offenders, and answer false
//! accusations with evidence against the accuser.

use std::collections::BTreeMap;

use dan_core::evidence::adoptable;
use dan_core::{
    Evidence, EvidenceCheck, Finding, Hash32, PeerKey, Replica, SignedEvidence, SignedGenesis,
};
use dan_store::{Store, StoredEvidence};
use serde::Serialize;

use crate::error::NodeError;
use crate::integrity;
use crate::node::{Ledger, Node, NodeEvent};
use crate::replication::now_ms;
use libp2p::futures::FutureExt;

/// Evidence status as stored.
const PROVEN: &str = "proven";
/// Taken over from a quorum of members: this instance cannot check it on
/// its own any more (it refers to an op set that is in the past).
const ADOPTED: &str = "adopted";
const UNFOUNDED: &str = "unfounded";
const PENDING: &str = "pending";
const AGAINST_ME: &str = "against_this_instance";

/// What became of a piece of evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum EvidenceOutcome {
    /// Newly proven: the offender is now deprecated here.
    Proven {
        /// What it proves.
        finding: Finding,
    },
    /// Proves that this instance broke the rules; it is a fork now.
    AgainstThisInstance {
        /// What it says.
        finding: Finding,
    },
    /// Already known.
    Known,
    /// False: answered with evidence against the accuser.
    Unfounded {
        /// Why it does not hold.
        why: String,
    },
    /// Not decidable here yet (kept and checked again after syncing).
    Pending,
}

/// Deprecations this instance has proven, for rebuilding its replica.
pub(crate) async fn proven_findings(
    store: &Store,
    me: &PeerKey,
) -> Result<Vec<(Finding, Hash32)>, NodeError> {
    let mut findings = Vec::new();
    for stored in store.evidence().await? {
        let (Some(offender), Some(cutoff)) = (&stored.offender, stored.cutoff) else {
            continue;
        };
        if stored.status != PROVEN && stored.status != ADOPTED {
            continue;
        }
        let (Ok(offender), Ok(id)) = (offender.parse::<PeerKey>(), stored.id.parse::<Hash32>())
        else {
            continue;
        };
        if offender != *me {
            findings.push((
                Finding {
                    offender,
                    cutoff,
                    reason: stored.reason.clone(),
                },
                id,
            ));
        }
    }
    Ok(findings)
}

/// The proven evidence against this instance, if any.
pub(crate) async fn against_me(store: &Store) -> Result<Option<StoredEvidence>, NodeError> {
    Ok(store
        .evidence()
        .await?
        .into_iter()
        .find(|e| e.status == AGAINST_ME))
}

/// Rebuilds a replica from the op log, with every proven deprecation.
pub(crate) async fn rebuild(
    store: &Store,
    genesis: &SignedGenesis,
    me: &PeerKey,
) -> Result<integrity::Replayed, NodeError> {
    let findings = proven_findings(store, me).await?;
    integrity::check(store, genesis, &findings).await
}

impl Node {
    /// Replaces `replica` by one rebuilt from the op log (after a failed
    /// write, a late governance op or a deprecation), and rewrites the
    /// records table to match.
    pub(crate) async fn reload(&self, replica: &mut Replica) -> Result<(), NodeError> {
        let genesis = replica.genesis().clone();
        *replica = rebuild(&self.inner().store, &genesis, &self.peer_id())
            .await?
            .replica;
        self.inner()
            .store
            .rematerialize(&replica.records().collect::<Vec<_>>())
            .await?;
        Ok(())
    }

    /// Signs evidence this instance caught and acts on it.
    pub async fn report(&self, evidence: Evidence) -> Result<EvidenceOutcome, NodeError> {
        let seq = self
            .inner()
            .ledger
            .snapshot()
            .map_or(0, |r| r.chain_len(&self.peer_id()));
        let signed = SignedEvidence::sign(evidence, &self.keypair(), seq, now_ms());
        self.accept_evidence(signed).await
    }

    /// Checks signed evidence from anyone and acts on it: deprecate a proven
    /// offender, answer a false accusation, keep an undecidable one.
    pub fn accept_evidence(
        &self,
        signed: SignedEvidence,
    ) -> impl Future<Output = Result<EvidenceOutcome, NodeError>> + Send + 'static {
        let node = self.clone();
        self.to_the_end(async move { node.accept_evidence_steps(signed).await })
    }

    async fn accept_evidence_steps(
        &self,
        signed: SignedEvidence,
    ) -> Result<EvidenceOutcome, NodeError> {
        // Checked on the replica's owner: two tasks may hold the same
        // evidence, and the second must see what the first decided.
        let checked = signed.clone();
        let outcome = self
            .with_ledger(move |node, ledger| {
                async move { node.decide_evidence(ledger, &checked).await }.boxed()
            })
            .await?;
        match &outcome {
            EvidenceOutcome::Proven { finding }
            | EvidenceOutcome::AgainstThisInstance { finding } => {
                self.emit(NodeEvent::Evidence {
                    bytes: signed.to_bytes(),
                    offender: finding.offender,
                    reason: finding.reason.clone(),
                });
                self.emit(NodeEvent::MembersChanged);
            }
            EvidenceOutcome::Unfounded { .. } if signed.accuser != self.peer_id() => {
                let answer = Evidence::FalseAccusation {
                    accusation: signed.to_bytes(),
                };
                Box::pin(self.report(answer)).await?;
            }
            _ => {}
        }
        Ok(outcome)
    }

    /// [`Node::accept_evidence`]'s part on the replica's owner: checks
    /// `signed`, stores what it proves and deprecates a proven offender.
    async fn decide_evidence(
        &self,
        ledger: &mut Ledger,
        signed: &SignedEvidence,
    ) -> Result<EvidenceOutcome, NodeError> {
        let id = signed.id();
        let store = &self.inner().store;
        let known = store.evidence().await?;
        if let Some(stored) = known.iter().find(|e| e.id == id.to_hex())
            && stored.status != PENDING
        {
            return Ok(EvidenceOutcome::Known);
        }
        let replica = ledger.replica.as_mut().ok_or(NodeError::NoNetwork)?;
        let check = signed.check(replica);
        let mut stored = StoredEvidence {
            id: id.to_hex(),
            bytes: signed.to_bytes(),
            accuser: signed.accuser.to_string(),
            offender: None,
            status: PENDING.into(),
            reason: String::new(),
            cutoff: None,
            received_ms: now_ms(),
        };
        let outcome = match check {
            EvidenceCheck::Proven(finding) => {
                stored.offender = Some(finding.offender.to_string());
                stored.cutoff = Some(finding.cutoff);
                stored.reason = finding.reason.clone();
                if finding.offender == self.peer_id() {
                    stored.status = AGAINST_ME.into();
                    store.save_evidence(&stored, &id.0).await?;
                    tracing::error!(
                        "this instance was deprecated by the network: {}",
                        finding.reason
                    );
                    self.inner().standing.proven(&finding.reason);
                    EvidenceOutcome::AgainstThisInstance { finding }
                } else {
                    stored.status = PROVEN.into();
                    store.save_evidence(&stored, &id.0).await?;
                    if replica.deprecate(&finding, id) {
                        self.reload(replica).await?;
                    }
                    tracing::warn!("deprecated {}: {}", finding.offender, finding.reason);
                    EvidenceOutcome::Proven { finding }
                }
            }
            EvidenceCheck::Unfounded(why) => {
                stored.status = UNFOUNDED.into();
                stored.reason = why.clone();
                store.save_evidence(&stored, &id.0).await?;
                EvidenceOutcome::Unfounded { why }
            }
            EvidenceCheck::Undecidable(why) => {
                stored.reason = why;
                store.save_evidence(&stored, &id.0).await?;
                EvidenceOutcome::Pending
            }
        };
        Ok(outcome)
    }

    /// Evidence kept because it could not be decided here.
    async fn pending_evidence(&self) -> Result<Vec<StoredEvidence>, NodeError> {
        let mut all = self.inner().store.evidence().await?;
        all.retain(|e| e.status == PENDING);
        Ok(all)
    }

    /// Checks again evidence that could not be decided before (e.g. a
    /// checkpoint for an op set this instance has only now reached).
    pub(crate) async fn retry_pending_evidence(&self) -> Result<(), NodeError> {
        for stored in self.pending_evidence().await? {
            if let Ok(signed) = SignedEvidence::from_bytes(&stored.bytes) {
                self.accept_evidence(signed).await?;
            }
        }
        self.adopt_pending_evidence().await
    }

    /// Takes over the deprecations that this instance cannot check on its
    /// own (it joined, or came back, after the op set they refer to) once a
    /// quorum of members announce them in their signed checkpoints (see
    /// [`adoptable`]). Without this, a newcomer's state would never match
    /// the network's.
    pub(crate) async fn adopt_pending_evidence(&self) -> Result<(), NodeError> {
        let me = self.peer_id();
        let claims: Vec<(StoredEvidence, Finding)> = self
            .pending_evidence()
            .await?
            .into_iter()
            .filter_map(|e| {
                let claim = SignedEvidence::from_bytes(&e.bytes)
                    .ok()?
                    .evidence
                    .claim()?;
                (claim.offender != me).then_some((e, claim))
            })
            .collect();
        if claims.is_empty() {
            return Ok(());
        }
        let announced: BTreeMap<PeerKey, Hash32> = self
            .net()
            .map(|net| net.peers())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(peer, info)| Some((peer, info.roots?.1?)))
            .collect();
        let adopted_any = self
            .with_ledger(move |node, ledger| {
                async move { node.adopt(ledger, &claims, &announced).await }.boxed()
            })
            .await?;
        if adopted_any {
            self.emit(NodeEvent::MembersChanged);
        }
        Ok(())
    }

    /// Deprecates, on the replica's owner, the offenders of the `claims`
    /// that a quorum backs; whether any was.
    async fn adopt(
        &self,
        ledger: &mut Ledger,
        claims: &[(StoredEvidence, Finding)],
        announced: &BTreeMap<PeerKey, Hash32>,
    ) -> Result<bool, NodeError> {
        let mut adopted_any = false;
        {
            let replica = ledger.replica.as_mut().ok_or(NodeError::NoNetwork)?;
            let findings: Vec<Finding> = claims.iter().map(|(_, f)| f.clone()).collect();
            let mut must_rebuild = false;
            for i in adoptable(replica, &findings, announced) {
                let (stored, finding) = &claims[i];
                let stored = StoredEvidence {
                    status: ADOPTED.into(),
                    offender: Some(finding.offender.to_string()),
                    cutoff: Some(finding.cutoff),
                    reason: finding.reason.clone(),
                    ..stored.clone()
                };
                let id = Hash32::of(&stored.bytes);
                self.inner().store.save_evidence(&stored, &id.0).await?;
                must_rebuild |= replica.deprecate(finding, id);
                tracing::warn!(
                    "deprecated {} on the word of a quorum of members: {}",
                    finding.offender,
                    finding.reason
                );
                adopted_any = true;
            }
            if must_rebuild {
                self.reload(replica).await?;
            }
        }
        Ok(adopted_any)
    }

    /// All evidence seen, oldest first (`dan evidence`).
    pub async fn evidence(&self) -> Result<Vec<StoredEvidence>, NodeError> {
        Ok(self.inner().store.evidence().await?)
    }

    /// Proven evidence (canonical bytes), to share with peers.
    pub async fn proven_evidence(&self) -> Result<Vec<Vec<u8>>, NodeError> {
        Ok(self
            .evidence()
            .await?
            .into_iter()
            .filter(|e| [PROVEN, ADOPTED, AGAINST_ME].contains(&e.status.as_str()))
            .map(|e| e.bytes)
            .collect())
    }
}

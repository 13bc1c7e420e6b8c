//! The instance: one data directory, one key, one store, one replica.
//!
//! [`Node`] is the single API that the CLI, the control channel, the tests
//! and the desktop app use. Every write is signed, checked by the replica,
//! and committed to SQLite before the call returns (invariant 5).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use dan_core::charter::{Charter, Genesis};
use dan_core::{
    Applied, CodeHash, Keypair, Op, Payload, PeerKey, RecordAction, RecordId, RecordView, Replica,
    SignedGenesis, VerifiedOp,
};
use dan_store::{RecordQuery, Store};
use fs4::fs_std::FileExt;

use dan_core::SignedInvite;
use libp2p::futures::FutureExt;
use libp2p::futures::future::BoxFuture;
use tokio::sync::{Mutex, broadcast};

use crate::net::NetHandle;

use crate::api::{CreateNetwork, HistoryEntry, NetworkState, PutRecord, Status};
use crate::code::code_hash;
use crate::error::NodeError;
use crate::integrity::IntegrityReport;
use crate::secrets::{SealedKey, SecretError, UnlockKey, random_bytes, unlock_delay};

pub(crate) const DB_FILE: &str = "dan.db";
const LOCK_FILE: &str = "instance.lock";
const META_NAME: &str = "instance_name";
pub(crate) const META_SEALED_KEY: &str = "sealed_key";
const META_FAILED_UNLOCKS: &str = "failed_unlocks";
pub(crate) const META_GENESIS: &str = "genesis";
pub(crate) const META_JOINING: &str = "joining_invite";
/// The deprecated key's hand-over of its seat to this instance's new key,
/// kept from the moment it starts afresh until it asks to be readmitted.
pub(crate) const META_SUCCESSION: &str = "succession";
/// Longest instance name, in characters.
pub const MAX_INSTANCE_NAME: usize = 64;

/// What to do when the integrity check finds stored data that does not
/// match the signed op log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnDamage {
    /// Refuse to start, naming the damaged records.
    #[default]
    Refuse,
    /// Rebuild the records from the op log, dropping ops that no longer
    /// verify (they can be fetched again from peers).
    Repair,
    /// Serve the stored rows as they are, damage included (their digests go
    /// into the state root, so peers will see the mismatch). For diagnosing
    /// a damaged instance; a normal instance never needs it.
    ServeDamaged,
}

/// How to open an instance.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The data directory.
    pub data_dir: PathBuf,
    /// Integrity policy.
    pub on_damage: OnDamage,
    /// Which executable of a release this is (desktop app or headless), to
    /// describe this build where no release manifest does.
    pub build_kind: dan_core::BuildKind,
}

impl NodeConfig {
    /// Default settings for `data_dir` (a headless instance).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        NodeConfig {
            data_dir: data_dir.into(),
            on_damage: OnDamage::Refuse,
            build_kind: dan_core::BuildKind::Headless,
        }
    }
}

/// How the admin proves who they are when the instance starts.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// The admin password, if known.
    pub password: Option<String>,
    /// Whether to try (and fill) the OS keyring cache.
    pub use_keyring: bool,
}

/// A running instance. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) data_dir: PathBuf,
    pub(crate) store: Store,
    keypair: std::sync::RwLock<Keypair>,
    sealed: std::sync::RwLock<SealedKey>,
    pub(crate) name: String,
    pub(crate) code_hash: CodeHash,
    /// What this build is: from the release manifest shipped with it, or
    /// this program's version, platform and kind.
    pub(crate) build_label: dan_core::BuildLabel,
    /// The release this build belongs to, if a manifest shipped with it.
    pub(crate) release: Option<crate::release::ReleaseManifest>,
    pub(crate) ledger: crate::ledger::LedgerHandle,
    /// Whether this instance is deprecated, and why: the one place that
    /// says so.
    pub(crate) standing: crate::standing::Standing,
    admin_gate: Mutex<()>,
    integrity: std::sync::RwLock<IntegrityReport>,
    pub(crate) events: broadcast::Sender<NodeEvent>,
    net: std::sync::RwLock<Option<NetHandle>>,
    pub(crate) joining: std::sync::Mutex<Option<SignedInvite>>,
    lock: std::sync::Mutex<Option<std::fs::File>>,
    /// The sorted op-id set for reconciliation, kept for the ops root it
    /// was made for.
    pub(crate) reconcile_cache: std::sync::Mutex<Option<ReconcileSet>>,
    /// Operations of several steps that go on to their end when their
    /// caller stops waiting ([`Node::to_the_end`]); closing waits for them.
    steps: tokio_util::task::TaskTracker,
    /// Set when closing begins: no new operation starts, and none starts
    /// the network again.
    closing: std::sync::atomic::AtomicBool,
    /// Set once closing has ended.
    closed: tokio::sync::OnceCell<()>,
}

/// A reconciliation set and the ops root it was made for.
pub(crate) type ReconcileSet = (dan_core::Hash32, Arc<negentropy::NegentropyStorageVector>);

/// What the replica's owner does after a command panicked: the replica is
/// rebuilt from the op log under the genesis the store holds (a
/// transaction the panic cut off was never committed; a start-over may
/// have been), so it matches the store again, and the waiting ops are
/// dropped (peers send them again).
fn recovery(instance: std::sync::Weak<Inner>) -> crate::ledger::Recovery {
    Box::new(move |ledger: &mut Ledger| {
        let instance = instance.upgrade();
        async move {
            let Some(inner) = instance else {
                return false;
            };
            ledger.waiting.clear();
            let node = Node { inner };
            match node.rebuilt_from_store().await {
                Ok(replica) => {
                    ledger.replica = replica;
                    true
                }
                Err(error) => {
                    tracing::error!("rebuilding the replica failed: {error}");
                    false
                }
            }
        }
        .boxed()
    })
}

/// How long closing waits for operations under way.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The replica and what travels with it, owned by one task.
pub(crate) struct Ledger {
    /// The network state, once there is a network.
    pub(crate) replica: Option<Replica>,
    /// Valid ops that wait for others (gaps, admissions not yet seen).
    pub(crate) waiting: Vec<VerifiedOp>,
}

/// What a put needs: nothing (no change) or one op.
enum PutPlan {
    Unchanged(RecordView),
    Write(Payload),
}

/// Something that happened in the instance, for the network layer and the UI.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NodeEvent {
    /// Ops this instance just wrote, to push to peers.
    LocalOps {
        /// Their canonical bytes.
        #[serde(skip)]
        ops: Vec<Vec<u8>>,
    },
    /// Records changed (written here or received).
    RecordsChanged {
        /// Their ids.
        ids: Vec<String>,
    },
    /// The member table or this instance's standing changed.
    MembersChanged,
    /// Evidence was proven (against another instance or this one).
    Evidence {
        /// The signed evidence, to pass on.
        #[serde(skip)]
        bytes: Vec<u8>,
        /// Who broke the rules.
        offender: PeerKey,
        /// How.
        reason: String,
    },
    /// Sign and gossip a checkpoint now.
    CheckpointNow,
    /// Progress of pulling ops from a peer.
    SyncProgress {
        /// The peer pulled from.
        peer: PeerKey,
        /// Ops fetched so far in this session.
        fetched: u64,
        /// Ops to fetch in this session.
        total: u64,
    },
    /// A peer connected, was accepted, refused or went away.
    PeerChanged {
        /// The peer.
        peer: PeerKey,
        /// What happened, in words.
        what: String,
    },
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(crate) fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, NodeError> {
    let path = data_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(NodeError::io(format!("opening {}", path.display())))?;
    match file.try_lock_exclusive() {
        Ok(true) => Ok(file),
        Ok(false) => Err(NodeError::Busy(data_dir.to_owned())),
        Err(e) => Err(NodeError::io(format!("locking {}", path.display()))(e)),
    }
}

/// Checks an instance name: 1 to 64 characters of plain text (what join
/// requests and a genesis take), not blank.
pub fn check_instance_name(name: &str) -> Result<String, NodeError> {
    let name = name.trim();
    if name.chars().count() > MAX_INSTANCE_NAME || !dan_core::invite::is_plain_name(name) {
        return Err(NodeError::Invalid(format!(
            "an instance name must be 1 to {MAX_INSTANCE_NAME} printable characters, without invisible or direction-changing ones"
        )));
    }
    Ok(name.to_owned())
}

async fn read_sealed_key(store: &Store, data_dir: &Path) -> Result<SealedKey, NodeError> {
    let bytes = store
        .meta(META_SEALED_KEY)
        .await?
        .ok_or_else(|| NodeError::NotInitialized(data_dir.to_owned()))?;
    serde_json::from_slice(&bytes).map_err(|e| SecretError::Damaged(e.to_string()).into())
}

/// A copy of what `lock` holds. Every writer replaces the value whole, so
/// a lock poisoned by a panicking writer still holds a valid one.
fn read_cloned<T: Clone>(lock: &std::sync::RwLock<T>) -> T {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Write access to what `lock` holds (see [`read_cloned`] on poisoning).
fn write_lock<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Seals `keypair` under `password` (slow on purpose, so off the async
/// threads): the sealed key, the unlock key and the sealed key as stored.
pub(crate) async fn seal(
    keypair: &Keypair,
    password: &str,
) -> Result<(SealedKey, UnlockKey, Vec<u8>), NodeError> {
    let keypair = keypair.clone();
    let password = password.to_owned();
    let (sealed, unlock) =
        tokio::task::spawn_blocking(move || SealedKey::seal(&keypair, &password))
            .await
            .map_err(|e| SecretError::Damaged(format!("sealing crashed: {e}")))??;
    let json = serde_json::to_vec(&sealed).map_err(|e| SecretError::Damaged(e.to_string()))?;
    Ok((sealed, unlock, json))
}

/// Checks `password` against the sealed key, with a delay that grows with
/// each wrong attempt (the count survives restarts).
async fn check_password(
    store: &Store,
    sealed: &SealedKey,
    password: &str,
) -> Result<(UnlockKey, Keypair), NodeError> {
    let failures = store
        .meta(META_FAILED_UNLOCKS)
        .await?
        .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
        .map_or(0, u32::from_le_bytes);
    tokio::time::sleep(unlock_delay(failures)).await;
    let sealed_copy = sealed.clone();
    let password = password.to_owned();
    let attempt = tokio::task::spawn_blocking(move || {
        let unlock = sealed_copy.unlock_key(&password)?;
        let keypair = sealed_copy.open(&unlock)?;
        Ok::<_, SecretError>((unlock, keypair))
    })
    .await
    .map_err(|e| SecretError::Damaged(format!("password check crashed: {e}")))?;
    let counted = match &attempt {
        Ok(_) => 0,
        Err(SecretError::WrongPassword) => failures.saturating_add(1),
        Err(_) => failures,
    };
    // Written only when it changes: a start that writes nothing before it
    // checks the database keeps its clean-close seal.
    if counted != failures {
        store
            .set_meta(&[(META_FAILED_UNLOCKS, &counted.to_le_bytes())])
            .await?;
    }
    Ok(attempt?)
}

impl Node {
    /// Creates a new instance in `data_dir`: a fresh key, sealed under the
    /// admin `password`. Returns the instance's peer id.
    pub async fn init(data_dir: &Path, name: &str, password: &str) -> Result<PeerKey, NodeError> {
        let name = check_instance_name(name)?;
        crate::secrets::check_new_password(password)?;
        dan_store::private::create_dir(data_dir)?;
        let _lock = lock_data_dir(data_dir)?;
        let store = Store::open(&data_dir.join(DB_FILE)).await?;
        if store.meta(META_SEALED_KEY).await?.is_some() {
            return Err(NodeError::AlreadyInitialized(data_dir.to_owned()));
        }
        let keypair = Keypair::from_secret(random_bytes()?);
        let (_, _, sealed_json) = seal(&keypair, password).await?;
        store
            .set_meta(&[
                (META_NAME, name.as_bytes()),
                (META_SEALED_KEY, &sealed_json),
            ])
            .await?;
        store.close().await;
        Ok(keypair.public())
    }

    /// Opens the instance in `config.data_dir`: unlocks its key, then runs
    /// the integrity check (see [`OnDamage`]).
    pub async fn open(config: NodeConfig, credentials: Credentials) -> Result<Node, NodeError> {
        let data_dir = config.data_dir.clone();
        if !data_dir.join(DB_FILE).exists() {
            return Err(NodeError::NotInitialized(data_dir));
        }
        let lock = lock_data_dir(&data_dir)?;
        dan_store::private::protect_dir_and_files(&data_dir)?;
        let seal =
            crate::close_seal::read(&data_dir).filter(|_| config.on_damage == OnDamage::Refuse);
        let db = data_dir.join(DB_FILE);
        let store = Store::open(&db).await?;
        // Hashed as SQLite reads it (a journal or write-ahead log planted
        // beside the file is played into it when it opens), before
        // anything is written.
        let file = match &seal {
            Some(_) if matches!(store.flush_wal().await, Ok(true)) => {
                crate::close_seal::whole_file_digest(&db)
            }
            _ => None,
        };
        let sealed = read_sealed_key(&store, &data_dir).await?;
        let keypair = unlock(&store, &sealed, &credentials).await?;
        let own_code = code_hash()?;
        let left = crate::close_seal::take(&data_dir, seal, file, &own_code, &keypair);
        let name = store
            .meta(META_NAME)
            .await?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let joining = match store.meta(META_JOINING).await? {
            Some(bytes) => SignedInvite::from_link(&String::from_utf8_lossy(&bytes)).ok(),
            None => None,
        };
        let (replica, integrity) = match store.meta(META_GENESIS).await? {
            None => {
                // No network yet: the log is empty, unless something else
                // wrote to it (then the next start checks everything).
                if store.op_count().await? == 0 {
                    store.follow_log(dan_store::LogDigest::default());
                }
                (None, IntegrityReport::default())
            }
            Some(bytes) => {
                let genesis = SignedGenesis::from_bytes(&bytes)?;
                let clock = std::time::Instant::now();
                let (replica, report) =
                    load_replica(&store, &genesis, &keypair, config.on_damage, left).await?;
                tracing::info!("loaded the replica in {:.2?}", clock.elapsed());
                (Some(replica), report)
            }
        };
        let proven_against_me = crate::deprecation::against_me(&store)
            .await?
            .map(|e| e.reason);
        let release = crate::release::own_release(&own_code);
        let build_label = release
            .as_ref()
            .and_then(|r| r.labels().remove(&own_code))
            .unwrap_or_else(|| dan_core::BuildLabel {
                version: env!("CARGO_PKG_VERSION").into(),
                platform: crate::release::this_platform(),
                kind: config.build_kind,
            });
        Ok(Node {
            inner: Arc::new_cyclic(|me: &std::sync::Weak<Inner>| Inner {
                data_dir,
                store,
                keypair: std::sync::RwLock::new(keypair),
                sealed: std::sync::RwLock::new(sealed),
                name,
                code_hash: own_code,
                build_label,
                release,
                ledger: crate::ledger::LedgerHandle::spawn(
                    Ledger {
                        replica,
                        waiting: Vec::new(),
                    },
                    recovery(me.clone()),
                ),
                standing: crate::standing::Standing::new(proven_against_me),
                admin_gate: Mutex::new(()),
                integrity: std::sync::RwLock::new(integrity),
                events: broadcast::channel(1024).0,
                net: std::sync::RwLock::new(None),
                joining: std::sync::Mutex::new(joining),
                lock: std::sync::Mutex::new(Some(lock)),
                reconcile_cache: std::sync::Mutex::new(None),
                steps: tokio_util::task::TaskTracker::new(),
                closing: std::sync::atomic::AtomicBool::new(false),
                closed: tokio::sync::OnceCell::new(),
            }),
        })
    }

    /// Closes the database cleanly and releases the data directory, so
    /// the instance can be opened again (by this or another process). With
    /// a clean integrity report the closed file is sealed, so the next
    /// start need not check it all again (see `close_seal`). Closing again
    /// waits for the first close to end and does nothing more.
    pub async fn close(&self) {
        self.inner.closed.get_or_init(|| self.close_once()).await;
    }

    /// [`close`](Self::close), run once.
    async fn close_once(&self) {
        self.inner
            .closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.inner.steps.close();
        if tokio::time::timeout(CLOSE_WAIT, self.inner.steps.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "{} operations still ran {} s after closing began; closing without them",
                self.inner.steps.len(),
                CLOSE_WAIT.as_secs()
            );
        }
        // On the replica's owner, so a write under way has appended to the
        // log's digest before it is sealed, and none comes after.
        let closed = self
            .with_ledger(|node, ledger| {
                async move {
                    let replica = ledger.replica.take();
                    ledger.replica = node.close_and_seal(replica).await;
                    Ok(())
                }
                .boxed()
            })
            .await;
        if let Err(error) = closed {
            tracing::warn!("closing the store: {error}");
            self.inner.store.close().await;
        }
        if let Ok(mut lock) = self.inner.lock.lock() {
            lock.take();
        }
    }

    /// Closes the store and, when everything checked at start and the
    /// database still holds exactly what this instance wrote
    /// (`clean_close`), writes the replica's checkpoint and seals it with
    /// the closed file (`close_seal`). Hands the replica back.
    async fn close_and_seal(&self, replica: Option<Replica>) -> Option<Replica> {
        let store = &self.inner.store;
        let followed = store.log_digest().filter(|_| self.integrity().is_clean());
        store.close().await;
        let (followed, replica) = match (followed, replica) {
            (Some(followed), Some(replica)) => (followed, replica),
            (_, replica) => return replica,
        };
        if replica.needs_rebuild() {
            tracing::info!("not sealing the shutdown: the state waits for a rebuild");
            return Some(replica);
        }
        let started = std::time::Instant::now();
        tracing::info!(
            "checking the database against the state in memory ({} ops) so that the next start can skip it: about a second per 50,000 records",
            replica.op_count()
        );
        let db = self.inner.data_dir.join(DB_FILE);
        let identity = crate::close_seal::file_identity(&db);
        let Some(file) = crate::close_seal::whole_file_digest(&db) else {
            tracing::warn!(
                "not sealing the shutdown: the database is still open elsewhere (a write-ahead log is left beside it)"
            );
            return Some(replica);
        };
        // Read afresh, not through the pages the closed connections held,
        // and through one connection opened now: the check sees the file
        // that was hashed.
        let mut same_file = true;
        let checked = match Store::open_one_connection(&db).await {
            Ok(fresh) => {
                same_file &= crate::close_seal::file_identity(&db) == identity;
                let checked =
                    crate::clean_close::check_before_sealing(&fresh, replica, followed).await;
                same_file &= crate::close_seal::file_identity(&db) == identity;
                fresh.close().await;
                checked
            }
            Err(error) => {
                tracing::warn!("not sealing the shutdown: {error}");
                return Some(replica);
            }
        };
        let (replica, found) = match checked {
            Ok(checked) => checked,
            Err(error) => {
                tracing::warn!("not sealing the shutdown: checking the database: {error}");
                return None;
            }
        };
        if let Some(found) = found {
            tracing::warn!(
                "not sealing the shutdown: {found}; the next start checks everything and names it"
            );
            return Some(replica);
        }
        if !same_file
            || crate::close_seal::whole_file_digest(&db) != Some(file)
            || crate::close_seal::file_identity(&db) != identity
        {
            tracing::warn!(
                "not sealing the shutdown: the database file changed while it was checked"
            );
            return Some(replica);
        }
        let Ok((replica, bytes)) = crate::integrity::off_the_workers(move || {
            let bytes = replica.to_checkpoint();
            (replica, bytes)
        })
        .await
        else {
            return None;
        };
        crate::close_seal::seal(
            &self.inner.data_dir,
            (file, followed, self.integrity().checkpoint_starts),
            &bytes,
            &self.inner.code_hash,
            &self.keypair(),
        );
        tracing::info!(
            "checked and sealed the database in {:.2?} (checkpoint of {} KiB)",
            started.elapsed(),
            bytes.len() / 1024
        );
        Some(replica)
    }

    /// This instance's peer id.
    pub fn peer_id(&self) -> PeerKey {
        self.keypair().public()
    }

    /// This instance's key pair (replaced only by a readmission).
    pub(crate) fn keypair(&self) -> Keypair {
        read_cloned(&self.inner.keypair)
    }

    /// Replaces the key pair and its sealed form (readmission).
    pub(crate) fn replace_keypair(&self, keypair: Keypair, sealed: SealedKey) {
        *write_lock(&self.inner.keypair) = keypair;
        *write_lock(&self.inner.sealed) = sealed;
    }

    /// The running network layer, if any.
    pub(crate) fn net(&self) -> Option<NetHandle> {
        read_cloned(&self.inner.net)
    }

    /// Attaches a started network layer; refused while one is attached.
    pub(crate) fn attach_net(&self, handle: NetHandle) -> Result<(), NodeError> {
        let mut net = write_lock(&self.inner.net);
        if net.is_some() {
            return Err(NodeError::Invalid(
                "the network layer is already running".into(),
            ));
        }
        *net = Some(handle);
        Ok(())
    }

    /// Stops the network layer (if running) and detaches it, returning its
    /// settings so it can be started again.
    pub async fn stop_network(&self) -> Option<crate::net::NetConfig> {
        let handle = write_lock(&self.inner.net).take()?;
        handle.shutdown().await;
        Some(handle.config().clone())
    }

    /// The replica as the store holds it (none without a genesis), with the
    /// records table rewritten to match.
    async fn rebuilt_from_store(&self) -> Result<Option<Replica>, NodeError> {
        let store = &self.inner.store;
        let Some(bytes) = store.meta(META_GENESIS).await? else {
            return Ok(None);
        };
        let genesis = SignedGenesis::from_bytes(&bytes)?;
        let replica = crate::deprecation::rebuild(store, &genesis, &self.peer_id())
            .await?
            .replica;
        store
            .rematerialize(&replica.records().collect::<Vec<_>>())
            .await?;
        Ok(Some(replica))
    }

    /// Stops the instance, the one way every program does (CLI, window,
    /// tests): its network layer first, so nothing more arrives, then the
    /// operations under way and the store ([`Node::close`]).
    pub async fn stop(&self) {
        self.stop_network().await;
        self.close().await;
        // One an operation under way started again meanwhile.
        self.stop_network().await;
    }

    /// Whether closing has begun.
    pub(crate) fn is_closing(&self) -> bool {
        self.inner.closing.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// What the integrity check found at start (clean unless repaired),
    /// until the store starts over (fork, readmission).
    pub fn integrity(&self) -> IntegrityReport {
        read_cloned(&self.inner.integrity)
    }

    /// Forgets the start-up findings: the data they were about is archived.
    pub(crate) fn clear_integrity(&self) {
        *write_lock(&self.inner.integrity) = IntegrityReport::default();
    }

    /// The sealed secret key as stored now.
    pub(crate) fn sealed_key(&self) -> SealedKey {
        read_cloned(&self.inner.sealed)
    }

    /// Changes the admin password (admin only): the key is sealed again
    /// under the new password; a keyring cache of the old one is dropped.
    pub async fn change_password(&self, old: &str, new: &str) -> Result<(), NodeError> {
        self.verify_admin(old).await?;
        crate::secrets::check_new_password(new)?;
        let (sealed, _, json) = seal(&self.keypair(), new).await?;
        self.inner
            .store
            .set_meta(&[(META_SEALED_KEY, &json)])
            .await?;
        crate::secrets::keyring_forget(sealed.public).await;
        *write_lock(&self.inner.sealed) = sealed;
        Ok(())
    }

    /// Checks the admin password (for admin-only operations).
    pub async fn verify_admin(&self, password: &str) -> Result<(), NodeError> {
        let _serialized = self.inner.admin_gate.lock().await;
        let sealed = self.sealed_key();
        check_password(&self.inner.store, &sealed, password).await?;
        Ok(())
    }

    /// The instance at a glance. Read from the replica's last snapshot, so
    /// it answers at once even while an ingest or a rebuild holds the
    /// replica.
    pub async fn status(&self) -> Status {
        let replica = self.inner.ledger.snapshot();
        let mut status = Status {
            peer_id: self.peer_id(),
            name: self.inner.name.clone(),
            network_id: None,
            network_name: None,
            state: NetworkState::None,
            members: 0,
            min_members: None,
            op_count: 0,
            ops_root: None,
            state_root: None,
            code_hash: self.inner.code_hash,
            charter_hash: None,
            code_approved: None,
            build: crate::release::BuildView::of(
                self.inner.code_hash,
                Some(self.inner.build_label.clone()),
                None,
                0,
            ),
            online_peers: 0,
            clock_skew_ms: None,
            missing_ops: 0,
            last_sync: None,
            listen_addrs: Vec::new(),
            reachability: crate::net::Reachability::Unknown,
            external_addrs: Vec::new(),
            relays: Vec::new(),
            join: None,
            deprecation: None,
            damaged_records: self
                .integrity()
                .mismatched_records
                .iter()
                .take(20)
                .map(|m| m.id.clone())
                .collect(),
            own_seq: 0,
            own_seq_on_peers: 0,
        };
        if let Some(net) = self.net() {
            status.online_peers = net.online_peers();
            status.clock_skew_ms = net.clock_skew_ms();
            status.missing_ops = net.missing_ops();
            status.last_sync = net.last_sync();
            status.listen_addrs = net.listen_addrs().iter().map(ToString::to_string).collect();
            status.reachability = net.reachability();
            status.external_addrs = net
                .external_addrs()
                .iter()
                .map(ToString::to_string)
                .collect();
            status.relays = net.relays();
        }
        if let Some(replica) = replica.as_ref() {
            let charter = replica.charter();
            status.network_id = Some(replica.network_id());
            status.network_name = Some(charter.name.clone());
            status.state = if !replica.is_member(&self.peer_id()) {
                NetworkState::Pending
            } else if replica.is_forming() {
                NetworkState::Forming
            } else {
                NetworkState::Active
            };
            status.members = replica.member_count() as u64;
            status.min_members = Some(u64::from(charter.min_members));
            status.op_count = replica.op_count();
            status.ops_root = Some(replica.ops_root());
            status.state_root = Some(replica.state_root());
            status.charter_hash = Some(charter.hash());
            status.code_approved = Some(charter.approves(&self.inner.code_hash, now_ms()));
            status.build = crate::release::BuildView::of(
                self.inner.code_hash,
                Some(self.inner.build_label.clone()),
                Some(charter),
                now_ms(),
            );
            status.own_seq = replica.chain_len(&self.peer_id());
            if replica.is_member(&self.peer_id()) && status.code_approved == Some(false) {
                status.state = if replica.ever_approved(&self.inner.code_hash) {
                    NetworkState::Suspended
                } else {
                    NetworkState::Unapproved
                };
            }
        }
        status.deprecation = self
            .inner
            .standing
            .deprecation(replica.as_deref(), &self.peer_id());
        if status.deprecation.is_some() && status.network_id.is_some() {
            status.state = NetworkState::Deprecated;
        }
        if let Some(net) = self.net() {
            status.own_seq_on_peers = net.own_chain_head().0.max(status.own_seq);
        }
        if status.state == NetworkState::Pending {
            status.join = self.join_progress().await;
        }
        status
    }

    /// Founds a new network with this instance as its first member
    /// (admin only).
    pub async fn create_network(
        &self,
        request: CreateNetwork,
        password: &str,
    ) -> Result<Status, NodeError> {
        self.verify_admin(password).await?;
        self.with_ledger(move |node, ledger| {
            async move {
                if let Some(existing) = ledger.replica.as_ref() {
                    return Err(NodeError::HasNetwork(existing.charter().name.clone()));
                }
                let mut approved: BTreeSet<CodeHash> = request.approve_code.into_iter().collect();
                approved.insert(node.inner.code_hash);
                // The whole release this build belongs to (desktop and headless).
                let mut builds = node
                    .inner
                    .release
                    .as_ref()
                    .map(crate::release::ReleaseManifest::labels)
                    .unwrap_or_default();
                builds.insert(node.inner.code_hash, node.inner.build_label.clone());
                approved.extend(builds.keys());
                let mut charter = Charter::new(&request.name, approved);
                charter.builds = builds;
                if let Some(min) = request.min_members {
                    charter.min_members = min;
                }
                let genesis = Genesis {
                    charter,
                    founder: node.peer_id(),
                    founder_name: node.inner.name.clone(),
                    created_ms: now_ms(),
                    fork_of: None,
                };
                let signed = SignedGenesis::sign(genesis, &node.keypair())?;
                let replica = Replica::new(signed.clone())?;
                node.inner
                    .store
                    .set_meta(&[(META_GENESIS, &signed.to_bytes())])
                    .await?;
                ledger.replica = Some(replica);
                Ok(())
            }
            .boxed()
        })
        .await?;
        self.emit(NodeEvent::MembersChanged);
        Ok(self.status().await)
    }

    /// Creates a record or changes parts of one. Returns the new version
    /// once it is durable.
    pub async fn put_record(&self, put: PutRecord) -> Result<RecordView, NodeError> {
        self.wait_for_chain_head().await;
        self.with_ledger(move |node, ledger| {
            async move {
                let replica = node.writable(ledger)?;
                match node.plan_put(replica, put)? {
                    PutPlan::Unchanged(view) => Ok(view),
                    PutPlan::Write(payload) => node
                        .write(replica, payload)
                        .await?
                        .ok_or_else(|| NodeError::Invalid("the change produced no record".into())),
                }
            }
            .boxed()
        })
        .await
    }

    /// Creates or changes many records at once (e.g. an import): all are
    /// checked and signed, then stored in one transaction. Either all are
    /// stored or none.
    pub async fn import_records(&self, puts: Vec<PutRecord>) -> Result<Vec<RecordView>, NodeError> {
        self.wait_for_chain_head().await;
        self.with_ledger(move |node, ledger| {
            async move { node.import_planned(ledger, puts).await }.boxed()
        })
        .await
    }

    async fn import_planned(
        &self,
        ledger: &mut Ledger,
        puts: Vec<PutRecord>,
    ) -> Result<Vec<RecordView>, NodeError> {
        let replica = self.writable(ledger)?;
        let mut ops = Vec::with_capacity(puts.len());
        let mut views = Vec::with_capacity(puts.len());
        let mut planned = Ok(());
        for (n, put) in puts.into_iter().enumerate() {
            let step = self.plan_put(replica, put).and_then(|plan| match plan {
                PutPlan::Unchanged(view) => Ok((None, Some(view))),
                PutPlan::Write(payload) => {
                    let (op, view) = self.sign_and_apply(replica, payload)?;
                    Ok((Some(op), view))
                }
            });
            match step {
                Ok((op, view)) => {
                    ops.extend(op);
                    views.extend(view);
                }
                Err(error) => {
                    planned = Err(NodeError::Invalid(format!(
                        "record {} of the import: {error}",
                        n + 1
                    )));
                    break;
                }
            }
        }
        let stored = match planned {
            Ok(()) => self
                .inner
                .store
                .commit(&ops, &views)
                .await
                .map_err(NodeError::from),
            Err(error) => Err(error),
        };
        if let Err(error) = stored {
            self.reload(replica).await?;
            return Err(error);
        }
        for chunk in ops.chunks(crate::ingest::MAX_BATCH_OPS / 4) {
            self.emit(NodeEvent::LocalOps {
                ops: chunk.iter().map(|op| op.bytes().to_vec()).collect(),
            });
        }
        self.emit(NodeEvent::RecordsChanged {
            ids: views.iter().map(|v| v.id.to_string()).collect(),
        });
        Ok(views)
    }

    /// Right after start, waits (a few seconds at most) until a member has
    /// said how far this instance's own chain goes, so a write never
    /// re-signs a seq this instance signed before a crash or restore.
    pub(crate) async fn wait_for_chain_head(&self) {
        let Some(net) = self.net() else {
            return;
        };
        if self.is_deprecated() {
            return;
        }
        let Some(deadline) = net.chain_head_deadline() else {
            return;
        };
        let (news, mut facts) = (net.chain_news(), self.inner.ledger.watch());
        loop {
            // Listening before looking, so a confirmation in between is
            // not missed.
            let confirmation = news.notified();
            tokio::pin!(confirmation);
            confirmation.as_mut().enable();
            let alone = self.inner.ledger.facts().members.len() <= 1;
            let (_, confirmed) = net.own_chain_head();
            if alone || confirmed {
                return;
            }
            tokio::select! {
                () = confirmation => {}
                changed = facts.changed() => if changed.is_err() { return },
                () = tokio::time::sleep_until(deadline.into()) => return,
            }
        }
    }

    /// Runs `work` on the task that owns the replica (after the commands
    /// before it, and to its end even if the caller stops waiting), and
    /// publishes what it changed.
    pub(crate) async fn with_ledger<R: Send + 'static>(
        &self,
        work: impl for<'a> FnOnce(Node, &'a mut Ledger) -> BoxFuture<'a, Result<R, NodeError>>
        + Send
        + 'static,
    ) -> Result<R, NodeError> {
        let node = self.clone();
        self.inner
            .ledger
            .change(move |ledger| work(node, ledger))
            .await?
    }

    /// Starts `steps` on a task of its own, to be waited for: an operation of
    /// several steps (a command on the replica, then what follows from
    /// it) goes on to its end if the caller stops waiting, and closing
    /// waits for it.
    pub(crate) fn to_the_end<R: Send + 'static>(
        &self,
        steps: impl Future<Output = Result<R, NodeError>> + Send + 'static,
    ) -> impl Future<Output = Result<R, NodeError>> + Send + 'static {
        let running = (!self.is_closing()).then(|| self.inner.steps.spawn(steps));
        async move {
            match running {
                Some(running) => running.await.map_err(|_| NodeError::Stopped)?,
                None => Err(NodeError::Stopped),
            }
        }
    }

    /// Reads the replica on its owner, in turn with the changes (for what
    /// the published snapshot does not hold); `None` without a network.
    pub(crate) async fn read_replica<R: Send + 'static>(
        &self,
        read: impl FnOnce(&Replica) -> R + Send + 'static,
    ) -> Result<R, NodeError> {
        self.inner
            .ledger
            .read(move |ledger| ledger.replica.as_ref().map(read))
            .await?
            .ok_or(NodeError::NoNetwork)
    }

    /// The replica, if this instance may write to it.
    pub(crate) fn writable<'a>(
        &self,
        ledger: &'a mut Ledger,
    ) -> Result<&'a mut Replica, NodeError> {
        let replica = ledger.replica.as_mut().ok_or(NodeError::NoNetwork)?;
        self.may_write(replica)?;
        Ok(replica)
    }

    /// Whether this instance may sign an op in `replica` now: it is a
    /// member, not removed, and (unless deprecated: a fork writes on) not
    /// recovering its own chain from peers (the lost-write guard, so it
    /// never signs a seq twice). Every op this instance signs passes here.
    pub(crate) fn may_write(&self, replica: &Replica) -> Result<(), NodeError> {
        if replica
            .member(&self.peer_id())
            .is_some_and(|m| m.status == dan_core::MemberStatus::Removed)
        {
            return Err(NodeError::Invalid(
                "this instance was removed from the network by a vote of its members; it can no longer write".into(),
            ));
        }
        if !replica.is_member(&self.peer_id()) {
            return Err(NodeError::NotMember);
        }
        // A deprecated instance has no network to stay consistent with: it
        // writes on as a fork.
        if let Some(net) = self.net().filter(|_| !self.is_deprecated()) {
            let (known, confirmed) = net.own_chain_head();
            let have = replica.chain_len(&self.peer_id());
            if known > have {
                return Err(NodeError::Recovering { have, known });
            }
            if !confirmed && net.started_recently() && replica.member_count() > 1 {
                return Err(NodeError::Recovering { have, known: have });
            }
        }
        Ok(())
    }

    /// Turns a put into the op payload it needs (or none).
    fn plan_put(&self, replica: &Replica, put: PutRecord) -> Result<PutPlan, NodeError> {
        let existing = match &put.id {
            Some(id) => {
                let id = RecordId::new(id)?;
                replica.record(&id).map(|view| (id, view))
            }
            None => None,
        };
        let put = put.normalized(existing.as_ref().map(|(_, view)| view));
        let (id, action) = match existing {
            Some((id, current)) => {
                if current.deleted {
                    return Err(NodeError::Invalid(format!("record {id} was deleted")));
                }
                if put
                    .collection
                    .as_ref()
                    .is_some_and(|c| *c != crate::api::nfc(&current.collection))
                {
                    return Err(NodeError::Invalid(format!(
                        "record {id} is in collection `{}`; a record's collection cannot change",
                        current.collection
                    )));
                }
                if put.title.is_none() && put.fields.is_empty() && put.tags.is_none() {
                    return Ok(PutPlan::Unchanged(current));
                }
                let action = RecordAction::Update {
                    title: put.title,
                    fields: put.fields,
                    tags: put.tags,
                };
                replica.check_growth(&id, &action)?;
                (id, action)
            }
            None => {
                let (Some(collection), Some(title)) = (put.collection, put.title) else {
                    return Err(NodeError::Invalid(
                        "a new record needs a collection and a title".into(),
                    ));
                };
                let mut fields = std::collections::BTreeMap::new();
                for (name, value) in put.fields {
                    let value = value.ok_or_else(|| {
                        NodeError::Invalid(format!(
                            "field `{name}` cannot be removed from a new record"
                        ))
                    })?;
                    fields.insert(name, value);
                }
                let id = match put.id {
                    Some(id) => RecordId::new(&id)?,
                    None => {
                        let mut nonce = [0u8; 16];
                        getrandom::fill(&mut nonce).map_err(|e| {
                            NodeError::Invalid(format!("no randomness for a record id: {e}"))
                        })?;
                        let seq = replica.chain_len(&self.peer_id()) + 1;
                        RecordId::derive(&self.peer_id(), seq, &nonce)
                    }
                };
                let action = RecordAction::Create {
                    collection,
                    title,
                    fields,
                    tags: put.tags.unwrap_or_default(),
                };
                (id, action)
            }
        };
        Ok(PutPlan::Write(Payload::Record { id, action }))
    }

    /// Marks a record deleted (its history is kept; it can be restored).
    pub async fn delete_record(&self, id: &str) -> Result<RecordView, NodeError> {
        self.set_deleted(id, true).await
    }

    /// Brings a deleted record back, as it was when deleted.
    pub async fn restore_record(&self, id: &str) -> Result<RecordView, NodeError> {
        self.set_deleted(id, false).await
    }

    async fn set_deleted(&self, id: &str, deleted: bool) -> Result<RecordView, NodeError> {
        self.wait_for_chain_head().await;
        let id = RecordId::new(id)?;
        self.with_ledger(move |node, ledger| {
            async move { node.write_deleted(ledger, id, deleted).await }.boxed()
        })
        .await
    }

    async fn write_deleted(
        &self,
        ledger: &mut Ledger,
        id: RecordId,
        deleted: bool,
    ) -> Result<RecordView, NodeError> {
        let replica = self.writable(ledger)?;
        let current = replica
            .record(&id)
            .ok_or_else(|| NodeError::NotFound(id.to_string()))?;
        if current.deleted == deleted {
            return Ok(current);
        }
        let payload = Payload::Record {
            id: id.clone(),
            action: if deleted {
                RecordAction::Delete
            } else {
                RecordAction::Restore
            },
        };
        let view = self.write(replica, payload).await?;
        view.ok_or_else(|| NodeError::NotFound(id.to_string()))
    }

    /// Sends an event to the network layer and the UI (no one listening is
    /// fine).
    pub(crate) fn emit(&self, event: NodeEvent) {
        let _ = self.inner.events.send(event);
    }

    /// Subscribes to the instance's events.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.inner.events.subscribe()
    }

    /// Signs a new local op and applies it to the replica (not stored yet).
    fn sign_and_apply(
        &self,
        replica: &mut Replica,
        payload: Payload,
    ) -> Result<(VerifiedOp, Option<RecordView>), NodeError> {
        if let Some(ahead_ms) = self
            .net()
            .and_then(|net| net.clock_ahead_ms(replica, dan_core::hlc::MAX_AHEAD_MS as i64))
        {
            return Err(NodeError::ClockAhead { ahead_ms });
        }
        let body = replica.next_body(self.peer_id(), now_ms(), payload);
        let op = VerifiedOp::sign(body, &self.keypair())?;
        let view = match replica.apply(&op)? {
            Applied::New(view) => view.map(|v| *v),
            Applied::Duplicate => None,
        };
        Ok((op, view))
    }

    /// Signs, applies and durably stores one local op, then announces it.
    pub(crate) async fn write(
        &self,
        replica: &mut Replica,
        payload: Payload,
    ) -> Result<Option<RecordView>, NodeError> {
        let (op, view) = self.sign_and_apply(replica, payload)?;
        let commit = self
            .inner
            .store
            .commit(std::slice::from_ref(&op), view.as_slice())
            .await;
        if let Err(error) = commit {
            tracing::error!("write failed, reloading state from the op log: {error}");
            self.reload(replica).await?;
            return Err(error.into());
        }
        self.emit(NodeEvent::LocalOps {
            ops: vec![op.bytes().to_vec()],
        });
        match &view {
            Some(view) => self.emit(NodeEvent::RecordsChanged {
                ids: vec![view.id.to_string()],
            }),
            None => self.emit(NodeEvent::MembersChanged),
        }
        Ok(view)
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// One record's current version.
    pub async fn get_record(&self, id: &str) -> Result<RecordView, NodeError> {
        let id = RecordId::new(id)?;
        match self.inner.store.record(&id).await? {
            Some(Ok(view)) => Ok(view),
            Some(Err(damaged)) => Err(NodeError::Invalid(damaged.to_string())),
            None => Err(NodeError::NotFound(id.to_string())),
        }
    }

    /// Records matching `query`.
    pub async fn list_records(&self, query: &RecordQuery) -> Result<Vec<RecordView>, NodeError> {
        Ok(self.inner.store.records(query).await?)
    }

    /// A page of the records matching `query` and how many match in all
    /// (the window's record list).
    pub async fn record_page(
        &self,
        query: &RecordQuery,
    ) -> Result<(Vec<RecordView>, u64), NodeError> {
        Ok(self.inner.store.record_page(query).await?)
    }

    /// How many records match `query`.
    pub async fn count_records(&self, query: &RecordQuery) -> Result<u64, NodeError> {
        Ok(self.inner.store.count_records(query).await?)
    }

    /// Every change ever made to a record, oldest first.
    pub async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>, NodeError> {
        let id = RecordId::new(id)?;
        let stored = self.inner.store.record_ops(&id).await?;
        let mut entries: Vec<HistoryEntry> = stored
            .iter()
            .filter_map(|s| Op::decode(&s.bytes).ok())
            .filter_map(|op| HistoryEntry::from_op(&op))
            .collect();
        if entries.is_empty() {
            return Err(NodeError::NotFound(id.to_string()));
        }
        entries.sort_by_key(|e| (e.at, e.op_id));
        Ok(entries)
    }
}

async fn unlock(
    store: &Store,
    sealed: &SealedKey,
    credentials: &Credentials,
) -> Result<Keypair, NodeError> {
    let cached = match credentials.use_keyring {
        true => crate::secrets::keyring_load(sealed.public).await,
        false => None,
    };
    if let Some(cached) = cached {
        match sealed.open(&cached) {
            Ok(keypair) => {
                tracing::info!("unlocked with the key cached in the OS keyring");
                return Ok(keypair);
            }
            Err(_) => crate::secrets::keyring_forget(sealed.public).await,
        }
    }
    let password = credentials
        .password
        .as_deref()
        .ok_or(NodeError::PasswordNeeded)?;
    let (unlock, keypair) = check_password(store, sealed, password).await?;
    if credentials.use_keyring && crate::secrets::keyring_store(sealed.public, unlock).await {
        tracing::info!("cached the unlock key in the OS keyring");
    }
    Ok(keypair)
}

/// The replica and the check of the store: read back from the checkpoint
/// that `sealed` (from the last clean shutdown, proven to name the database
/// and the checkpoint as they are) names, with a sample of ops and rows
/// checked again; rebuilt from the whole log with every signature and row
/// checked otherwise, or when the sample finds anything. Once the store is
/// found clean, it follows the log's digest for the next seal.
async fn load_replica(
    store: &Store,
    genesis: &SignedGenesis,
    keypair: &Keypair,
    on_damage: OnDamage,
    sealed: Option<(crate::close_seal::Sealed, Vec<u8>)>,
) -> Result<(Replica, IntegrityReport), NodeError> {
    let sealed = sealed.filter(|(sealed, _)| {
        let due = sealed.starts >= crate::integrity::MAX_CHECKPOINT_STARTS;
        if due {
            tracing::info!(
                "{} starts in a row read the state back from a checkpoint: checking everything",
                sealed.starts
            );
        }
        !due
    });
    if let Some((sealed, checkpoint)) = sealed {
        match from_checkpoint(store, genesis, checkpoint).await? {
            Some((replica, mut report)) => {
                report.checkpoint_starts = sealed.starts + 1;
                tracing::info!("{report}");
                store.follow_log(dan_store::LogDigest::resume(sealed.log));
                return Ok((replica, report));
            }
            None => tracing::info!(
                "the state read back from the checkpoint does not match the database: checking everything"
            ),
        }
    }
    let mut replayed = crate::deprecation::rebuild(store, genesis, &keypair.public()).await?;
    let report = std::mem::take(&mut replayed.report);
    if report.is_clean() {
        tracing::info!("{report}");
        if let Some(log) = replayed.log {
            store.follow_log(log);
        }
        return Ok((replayed.replica, report));
    }
    match on_damage {
        OnDamage::Refuse => Err(NodeError::Integrity(Box::new(report))),
        OnDamage::ServeDamaged => {
            tracing::warn!("{report}");
            tracing::warn!("serving the damaged rows as they are (--serve-damaged)");
            let mut replica = replayed.replica;
            let stored: Vec<RecordView> =
                store.all_records().await?.into_iter().flatten().collect();
            replica.serve_stored(&stored);
            Ok((replica, report))
        }
        OnDamage::Repair => {
            let damaged: Vec<i64> = report.damaged_ops.iter().map(|d| d.pos).collect();
            store.delete_ops(&damaged).await?;
            let views: Vec<RecordView> = replayed.replica.records().collect();
            store.rematerialize(&views).await?;
            tracing::warn!(
                "repaired: removed {} damaged ops, rebuilt {} records",
                damaged.len(),
                views.len()
            );
            Ok((replayed.replica, report))
        }
    }
}

/// The replica read back from a sealed checkpoint and the check of a
/// sample of the store against it; `None` when the sample finds anything.
async fn from_checkpoint(
    store: &Store,
    genesis: &SignedGenesis,
    checkpoint: Vec<u8>,
) -> Result<Option<(Replica, IntegrityReport)>, NodeError> {
    let genesis_copy = genesis.clone();
    let read = crate::integrity::off_the_workers(move || {
        Replica::from_own_checkpoint(&genesis_copy, &checkpoint)
    })
    .await?;
    let replica = match read {
        Ok(replica) => replica,
        Err(error) => {
            tracing::warn!("the sealed checkpoint does not read back: {error}");
            return Ok(None);
        }
    };
    let report = crate::clean_close::check_samples(store, &replica).await?;
    Ok(report.is_clean().then_some((replica, report)))
}

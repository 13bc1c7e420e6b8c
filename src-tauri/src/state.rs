//! What the app holds: the data directory, the running instance (once it
//! exists and is unlocked) and the admin session.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use dan_node::Node;
use tokio::sync::RwLock;

use crate::error::CommandError;

/// How long admin actions stay unlocked after the password was entered.
pub const ADMIN_SESSION: Duration = Duration::from_secs(5 * 60);

/// The admin password, held in this process for a short time after the
/// admin entered it. It never goes back to the UI.
struct AdminSession {
    password: String,
    until: Instant,
}

/// The app's state, managed by Tauri.
pub struct AppState {
    /// The instance's data directory.
    pub data_dir: PathBuf,
    running: RwLock<Option<Node>>,
    /// Counts the instances installed: a watcher of one stops when another
    /// is installed (the same instance keeps its number through a
    /// readmission, which changes its key).
    generation: std::sync::atomic::AtomicU64,
    admin: std::sync::Mutex<Option<AdminSession>>,
    launch_link: std::sync::Mutex<Option<String>>,
    /// What closing the window does (see `background`).
    pub close: crate::background::CloseGate,
}

impl AppState {
    /// State for the instance in `data_dir` (not opened yet).
    pub fn new(data_dir: PathBuf, launch_link: Option<String>) -> Self {
        AppState {
            data_dir,
            running: RwLock::new(None),
            generation: std::sync::atomic::AtomicU64::new(0),
            admin: std::sync::Mutex::new(None),
            launch_link: std::sync::Mutex::new(launch_link),
            close: crate::background::CloseGate::default(),
        }
    }

    /// Keeps a link handed over by a later start (see `handover`), for
    /// the UI to take.
    pub fn offer_launch_link(&self, link: String) {
        if let Ok(mut slot) = self.launch_link.lock() {
            *slot = Some(link);
        }
    }

    /// The `dan://join/…` link the app was opened with (or handed), once.
    pub fn take_launch_link(&self) -> Option<String> {
        self.launch_link
            .lock()
            .ok()
            .and_then(|mut link| link.take())
    }

    /// The running instance, or `not_ready`.
    pub async fn node(&self) -> Result<Node, CommandError> {
        self.running
            .read()
            .await
            .clone()
            .ok_or_else(CommandError::not_ready)
    }

    /// Whether an instance runs.
    pub async fn is_running(&self) -> bool {
        self.running.read().await.is_some()
    }

    /// Installs the running instance; returns its number (see
    /// [`generation`](Self::generation)).
    pub async fn set_running(&self, node: Node) -> u64 {
        let mut running = self.running.write().await;
        *running = Some(node);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1
    }

    /// The number of the instance installed last.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Takes the running instance out (to stop it).
    async fn take_running(&self) -> Option<Node> {
        self.running.write().await.take()
    }

    /// Stops the running instance, if any: network first, then its files.
    pub async fn stop_running(&self) {
        if let Some(node) = self.take_running().await {
            node.stop().await;
        }
    }

    /// Opens the admin session with a verified password.
    pub fn unlock_admin(&self, password: String) -> Instant {
        let until = Instant::now() + ADMIN_SESSION;
        if let Ok(mut admin) = self.admin.lock() {
            *admin = Some(AdminSession { password, until });
        }
        until
    }

    /// Closes the admin session.
    pub fn lock_admin(&self) {
        if let Ok(mut admin) = self.admin.lock() {
            *admin = None;
        }
    }

    /// The admin password while the session is open.
    pub fn admin_password(&self) -> Result<String, CommandError> {
        let admin = self
            .admin
            .lock()
            .map_err(|_| CommandError::admin_locked())?;
        match admin.as_ref() {
            Some(session) if session.until > Instant::now() => Ok(session.password.clone()),
            _ => Err(CommandError::admin_locked()),
        }
    }

    /// Milliseconds left in the admin session (0 when locked).
    pub fn admin_remaining_ms(&self) -> u64 {
        self.admin
            .lock()
            .ok()
            .and_then(|a| {
                a.as_ref()
                    .map(|s| s.until.saturating_duration_since(Instant::now()))
            })
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

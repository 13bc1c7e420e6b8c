//! The commands the UI calls. Each is thin: take the state, convert, call
//! the instance API, map errors. No protocol logic lives here.

use std::path::PathBuf;

use dan_node::api::{CreateNetwork, HistoryEntry, PutRecord, RecordShown, Status};
use dan_node::bulk::BulkProgress;
use dan_node::deprecation::EvidenceOutcome;
use dan_node::membership::{
    InvitePreview, InviteRequest, InviteView, JoinProgress, MemberView, PeerView,
};
use dan_node::operation::{self as op, Operation};
use dan_node::proposals::ProposalView;
use dan_node::release::BuildView;
use dan_node::{Credentials, Node, NodeConfig, RecordQuery};
use dan_store::StoredEvidence;
use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, Runtime, State};

use crate::error::CommandError;
use crate::events;
use crate::state::AppState;

type Result<T> = std::result::Result<T, CommandError>;

/// Where the app stands: no instance yet, instance locked, or ready.
#[derive(Serialize)]
pub struct AppInfo {
    /// `first_run`, `locked` or `ready`.
    pub stage: &'static str,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Milliseconds left in the admin session (0 when locked).
    pub admin_remaining_ms: u64,
}

/// A new invite with its QR code.
#[derive(Serialize)]
pub struct InviteCreated {
    /// The invite.
    pub invite: InviteView,
    /// The link as an SVG QR code.
    pub qr_svg: String,
}

async fn open<R: Runtime>(
    app: &AppHandle<R>,
    state: &AppState,
    credentials: Credentials,
) -> Result<Status> {
    let mut config = NodeConfig::new(&state.data_dir);
    config.build_kind = dan_core::BuildKind::Desktop;
    let node = Node::open(config, credentials).await?;
    dan_node::net::start(&node, crate::net_config()).await?;
    events::forward(app.clone(), &node);
    let status = node.status().await;
    let generation = state.set_running(node.clone()).await;
    crate::notify::watch(app.clone(), &node, generation).await;
    Ok(status)
}

/// Where the app stands.
#[tauri::command]
pub async fn app_info(state: State<'_, AppState>) -> Result<AppInfo> {
    let stage = if state.is_running().await {
        "ready"
    } else if state.data_dir.join("dan.db").exists() {
        "locked"
    } else {
        "first_run"
    };
    Ok(AppInfo {
        stage,
        data_dir: state.data_dir.clone(),
        admin_remaining_ms: state.admin_remaining_ms(),
    })
}

/// First run: creates the instance with its name and admin password, and
/// opens it.
#[tauri::command]
pub async fn create_instance<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    name: String,
    password: String,
) -> Result<Status> {
    Node::init(&state.data_dir, &name, &password).await?;
    let status = open(
        &app,
        &state,
        Credentials {
            password: Some(password.clone()),
            use_keyring: true,
        },
    )
    .await?;
    state.unlock_admin(password);
    Ok(status)
}

/// Opens the instance with the admin password.
#[tauri::command]
pub async fn unlock<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    password: String,
) -> Result<Status> {
    open(
        &app,
        &state,
        Credentials {
            password: Some(password),
            use_keyring: true,
        },
    )
    .await
}

/// Opens the instance with the key cached in the OS keyring, if any.
pub async fn unlock_from_keyring<R: Runtime>(
    app: &AppHandle<R>,
    state: &AppState,
) -> Result<Status> {
    open(
        app,
        state,
        Credentials {
            password: None,
            use_keyring: true,
        },
    )
    .await
}

/// The instance at a glance.
#[tauri::command]
pub async fn status(state: State<'_, AppState>) -> Result<Status> {
    Ok(op::Status {}.run(&state.node().await?).await?)
}

/// Opens the admin session (the password stays in the app process for a
/// few minutes and never goes back to the UI).
#[tauri::command]
pub async fn admin_unlock(state: State<'_, AppState>, password: String) -> Result<u64> {
    state.node().await?.verify_admin(&password).await?;
    state.unlock_admin(password);
    Ok(state.admin_remaining_ms())
}

/// Closes the admin session.
#[tauri::command]
pub fn admin_lock(state: State<'_, AppState>) {
    state.lock_admin();
}

/// Founds a network (admin).
#[tauri::command]
pub async fn create_network(
    state: State<'_, AppState>,
    name: String,
    min_members: Option<u32>,
) -> Result<Status> {
    let password = state.admin_password()?;
    let network = CreateNetwork {
        name,
        min_members,
        approve_code: Vec::new(),
    };
    let create = op::CreateNetwork { network, password };
    Ok(create.run(&state.node().await?).await?)
}

/// Reads an invite link without joining: the network, the inviter, and
/// whether the network approves this build.
#[tauri::command]
pub async fn preview_invite(state: State<'_, AppState>, link: String) -> Result<InvitePreview> {
    Ok(op::PreviewInvite { link }.run(&state.node().await?).await?)
}

/// Joins a network through an invite link (admin).
#[tauri::command]
pub async fn join_network(
    state: State<'_, AppState>,
    link: String,
    admin_name: Option<String>,
) -> Result<JoinProgress> {
    let join = op::Join {
        link,
        admin_name,
        password: state.admin_password()?,
        leave_current: false,
    };
    Ok(join.run(&state.node().await?).await?)
}

/// A page of records.
#[tauri::command]
pub async fn list_records(
    state: State<'_, AppState>,
    query: RecordQuery,
) -> Result<op::RecordPage> {
    Ok(op::ListRecordPage { query }
        .run(&state.node().await?)
        .await?)
}

/// One record.
#[tauri::command]
pub async fn get_record(state: State<'_, AppState>, id: String) -> Result<RecordShown> {
    Ok(op::GetRecord { id }.run(&state.node().await?).await?)
}

/// Creates or changes a record.
#[tauri::command]
pub async fn put_record(
    state: State<'_, AppState>,
    record: PutRecord,
) -> Result<dan_core::RecordView> {
    Ok(op::PutRecord { record }.run(&state.node().await?).await?)
}

/// Deletes a record.
#[tauri::command]
pub async fn delete_record(state: State<'_, AppState>, id: String) -> Result<dan_core::RecordView> {
    Ok(op::DeleteRecord { id }.run(&state.node().await?).await?)
}

/// Brings a deleted record back (the window's Undo and Trash → Restore).
#[tauri::command]
pub async fn restore_record(
    state: State<'_, AppState>,
    id: String,
) -> Result<dan_core::RecordView> {
    Ok(op::RestoreRecord { id }.run(&state.node().await?).await?)
}

/// A record's history.
#[tauri::command]
pub async fn record_history(state: State<'_, AppState>, id: String) -> Result<Vec<HistoryEntry>> {
    Ok(op::History { id }.run(&state.node().await?).await?)
}

/// The event that says how far an import or export got.
pub const BULK_EVENT: &str = "dan://bulk";

/// How far an import or export got, for the window's progress bar.
#[derive(Clone, Serialize)]
struct BulkProgressEvent {
    /// `import` or `export`.
    kind: &'static str,
    /// Records done.
    done: u64,
    /// Records in all, when known.
    total: Option<u64>,
}

fn tell_progress<R: Runtime>(app: &AppHandle<R>, kind: &'static str) -> impl FnMut(BulkProgress) {
    let app = app.clone();
    move |progress| {
        let event = BulkProgressEvent {
            kind,
            done: progress.done,
            total: progress.total,
        };
        if let Err(e) = app.emit(BULK_EVENT, event) {
            tracing::debug!("telling the window how far a {kind} got: {e}");
        }
    }
}

/// Imports the records of a JSON lines or CSV file (CSV when its name ends
/// in `.csv`), in batches, telling the window how far it got.
#[tauri::command]
pub async fn import_records<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    path: PathBuf,
) -> Result<u64> {
    let node = state.node().await?;
    Ok(node
        .import_file(&path, tell_progress(&app, "import"))
        .await?)
}

/// Writes every record that is not deleted to a JSON lines or CSV file
/// (CSV when its name ends in `.csv`), telling the window how far it got.
#[tauri::command]
pub async fn export_records<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    path: PathBuf,
) -> Result<u64> {
    let node = state.node().await?;
    Ok(node
        .export_file(&path, tell_progress(&app, "export"))
        .await?)
}

/// Members and pending instances.
#[tauri::command]
pub async fn members(state: State<'_, AppState>) -> Result<Vec<MemberView>> {
    Ok(op::Members {}.run(&state.node().await?).await?)
}

/// Approves a pending instance (admin).
#[tauri::command]
pub async fn approve(state: State<'_, AppState>, peer: String) -> Result<MemberView> {
    let password = state.admin_password()?;
    Ok(op::Approve { peer, password }
        .run(&state.node().await?)
        .await?)
}

/// Rejects a pending instance (admin).
#[tauri::command]
pub async fn reject(state: State<'_, AppState>, peer: String) -> Result<MemberView> {
    let password = state.admin_password()?;
    Ok(op::Reject { peer, password }
        .run(&state.node().await?)
        .await?)
}

/// Proposals and votes.
#[tauri::command]
pub async fn proposals(state: State<'_, AppState>) -> Result<Vec<ProposalView>> {
    Ok(op::Proposals {}.run(&state.node().await?).await?)
}

/// Votes on a proposal (admin).
#[tauri::command]
pub async fn vote(state: State<'_, AppState>, id: String, approve: bool) -> Result<ProposalView> {
    let password = state.admin_password()?;
    let id = id.parse().map_err(|e: dan_core::hash::BadHash| {
        CommandError::new(dan_node::ErrorCode::Invalid, e.to_string())
    })?;
    let vote = op::Vote {
        id,
        approve,
        password,
    };
    Ok(vote.run(&state.node().await?).await?)
}

/// Proposes removing a member (admin).
#[tauri::command]
pub async fn propose_remove(state: State<'_, AppState>, peer: String) -> Result<ProposalView> {
    let password = state.admin_password()?;
    Ok(op::ProposeRemove { peer, password }
        .run(&state.node().await?)
        .await?)
}

/// What the builds `source` names are (an approval request, or the path of
/// a release manifest or executable), and where the charter stands on them
/// (admin: it reads files).
#[tauri::command]
pub async fn describe_builds(state: State<'_, AppState>, source: String) -> Result<Vec<BuildView>> {
    state.admin_password()?;
    Ok(state.node().await?.describe_builds(&source).await?)
}

/// Proposes approving exactly the builds `describe_builds` showed, alongside
/// those approved now (admin).
#[tauri::command]
pub async fn propose_builds(
    state: State<'_, AppState>,
    builds: Vec<BuildView>,
) -> Result<ProposalView> {
    let password = state.admin_password()?;
    let builds = dan_node::release::BuildsToApprove::from_views(&builds);
    Ok(state
        .node()
        .await?
        .propose_builds(builds, &password)
        .await?)
}

/// This build's approval request (to send an admin of a network that does
/// not approve it).
#[tauri::command]
pub async fn approval_request(state: State<'_, AppState>) -> Result<String> {
    Ok(state.node().await?.approval_request())
}

/// Evidence seen.
#[tauri::command]
pub async fn evidence(state: State<'_, AppState>) -> Result<Vec<StoredEvidence>> {
    Ok(op::Evidence {}.run(&state.node().await?).await?)
}

/// Issues an invite link with its QR code (admin).
#[tauri::command]
pub async fn create_invite(
    state: State<'_, AppState>,
    uses: Option<u32>,
    expires_secs: Option<u64>,
    label: Option<String>,
) -> Result<InviteCreated> {
    let create = op::Invite {
        invite: InviteRequest {
            uses,
            expires_secs,
            label,
        },
        password: state.admin_password()?,
    };
    let invite = create.run(&state.node().await?).await?;
    let qr_svg = invite_qr(invite.invite.link.clone())?;
    Ok(InviteCreated { invite, qr_svg })
}

/// Invites issued here, with where each stands.
#[tauri::command]
pub async fn invites(state: State<'_, AppState>) -> Result<Vec<InviteView>> {
    Ok(op::Invites {}.run(&state.node().await?).await?)
}

/// The QR code (SVG) of an invite link, to show it again.
#[tauri::command]
pub fn invite_qr(link: String) -> Result<String> {
    dan_core::SignedInvite::from_link(&link)
        .map_err(|e| CommandError::new(dan_node::ErrorCode::Invalid, e.to_string()))?;
    crate::qr::svg(&link).map_err(|e| CommandError::new(dan_node::ErrorCode::Invalid, e))
}

/// Uses exactly these relays from now on (admin); says where each stands.
#[tauri::command]
pub async fn set_relays(
    state: State<'_, AppState>,
    relays: Vec<String>,
) -> Result<Vec<dan_node::net::RelayStatus>> {
    let password = state.admin_password()?;
    Ok(op::SetRelays { relays, password }
        .run(&state.node().await?)
        .await?)
}

/// Revokes an invite (admin).
#[tauri::command]
pub async fn revoke_invite(state: State<'_, AppState>, id: String) -> Result<()> {
    let password = state.admin_password()?;
    op::RevokeInvite { id, password }
        .run(&state.node().await?)
        .await?;
    Ok(())
}

/// Forks the network (admin); returns the new network's id.
#[tauri::command]
pub async fn fork_network(state: State<'_, AppState>, name: String) -> Result<String> {
    let password = state.admin_password()?;
    let forked = op::Fork { name, password }
        .run(&state.node().await?)
        .await?;
    Ok(forked.network_id.to_hex())
}

/// Peers seen and the handshake's verdicts.
#[tauri::command]
pub async fn peers(state: State<'_, AppState>) -> Result<Vec<PeerView>> {
    Ok(op::Peers {}.run(&state.node().await?).await?)
}

/// Changes the admin password.
#[tauri::command]
pub async fn change_password(state: State<'_, AppState>, old: String, new: String) -> Result<()> {
    op::ChangePassword { old, new }
        .run(&state.node().await?)
        .await?;
    state.lock_admin();
    Ok(())
}

/// Writes an encrypted backup (admin; encrypted under the admin password).
#[tauri::command]
pub async fn export_backup(state: State<'_, AppState>, path: PathBuf) -> Result<u64> {
    let password = state.admin_password()?;
    let written = op::BackupExport { path, password }
        .run(&state.node().await?)
        .await?;
    Ok(written.bytes)
}

/// Restores a backup: stops the instance, restores, reopens it. Replacing
/// a running instance's data is an admin action (the admin session), on top
/// of the backup's own password.
#[tauri::command]
pub async fn restore_backup<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    path: PathBuf,
    password: String,
) -> Result<Status> {
    if state.is_running().await {
        state.admin_password()?;
    }
    state.stop_running().await;
    Node::restore_backup(&state.data_dir, &path, &password).await?;
    open(
        &app,
        &state,
        Credentials {
            password: Some(password),
            use_keyring: true,
        },
    )
    .await
}

/// Opens the data folder in the system's file manager.
#[tauri::command]
pub fn open_data_folder(state: State<'_, AppState>) -> Result<()> {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(target_os = "windows") {
        "explorer"
    } else {
        "xdg-open"
    };
    std::process::Command::new(opener)
        .arg(&state.data_dir)
        .spawn()
        .map(|_| ())
        .map_err(|e| {
            CommandError::new(
                dan_node::ErrorCode::Io,
                format!("could not open {}: {e}", state.data_dir.display()),
            )
        })
}

/// Checks a piece of evidence pasted by the admin.
#[tauri::command]
pub async fn check_evidence(
    state: State<'_, AppState>,
    hex_bytes: String,
) -> Result<EvidenceOutcome> {
    let bytes = hex::decode(hex_bytes.trim())
        .map_err(|e| CommandError::new(dan_node::ErrorCode::Invalid, e.to_string()))?;
    let signed = dan_core::SignedEvidence::from_bytes(&bytes)
        .map_err(|e| CommandError::new(dan_node::ErrorCode::Invalid, e.to_string()))?;
    Ok(state.node().await?.accept_evidence(signed).await?)
}

/// The invite link the app was opened with, if any (given once).
#[tauri::command]
pub fn take_launch_link(state: State<'_, AppState>) -> Option<String> {
    state.take_launch_link()
}

/// Hides the window; the instance keeps running (opening DAN again shows
/// the window).
#[tauri::command]
pub async fn hide_window<R: Runtime>(
    window: tauri::WebviewWindow<R>,
    state: State<'_, AppState>,
) -> Result<()> {
    state.close.answered();
    window.hide().map_err(|e| {
        CommandError::new(
            dan_node::ErrorCode::Io,
            format!("could not hide the window: {e}"),
        )
    })
}

/// Refuses a log-in entry that would not start this DAN.
fn check_startable_at_log_in<R: Runtime>(app: &AppHandle<R>) -> Result<()> {
    let program = crate::log_in::program(app.env().appimage.map(PathBuf::from)).map_err(|e| {
        CommandError::new(
            dan_node::ErrorCode::Io,
            format!("where is DAN installed? {e}"),
        )
    })?;
    let data_dir = &app.state::<AppState>().data_dir;
    match crate::log_in::unstartable(&program, data_dir) {
        Some(why) => Err(CommandError::new(dan_node::ErrorCode::Invalid, why)),
        None => Ok(()),
    }
}

/// Whether DAN starts (in the background) when the person logs in, and
/// whether on this data folder. The entry is read on Linux (one per user);
/// elsewhere the platform only says whether there is one.
fn start_at_log_in<R: Runtime>(app: &AppHandle<R>) -> Result<crate::log_in::StartAtLogIn> {
    use tauri_plugin_autostart::ManagerExt;
    let enabled = app.autolaunch().is_enabled().map_err(|e| {
        CommandError::new(
            dan_node::ErrorCode::Io,
            format!("could not read the log-in setting: {e}"),
        )
    })?;
    if !enabled || !cfg!(target_os = "linux") {
        return Ok(crate::log_in::StartAtLogIn {
            on: enabled,
            other_folder: None,
            other_app: None,
        });
    }
    let path = app
        .path()
        .home_dir()
        .map(|home| home.join(".config/autostart/DAN.desktop"))
        .map_err(|e| CommandError::new(dan_node::ErrorCode::Io, format!("no home folder: {e}")))?;
    let entry = std::fs::read_to_string(&path).map_err(|e| {
        CommandError::new(
            dan_node::ErrorCode::Io,
            format!("could not read {}: {e}", path.display()),
        )
    })?;
    let program = crate::log_in::program(app.env().appimage.map(PathBuf::from)).map_err(|e| {
        CommandError::new(
            dan_node::ErrorCode::Io,
            format!("where is DAN installed? {e}"),
        )
    })?;
    let expected = crate::log_in::args(&app.state::<AppState>().data_dir);
    Ok(crate::log_in::setting(&entry, &program, &expected))
}

/// Whether DAN starts (in the background) when the person logs in, on this
/// data folder or another one.
#[tauri::command]
pub async fn autostart<R: Runtime>(app: AppHandle<R>) -> Result<crate::log_in::StartAtLogIn> {
    start_at_log_in(&app)
}

/// Makes DAN start (in the background) on this data folder when the person
/// logs in, or not; returns the setting as it now is.
#[tauri::command]
pub async fn set_autostart<R: Runtime>(
    app: AppHandle<R>,
    on: bool,
) -> Result<crate::log_in::StartAtLogIn> {
    use tauri_plugin_autostart::ManagerExt;
    if on {
        check_startable_at_log_in(&app)?;
    }
    let launcher = app.autolaunch();
    let done = if on {
        launcher.enable()
    } else {
        launcher.disable()
    };
    done.map_err(|e| {
        CommandError::new(
            dan_node::ErrorCode::Io,
            format!("could not change the log-in setting: {e}"),
        )
    })?;
    start_at_log_in(&app)
}

/// Stops the instance cleanly and closes the app.
#[tauri::command]
pub async fn quit_app<R: Runtime>(app: AppHandle<R>) -> Result<()> {
    crate::background::quit(&app).await;
    Ok(())
}

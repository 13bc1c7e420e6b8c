//! # dan-desktop
//!
//! The DAN desktop app: a thin Tauri shell around a built-in instance. It
//! opens the instance, maps commands and events onto the `dan-node` API
//! that the headless CLI also uses, and serves the UI in `ui/`. No protocol
//! logic lives here.

pub mod background;
pub mod commands;
pub mod error;
pub mod events;
#[cfg(unix)]
pub mod handover;
pub mod log_in;
pub mod notify;
mod qr;
pub mod state;
pub mod tray;

use std::path::PathBuf;

use tauri::{AppHandle, Builder, Emitter, Manager, Runtime};

use state::AppState;

/// The data directory: `--data-dir DIR` on the command line, `DAN_DATA_DIR`,
/// or the platform data directory. A relative one is made absolute, so
/// that DAN started from elsewhere (at log-in, from the home folder) opens
/// the same one.
pub fn data_dir() -> PathBuf {
    let mut args = std::env::args_os().skip_while(|a| a != "--data-dir");
    let given = args.nth(1).or_else(|| std::env::var_os("DAN_DATA_DIR"));
    if let Some(dir) = given {
        let dir = PathBuf::from(dir);
        return std::path::absolute(&dir).unwrap_or(dir);
    }
    directories::ProjectDirs::from("org", "dan", "dan").map_or_else(
        || PathBuf::from("dan-data"),
        |dirs| dirs.data_dir().to_owned(),
    )
}

/// The invite link the app was opened with (`dan-desktop dan://join/…`, as
/// the desktop does when a `dan://` link is clicked).
pub fn launch_link() -> Option<String> {
    std::env::args()
        .skip(1)
        .find(|a| a.starts_with(dan_core::invite::LINK_PREFIX))
}

/// The network settings: mDNS and UPnP on, all interfaces, unless
/// `DAN_NO_MDNS`, `DAN_NO_UPNP` or `DAN_LISTEN` (a multiaddr) say otherwise
/// (tests use loopback only).
pub fn net_config() -> dan_node::net::NetConfig {
    let mut config = dan_node::net::NetConfig {
        mdns: std::env::var_os("DAN_NO_MDNS").is_none(),
        upnp: std::env::var_os("DAN_NO_UPNP").is_none(),
        ..Default::default()
    };
    if let Some(addr) = std::env::var("DAN_LISTEN")
        .ok()
        .and_then(|a| a.parse().ok())
    {
        config.listen = vec![addr];
    }
    if let Some(secs) = std::env::var("DAN_SYNC_INTERVAL")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        config.sync_interval = std::time::Duration::from_secs(secs);
    }
    config
}

/// Wires state, commands and start-up onto `builder` (any runtime, so the
/// app also boots in Tauri's mock runtime for tests); `on_start` runs once
/// the app exists.
pub fn build_app<R: Runtime>(
    builder: Builder<R>,
    data_dir: PathBuf,
    launch_link: Option<String>,
    on_start: impl FnOnce(AppHandle<R>) + Send + 'static,
) -> Builder<R> {
    // Started at log-in, DAN opens this same data directory.
    let at_log_in = log_in::args(&data_dir);
    builder
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(
            tauri_plugin_autostart::Builder::new()
                .app_name("DAN")
                .args(at_log_in)
                .build(),
        )
        .manage(AppState::new(data_dir, launch_link))
        .setup(move |app| {
            // Started at log-in: the instance runs, the window waits until
            // DAN is opened (a second start brings it to the front). If the
            // instance cannot start by itself (no key in the keyring), the
            // window shows at once: nothing would run otherwise.
            let background = std::env::args().any(|a| a == log_in::BACKGROUND_ARG);
            if background && let Some(window) = app.get_webview_window("main") {
                let _ = window.hide();
            }
            crate::tray::install(app.handle());
            on_start(app.handle().clone());
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                let state = handle.state::<AppState>();
                let unlocked = if state.data_dir.join("dan.db").exists() {
                    match commands::unlock_from_keyring(&handle, &state).await {
                        Ok(_) => true,
                        Err(e) => {
                            tracing::info!("not unlocked from the keyring: {e}");
                            false
                        }
                    }
                } else {
                    false
                };
                if background
                    && !unlocked
                    && let Some(window) = handle.get_webview_window("main")
                {
                    let _ = window.show();
                }
            });
            Ok(())
        })
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                let state = window.state::<AppState>();
                if state.close.on_close_request(now) == background::CloseDecision::Ask {
                    api.prevent_close();
                    let event = serde_json::json!({ "kind": "close_requested" });
                    if let Err(e) = window.emit(events::EVENT, event) {
                        tracing::debug!("asking the window about closing: {e}");
                    }
                }
            }
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::create_instance,
            commands::unlock,
            commands::status,
            commands::admin_unlock,
            commands::admin_lock,
            commands::create_network,
            commands::preview_invite,
            commands::join_network,
            commands::list_records,
            commands::get_record,
            commands::put_record,
            commands::delete_record,
            commands::restore_record,
            commands::record_history,
            commands::import_records,
            commands::export_records,
            commands::members,
            commands::approve,
            commands::reject,
            commands::proposals,
            commands::vote,
            commands::propose_remove,
            commands::describe_builds,
            commands::propose_builds,
            commands::approval_request,
            commands::evidence,
            commands::create_invite,
            commands::invites,
            commands::invite_qr,
            commands::revoke_invite,
            commands::set_relays,
            commands::fork_network,
            commands::peers,
            commands::change_password,
            commands::export_backup,
            commands::restore_backup,
            commands::open_data_folder,
            commands::check_evidence,
            commands::take_launch_link,
            commands::hide_window,
            commands::quit_app,
            commands::autostart,
            commands::set_autostart,
        ])
}

/// Builds and runs the desktop app until its window closes.
pub fn run() -> Result<(), tauri::Error> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p=warn")),
        )
        .try_init();
    let data_dir = data_dir();
    let link = launch_link();
    #[cfg(unix)]
    let listener = match handover::hand_over_or_listen(&data_dir, link.as_deref()) {
        Ok(handover::Start::HandedOver) => {
            tracing::info!("handed over to the app already running on this data directory");
            return Ok(());
        }
        Ok(handover::Start::First(listener)) => Some(listener),
        Err(e) => {
            tracing::warn!("no hand-over socket (a second start will not reach this one): {e}");
            None
        }
    };
    let closing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let serving = closing.clone();
    let app = build_app(Builder::default(), data_dir, link, move |app| {
        #[cfg(unix)]
        if let Some(listener) = listener {
            handover::serve(listener, serving, move |message| {
                handover::receive(&app, message);
            });
        }
        #[cfg(not(unix))]
        let _ = (app, serving);
    })
    .build(tauri::generate_context!())?;
    app.run(move |_, event| {
        if matches!(
            event,
            tauri::RunEvent::ExitRequested { .. } | tauri::RunEvent::Exit
        ) {
            closing.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    Ok(())
}

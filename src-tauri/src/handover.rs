//! One app per data directory. A second start (typically the desktop
//! opening a clicked `dan://` link while the app already runs) hands its
//! invite link to the running app over a Unix socket in the data directory
//! and exits; the running app shows the link and comes to the front.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::events::EVENT;
use crate::state::AppState;

/// The socket's file name in the data directory.
const SOCKET_FILE: &str = "app.sock";
/// Longest message accepted (an invite link is far shorter).
const MAX_MESSAGE: u64 = 8 * 1024;

/// How this start goes on.
pub enum Start {
    /// No app runs for this data directory: this one serves the socket.
    First(UnixListener),
    /// A running app took the link over; this process should exit.
    HandedOver,
}

fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// Hands `link` (or just "come to the front") to the app already running
/// on `data_dir`, or, if none answers, takes the socket over.
pub fn hand_over_or_listen(data_dir: &Path, link: Option<&str>) -> std::io::Result<Start> {
    let path = socket_path(data_dir);
    if let Ok(mut running) = UnixStream::connect(&path) {
        running.set_write_timeout(Some(Duration::from_secs(2)))?;
        writeln!(running, "{}", link.unwrap_or_default())?;
        return Ok(Start::HandedOver);
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)?;
    // Nobody answers: whatever is left there is stale.
    let _ = std::fs::remove_file(&path);
    Ok(Start::First(UnixListener::bind(&path)?))
}

/// Serves hand-overs until the app exits: each one brings the window to
/// the front and, if it carries an invite link, offers it to the UI.
pub fn serve<R: Runtime>(listener: UnixListener, app: AppHandle<R>) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut line = String::new();
            if BufReader::new(stream.take(MAX_MESSAGE))
                .read_line(&mut line)
                .is_err()
            {
                continue;
            }
            receive(&app, line.trim());
        }
    });
}

fn receive<R: Runtime>(app: &AppHandle<R>, message: &str) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
    if !message.starts_with(dan_core::invite::LINK_PREFIX) {
        if !message.is_empty() {
            tracing::warn!("ignored a hand-over that is not an invite link");
        }
        return;
    }
    app.state::<AppState>()
        .offer_launch_link(message.to_owned());
    let event = serde_json::json!({ "kind": "launch_link" });
    if let Err(e) = app.emit(EVENT, event) {
        tracing::debug!("telling the UI about a handed-over link: {e}");
    }
}

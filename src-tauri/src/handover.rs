//! One app per data directory. A second start (typically the desktop
//! opening a clicked `dan://` link while the app already runs) hands its
//! invite link to the running app over a Unix socket in the data directory
//! and exits; the running app shows the link and comes to the front.
//!
//! The running app answers `taken`; once it is closing it answers
//! `closing`, and the new start waits for it to exit and then starts
//! normally (so closing the app and opening it again at once still opens
//! a window).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::events::EVENT;
use crate::state::AppState;

/// The socket's file name in the data directory.
const SOCKET_FILE: &str = "app.sock";
/// Longest message accepted (an invite link is far shorter).
const MAX_MESSAGE: u64 = 8 * 1024;
/// The running app's answer when it takes a hand-over.
const TAKEN: &str = "taken";
/// Its answer while it is closing.
const CLOSING: &str = "closing";
/// How long a new start waits for a closing app to exit.
const WAIT_FOR_EXIT: Duration = Duration::from_secs(15);

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
/// on `data_dir`, or, if none takes it, takes the socket over (after
/// waiting, bounded, for a closing app to exit).
pub fn hand_over_or_listen(data_dir: &Path, link: Option<&str>) -> std::io::Result<Start> {
    let path = socket_path(data_dir);
    let deadline = Instant::now() + WAIT_FOR_EXIT;
    while let Ok(running) = UnixStream::connect(&path) {
        if offer(running, link.unwrap_or_default()).unwrap_or(false) {
            return Ok(Start::HandedOver);
        }
        if Instant::now() > deadline {
            tracing::warn!("the app on this data directory does not exit; starting anyway");
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    dan_store::private::create_dir(data_dir).map_err(std::io::Error::other)?;
    // Nobody takes it: whatever is left there is stale.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    dan_store::private::protect(&path).map_err(std::io::Error::other)?;
    Ok(Start::First(listener))
}

/// Sends `message`; whether the running app took it.
fn offer(mut running: UnixStream, message: &str) -> std::io::Result<bool> {
    running.set_write_timeout(Some(Duration::from_secs(2)))?;
    running.set_read_timeout(Some(Duration::from_secs(3)))?;
    writeln!(running, "{message}")?;
    let mut answer = String::new();
    BufReader::new(running.take(64)).read_line(&mut answer)?;
    Ok(answer.trim() == TAKEN)
}

/// Serves hand-overs on `listener` in a thread of its own, passing each
/// message to `receive`, until `closing` is set; after that it answers
/// that the app is closing.
pub fn serve(
    listener: UnixListener,
    closing: Arc<AtomicBool>,
    receive: impl Fn(&str) + Send + 'static,
) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
            let mut line = String::new();
            let Ok(reader) = stream.try_clone() else {
                continue;
            };
            if BufReader::new(reader.take(MAX_MESSAGE))
                .read_line(&mut line)
                .is_err()
            {
                continue;
            }
            if closing.load(Ordering::SeqCst) {
                let _ = writeln!(stream, "{CLOSING}");
                continue;
            }
            let _ = writeln!(stream, "{TAKEN}");
            receive(line.trim());
        }
    });
}

/// What the running app does with a hand-over: come to the front and, if
/// it carries an invite link, offer it to the UI.
pub fn receive<R: Runtime>(app: &AppHandle<R>, message: &str) {
    crate::background::bring_back(app);
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

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    const LINK: &str = "dan://join/example";

    fn first(data_dir: &Path) -> UnixListener {
        match hand_over_or_listen(data_dir, None) {
            Ok(Start::First(listener)) => listener,
            _ => panic!("the first start must listen"),
        }
    }

    #[test]
    fn a_second_start_hands_its_link_to_the_running_app() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (sent, received) = mpsc::sync_channel(8);
        serve(
            first(dir.path()),
            Arc::new(AtomicBool::new(false)),
            move |m| {
                let _ = sent.send(m.to_owned());
            },
        );
        assert!(matches!(
            hand_over_or_listen(dir.path(), Some(LINK)),
            Ok(Start::HandedOver)
        ));
        assert_eq!(
            received.recv_timeout(Duration::from_secs(5)).as_deref(),
            Ok(LINK)
        );
    }

    #[test]
    fn a_start_while_the_app_is_closing_waits_and_then_starts_itself() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (sent, received) = mpsc::sync_channel(8);
        serve(
            first(dir.path()),
            Arc::new(AtomicBool::new(true)),
            move |m| {
                let _ = sent.send(m.to_owned());
            },
        );
        let socket = socket_path(dir.path());
        let exits = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            // What the closing app's exit does to its socket.
            std::fs::remove_file(socket)
        });
        let started = Instant::now();
        assert!(matches!(
            hand_over_or_listen(dir.path(), Some(LINK)),
            Ok(Start::First(_))
        ));
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert!(exits.join().is_ok());
        assert!(received.try_recv().is_err(), "a closing app takes nothing");
    }
}

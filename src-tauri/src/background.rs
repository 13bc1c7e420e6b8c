//! Closing the window keeps the instance running, so that the other
//! members can still reach it and its changes still reach them. The window
//! asks the first time (and remembers the answer); Quit stops it; opening
//! DAN again brings the window back (see `handover`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tauri::{AppHandle, Manager, Runtime};

use crate::state::AppState;

/// Shows the window again (closed, it was only hidden), in front.
pub fn bring_back<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

/// Quits DAN: stops the instance, then the app (from the window's Quit
/// or the tray's). A second Quit while the first stops the instance leaves
/// it to the first, so the instance always stops cleanly.
pub async fn quit<R: Runtime>(app: &AppHandle<R>) {
    let state = app.state::<AppState>();
    if state.close.quit() {
        return;
    }
    state.stop_running().await;
    app.exit(0);
}

/// How long a second close request waits for the window to answer the
/// first before it closes the app anyway (a window that cannot answer must
/// not make the app impossible to close).
pub const UNANSWERED_MS: u64 = 5_000;

/// What to do with a request to close the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseDecision {
    /// Hold it and ask the window (keep running or quit).
    Ask,
    /// Let the app exit.
    Exit,
}

/// Whether the app is quitting, and when the window was last asked.
#[derive(Debug, Default)]
pub struct CloseGate {
    quitting: AtomicBool,
    asked_ms: AtomicU64,
}

impl CloseGate {
    /// Decides a close request made at `now_ms`.
    pub fn on_close_request(&self, now_ms: u64) -> CloseDecision {
        if self.quitting.load(Ordering::SeqCst) {
            return CloseDecision::Exit;
        }
        let asked = self.asked_ms.swap(now_ms, Ordering::SeqCst);
        if asked != 0 && now_ms.saturating_sub(asked) < UNANSWERED_MS {
            return CloseDecision::Exit;
        }
        CloseDecision::Ask
    }

    /// The window answered (it was hidden): the next close asks again.
    pub fn answered(&self) {
        self.asked_ms.store(0, Ordering::SeqCst);
    }

    /// The person chose Quit: every later close request goes through.
    /// Whether Quit had been chosen before.
    pub fn quit(&self) -> bool {
        self.quitting.swap(true, Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_asks_the_window_and_an_unanswered_second_one_exits() {
        let gate = CloseGate::default();
        assert_eq!(gate.on_close_request(1_000), CloseDecision::Ask);
        assert_eq!(gate.on_close_request(2_000), CloseDecision::Exit);
        gate.answered();
        assert_eq!(gate.on_close_request(3_000), CloseDecision::Ask);
        assert_eq!(
            gate.on_close_request(3_000 + UNANSWERED_MS),
            CloseDecision::Ask,
            "long after, it asks again"
        );
        assert!(!gate.quit(), "the first Quit");
        assert!(gate.quit(), "a second Quit leaves it to the first");
        assert_eq!(gate.on_close_request(9_999_999), CloseDecision::Exit);
    }
}

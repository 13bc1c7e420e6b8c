//! OS notifications for what needs a person while the window is not in
//! front of them (`dan_node::notices` decides what is news): someone asks
//! to join, a vote opens or ends, the network is out of reach.

use std::time::Duration;

use dan_node::Node;
use dan_node::notices::Attention;
use tauri::{AppHandle, Manager, Runtime};

use crate::state::AppState;
use tauri_plugin_notification::NotificationExt;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

/// Looks again at most this often, however many events arrive.
const AT_MOST_EVERY: Duration = Duration::from_secs(1);
/// Looks again at least this often.
const LOOK_EVERY: Duration = Duration::from_secs(5);

/// Whether the window is in front of the person (then it shows the news
/// itself).
fn window_in_front<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.get_webview_window("main").is_some_and(|w| {
        w.is_visible().unwrap_or(false)
            && w.is_focused().unwrap_or(false)
            && !w.is_minimized().unwrap_or(false)
    })
}

/// Watches `node` until it stops, and tells the person what is new. What
/// needs attention when the app starts is its starting point, not news.
/// The task holds no `Node` (it must not keep a stopped instance alive):
/// it reads the running one from the app state when it looks.
pub async fn watch<R: Runtime>(app: AppHandle<R>, node: &Node) {
    let mut events = node.subscribe();
    let mut known: Attention = node.attention().await;
    tauri::async_runtime::spawn(async move {
        // Votes arriving from peers change no member: looked at on a timer
        // too.
        let mut tick = tokio::time::interval(LOOK_EVERY);
        loop {
            tokio::select! {
                event = events.recv() => if let Err(RecvError::Closed) = event {
                    break;
                },
                _ = tick.tick() => {}
            }
            // Events come in bursts: one look after the burst.
            tokio::time::sleep(AT_MOST_EVERY).await;
            while let Ok(_) | Err(TryRecvError::Lagged(_)) = events.try_recv() {}
            let Ok(node) = app.state::<AppState>().node().await else {
                continue;
            };
            let now = node.attention().await;
            drop(node);
            let news = now.news_since(&known);
            known = now;
            if news.is_empty() || window_in_front(&app) {
                continue;
            }
            for notice in news {
                tracing::info!("notifying: {}: {}", notice.title, notice.body);
                if let Err(e) = app
                    .notification()
                    .builder()
                    .title(&notice.title)
                    .body(&notice.body)
                    .show()
                {
                    tracing::warn!("could not show a notification: {e}");
                }
            }
        }
    });
}

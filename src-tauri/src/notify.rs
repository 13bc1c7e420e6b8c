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

/// Watches `node` (installed as number `generation`) until it stops or
/// another instance is installed, and tells the person what is new. What
/// needs attention when the app starts is its starting point, not news.
/// The task holds no `Node` (it must not keep a stopped instance alive):
/// it reads the running one from the app state when it looks.
pub async fn watch<R: Runtime>(app: AppHandle<R>, node: &Node, generation: u64) {
    let mut events = node.subscribe();
    let mut known: Attention = node.attention().await;
    crate::tray::show_status(&app, &known.summary());
    let mut limit = RateLimit::default();
    tauri::async_runtime::spawn(async move {
        // Votes arriving from peers change no member: looked at on a timer
        // too.
        let mut tick = tokio::time::interval(LOOK_EVERY);
        loop {
            tokio::select! {
                event = events.recv() => if let Err(RecvError::Closed) = event {
                    // The instance stopped.
                    crate::tray::show_status(&app, "not running; open it to unlock");
                    break;
                },
                _ = tick.tick() => {}
            }
            // Events come in bursts: one look after the burst.
            tokio::time::sleep(AT_MOST_EVERY).await;
            while let Ok(_) | Err(TryRecvError::Lagged(_)) = events.try_recv() {}
            let state = app.state::<AppState>();
            if state.generation() != generation {
                // Another instance runs now (a restored backup): its own
                // watcher tells about it. A readmission keeps the instance
                // (with a new key) and this watcher.
                break;
            }
            let Ok(node) = state.node().await else {
                continue;
            };
            let now = node.attention().await;
            drop(node);
            crate::tray::show_status(&app, &now.summary());
            let news = now.news_since(&known);
            known = now;
            if news.is_empty() || window_in_front(&app) {
                continue;
            }
            for notice in limit.admit(news, std::time::Instant::now()) {
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

/// Most notifications per minute; the rest are summed up in one.
const MAX_PER_MINUTE: usize = 6;

/// Keeps a flood of news (many join requests made up by a hostile admin)
/// from filling the desktop: at most [`MAX_PER_MINUTE`] notifications a
/// minute, then one that says how many more wait in DAN.
#[derive(Default)]
struct RateLimit {
    sent: std::collections::VecDeque<std::time::Instant>,
    held_back: usize,
}

impl RateLimit {
    fn admit(
        &mut self,
        news: Vec<dan_node::notices::Notice>,
        now: std::time::Instant,
    ) -> Vec<dan_node::notices::Notice> {
        while self
            .sent
            .front()
            .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(60))
        {
            self.sent.pop_front();
        }
        let mut shown = Vec::new();
        for notice in news {
            if self.sent.len() + shown.len() < MAX_PER_MINUTE - 1 {
                shown.push(notice);
            } else {
                self.held_back += 1;
            }
        }
        if self.held_back > 0 && self.sent.len() + shown.len() < MAX_PER_MINUTE {
            shown.push(dan_node::notices::Notice {
                title: "More news in DAN".into(),
                body: format!(
                    "{} more things need your attention. Open DAN to see them.",
                    self.held_back
                ),
            });
            self.held_back = 0;
        }
        self.sent.extend(shown.iter().map(|_| now));
        shown
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use dan_node::notices::Notice;

    use super::{MAX_PER_MINUTE, RateLimit};

    fn news(n: usize) -> Vec<Notice> {
        (0..n)
            .map(|i| Notice {
                title: format!("Joiner {i} asks to join"),
                body: String::new(),
            })
            .collect()
    }

    #[test]
    fn a_flood_of_join_requests_makes_a_few_notifications_and_one_summary() {
        let mut limit = RateLimit::default();
        let start = Instant::now();
        let shown = limit.admit(news(100), start);
        assert_eq!(shown.len(), MAX_PER_MINUTE);
        assert_eq!(shown[MAX_PER_MINUTE - 1].title, "More news in DAN");
        assert!(shown[MAX_PER_MINUTE - 1].body.starts_with("95 more"));
        assert!(
            limit
                .admit(news(10), start + Duration::from_secs(10))
                .is_empty()
        );
        let later = limit.admit(news(1), start + Duration::from_secs(61));
        assert_eq!(
            later.len(),
            2,
            "the next minute: the news and what was held back"
        );
        assert!(later[1].body.starts_with("10 more"));
    }
}

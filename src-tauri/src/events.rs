//! Instance events forwarded to the UI as the Tauri event `dan://event`.

use dan_node::{Node, NodeEvent};
use tauri::{AppHandle, Emitter, Runtime};
use tokio::sync::broadcast::error::RecvError;

/// The event name the UI listens to.
pub const EVENT: &str = "dan://event";

/// Forwards the instance's events to the UI until the instance stops.
pub fn forward<R: Runtime>(app: AppHandle<R>, node: &Node) {
    let mut events = node.subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            match events.recv().await {
                Ok(NodeEvent::LocalOps { .. }) => {}
                Ok(event) => {
                    if let Err(e) = app.emit(EVENT, &event) {
                        tracing::debug!("forwarding an event to the UI: {e}");
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            }
        }
    });
}

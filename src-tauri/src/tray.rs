//! The tray icon: DAN keeps running with its window closed, and the icon
//! says what waits ("2 requests to join · 1 vote open"), opens the window
//! and quits. The status line is kept current by the `notify` watcher.

use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime};

/// The menu line that says what waits, kept to change its text.
pub struct TrayStatus<R: Runtime>(MenuItem<R>);

/// Puts DAN's icon in the tray. On Linux the tray needs
/// libayatana-appindicator (a dependency of the .deb); without it, or
/// without a tray at all, DAN runs on without one and says so in its log.
pub fn install<R: Runtime>(app: &AppHandle<R>) {
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build(app)));
    match built {
        Ok(Ok(())) => tracing::info!("tray icon installed"),
        Ok(Err(e)) => tracing::warn!("no tray icon: {e}"),
        Err(_) => tracing::warn!(
            "no tray icon: this desktop lacks libayatana-appindicator3 (install it to see DAN in the tray)"
        ),
    }
}

fn build<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let status = MenuItem::with_id(
        app,
        "status",
        "DAN: not running; open it to unlock",
        false,
        None::<&str>,
    )?;
    let open = MenuItem::with_id(app, "open", "Open DAN", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit DAN", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&status, &open, &quit])?;
    let mut tray = TrayIconBuilder::with_id("dan")
        .tooltip("DAN")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "open" => crate::background::bring_back(app),
            "quit" => {
                let app = app.clone();
                tauri::async_runtime::spawn(async move { crate::background::quit(&app).await });
            }
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    app.manage(TrayStatus(status));
    Ok(())
}

/// Shows `summary` as the tray's status line (nothing without a tray).
pub fn show_status<R: Runtime>(app: &AppHandle<R>, summary: &str) {
    if let Some(status) = app.try_state::<TrayStatus<R>>()
        && let Err(e) = status.0.set_text(format!("DAN: {summary}"))
    {
        tracing::debug!("updating the tray: {e}");
    }
}

//! # dan-desktop
//!
//! The DAN desktop app: a thin Tauri shell around a built-in instance.

/// Builds and runs the desktop app until its window closes.
pub fn run() -> Result<(), tauri::Error> {
    tauri::Builder::default().run(tauri::generate_context!())
}

//! Build script: embeds tauri.conf.json, the icons and the UI into the app.

fn main() {
    tauri_build::build()
}

//! The DAN desktop app's entry point.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    if let Err(error) = dan_desktop::run() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

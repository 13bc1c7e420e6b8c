//! Build script: embeds tauri.conf.json, the icons and the UI into the app,
//! and generates an `allow-<command>` permission for each app command.

/// The app's commands (each must also be listed in the capability).
const COMMANDS: &[&str] = &[
    "app_info",
    "create_instance",
    "unlock",
    "status",
    "admin_unlock",
    "admin_lock",
    "create_network",
    "preview_invite",
    "join_network",
    "list_records",
    "get_record",
    "put_record",
    "delete_record",
    "restore_record",
    "hide_window",
    "quit_app",
    "autostart",
    "set_autostart",
    "record_history",
    "import_records",
    "export_records",
    "members",
    "approve",
    "reject",
    "proposals",
    "vote",
    "propose_remove",
    "describe_builds",
    "propose_builds",
    "approval_request",
    "evidence",
    "create_invite",
    "invites",
    "invite_qr",
    "revoke_invite",
    "set_relays",
    "fork_network",
    "peers",
    "change_password",
    "export_backup",
    "restore_backup",
    "open_data_folder",
    "check_evidence",
    "take_launch_link",
];

fn main() {
    println!("cargo:rerun-if-changed=src-tauri/capabilities");
    let attributes = tauri_build::Attributes::new()
        .capabilities_path_pattern("./src-tauri/capabilities/**/*")
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(error) = tauri_build::try_build(attributes) {
        panic!("tauri build failed: {error:#}");
    }
}

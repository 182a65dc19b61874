// The commands the window may call: each gets an `allow-<name>` permission, and
// capabilities/main.json grants the main window exactly these (a command not listed here is
// refused at the IPC layer, whatever the page asks).
const COMMANDS: &[&str] = &[
    "app_state",
    "start_sandbox",
    "add_profile",
    "sandbox_code",
    "sign_in",
    "answer_mfa",
    "cancel_mfa",
    "pending_mfa",
    "list_instances",
    "open_shell",
    "sessions",
    "attach_session",
    "send_input",
    "resize_session",
    "close_session",
];

fn main() {
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(error) = tauri_build::try_build(attributes) {
        eprintln!("tauri-build: {error:#}");
        std::process::exit(1);
    }
}

//! The Postern desktop shell: a thin Tauri layer over `postern-core`.
//!
//! It builds the app, registers plugins and commands, and hands what the UI asks for to the
//! core. Nothing here knows about AWS; everything that does lives in `postern-core`.

/// Build and run the desktop app until its last window closes.
pub fn run() {
    let context = tauri::generate_context!();
    if let Err(error) = tauri::Builder::default().run(context) {
        eprintln!("postern-desktop: could not start the app: {error:#}");
        std::process::exit(1);
    }
}

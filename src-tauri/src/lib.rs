//! The Postern desktop shell: a thin Tauri layer over `postern-core`.
//!
//! It builds the app, registers the commands the window may call ([`commands`]), and hands what
//! the UI asks for to core through [`desktop::Desktop`]. Nothing here knows about AWS; everything
//! that does lives in `postern-core`.
#![forbid(unsafe_code)]

pub mod commands;
pub mod desktop;
pub mod ipc;
pub mod sandbox;

use tauri::{Emitter, Manager, RunEvent};

use crate::desktop::Desktop;

/// How the app was started.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Launch {
    /// `--sandbox`: straight into sandbox mode (no first run; the MFA prompt at once).
    pub sandbox: bool,
}

impl Launch {
    /// Read the arguments (after the program's name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut launch = Self::default();
        for arg in args {
            match arg.as_str() {
                "--sandbox" => launch.sandbox = true,
                "--help" | "-h" => {
                    return Err("usage: postern-desktop [--sandbox]\n  --sandbox  start on the local sandbox (a pretend AWS on 127.0.0.1)".into());
                }
                other => {
                    return Err(format!(
                        "postern-desktop: unknown argument {other:?} (try --help)"
                    ));
                }
            }
        }
        Ok(launch)
    }
}

/// Build and run the desktop app until its last window closes.
pub fn run() {
    let launch = match Launch::parse(std::env::args().skip(1)) {
        Ok(launch) => launch,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let (desktop, mut questions) = Desktop::load(launch.sandbox);
    let context = tauri::generate_context!();
    let app = tauri::Builder::default()
        .manage(desktop)
        .setup(move |app| {
            // Core asks for MFA codes; the window shows them as the `mfa` event.
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                while let Some(event) = questions.recv().await {
                    let _ = handle.emit("mfa", event);
                }
            });
            // Asked to stop (logout, `kill`, Ctrl+C in the terminal it runs from): quit as the
            // window's close does, ending sessions on AWS and stopping the sandbox.
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                stop_requested().await;
                handle.exit(0);
            });
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_state,
            commands::start_sandbox,
            commands::add_profile,
            commands::sandbox_code,
            commands::sign_in,
            commands::answer_mfa,
            commands::cancel_mfa,
            commands::pending_mfa,
            commands::list_instances,
            commands::open_shell,
            commands::sessions,
            commands::attach_session,
            commands::send_input,
            commands::resize_session,
            commands::close_session,
        ])
        .build(context);
    let app = match app {
        Ok(app) => app,
        Err(error) => {
            eprintln!("postern-desktop: could not start the app: {error:#}");
            std::process::exit(1);
        }
    };
    app.run(|handle, event| {
        if let RunEvent::Exit = event {
            // Sessions end with TerminateSession (not left open on AWS for 30 days), the
            // sandbox stops and its folder goes.
            let desktop = handle.state::<Desktop>();
            tauri::async_runtime::block_on(desktop.shut_down());
        }
    });
}

/// Resolves when the process is asked to stop: SIGTERM, SIGINT or SIGHUP (Ctrl+C elsewhere).
async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Launch;

    #[test]
    fn arguments() {
        assert_eq!(Launch::parse([]), Ok(Launch { sandbox: false }));
        assert_eq!(
            Launch::parse(["--sandbox".to_owned()]),
            Ok(Launch { sandbox: true })
        );
        assert!(
            Launch::parse(["--sandbx".to_owned()])
                .unwrap_err()
                .contains("unknown argument")
        );
    }
}

//! `postern shell` and `postern run`.

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use postern_core::session::{
    self, SessionEnd, SessionEvent, SessionOptions, SessionRequest, SsmAccess,
};
use tokio::io::AsyncReadExt as _;

/// Puts the terminal in raw mode (keystrokes, Ctrl-C and Ctrl-Z go to the remote shell, the
/// remote pty echoes) and restores it when dropped.
struct RawTerminal;

impl RawTerminal {
    fn enable() -> Option<Self> {
        crossterm::terminal::enable_raw_mode().ok().map(|()| Self)
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// How long a piped shell's output must be quiet after the end of input before the session ends.
const QUIET_AFTER_EOF: Duration = Duration::from_millis(1500);

/// An interactive shell; with pipes, stdin goes to the shell and the session ends once the shell
/// has gone quiet after the end of input.
pub(crate) async fn shell(
    access: &SsmAccess,
    instance: &str,
    command: Option<&str>,
) -> anyhow::Result<u8> {
    let request = match command {
        Some(command) => SessionRequest::interactive_command(instance, command),
        None => SessionRequest::shell(instance),
    };
    let session = session::open(access, request, SessionOptions::default()).await?;
    let (mut events, writer, id) = session.split();
    let interactive = std::io::stdin().is_terminal();
    let raw = if interactive {
        RawTerminal::enable()
    } else {
        None
    };
    let (eof_tx, mut eof_rx) = tokio::sync::watch::channel(false);
    let input = writer.clone();
    tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 1024];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !input.send(buf[..n].to_vec()).await {
                        return;
                    }
                }
            }
        }
        let _ = eof_tx.send(true);
    });
    // Terminal size: sent at start and whenever it changes (checked twice a second).
    if std::io::stdout().is_terminal() {
        let sizes = writer.clone();
        tokio::spawn(async move {
            let mut last = None;
            loop {
                if let Ok((cols, rows)) = crossterm::terminal::size()
                    && last != Some((cols, rows))
                {
                    last = Some((cols, rows));
                    if !sizes.resize(u32::from(cols), u32::from(rows)).await {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
    let mut stdout = std::io::stdout();
    let mut quiet_deadline: Option<tokio::time::Instant> = None;
    let end = loop {
        let quiet = async {
            match quiet_deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = events.recv() => match event {
                Some(SessionEvent::Output(bytes)) => {
                    let _ = stdout.write_all(&bytes);
                    let _ = stdout.flush();
                    if quiet_deadline.is_some() {
                        quiet_deadline = Some(tokio::time::Instant::now() + QUIET_AFTER_EOF);
                    }
                }
                Some(SessionEvent::Message(text)) => eprint!("{text}\r\n"),
                Some(SessionEvent::Reconnecting { reason }) => eprint!("\r\n[postern: connection lost ({reason}); resuming session {id}]\r\n"),
                Some(SessionEvent::Reconnected) => eprint!("[postern: session {id} resumed]\r\n"),
                Some(SessionEvent::Ended(end)) => break end,
                Some(_) => {}
                None => break SessionEnd::Failed("the session driver stopped".into()),
            },
            changed = eof_rx.changed(), if quiet_deadline.is_none() && !interactive => {
                if changed.is_ok() && *eof_rx.borrow() {
                    quiet_deadline = Some(tokio::time::Instant::now() + QUIET_AFTER_EOF);
                }
            }
            () = quiet => writer.close().await,
            _ = tokio::signal::ctrl_c(), if !interactive => writer.close().await,
        }
    };
    drop(raw);
    match end {
        SessionEnd::Closed(reason) if !reason.is_empty() => {
            eprintln!("\r\nSession {id} ended: {reason}");
            Ok(0)
        }
        SessionEnd::Closed(_) | SessionEnd::ClosedByUser => {
            if interactive {
                eprintln!("\r\nExiting session with sessionId: {id}.");
            }
            Ok(0)
        }
        SessionEnd::Failed(reason) => anyhow::bail!("session {id} failed: {reason}"),
    }
}

/// Quote one argument for a POSIX shell.
fn quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        return arg.to_owned();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// A non-interactive command: stdout and stderr kept apart, the remote exit code returned.
pub(crate) async fn run(
    access: &SsmAccess,
    instance: &str,
    command: &[String],
) -> anyhow::Result<u8> {
    let line = command
        .iter()
        .map(|a| quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let session = session::open(
        access,
        SessionRequest::command(instance, &line),
        SessionOptions::default(),
    )
    .await?;
    let (mut events, writer, id) = session.split();
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let mut exit = None;
    let end = loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(SessionEvent::Output(bytes)) => {
                    let _ = stdout.write_all(&bytes);
                    let _ = stdout.flush();
                }
                Some(SessionEvent::StdErr(bytes)) => {
                    let _ = stderr.write_all(&bytes);
                    let _ = stderr.flush();
                }
                Some(SessionEvent::ExitCode(code)) => exit = Some(code),
                Some(SessionEvent::Reconnecting { reason }) => eprintln!("[postern: connection lost ({reason}); resuming]"),
                Some(SessionEvent::Ended(end)) => break end,
                Some(_) => {}
                None => break SessionEnd::Failed("the session driver stopped".into()),
            },
            _ = tokio::signal::ctrl_c() => {
                writer.close().await;
                return Ok(130);
            }
        }
    };
    match (end, exit) {
        (SessionEnd::Failed(reason), _) => anyhow::bail!("session {id} failed: {reason}"),
        (_, Some(code)) => Ok(u8::try_from(code.rem_euclid(256)).unwrap_or(255)),
        (_, None) => {
            eprintln!("postern: session {id} ended without reporting the command's exit code");
            Ok(255)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_only_what_needs_quoting() {
        assert_eq!(quote("ls"), "ls");
        assert_eq!(quote("-la"), "-la");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$HOME"), "'$HOME'");
    }
}

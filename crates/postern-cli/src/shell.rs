//! `postern shell` and `postern run`.

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use postern_core::session::{
    self, SessionEnd, SessionEvent, SessionFailure, SessionId, SessionOptions, SessionRequest,
    SessionWriter, SsmAccess,
};
use tokio::io::AsyncReadExt as _;

use crate::interrupt::{Interrupt, Interrupts, Opened, open_unless_stopped, say};

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

/// How long a piped session may stay quiet after the end of its input (counted again from each
/// output) before Postern ends it itself. The end of input is passed on (see [`forward_stdin`]),
/// so a shell normally exits on its own once it has run everything; this bound is for a remote
/// program that never ends, and leaves a slow instance time to answer.
const QUIET_AFTER_EOF: Duration = Duration::from_secs(30);

/// Read stdin into the session. At the end of piped input, the remote side's input ends too:
/// a newline if the last line had none (a shell reading a file runs its last line), then `end`:
/// `exit` for a shell (queued behind everything before it, whatever the remote terminal's mode
/// while earlier lines run; Ctrl-D would be lost if it arrived while a command runs), Ctrl-D for a
/// command on its own terminal (its end of input). A terminal's stdin (raw mode) ends only when
/// the terminal goes away, and nothing is added then.
fn forward_stdin(
    writer: &SessionWriter,
    interactive: bool,
    end: &'static [u8],
) -> tokio::sync::watch::Receiver<bool> {
    let (eof_tx, eof_rx) = tokio::sync::watch::channel(false);
    let input = writer.clone();
    tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 1024];
        let mut last = None;
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    last = buf[..n].last().copied();
                    if input.send(buf[..n].to_vec()).await.is_err() {
                        return;
                    }
                }
            }
        }
        if !interactive {
            if last.is_some_and(|b| b != b'\n' && b != b'\r') {
                let _ = input.send(b"\n".to_vec()).await;
            }
            let _ = input.send(end.to_vec()).await;
        }
        let _ = eof_tx.send(true);
    });
    eof_rx
}

/// An interactive shell; with pipes, stdin goes to the shell and the session ends when the shell
/// exits at the end of its input.
pub(crate) async fn shell(
    access: &SsmAccess,
    instance: &str,
    command: Option<&str>,
) -> anyhow::Result<u8> {
    let request = match command {
        Some(command) => SessionRequest::interactive_command(instance, command),
        None => SessionRequest::shell(instance),
    };
    let mut interrupts = Interrupts::install()?;
    let opening = session::open(access, request, SessionOptions::default());
    let session = match open_unless_stopped(&mut interrupts, opening).await? {
        Opened::Yes(session) => session,
        Opened::Stopped(signal, late) => return Ok(stopped_while_opening(signal, late).await),
    };
    let (mut events, writer, id) = session.split();
    let interactive = std::io::stdin().is_terminal();
    let raw = if interactive {
        RawTerminal::enable()
    } else {
        None
    };
    let end_of_input: &'static [u8] = match command {
        Some(_) => b"\x04",
        None => b"exit\n",
    };
    let mut eof_rx = forward_stdin(&writer, interactive, end_of_input);
    // Terminal size: sent at start and as soon as the window changes (SIGWINCH; checked twice a
    // second too, where there is no such signal).
    if std::io::stdout().is_terminal() {
        let sizes = writer.clone();
        tokio::spawn(async move {
            let mut resized = window_changes();
            let mut last = None;
            loop {
                if let Ok((cols, rows)) = crossterm::terminal::size()
                    && last != Some((cols, rows))
                {
                    last = Some((cols, rows));
                    if sizes
                        .resize(u32::from(cols), u32::from(rows))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                let tick = tokio::time::sleep(Duration::from_millis(500));
                match resized.as_mut() {
                    Some(signal) => {
                        tokio::select! {
                            _ = signal.recv() => {}
                            () = tick => {}
                        }
                    }
                    None => tick.await,
                }
            }
        });
    }
    let mut stdout = std::io::stdout();
    let mut quiet_deadline: Option<tokio::time::Instant> = None;
    let mut stopped_by = None;
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
                Some(SessionEvent::Reconnecting(reason)) => eprint!("\r\n[postern: connection lost ({reason}); resuming session {id}]\r\n"),
                Some(SessionEvent::Reconnected) => eprint!("[postern: session {id} resumed]\r\n"),
                Some(SessionEvent::Ended(end)) => break Some(end),
                Some(_) => {}
                None => break Some(SessionEnd::Failed(SessionFailure::DriverStopped)),
            },
            changed = eof_rx.changed(), if quiet_deadline.is_none() && !interactive => {
                if changed.is_ok() && *eof_rx.borrow() {
                    quiet_deadline = Some(tokio::time::Instant::now() + QUIET_AFTER_EOF);
                }
            }
            () = quiet => {
                say(&format!(
                    "postern: the remote side did not end its session {} s after the end of input; closing it",
                    QUIET_AFTER_EOF.as_secs()
                ));
                break session::close_and_wait(&writer, &mut events).await;
            }
            signal = interrupts.next() => {
                stopped_by = Some(signal);
                break session::close_and_wait(&writer, &mut events).await;
            }
        }
    };
    drop(raw);
    if let Some(signal) = stopped_by {
        say_stopped(&id, signal, end.as_ref());
        return Ok(signal.exit_code());
    }
    match end {
        Some(SessionEnd::Closed {
            reason: Some(reason),
        }) => {
            say(&format!("\r\nSession {id} ended: {reason}"));
            Ok(0)
        }
        Some(SessionEnd::Closed { reason: None } | SessionEnd::ClosedByUser) => {
            if interactive {
                say(&format!("\r\nExiting session with sessionId: {id}."));
            }
            Ok(0)
        }
        Some(SessionEnd::Failed(reason)) => anyhow::bail!("session {id} failed: {reason}"),
        None => anyhow::bail!(
            "session {id} did not end within {} s of being closed; AWS ends it after the account's idle timeout",
            session::CLOSE_LIMIT.as_secs()
        ),
    }
}

/// A signal came while the session was being opened: close what was opened, if anything, and
/// say so; the exit code.
pub(crate) async fn stopped_while_opening(signal: Interrupt, late: Option<session::Session>) -> u8 {
    match late {
        Some(session) => {
            let (mut events, writer, id) = session.split();
            let end = session::close_and_wait(&writer, &mut events).await;
            say_stopped(&id, signal, end.as_ref());
        }
        None => say(&format!(
            "postern: {} before the session started.",
            signal.name()
        )),
    }
    signal.exit_code()
}

/// The terminal's window-change signal, where there is one.
#[cfg(unix)]
fn window_changes() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok()
}

#[cfg(not(unix))]
fn window_changes() -> Option<NoSignal> {
    None
}

/// Where there is no window-change signal.
#[cfg(not(unix))]
struct NoSignal;

#[cfg(not(unix))]
impl NoSignal {
    async fn recv(&mut self) -> Option<()> {
        std::future::pending().await
    }
}

/// The summary after a signal: whether the session is known to be over on the service.
pub(crate) fn say_stopped(id: &SessionId, signal: Interrupt, end: Option<&SessionEnd>) {
    let outcome = match end {
        Some(SessionEnd::ClosedByUser) => "terminated",
        Some(SessionEnd::Closed { .. }) => "ended",
        Some(SessionEnd::Failed(_)) | None => {
            "could not be confirmed terminated (AWS ends it after the account's idle timeout)"
        }
    };
    say(&format!(
        "\r\npostern: {}; session {id} {outcome}.",
        signal.name()
    ));
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

/// The command line the remote shell runs: one argument is a command line already (as with
/// `ssh host 'cmd | filter'`); several are a command and its arguments, quoted one by one.
fn remote_command_line(command: &[String]) -> String {
    match command {
        [line] => line.clone(),
        _ => command
            .iter()
            .map(|a| quote(a))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// What `postern run` found on its standard input.
#[derive(Debug, PartialEq, Eq)]
enum PipedInput {
    /// A terminal, nothing, or a pipe nobody has written to yet.
    None,
    /// Data: refused, since the remote command could never be told where it ends.
    Data,
}

/// Look at stdin before a command starts: piped data would be silently lost, because Session
/// Manager has no way to tell a remote command that its input ended (the protocol carries no
/// end of input), so it is refused instead. A pipe that stays empty for a moment is taken to
/// carry nothing (a script's inherited stdin); what comes later is reported, not sent.
async fn piped_input(stdin: &mut Option<tokio::sync::mpsc::Receiver<usize>>) -> PipedInput {
    let Some(reads) = stdin.as_mut() else {
        return PipedInput::None;
    };
    match tokio::time::timeout(Duration::from_millis(100), reads.recv()).await {
        Ok(Some(n)) if n > 0 => PipedInput::Data,
        Ok(_) => {
            *stdin = None;
            PipedInput::None
        }
        Err(_) => PipedInput::None,
    }
}

/// Read stdin (unless it is a terminal) in the background, reporting how many bytes each read
/// got (0 at the end).
fn watch_stdin() -> Option<tokio::sync::mpsc::Receiver<usize>> {
    if std::io::stdin().is_terminal() {
        return None;
    }
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 8192];
        loop {
            let n = stdin.read(&mut buf).await.unwrap_or(0);
            if tx.send(n).await.is_err() || n == 0 {
                return;
            }
        }
    });
    Some(rx)
}

/// A non-interactive command: stdout and stderr kept apart, the remote exit code returned.
pub(crate) async fn run(
    access: &SsmAccess,
    instance: &str,
    command: &[String],
) -> anyhow::Result<u8> {
    let line = remote_command_line(command);
    let mut stdin = watch_stdin();
    if piped_input(&mut stdin).await == PipedInput::Data {
        anyhow::bail!(
            "postern run does not pass standard input to the remote command: Session Manager cannot tell a command that its input has ended, so it would wait forever. Put the data in the command, or pipe it into `postern shell`, which ends the remote shell's input"
        );
    }
    let mut interrupts = Interrupts::install()?;
    let opening = session::open(
        access,
        SessionRequest::command(instance, &line),
        SessionOptions::default(),
    );
    let session = match open_unless_stopped(&mut interrupts, opening).await? {
        Opened::Yes(session) => session,
        Opened::Stopped(signal, late) => return Ok(stopped_while_opening(signal, late).await),
    };
    let (mut events, writer, id) = session.split();
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let mut exit = None;
    let mut ignored_input = 0usize;
    let end = loop {
        let more_input = async {
            match stdin.as_mut() {
                Some(reads) => reads.recv().await,
                None => std::future::pending().await,
            }
        };
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
                Some(SessionEvent::Reconnecting(reason)) => say(&format!("[postern: connection lost ({reason}); resuming]")),
                Some(SessionEvent::Ended(end)) => break end,
                Some(_) => {}
                None => break SessionEnd::Failed(SessionFailure::DriverStopped),
            },
            read = more_input => match read {
                Some(n) if n > 0 => {
                    if ignored_input == 0 {
                        say("postern: standard input is not passed to the remote command (Session Manager cannot end a command's input); ignoring it");
                    }
                    ignored_input += n;
                }
                _ => stdin = None,
            },
            signal = interrupts.next() => {
                let end = session::close_and_wait(&writer, &mut events).await;
                say_stopped(&id, signal, end.as_ref());
                return Ok(signal.exit_code());
            }
        }
    };
    match (end, exit) {
        (SessionEnd::Failed(reason), _) => anyhow::bail!("session {id} failed: {reason}"),
        (_, Some(code)) => Ok(u8::try_from(code.rem_euclid(256)).unwrap_or(255)),
        (_, None) => {
            say(&format!(
                "postern: session {id} ended without reporting the command's exit code"
            ));
            Ok(255)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{quote, remote_command_line};

    #[test]
    fn one_argument_is_a_command_line_and_several_are_quoted_one_by_one() {
        let line = |args: &[&str]| {
            remote_command_line(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(
            line(&["journalctl -u app | tail"]),
            "journalctl -u app | tail"
        );
        assert_eq!(
            line(&["printf", "%s|", "two words"]),
            "printf '%s|' 'two words'"
        );
        assert_eq!(line(&["ls"]), "ls");
    }

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

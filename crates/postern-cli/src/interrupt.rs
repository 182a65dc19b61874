//! The ways a user stops a command that holds sessions open: Ctrl-C (SIGINT), `kill` (SIGTERM)
//! and a closed terminal window (SIGHUP). `shell`, `run`, `tunnel` and `ssh-proxy` catch them, end
//! every session they opened (TerminateSession, within a few seconds), print their summary and
//! exit with 128 + the signal's number, as a shell reports a command a signal stopped.

use std::io::Write as _;

/// A signal that asks Postern to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interrupt {
    /// SIGINT: Ctrl-C.
    Int,
    /// SIGTERM: `kill`, a service manager.
    Term,
    /// SIGHUP: the terminal went away (its window was closed), or ssh ended its ProxyCommand.
    Hup,
}

impl Interrupt {
    /// The exit status a shell gives a command this signal stopped.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Self::Int => 130,
            Self::Term => 143,
            Self::Hup => 129,
        }
    }

    /// How the summary names it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Int => "interrupted (SIGINT)",
            Self::Term => "terminated (SIGTERM)",
            Self::Hup => "hung up (SIGHUP)",
        }
    }
}

/// The signal handlers, installed before any session is opened so that no signal can end the
/// process while a session is open.
pub(crate) struct Interrupts {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Interrupts {
    /// Catch SIGINT, SIGTERM and SIGHUP from now on (Ctrl-C and Ctrl-Break on Windows).
    pub(crate) fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let catch = |kind: SignalKind| {
                signal(kind).map_err(|e| anyhow::anyhow!("cannot catch signals: {e}"))
            };
            Ok(Self {
                int: catch(SignalKind::interrupt())?,
                term: catch(SignalKind::terminate())?,
                hup: catch(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// The next signal (one that arrived since [`Interrupts::install`] is returned at once).
    pub(crate) async fn next(&mut self) -> Interrupt {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => Interrupt::Int,
                _ = self.term.recv() => Interrupt::Term,
                _ = self.hup.recv() => Interrupt::Hup,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Interrupt::Int
        }
    }
}

/// Print a line for the user on stderr. A terminal that is gone (SIGHUP) or a closed pipe is not
/// an error worth dying for: the summary is best effort there.
pub(crate) fn say(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
    let _ = stderr.flush();
}

/// What became of an open (StartSession, a tunnel's pool) raced against the signals.
pub(crate) enum Opened<T> {
    /// It opened.
    Yes(T),
    /// A signal came first; what the open still made in the moments after it (to close).
    Stopped(Interrupt, Option<T>),
}

/// Run `open` unless a signal comes first (Ctrl-C during a slow start or an MFA prompt must
/// work). After a signal, the open gets [`postern_core::session::CLOSE_LIMIT`] to finish, so
/// that a session it started can be closed by the caller rather than left open on AWS.
pub(crate) async fn open_unless_stopped<T, E>(
    interrupts: &mut Interrupts,
    open: impl std::future::Future<Output = Result<T, E>>,
) -> Result<Opened<T>, E> {
    tokio::pin!(open);
    tokio::select! {
        opened = &mut open => opened.map(Opened::Yes),
        signal = interrupts.next() => {
            let late = tokio::time::timeout(postern_core::session::CLOSE_LIMIT, open).await;
            Ok(Opened::Stopped(signal, late.ok().and_then(Result::ok)))
        }
    }
}

//! The local end of a session: its PTY or command processes and its TCP connections, each pumped
//! in its own task that reports to the agent task as [`Local`] messages.

use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::home::SessionHome;

/// What the plumbing reports to the agent task.
#[derive(Debug)]
pub(super) enum Local {
    /// Bytes from the shell or the command's stdout.
    Output(Vec<u8>),
    /// Bytes from the single TCP connection of that generation (basic or stream mode).
    TcpData(u64, Vec<u8>),
    /// The command's stderr.
    StdErr(Vec<u8>),
    /// The shell or command exited.
    Exited(i32),
    /// The single TCP connection of that generation ended.
    TcpClosed(u64),
    /// A mux stream's TCP connection was made (or not).
    StreamDialed(u32, Result<TcpWriter, String>),
    /// Bytes from a mux stream's TCP connection.
    StreamData(u32, Vec<u8>),
    /// A mux stream's TCP connection ended.
    StreamEnded(u32),
    /// The single TCP connection of that generation was made (or not).
    Dialed(u64, Result<TcpWriter, String>),
}

pub(super) struct PtyHandles {
    pub(super) master: Box<dyn portable_pty::MasterPty + Send>,
    pub(super) input: std::sync::mpsc::Sender<Vec<u8>>,
    /// Set when the session is over: the shell's watcher then hangs up on it.
    pub(super) over: Arc<AtomicBool>,
}

impl Drop for PtyHandles {
    fn drop(&mut self) {
        self.over.store(true, Ordering::Release);
    }
}

/// Which connection a TCP pump reports for.
#[derive(Clone, Copy, Debug)]
pub(super) enum TcpTag {
    /// A smux stream.
    Stream(u32),
    /// The single connection of basic or stream mode, by generation.
    Single(u64),
}

/// The way to one TCP connection of a port session. What is sent here is written in the
/// background and counted in the session's `unwritten` bytes until it is: the real agent writes
/// to the connection before it handles the next message, so a slow server holds the client
/// back; this agent stops taking the client's frames while too much is unwritten.
#[derive(Clone, Debug)]
pub(super) struct TcpWriter {
    pub(super) tx: mpsc::UnboundedSender<Vec<u8>>,
    pub(super) unwritten: Arc<AtomicUsize>,
}

impl TcpWriter {
    pub(super) fn send(&self, bytes: Vec<u8>) {
        let n = bytes.len();
        self.unwritten.fetch_add(n, Ordering::AcqRel);
        if self.tx.send(bytes).is_err() {
            self.unwritten.fetch_sub(n, Ordering::AcqRel);
        }
    }
}

/// Bytes for a session's TCP connections not yet written before the agent stops taking frames.
pub(super) const MAX_UNWRITTEN: usize = 4 * 1024 * 1024;
/// Client data frames held while TCP catches up (more than any client window; beyond, they
/// are dropped unacknowledged and sent again).
pub(super) const MAX_HELD_INPUT: usize = 4096;

pub(super) fn spawn_tcp(
    socket: TcpStream,
    tx: mpsc::Sender<Local>,
    tag: TcpTag,
    unwritten: Arc<AtomicUsize>,
) -> TcpWriter {
    let (mut reader, mut writer) = socket.into_split();
    let (write_tx, mut write_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let written = unwritten.clone();
    tokio::spawn(async move {
        while let Some(bytes) = write_rx.recv().await {
            let result = writer.write_all(&bytes).await;
            written.fetch_sub(bytes.len(), Ordering::AcqRel);
            if result.is_err() {
                write_rx.close();
                while let Ok(bytes) = write_rx.try_recv() {
                    written.fetch_sub(bytes.len(), Ordering::AcqRel);
                }
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let local = match tag {
                        TcpTag::Stream(id) => Local::StreamData(id, buf[..n].to_vec()),
                        TcpTag::Single(generation) => Local::TcpData(generation, buf[..n].to_vec()),
                    };
                    if tx.send(local).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx
            .send(match tag {
                TcpTag::Stream(id) => Local::StreamEnded(id),
                TcpTag::Single(generation) => Local::TcpClosed(generation),
            })
            .await;
    });
    TcpWriter {
        tx: write_tx,
        unwritten,
    }
}

/// A command's process group and folder: dropping it kills what is left of the group, then
/// removes the folder (the session is over however this is dropped).
pub(super) struct CommandGroup {
    pub(super) leader: Option<u32>,
    /// Dropped after [`Drop::drop`] has killed the group.
    pub(super) _home: Arc<SessionHome>,
}

impl Drop for CommandGroup {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(leader) = self.leader.and_then(|pid| i32::try_from(pid).ok()) {
            use nix::sys::signal::{Signal, killpg};
            let _ = killpg(nix::unistd::Pid::from_raw(leader), Signal::SIGKILL);
        }
    }
}

/// How often a shell's watcher looks whether the shell exited or the session is over.
pub(super) const PTY_WATCH_INTERVAL: Duration = Duration::from_millis(20);

pub(super) fn spawn_pty(
    home: Arc<SessionHome>,
    command: Option<&str>,
    tx: mpsc::Sender<Local>,
) -> Result<PtyHandles, String> {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(|e| e.to_string())?;
    let mut builder = CommandBuilder::new("bash");
    match command {
        Some(command) => builder.args(["--noprofile", "--norc", "-c", command]),
        None => builder.args(["--noprofile", "--norc", "-i"]),
    }
    builder.cwd(home.path());
    builder.env("HOME", home.path());
    builder.env("TERM", "xterm-256color");
    builder.env("PS1", "sandbox$ ");
    builder.env("LANG", "C.UTF-8");
    let mut child = pair
        .slave
        .spawn_command(builder)
        .map_err(|e| e.to_string())?;
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().map_err(|e| e.to_string())?;
    let mut writer = pair.master.take_writer().map_err(|e| e.to_string())?;
    let (input_tx, input_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        while let Ok(bytes) = input_rx.recv() {
            if writer
                .write_all(&bytes)
                .and_then(|()| writer.flush())
                .is_err()
            {
                break;
            }
        }
    });
    let output_tx = tx.clone();
    let output = std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if output_tx
                        .blocking_send(Local::Output(buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    let over = Arc::new(AtomicBool::new(false));
    let session_over = over.clone();
    let leader = child.process_id();
    std::thread::spawn(move || {
        let code = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status.exit_code() as i32,
                Ok(None) => {}
                Err(_) => break -1,
            }
            if session_over.load(Ordering::Acquire) {
                // Hang up on the shell as a closed terminal does (SIGHUP, then SIGKILL if it is
                // still there a moment later), and wait for it to be gone.
                let _ = child.kill();
                break child.wait().map_or(-1, |s| s.exit_code() as i32);
            }
            std::thread::sleep(PTY_WATCH_INTERVAL);
        };
        // The jobs the shell started go with it, even those that ignore hang-ups.
        if let Some(leader) = leader {
            kill_session(leader);
        }
        drop(home);
        // Everything the shell wrote reaches the agent before its exit does.
        let _ = output.join();
        let _ = tx.blocking_send(Local::Exited(code));
    });
    Ok(PtyHandles {
        master: pair.master,
        input: input_tx,
        over,
    })
}

/// Kill every process left in the terminal session whose leader was `leader` (the shell): the
/// jobs it started, found through `/proc` (a session id is not reused while it has members).
#[cfg(target_os = "linux")]
pub(super) fn kill_session(leader: u32) {
    use nix::sys::signal::{Signal, kill};
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp session …`; comm may hold spaces and parentheses.
        let session = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(3))
            .and_then(|s| s.parse::<u32>().ok());
        if session == Some(leader) {
            let _ = kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Elsewhere the shell's process group stands for its session.
#[cfg(all(unix, not(target_os = "linux")))]
pub(super) fn kill_session(leader: u32) {
    use nix::sys::signal::{Signal, killpg};
    if let Ok(leader) = i32::try_from(leader) {
        let _ = killpg(nix::unistd::Pid::from_raw(leader), Signal::SIGKILL);
    }
}

#[cfg(not(unix))]
pub(super) fn kill_session(_leader: u32) {}
